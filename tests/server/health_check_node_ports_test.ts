/**
 * Health-check node ports on loopback: servers open, answer, follow endpoint and health changes,
 * move and close as the snapshot changes. Listens only on 127.0.0.1 at high random ports.
 *
 * IP plan: node 198.18.0.10, pods 198.18.1.0/24, services 198.18.128.0/17 (no traffic to them).
 */
import assert from "node:assert/strict";
import { DEFAULT_PROXY_CONFIG } from "../../src/config/proxy_config.ts";
import { ProxyMetrics } from "../../src/metrics/proxy_metrics.ts";
import { HealthTracker } from "../../src/server/health.ts";
import { HealthCheckNodePortServers } from "../../src/server/health_check_node_ports.ts";
import { ProxyRuntimeStore } from "../../src/server/runtime_store.ts";
import type { ProxySnapshot, ServicePortSnapshot } from "../../src/snapshot/types.ts";
import { exampleRuntime } from "./_example_runtime.ts";

function randomPort(): number {
  return 40_000 + Math.floor(Math.random() * 20_000);
}

/** The example snapshot, listening on loopback only, with `shop/api`'s port and endpoints set. */
function variant(
  base: ProxySnapshot,
  port: number | null,
  localReady: boolean,
): ProxySnapshot {
  const servicePorts = base.servicePorts.map((sp): ServicePortSnapshot => {
    if (sp.id !== "shop/api:https") return sp;
    return {
      ...sp,
      healthCheckNodePort: port,
      families: sp.families.map((f) => ({
        ...f,
        endpoints: f.endpoints.map((ep) => ({ ...ep, ready: ep.isLocal ? localReady : ep.ready })),
        ...(f.healthCheckLocalIPs === undefined || localReady ? {} : { healthCheckLocalIPs: [] }),
      })),
    };
  });
  return {
    ...base,
    node: { ...base.node, nodePortIPs: { IPv4: ["127.0.0.1"], IPv6: [] } },
    servicePorts,
  };
}

/** The JSON a health-check node port answers. */
interface HealthCheckBody {
  service: { namespace: string; name: string };
  localEndpoints: number;
  serviceProxyHealthy: boolean;
}

async function get(
  port: number,
): Promise<{ status: number; weight: string | null; body: HealthCheckBody }> {
  const res = await fetch(`http://127.0.0.1:${port}/anything`);
  return {
    status: res.status,
    weight: res.headers.get("x-load-balancing-endpoint-weight"),
    body: await res.json(),
  };
}

Deno.test("health check node ports open, answer, follow changes and close", async () => {
  const { second } = await exampleRuntime();
  const servers = new HealthCheckNodePortServers();
  let healthy = true;
  const port = randomPort();
  try {
    // deploy/examples: shop/api has 2 local ready endpoints on node-a (198.18.1.30, fd00::1:30).
    // The listener on 127.0.0.1 reports the IPv4 count: upstream runs a health-check server per
    // family, each on its family's addresses, counting its own family's endpoints.
    const opened = await servers.update(variant(second, port, true), () => healthy);
    assert.deepEqual(opened, { opened: [port], closed: [], failed: [] });
    assert.deepEqual(servers.ports(), [port]);
    const ok = await get(port);
    assert.equal(ok.status, 200);
    assert.equal(ok.weight, "1");
    assert.deepEqual(ok.body, {
      service: { namespace: "shop", name: "api" },
      localEndpoints: 1,
      serviceProxyHealthy: true,
    });

    healthy = false; // asked at request time
    const sick = await get(port);
    assert.equal(sick.status, 503);
    assert.equal(sick.body.serviceProxyHealthy, false);
    healthy = true;

    // Local endpoints stop being ready: same listener, 503 with 0.
    const same = await servers.update(variant(second, port, false), () => healthy);
    assert.deepEqual(same, { opened: [], closed: [], failed: [] });
    const none = await get(port);
    assert.equal(none.status, 503);
    assert.equal(none.weight, "0");
    assert.equal(none.body.localEndpoints, 0);

    // The port moves: old one closes, new one opens.
    const moved = port === 59_999 ? port - 1 : port + 1;
    const move = await servers.update(variant(second, moved, true), () => healthy);
    assert.deepEqual(move, { opened: [moved], closed: [port], failed: [] });
    await assert.rejects(fetch(`http://127.0.0.1:${port}/`));
    assert.equal((await get(moved)).status, 200);

    // The service no longer asks for one: closed.
    const gone = await servers.update(variant(second, null, true), () => healthy);
    assert.deepEqual(gone, { opened: [], closed: [moved], failed: [] });
    assert.deepEqual(servers.ports(), []);
    await assert.rejects(fetch(`http://127.0.0.1:${moved}/`));
  } finally {
    await servers.close();
  }
});

