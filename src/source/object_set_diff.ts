/** Turns two complete object sets into the upsert/delete events between them (pure). */
import { type KubeObject, objectKey } from "../model/kube_object.ts";
import type { ProxyEvent } from "../snapshot/proxy_state.ts";
import { canonicalJSON, contentHash } from "../snapshot/hash.ts";

/** Objects by store key, with a hash of their canonical text for cheap comparison. */
export type ObjectSet = ReadonlyMap<
  string,
  { readonly object: KubeObject; readonly digest: string }
>;

/** Indexes objects by key; a later object with the same key wins, as `kubectl apply` would. */
export function toObjectSet(objects: readonly KubeObject[]): ObjectSet {
  const out = new Map<string, { object: KubeObject; digest: string }>();
  for (const object of objects) {
    // A 128-bit hash, not the text: the text of every object would stay in memory otherwise.
    out.set(objectKey(object), { object, digest: contentHash(canonicalJSON(object.object)) });
  }
  return out;
}

/** The events that turn `before` into `after`. */
export function diffObjectSets(before: ObjectSet, after: ObjectSet): ProxyEvent[] {
  const events: ProxyEvent[] = [];
  for (const [key, entry] of after) {
    if (before.get(key)?.digest !== entry.digest) {
      events.push({ type: "upsert", object: entry.object });
    }
  }
  for (const [key, entry] of before) {
    if (after.has(key)) continue;
    const meta = entry.object.object.metadata;
    events.push({
      type: "delete",
      kind: entry.object.kind,
      namespace: entry.object.kind === "Node" ? null : meta.namespace ?? "default",
      name: meta.name,
    });
  }
  return events;
}
