/** The source over a fake transport. IP plan: ClusterIPs 198.18.128.0/17 (stored only). */
import assert from "node:assert/strict";
import type { ObjectError } from "../model/kube_object.ts";
import type { ProxyEvent } from "../snapshot/proxy_state.ts";
import type { KubeListPage, KubeTransport, WatchHandlers } from "./kube_transport.ts";
import {
  kubeResources,
  KubernetesSource,
  PROXY_LABEL_SELECTOR,
  SERVICE_FIELD_SELECTOR,
} from "./kubernetes_source.ts";

class PathTransport implements KubeTransport {
  readonly lists = new Map<string, Readonly<Record<string, string>>>();
  readonly watches = new Map<string, WatchHandlers>();
  readonly gate: Promise<void>;
  open: () => void = () => {};
  constructor(readonly items: Record<string, unknown[]>) {
    this.gate = new Promise((r) => (this.open = r));
  }
  readonly refused = new Set<string>();
  async list(path: string, query: Readonly<Record<string, string>>): Promise<KubeListPage> {
    this.lists.set(path, query);
    if (this.refused.has(path)) {
      throw Object.assign(new Error(`HTTP 403: ${path} is forbidden`), { code: 403 });
    }
    if (path.endsWith("/nodes")) await this.gate;
    return { items: this.items[path] ?? [], resourceVersion: "10", continue: "" };
  }
  watch(path: string, _query: unknown, handlers: WatchHandlers): Promise<{ abort(): void }> {
    this.watches.set(path, handlers);
    return Promise.resolve({ abort: () => {} });
  }
}

async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

Deno.test("kubeResources: kube-proxy's selectors", () => {
  assert.equal(
    PROXY_LABEL_SELECTOR,
    "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless",
  );
  assert.deepEqual(kubeResources("node-a").map((r) => [r.kind, r.labelSelector, r.fieldSelector]), [
    ["Service", PROXY_LABEL_SELECTOR, SERVICE_FIELD_SELECTOR],
    ["EndpointSlice", PROXY_LABEL_SELECTOR, undefined],
    ["Node", undefined, "metadata.name=node-a"],
    ["ServiceCIDR", PROXY_LABEL_SELECTOR, undefined],
  ]);
});

Deno.test("KubernetesSource is synced once every kind has listed, and emits per-kind events", async () => {
  const transport = new PathTransport({
    "/api/v1/services": [{
      metadata: { name: "web", namespace: "default", resourceVersion: "3" },
      spec: { clusterIP: "198.18.128.5", ports: [{ port: 80 }] },
    }],
    "/api/v1/nodes": [{ metadata: { name: "node-a", resourceVersion: "4" } }],
  });
  const batches: Array<{ events: ProxyEvent[]; errors: readonly ObjectError[] }> = [];
  let synced = 0;
  const source = new KubernetesSource({
    qps: 0,
    burst: 0,
    nodeName: "node-a",
    transport,
    onEvents: (events, errors) => batches.push({ events, errors }),
    onSynced: () => synced++,
  });
  await source.start();
  try {
    await until("services, slices and ServiceCIDRs listed", () => transport.lists.size === 4);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(synced, 0, "not synced before the Node list");
    assert.equal(source.synced, false);
    transport.open();
    await until("synced", () => synced === 1);
    assert.deepEqual(transport.lists.get("/api/v1/nodes"), {
      fieldSelector: "metadata.name=node-a",
      resourceVersion: "0",
      limit: "500",
    });
    assert.deepEqual(source.sizes(), { Service: 1, EndpointSlice: 0, Node: 1, ServiceCIDR: 0 });
    assert.ok(batches.every((b) => b.events.every((e) => e.type === "upsert")));
    await until("watches", () => transport.watches.size === 4);
    transport.watches.get("/api/v1/services")?.onEvent("DELETED", {
      kind: "Service",
      metadata: { name: "web", namespace: "default", resourceVersion: "11" },
    });
    await until("the delete", () => batches.length === 3);
    assert.deepEqual(batches.at(-1)?.events, [
      { type: "delete", kind: "Service", namespace: "default", name: "web" },
    ]);
    assert.equal(synced, 1);
  } finally {
    await source.stop();
  }
});

Deno.test("ServiceCIDRs that cannot be listed (old API server, old RBAC) do not hold up the sync", async () => {
  const transport = new PathTransport({});
  transport.refused.add("/apis/networking.k8s.io/v1/servicecidrs");
  transport.open();
  let synced = 0;
  const source = new KubernetesSource({
    qps: 0,
    burst: 0,
    nodeName: "node-a",
    transport,
    onEvents: () => {},
    onSynced: () => synced++,
    backoff: { initialMs: 5, maxMs: 10, jitter: 0 },
  });
  await source.start();
  try {
    await until("synced without ServiceCIDRs", () => synced === 1);
    assert.equal(source.synced, true);
  } finally {
    await source.stop();
  }
});

Deno.test("KubernetesSource.start throws on an unusable configuration", async () => {
  const source = new KubernetesSource({
    kubeconfig: "/nonexistent/kubeconfig",
    qps: 5,
    burst: 10,
    nodeName: "node-a",
    onEvents: () => {},
  });
  await assert.rejects(source.start(), /Cannot read kubeconfig/);
});

/** Services fail until `servicesUp`; the Node's first list fails, its second waits for `release`. */
class OutageTransport implements KubeTransport {
  readonly listCalls: Array<{ path: string; at: number }> = [];
  servicesUp = false;
  release: () => void = () => {};
  readonly #nodeAnswer = new Promise<void>((r) => (this.release = r));
  async list(path: string): Promise<KubeListPage> {
    this.listCalls.push({ path, at: Date.now() });
    if (path === "/api/v1/services" && !this.servicesUp) throw new Error("connection refused");
    if (path === "/api/v1/nodes") {
      if (this.calls(path) === 1) throw new Error("connection refused");
      await this.#nodeAnswer;
    }
    return { items: [], resourceVersion: "10", continue: "" };
  }
  watch(): Promise<{ abort(): void }> {
    return Promise.resolve({ abort: () => {} });
  }
  calls(path: string): number {
    return this.listCalls.filter((c) => c.path === path).length;
  }
}

Deno.test("KubernetesSource: once one kind reaches the API server again, the others retry at once", async () => {
  const transport = new OutageTransport();
  const lines: string[] = [];
  const source = new KubernetesSource({
    qps: 0,
    burst: 0,
    nodeName: "node-a",
    transport,
    // 500 ms, 1 s, 2 s, …: after three failures Services would next try 2 s later.
    backoff: { initialMs: 500, maxMs: 60_000, jitter: 0 },
    log: (line) => lines.push(line),
    onEvents: () => {},
  });
  await source.start();
  try {
    await until("three failed Service lists", () => transport.calls("/api/v1/services") === 3);
    await until("the Node's second list", () => transport.calls("/api/v1/nodes") === 2);
    transport.servicesUp = true;
    const back = Date.now();
    transport.release();
    await until("a fourth Service list", () => transport.calls("/api/v1/services") === 4);
    const retried = (transport.listCalls.findLast((c) => c.path === "/api/v1/services")?.at ?? 0) -
      back;
    assert.ok(retried < 1_000, `Services retried ${retried} ms after the Node list worked`);
    await until("synced", () => source.synced);
    assert.ok(lines.includes("Node list resumed after 1 failed attempt"), lines.join("\n"));
    assert.ok(lines.includes("Service list resumed after 3 failed attempts"), lines.join("\n"));
  } finally {
    await source.stop();
  }
});