Deno.test("a family without NodePort addresses listens on each of its local addresses", async () => {
  const { second } = await exampleRuntime();
  const base = variant(second, randomPort(), true);
  const port = base.servicePorts.find((sp) => sp.id === "shop/api:https")!.healthCheckNodePort!;
  // IPv4 has a list (loopback here), IPv6 takes every local address: ::1 (fe80:: can't be bound).
  const servers = new HealthCheckNodePortServers({
    localAddresses: () => ["127.0.0.1", "::1", "fe80::1"],
  });
  try {
    const snapshot = {
      ...base,
      node: { ...base.node, nodePortIPs: { IPv4: ["127.0.0.1"], IPv6: null } },
    };
    const opened = await servers.update(snapshot, () => true);
    assert.deepEqual(opened, { opened: [port], closed: [], failed: [] });
    const v4 = await get(port);
    assert.equal(v4.status, 200);
    const v6 = await fetch(`http://[::1]:${port}/`);
    assert.equal(v6.status, 200);
    const body = await v6.json() as HealthCheckBody;
    assert.equal(body.localEndpoints, 1, "each listener counts its own family");
  } finally {
    await servers.close();
  }
});

Deno.test("a port in use is reported and retried on the next update", async () => {
  const { second } = await exampleRuntime();
  const blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (blocker.addr as Deno.NetAddr).port;
  const servers = new HealthCheckNodePortServers();
  try {
    const first = await servers.update(variant(second, port, true), () => true);
    assert.equal(first.failed.length, 1);
    assert.equal(first.failed[0]?.service, "shop/api");
    assert.deepEqual(servers.ports(), []);
    blocker.close();
    const retry = await servers.update(variant(second, port, true), () => true);
    assert.deepEqual(retry.opened, [port]);
    assert.equal((await get(port)).status, 200);
  } finally {
    try {
      blocker.close();
    } catch {
      // already closed
    }
    await servers.close();
  }
});

Deno.test("the runtime store's sync hooks keep the health-check node ports up to date", async () => {
  const { second } = await exampleRuntime();
  let now = Date.UTC(2025, 0, 1);
  const health = new HealthTracker({ healthTimeoutMs: 60_000 });
  const servers = new HealthCheckNodePortServers();
  const store = new ProxyRuntimeStore({
    config: DEFAULT_PROXY_CONFIG,
    metrics: new ProxyMetrics({ mode: "nftables" }),
    health,
    liveRules: () => Promise.resolve(""),
    healthCheckNodePorts: servers,
    now: () => now,
  });
  const port = randomPort();
  const snapshot = variant(second, port, true);
  const record = {
    startedAt: now,
    durationMs: 1,
    full: true,
    ok: true,
    error: null,
    snapshotHash: snapshot.hash,
    servicePorts: snapshot.servicePorts.length,
    changedServicePorts: 0,
    linesSent: 1,
  };
  const result = { full: true, linesSent: 1, ruleCount: 1, conntrackCleared: 0 };
  try {
    store.syncLoopHooks().onSynced?.(record, snapshot, result);
    await store.healthCheckNodePortsSettled();
    assert.equal((await get(port)).status, 200);
    // A change stuck for 2 × sync period: the proxy is unhealthy, and so is every service check.
    store.syncLoopHooks().onQueued?.(now, 1);
    now += 60_000;
    const stuck = await get(port);
    assert.equal(stuck.status, 503);
    assert.equal(stuck.body.serviceProxyHealthy, false);
    store.syncLoopHooks().onSynced?.(record, variant(second, null, true), result);
    await store.healthCheckNodePortsSettled();
    assert.deepEqual(servers.ports(), []);
  } finally {
    await servers.close();
  }
});
