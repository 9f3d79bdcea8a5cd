/**
 * Makes a test API server hold a given set of plain objects — the same objects a scenario hands
 * kproxy — so that upstream kube-proxy (or kproxy with `--kubeconfig`) sees them through the API
 * as in a real cluster. {@link ApiObjects.sync} creates, replaces and deletes so that, among the
 * objects this store wrote, exactly the given ones exist afterwards; status (a Node's addresses, a
 * LoadBalancer's ingress) goes through the status subresource, as controllers write it.
 *
 * Two manifest spellings become API operations: a Service with two ClusterIPs gets
 * `ipFamilyPolicy: RequireDualStack` when it says nothing, and a Node whose
 * `metadata.deletionTimestamp` is set is held by a finalizer and deleted, so the API server itself
 * stamps its deletion time (a drained node on its way out).
 *
 * IP plan: whatever the objects say (tests/netns/topology.ts: ClusterIPs from 198.18.128.0/17 and
 * fd00:128::/112, which the lab's API server serves).
 *
 * @module
 */
import type { TestCluster } from "../fixtures/apiserver.ts";

/** A plain Kubernetes object (a scenario's manifest). */
export type PlainObject = Readonly<Record<string, unknown>>;

/** The kinds the store writes. */
export type ApiKind = "Node" | "Service" | "EndpointSlice" | "ServiceCIDR";

/** What one {@link ApiObjects.sync} did. */
export interface ApiSyncResult {
  /** Objects created. */
  readonly created: number;
  /** Objects replaced (spec or status). */
  readonly updated: number;
  /** Objects deleted. */
  readonly deleted: number;
}

/** The finalizer that holds a Node the store deletes while it must stay visible. */
export const HOLD_FINALIZER = "kproxy.test/hold";

interface Resource {
  readonly kind: ApiKind;
  readonly path: string;
  readonly collection: string;
  readonly hasStatus: boolean;
}

function metadataOf(object: PlainObject): Record<string, unknown> {
  const meta = object["metadata"];
  if (typeof meta !== "object" || meta === null) {
    throw new Error(`Cannot write ${object["kind"]}: metadata is missing`);
  }
  return meta as Record<string, unknown>;
}

function resourceOf(object: PlainObject): Resource {
  const kind = object["kind"];
  const meta = metadataOf(object);
  const name = String(meta["name"]);
  const ns = String(meta["namespace"] ?? "default");
  switch (kind) {
    case "Node":
      return { kind, path: `/api/v1/nodes/${name}`, collection: "/api/v1/nodes", hasStatus: true };
    case "Service": {
      const collection = `/api/v1/namespaces/${ns}/services`;
      return { kind, path: `${collection}/${name}`, collection, hasStatus: true };
    }
    case "EndpointSlice": {
      const collection = `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`;
      return { kind, path: `${collection}/${name}`, collection, hasStatus: false };
    }
    case "ServiceCIDR": {
      const collection = "/apis/networking.k8s.io/v1/servicecidrs";
      return { kind, path: `${collection}/${name}`, collection, hasStatus: false };
    }
    default:
      throw new Error(`Cannot write objects of kind ${String(kind)} to the test API server`);
  }
}

/** The object as it is written: no uid/resourceVersion/deletionTimestamp, API defaults spelled. */
function writable(object: PlainObject): Record<string, unknown> {
  const {
    uid: _uid,
    resourceVersion: _rv,
    deletionTimestamp,
    ...metadata
  } = metadataOf(object);
  const out: Record<string, unknown> = { ...object, metadata };
  if (deletionTimestamp) {
    const finalizers = new Set([...(metadata["finalizers"] as string[] | undefined ?? [])]);
    finalizers.add(HOLD_FINALIZER);
    out["metadata"] = { ...metadata, finalizers: [...finalizers] };
  }
  if (object["kind"] === "Service") {
    const spec = { ...(object["spec"] as Record<string, unknown> | undefined) };
    const ips = spec["clusterIPs"];
    if (Array.isArray(ips) && ips.length === 2 && spec["ipFamilyPolicy"] === undefined) {
      spec["ipFamilyPolicy"] = "RequireDualStack";
    }
    out["spec"] = spec;
  }
  return out;
}

function isDeleting(object: PlainObject): boolean {
  return Boolean(metadataOf(object)["deletionTimestamp"]);
}

/** Writes plain objects to a test API server as the token admin and remembers what it wrote. */
export class ApiObjects {
  readonly #cluster: TestCluster;
  /** Path → the last object written there (as given to `sync`). */
  readonly #written = new Map<string, { readonly resource: Resource; readonly text: string }>();

  /** A store writing to `cluster`. */
  constructor(cluster: TestCluster) {
    this.#cluster = cluster;
  }

