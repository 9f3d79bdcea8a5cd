// IP plan: services 198.18.128.0/17.
import assert from "node:assert/strict";
import { type KubeObject, parseKubeObject } from "../model/kube_object.ts";
import { diffObjectSets, toObjectSet } from "./object_set_diff.ts";

function object(raw: Record<string, unknown>): KubeObject {
  const r = parseKubeObject(raw);
  if (r.ok !== true) throw new Error("bad fixture");
  return r.value;
}

const service = (name: string, port: number, ns?: string) =>
  object({
    kind: "Service",
    metadata: ns === undefined ? { name } : { name, namespace: ns },
    spec: { clusterIP: "198.18.128.10", ports: [{ port }] },
  });
const nodeA = object({ kind: "Node", metadata: { name: "node-a" } });

Deno.test("object set diff: upserts for new and changed objects, deletes for gone ones", () => {
  const before = toObjectSet([service("a", 80), service("b", 80), nodeA]);
  const after = toObjectSet([service("a", 80), service("b", 81), service("c", 80, "shop")]);
  const events = diffObjectSets(before, after);
  assert.deepEqual(
    events.map((e) => e.type === "upsert" ? `+${e.object.object.metadata.name}` : e),
    [
      "+b",
      "+c",
      { type: "delete", kind: "Node", namespace: null, name: "node-a" },
    ],
  );
  assert.deepEqual(diffObjectSets(after, after), []);
});

Deno.test("object set diff: a later object with the same key wins; key order is irrelevant", () => {
  const set = toObjectSet([service("a", 80), service("a", 82, "default")]);
  assert.equal(set.size, 1);
  const a = set.get("Service/default/a")?.object;
  assert.ok(a?.kind === "Service");
  assert.equal(a.object.spec.ports?.[0]?.port, 82);
  const reordered = object({
    metadata: { namespace: "default", name: "a" },
    spec: { ports: [{ port: 82 }], clusterIP: "198.18.128.10" },
    kind: "Service",
  });
  assert.deepEqual(diffObjectSets(set, toObjectSet([reordered])), []);
});

Deno.test("object set diff: deletes of namespace-less objects name the default namespace", () => {
  const events = diffObjectSets(toObjectSet([service("a", 80)]), new Map());
  assert.deepEqual(events, [{ type: "delete", kind: "Service", namespace: "default", name: "a" }]);
});
