import assert from "node:assert/strict";
import type { SyncResult } from "../apply/applier.ts";
import { ProxyRuntimeStore } from "./runtime_store.ts";
import { FAKE_RENDERER, fixtureStore, okRecord, SNAPSHOT_A, SNAPSHOT_B } from "./_fixtures.ts";

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const RESULT: SyncResult = { full: true, linesSent: 42, ruleCount: 40, conntrackCleared: 0 };

Deno.test("sync loop hooks drive health, metrics and history", () => {
  let now = T0;
  const { store, metrics } = fixtureStore({ now: () => now });
  const hooks = store.syncLoopHooks();
  hooks.onQueued?.(T0, 3);
  assert.equal(store.health().oldestPendingQueued, T0);
  hooks.onSynced?.(okRecord(SNAPSHOT_A, T0), SNAPSHOT_A, RESULT);
  assert.equal(store.currentSnapshot()?.hash, SNAPSHOT_A.hash);
  assert.equal(store.health().ready, true);
  assert.equal(store.health().oldestPendingQueued, null);
  assert.equal(metrics.snapshotServicePorts.get(), 2);
  assert.equal(metrics.rulesTotal.get(), 40);
  assert.equal(metrics.syncFullProxyRulesLatency.get({ ip_family: "IPv4" }).count, 1);

  hooks.onQueued?.(T0 + 10, 1);
  hooks.onSyncFailed?.(
    { ...okRecord(SNAPSHOT_B, T0 + 10, false), ok: false, error: "nft: boom" },
    new Error("nft: boom"),
  );
  assert.equal(metrics.nftablesSyncFailuresTotal?.get({ ip_family: "IPv4" }), 1);
  assert.equal(store.currentSnapshot()?.hash, SNAPSHOT_A.hash, "a failed sync changes nothing");
  assert.equal(store.recentSyncs()[0]?.ok, false);
  now = T0 + 10 + 60_000;
  assert.equal(store.health().healthy, false, "pending past 2 × sync period");

  hooks.onNetworkProgrammed?.(1.5);
  assert.equal(metrics.networkProgrammingLatency.get({ ip_family: "IPv4" }).count, 1);
  hooks.onNodeChanged?.({ ...SNAPSHOT_A, node: { ...SNAPSHOT_A.node, deleting: true } });
  assert.equal(store.health().nodeEligible, false);
});

Deno.test("keeps the last N snapshots and sync records", () => {
  const { store } = fixtureStore();
  for (let i = 0; i < 60; i++) store.recordSync(okRecord(SNAPSHOT_A, T0 + i), SNAPSHOT_A);
  assert.equal(store.recentSyncs().length, 50);
  assert.equal(store.recentSyncs()[0]?.startedAt, T0 + 59, "newest first");
  store.recordSync(okRecord(SNAPSHOT_B, T0 + 100), SNAPSHOT_B);
  assert.equal(store.snapshotByHash(SNAPSHOT_A.hash)?.hash, SNAPSHOT_A.hash);
  assert.equal(store.snapshotByHash("0000"), null);
});

Deno.test("old snapshots are evicted beyond keepSnapshots", () => {
  const { metrics, health, store: base } = fixtureStore();
  const store = new ProxyRuntimeStore({
    config: base.config(),
    metrics,
    health,
    liveRules: () => Promise.resolve(""),
    keepSnapshots: 1,
  });
  store.recordSync(okRecord(SNAPSHOT_A, T0), SNAPSHOT_A);
  store.recordSync(okRecord(SNAPSHOT_B, T0 + 1), SNAPSHOT_B);
  assert.equal(store.snapshotByHash(SNAPSHOT_A.hash), null);
  assert.equal(store.diffFrom(SNAPSHOT_A.hash), null);
  assert.equal(store.renderRules(SNAPSHOT_B), null, "no renderer");
});

Deno.test("diffFrom compares kept snapshots and renders rule diffs", () => {
  let renders = 0;
  const { store } = fixtureStore({
    renderer: { mode: "nftables", render: (s) => (renders++, FAKE_RENDERER.render(s)) },
  });
  store.recordSync(okRecord(SNAPSHOT_A, T0), SNAPSHOT_A);
  store.recordSync(okRecord(SNAPSHOT_B, T0 + 1), SNAPSHOT_B);
  const diff = store.diffFrom(SNAPSHOT_A.hash);
  assert.equal(diff?.snapshot.changed.length, 1);
  assert.match(diff?.rules ?? "", /^--- nftables [0-9a-f]+\n\+\+\+ nftables [0-9a-f]+/);
  store.diffFrom(SNAPSHOT_A.hash);
  assert.equal(renders, 2, "renders are cached by hash");
  assert.equal(store.diffFrom(SNAPSHOT_A.hash, "ffff"), null);
});
