/**
 * IP plan: service ClusterIPs 198.18.128.0/17, pod endpoints 198.18.1.0/24 (stored, never routed).
 */
import assert from "node:assert/strict";
import { KubeObjectCache } from "./kube_object_cache.ts";

const TRIGGER = "endpoints.kubernetes.io/last-change-trigger-time";

function service(name: string, rv: string, extra: Record<string, unknown> = {}) {
  return {
    metadata: {
      name,
      namespace: "default",
      resourceVersion: rv,
      managedFields: [{ manager: "kubectl", operation: "Apply" }],
      annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{...}" },
    },
    spec: { clusterIP: "198.18.128.10", ports: [{ port: 80, protocol: "TCP" }], ...extra },
    status: { loadBalancer: {} },
  };
}

function slice(name: string, rv: string, addresses: string[], trigger?: string) {
  return {
    kind: "EndpointSlice",
    apiVersion: "discovery.k8s.io/v1",
    metadata: {
      name,
      namespace: "default",
      resourceVersion: rv,
      labels: { "kubernetes.io/service-name": "web" },
      annotations: trigger === undefined ? {} : { [TRIGGER]: trigger },
    },
    addressType: "IPv4",
    endpoints: addresses.map((a) => ({ addresses: [a], conditions: { ready: true } })),
    ports: [{ name: "", port: 8080, protocol: "TCP" }],
  };
}

Deno.test("list items without kind are read; unknown fields and annotations are dropped", () => {
  const cache = new KubeObjectCache("Service");
  const change = cache.replace([service("web", "10")]);
  assert.equal(change.errors.length, 0);
  assert.equal(change.events.length, 1);
  const stored = cache.get("default/web");
  assert.ok(stored?.kind === "Service");
  assert.equal(stored.object.apiVersion, "v1");
  assert.equal(stored.object.metadata.annotations, undefined);
  assert.equal("managedFields" in stored.object.metadata, false);
  assert.equal(stored.object.status?.loadBalancer?.ingress, undefined);
});

Deno.test("a relist is a per-kind replace: upserts for changes, deletes for what is gone", () => {
  const cache = new KubeObjectCache("Service");
  cache.replace([service("a", "1"), service("b", "2"), service("c", "3")]);
  const change = cache.replace([
    service("a", "1"),
    service("b", "7", { sessionAffinity: "ClientIP" }),
    service("d", "8"),
  ]);
  const summary = change.events.map((e) =>
    e.type === "upsert"
      ? `upsert ${e.object.object.metadata.name}`
      : `${e.type} ${e.type === "delete" ? `${e.kind} ${e.namespace}/${e.name}` : ""}`
  );
  assert.deepEqual(summary.sort(), [
    "delete Service default/c",
    "upsert b",
    "upsert d",
  ]);
  assert.equal(change.events.some((e) => e.type === "replace"), false);
  assert.deepEqual(cache.objects().map((o) => o.object.metadata.name).sort(), ["a", "b", "d"]);
});

Deno.test("an update that touches only ignored fields or the resourceVersion emits nothing", () => {
  const cache = new KubeObjectCache("Service");
  cache.apply("ADDED", { kind: "Service", ...service("web", "1") });
  const change = cache.apply("MODIFIED", {
    kind: "Service",
    ...service("web", "2"),
    status: { loadBalancer: {}, conditions: [{ type: "Ready" }] },
  });
  assert.deepEqual(change.events, []);
  // The newer resourceVersion is kept.
  assert.equal(cache.get("default/web")?.object.metadata.resourceVersion, "2");
});

Deno.test("an invalid object is reported, skipped, and keeps its last good version", () => {
  const cache = new KubeObjectCache("EndpointSlice");
  assert.equal(cache.apply("ADDED", slice("web-1", "1", ["198.18.1.10"])).events.length, 1);
  const bad = cache.apply("MODIFIED", slice("web-1", "2", ["198.018.1.10"]));
  assert.equal(bad.events.length, 0);
  assert.equal(bad.errors.length, 1);
  assert.match(
    bad.errors[0]?.message ?? "",
    /^api: Cannot read EndpointSlice default\/web-1: endpoints\[0\]\.addresses\[0\] is not an IP address$/,
  );
  const kept = cache.get("default/web-1");
  assert.ok(kept?.kind === "EndpointSlice");
  assert.equal(kept.object.endpoints?.[0]?.addresses[0], "198.18.1.10");
  // A new invalid object never enters the cache; a relist reports it again.
  const relist = cache.replace([slice("web-1", "2", ["198.018.1.10"]), slice("x", "3", ["no"])]);
  assert.equal(relist.errors.length, 2);
  assert.deepEqual(relist.events, []);
  assert.equal(cache.size, 1);
  // Deleting an invalid object still deletes its last good version.
  const deleted = cache.apply("DELETED", slice("web-1", "4", ["198.018.1.10"]));
  assert.deepEqual(deleted.events, [{
    type: "delete",
    kind: "EndpointSlice",
    namespace: "default",
    name: "web-1",
  }]);
});

Deno.test("trigger times of changed slices newer than the start are reported", () => {
  const start = Date.UTC(2026, 10, 26, 12);
  const cache = new KubeObjectCache("EndpointSlice", { triggerTimesAfter: start });
  const old = cache.apply("ADDED", slice("a", "1", ["198.18.1.10"], "2026-11-26T11:59:59Z"));
  assert.deepEqual(old.triggerTimes, []);
  const fresh = cache.apply("ADDED", slice("b", "2", ["198.18.1.11"], "2026-11-26T12:00:01.250Z"));
  assert.deepEqual(fresh.triggerTimes, [start + 1250]);
  const kept = cache.get("default/b");
  assert.equal(kept?.object.metadata.annotations?.[TRIGGER], "2026-11-26T12:00:01.250Z");
  const gone = cache.apply("DELETED", slice("b", "3", ["198.18.1.11"], "2026-11-26T12:00:02Z"));
  assert.deepEqual(gone.triggerTimes, [start + 2000]);
});

Deno.test("Node deletes carry no namespace", () => {
  const cache = new KubeObjectCache("Node");
  cache.replace([{ metadata: { name: "node-a", resourceVersion: "1" } }]);
  assert.deepEqual(cache.replace([]).events, [{
    type: "delete",
    kind: "Node",
    namespace: null,
    name: "node-a",
  }]);
});

Deno.test("an abandoned replacement leaves the cache as it was", () => {
  const cache = new KubeObjectCache("Service");
  cache.replace([service("a", "1")]);
  const replacement = cache.startReplace();
  replacement.add([service("b", "2")]);
  assert.deepEqual(cache.objects().map((o) => o.object.metadata.name), ["a"]);
  replacement.commit();
  assert.deepEqual(cache.objects().map((o) => o.object.metadata.name), ["b"]);
  assert.throws(() => replacement.commit(), /twice/);
});

Deno.test("an object of another kind is an error, not a crash", () => {
  const cache = new KubeObjectCache("Service");
  const change = cache.apply("ADDED", { kind: "Node", metadata: { name: "node-a" } });
  assert.equal(change.errors.length, 1);
  assert.equal(cache.size, 0);
  const junk = cache.apply("ADDED", "not an object");
  assert.equal(junk.errors.length, 1);
});