  async #call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await this.#cluster.request(path, {
      method,
      headers: {
        "Content-Type": method === "PATCH" ? "application/merge-patch+json" : "application/json",
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`Cannot ${method} ${path}: HTTP ${res.status}: ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  }

  async #exists(path: string): Promise<Record<string, unknown> | null> {
    const res = await this.#cluster.request(path);
    const text = await res.text();
    if (res.status === 404) return null;
    if (!res.ok) throw new Error(`Cannot GET ${path}: HTTP ${res.status}: ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  }

  async #put(path: string, body: Record<string, unknown>): Promise<void> {
    const current = await this.#call("GET", path);
    const rv = (current["metadata"] as Record<string, unknown>)["resourceVersion"];
    const metadata = { ...(body["metadata"] as Record<string, unknown>), resourceVersion: rv };
    await this.#call("PUT", path, { ...body, metadata });
  }

  async #write(object: PlainObject, resource: Resource, exists: boolean): Promise<void> {
    const body = writable(object);
    const { status, ...withoutStatus } = body;
    if (exists) await this.#put(resource.path, withoutStatus);
    else await this.#call("POST", resource.collection, withoutStatus);
    if (resource.hasStatus && status !== undefined) {
      await this.#put(`${resource.path}/status`, body);
    }
    if (isDeleting(object)) await this.#call("DELETE", resource.path);
  }

  async #remove(path: string): Promise<boolean> {
    const current = await this.#exists(path);
    if (current === null) return false;
    const meta = current["metadata"] as Record<string, unknown>;
    const finalizers = (meta["finalizers"] as string[] | undefined) ?? [];
    if (finalizers.includes(HOLD_FINALIZER)) {
      const rest = finalizers.filter((f) => f !== HOLD_FINALIZER);
      await this.#call("PATCH", path, { metadata: { finalizers: rest.length > 0 ? rest : null } });
    }
    // A held object already being deleted goes away once its finalizer is released.
    if (meta["deletionTimestamp"] === undefined) {
      const res = await this.#cluster.request(path, { method: "DELETE" });
      const text = await res.text();
      if (!res.ok && res.status !== 404) {
        throw new Error(`Cannot DELETE ${path}: HTTP ${res.status}: ${text}`);
      }
    }
    // A ServiceCIDR's finalizer waits for kube-controller-manager, which the lab does not run.
    if (current["kind"] === "ServiceCIDR" || path.includes("/servicecidrs/")) {
      const left = await this.#exists(path);
      if (left !== null) {
        await this.#call("PATCH", path, { metadata: { finalizers: null } }).catch((e) => {
          if (!/HTTP 404/.test((e as Error).message)) throw e;
        });
      }
    }
    return true;
  }

  /**
   * Makes the API hold exactly `objects` among everything this store wrote: new ones created,
   * changed ones replaced, the rest deleted. Nodes and ServiceCIDRs go first, then Services,
   * then EndpointSlices (the order a cluster's controllers would write them in); deletions last.
   */
  async sync(objects: readonly PlainObject[]): Promise<ApiSyncResult> {
    const order: readonly ApiKind[] = ["Node", "ServiceCIDR", "Service", "EndpointSlice"];
    const wanted = new Map<string, { object: PlainObject; resource: Resource }>();
    for (const object of objects) {
      const resource = resourceOf(object);
      wanted.set(resource.path, { object, resource });
    }
    let created = 0;
    let updated = 0;
    let deleted = 0;
    const sorted = [...wanted.entries()].sort(([, a], [, b]) =>
      order.indexOf(a.resource.kind) - order.indexOf(b.resource.kind)
    );
    for (const [path, { object, resource }] of sorted) {
      const text = JSON.stringify(object);
      const before = this.#written.get(path);
      if (before?.text === text) continue;
      // A Node held for deletion cannot change back: drop it and create it anew.
      if (before !== undefined && isDeleting(JSON.parse(before.text)) && !isDeleting(object)) {
        await this.#remove(path);
        await this.#waitGone(path);
        this.#written.delete(path);
      }
      const exists = this.#written.has(path) || (await this.#exists(path)) !== null;
      await this.#write(object, resource, exists);
      if (exists) updated++;
      else created++;
      this.#written.set(path, { resource, text });
    }
    const gone = [...this.#written.entries()].filter(([path]) => !wanted.has(path)).reverse();
    gone.sort(([, a], [, b]) => order.indexOf(b.resource.kind) - order.indexOf(a.resource.kind));
    for (const [path] of gone) {
      if (await this.#remove(path)) deleted++;
      this.#written.delete(path);
    }
    return { created, updated, deleted };
  }

  async #waitGone(path: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if ((await this.#exists(path)) === null) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`Cannot recreate ${path}: it did not go away within 10 s`);
  }

  /** Deletes everything this store wrote (releasing held Nodes), and waits until it is gone. */
  async clear(): Promise<void> {
    await this.sync([]);
  }
}
