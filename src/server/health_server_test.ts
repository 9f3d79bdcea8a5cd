import assert from "node:assert/strict";
import { fixtureStore, okRecord, SNAPSHOT_A } from "./_fixtures.ts";
import { createHealthApp } from "./health_server.ts";

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);

function setup() {
  let now = T0;
  const fx = fixtureStore({ now: () => now });
  return { ...fx, app: createHealthApp(fx.store), advance: (ms: number) => (now += ms) };
}

Deno.test("healthz: 200 while starting up, with upstream's fields and headers", async () => {
  const { app, metrics } = setup();
  const res = await app.request("/healthz");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "application/json");
  assert.equal(res.headers.get("x-content-type-options"), "nosniff");
  const body = await res.json();
  assert.deepEqual(Object.keys(body), ["lastUpdated", "currentTime", "nodeEligible", "healthy"]);
  assert.equal(body.currentTime, new Date(T0).toISOString());
  assert.equal(body.nodeEligible, true);
  assert.equal(metrics.proxyHealthzTotal.get({ code: "200" }), 1);
});

Deno.test("healthz and livez: 503 when a change waits longer than 2 × sync period", async () => {
  const { app, health, store, metrics, advance } = setup();
  store.recordSync(okRecord(SNAPSHOT_A, T0), SNAPSHOT_A);
  health.synced(T0, true);
  health.queued(T0 + 1);
  advance(1 + 60_000);
  const hz = await app.request("/healthz");
  assert.equal(hz.status, 503);
  const body = await hz.json();
  assert.equal(body.healthy, false);
  assert.equal(body.lastUpdated, new Date(T0).toISOString());
  assert.equal((await app.request("/livez")).status, 503);
  assert.equal(metrics.proxyHealthzTotal.get({ code: "503" }), 1);
  assert.equal(metrics.proxyLivezTotal.get({ code: "503" }), 1);
});

Deno.test("a node being deleted fails healthz only", async () => {
  const { app, health } = setup();
  health.synced(T0, true);
  health.nodeDeleting(true);
  const hz = await app.request("/healthz");
  assert.equal(hz.status, 503);
  assert.equal((await hz.json()).nodeEligible, false);
  const lz = await app.request("/livez");
  assert.equal(lz.status, 200);
  assert.equal("nodeEligible" in (await lz.json()), false);
});

Deno.test("readyz: 503 until the first full sync", async () => {
  const { app, health } = setup();
  const before = await app.request("/readyz");
  assert.equal(before.status, 503);
  assert.equal((await before.json()).ready, false);
  health.synced(T0, true);
  assert.equal((await app.request("/readyz")).status, 200);
});

Deno.test("health server reveals nothing else: 404 and 405 as JSON", async () => {
  const { app } = setup();
  for (const path of ["/", "/metrics", "/snapshot", "/rules", "/configz", "/diff?from=abc"]) {
    const res = await app.request(path);
    assert.equal(res.status, 404, path);
    assert.match((await res.json()).error, /No such path/);
  }
  const post = await app.request("/healthz", { method: "POST" });
  assert.equal(post.status, 405);
  assert.match((await post.json()).error, /POST/);
});
