import assert from "node:assert/strict";
import {
  HealthTracker,
  healthzResponse,
  livezResponse,
  nodeEligible,
  proxyHealthy,
  readyzResponse,
  ZERO_TIME,
} from "./health.ts";

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const TIMEOUT = 60_000;

Deno.test("starting up: healthy, not ready, zero lastUpdated when unhealthy is impossible", () => {
  const t = new HealthTracker({ healthTimeoutMs: TIMEOUT });
  t.queued(T0);
  const s = t.status(T0 + 10 * TIMEOUT);
  assert.equal(s.healthy, true, "healthy until the first sync, as upstream");
  assert.equal(s.ready, false);
  const hz = healthzResponse(s);
  assert.equal(hz.code, 200);
  assert.equal(hz.body.lastUpdated, new Date(T0 + 10 * TIMEOUT).toISOString());
  assert.equal(hz.body.status, undefined, "no per-family status before the first sync");
  assert.equal(readyzResponse(s).code, 503);
  assert.equal(readyzResponse(s).body.lastUpdated, ZERO_TIME);
});

Deno.test("a change pending for the timeout makes healthz and livez 503", () => {
  const t = new HealthTracker({ healthTimeoutMs: TIMEOUT, ipFamilies: ["IPv4", "IPv6"] });
  t.synced(T0, true);
  t.queued(T0 + 1_000);
  t.queued(T0 + 5_000); // only the oldest pending change counts
  assert.equal(t.status(T0 + 1_000 + TIMEOUT - 1).healthy, true);
  const s = t.status(T0 + 1_000 + TIMEOUT);
  assert.equal(s.healthy, false);
  const hz = healthzResponse(s);
  assert.equal(hz.code, 503);
  assert.deepEqual(hz.body, {
    lastUpdated: new Date(T0).toISOString(),
    currentTime: new Date(T0 + 1_000 + TIMEOUT).toISOString(),
    nodeEligible: true,
    healthy: false,
    status: {
      IPv4: { lastUpdated: new Date(T0).toISOString(), healthy: false },
      IPv6: { lastUpdated: new Date(T0).toISOString(), healthy: false },
    },
  });
  assert.equal(livezResponse(s).code, 503);
  assert.equal("nodeEligible" in livezResponse(s).body, false);
  t.synced(T0 + 2 * TIMEOUT, false);
  assert.equal(t.status(T0 + 2 * TIMEOUT).healthy, true);
});

Deno.test("healthy response reports lastUpdated as now, like upstream", () => {
  const t = new HealthTracker({ healthTimeoutMs: TIMEOUT });
  t.synced(T0, true);
  const body = healthzResponse(t.status(T0 + 5_000)).body;
  assert.equal(body.lastUpdated, new Date(T0 + 5_000).toISOString());
  assert.deepEqual(body.status, {
    IPv4: { lastUpdated: new Date(T0).toISOString(), healthy: true },
  });
});

Deno.test("a deleting node fails healthz but not livez", () => {
  const t = new HealthTracker({ healthTimeoutMs: TIMEOUT });
  t.synced(T0, true);
  t.nodeDeleting(true);
  const s = t.status(T0);
  assert.equal(healthzResponse(s).code, 503);
  assert.equal(healthzResponse(s).body.nodeEligible, false);
  assert.equal(healthzResponse(s).body.healthy, true);
  assert.equal(livezResponse(s).code, 200);
  t.nodeDeleting(false);
  assert.equal(healthzResponse(t.status(T0)).code, 200);
});

Deno.test("readyz turns 200 after the first full sync, not a partial one", () => {
  const t = new HealthTracker({ healthTimeoutMs: TIMEOUT });
  t.synced(T0, false);
  assert.equal(readyzResponse(t.status(T0)).code, 503);
  t.synced(T0 + 1, true);
  assert.equal(readyzResponse(t.status(T0 + 1)).code, 200);
});

Deno.test("proxyHealthy boundaries", () => {
  assert.equal(proxyHealthy(null, 0, 1e9, 10), true);
  assert.equal(proxyHealthy(0, null, 1e9, 10), true);
  assert.equal(proxyHealthy(0, 100, 109, 10), true);
  assert.equal(proxyHealthy(0, 100, 110, 10), false);
});

Deno.test("node eligibility: not while being deleted or tainted ToBeDeletedByClusterAutoscaler", () => {
  const node = {
    name: "node-a",
    zone: null,
    primaryIPs: [],
    nodePortIPs: { IPv4: null, IPv6: null },
    deleting: false,
    toBeDeleted: false,
    known: true,
  };
  assert.equal(nodeEligible(node), true);
  assert.equal(nodeEligible({ ...node, deleting: true }), false);
  assert.equal(nodeEligible({ ...node, toBeDeleted: true }), false);
});
