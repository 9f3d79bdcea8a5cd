// IP plan: pods 198.18.1.0/24, services 198.18.128.0/17.
import assert from "node:assert/strict";
import type { Applier, SyncRequest, SyncResult } from "../apply/applier.ts";
import type { ProxyEvent } from "../snapshot/proxy_state.ts";
import { ep, node, obj, SETTINGS, slice, svc } from "../snapshot/fixtures_test.ts";
import { SyncLoop, type SyncLoopOptions, type SyncRecord } from "./sync_loop.ts";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** An applier that records requests, can be slowed, gated, or made to fail. */
class FakeApplier implements Applier {
  readonly name = "fake";
  readonly calls: { request: SyncRequest; at: number; ok: boolean }[] = [];
  active = 0;
  maxActive = 0;
  failures = 0;
  delayMs = 0;
  #gate: Promise<void> | null = null;
  #open: (() => void) | null = null;

  /** Holds every sync until {@link release}. */
  hold(): void {
    this.#gate = new Promise((resolve) => (this.#open = resolve));
  }

  release(): void {
    this.#open?.();
    this.#gate = null;
  }

  async sync(request: SyncRequest): Promise<SyncResult> {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    const call = { request, at: Date.now(), ok: false };
    this.calls.push(call);
    try {
      if (this.delayMs > 0) await sleep(this.delayMs);
      if (this.#gate !== null) await this.#gate;
      if (this.failures > 0) {
        this.failures--;
        throw new Error("nft: Could not process rule");
      }
      call.ok = true;
      return { full: request.full, linesSent: 3, ruleCount: 3, conntrackCleared: 0 };
    } finally {
      this.active--;
    }
  }

  liveRules(): Promise<string> {
    return Promise.resolve("");
  }

  cleanup(): Promise<void> {
    return Promise.resolve();
  }

  get ok() {
    return this.calls.filter((c) => c.ok);
  }
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const service = (name: string, host: number): ProxyEvent => ({
  type: "upsert",
  object: obj(svc(name, { clusterIP: `198.18.128.${host}`, ports: [{ name: "http", port: 80 }] })),
});
const endpoints = (name: string, ...hosts: number[]): ProxyEvent => ({
  type: "upsert",
  object: obj(slice(`${name}-1`, name, hosts.map((h) => ep(`198.18.1.${h}`)))),
});

async function withLoop(
  options: Partial<SyncLoopOptions>,
  fn: (loop: SyncLoop, applier: FakeApplier, log: string[]) => Promise<void>,
): Promise<void> {
  const applier = new FakeApplier();
  const log: string[] = [];
  const loop = new SyncLoop({
    applier,
    settings: SETTINGS,
    minSyncPeriodMs: 0,
    syncPeriodMs: 60_000,
    retryBaseMs: 20,
    log: (l) => log.push(l),
    ...options,
  });
  loop.start();
  try {
    await fn(loop, applier, log);
  } finally {
    await loop.stop();
  }
  assert.equal(applier.maxActive <= 1, true, "syncs never overlap");
}

Deno.test("sync loop: nothing is synced until the sources have synced", async () => {
  await withLoop({}, async (loop, applier) => {
    loop.enqueue([service("web", 10)]);
    loop.enqueue([service("db", 30)]);
    await sleep(100);
    assert.equal(applier.calls.length, 0);
    assert.equal(loop.hasSynced, false);
    assert.notEqual(loop.queuedSince, null);
    loop.markSourcesSynced();
    await loop.settled();
    assert.equal(applier.calls.length, 1);
    const [first] = applier.calls;
    assert.equal(first?.request.full, true);
    assert.deepEqual(first?.request.snapshot.servicePorts.map((p) => p.id), [
      "default/db:http",
      "default/web:http",
    ]);
    assert.equal(loop.lastSyncedSnapshot, first?.request.snapshot);
    assert.equal(loop.queuedSince, null);
  });
});

Deno.test("sync loop: the first sync happens even with no objects", async () => {
  await withLoop({}, async (loop, applier) => {
    loop.markSourcesSynced();
    await loop.settled();
    assert.equal(applier.calls.length, 1);
    assert.equal(applier.calls[0]?.request.full, true);
    assert.deepEqual(applier.calls[0]?.request.snapshot.servicePorts, []);
  });
});

Deno.test("sync loop: events during a sync are coalesced into the next one", async () => {
  await withLoop({}, async (loop, applier) => {
    loop.markSourcesSynced();
    await loop.settled();
    applier.hold();
    loop.enqueue([service("web", 10)]);
    await waitFor("sync 2 to start", () => applier.calls.length === 2);
    loop.enqueue([endpoints("web", 2)]);
    loop.enqueue([service("db", 30)]);
    loop.enqueue([endpoints("db", 3)]);
    await sleep(50);
    assert.equal(applier.calls.length, 2, "no second sync while one runs");
    applier.release();
    await loop.settled();
    assert.equal(applier.calls.length, 3, "one sync for everything that came meanwhile");
    const third = applier.calls[2]?.request;
    assert.equal(third?.full, false);
    assert.deepEqual(third?.changedServicePorts, ["default/db:http", "default/web:http"]);
    assert.equal(third?.snapshot.hash, loop.state.snapshot.hash);
    assert.equal(applier.maxActive, 1);
  });
});

Deno.test("sync loop: settled waits for the sync in flight", async () => {
  await withLoop({}, async (loop, applier) => {
    loop.markSourcesSynced();
    await loop.settled();
    applier.delayMs = 100;
    loop.enqueue([service("web", 10)]);
    await waitFor("sync to start", () => applier.calls.length === 2);
    await loop.settled();
    assert.equal(applier.ok.length, 2);
    assert.equal(loop.lastSyncedSnapshot?.hash, loop.state.snapshot.hash);
  });
});

Deno.test("sync loop: partial syncs list exactly the changed service ports", async () => {
  await withLoop({}, async (loop, applier) => {
    loop.enqueue([service("web", 10), service("db", 30)]);
    loop.markSourcesSynced();
    await loop.settled();
    loop.enqueue([endpoints("web", 2)]);
    await loop.settled();
    assert.deepEqual(applier.calls[1]?.request.changedServicePorts, ["default/web:http"]);
    assert.equal(applier.calls[1]?.request.full, false);
    // A change that cancels out still syncs (cheaply) with nothing changed.
    loop.enqueue([endpoints("web", 3), endpoints("web", 2)]);
    await loop.settled();
    assert.deepEqual(applier.calls[2]?.request.changedServicePorts, []);
    assert.equal(applier.calls[2]?.request.snapshot, applier.calls[1]?.request.snapshot);
  });
});

Deno.test("sync loop: minSyncPeriod bounds the rate", async () => {
  const minSyncPeriodMs = 150;
  await withLoop({ minSyncPeriodMs }, async (loop, applier) => {
    loop.markSourcesSynced();
    const start = Date.now();
    let host = 2;
    while (Date.now() - start < 700) {
      loop.enqueue([endpoints("web", host++ % 200 + 2)]);
      await sleep(10);
    }
    await loop.settled();
    const starts = applier.calls.map((c) => c.at);
    assert.ok(starts.length >= 3, `some syncs happened (${starts.length})`);
    assert.ok(
      starts.length <= Math.ceil(700 / minSyncPeriodMs) + 2,
      `rate bounded: ${starts.length}`,
    );
    for (let i = 1; i < starts.length; i++) {
      const gap = (starts[i] as number) - (starts[i - 1] as number);
      assert.ok(gap >= minSyncPeriodMs - 5, `gap ${gap} ms between syncs ${i - 1} and ${i}`);
    }
    assert.equal(applier.calls.at(-1)?.request.snapshot.hash, loop.state.snapshot.hash);
  });
});

Deno.test("sync loop: a failing applier is retried with backoff; the next good sync is full", async () => {
  const failed: SyncRecord[] = [];
  const synced: SyncRecord[] = [];
  await withLoop({
    retryBaseMs: 40,
    hooks: {
      onSyncFailed: (r) => failed.push(r),
      onSynced: (r) => synced.push(r),
    },
  }, async (loop, applier, log) => {
    loop.markSourcesSynced();
    await loop.settled();
    applier.failures = 3;
    loop.enqueue([service("web", 10)]);
    await waitFor("three failures and a success", () => applier.calls.length === 5, 5000);
    await loop.settled();
    const attempts = applier.calls.slice(1);
    assert.deepEqual(attempts.map((c) => c.ok), [false, false, false, true]);
    assert.deepEqual(attempts.map((c) => c.request.full), [false, true, true, true]);
    const gaps = attempts.slice(1).map((c, i) => c.at - (attempts[i]?.at ?? 0));
    // 40, 80, 160 ms, minus timer slack.
    assert.ok((gaps[0] ?? 0) >= 35, `first retry after ${gaps[0]} ms`);
    assert.ok((gaps[1] ?? 0) >= 75, `second retry after ${gaps[1]} ms`);
    assert.ok((gaps[2] ?? 0) >= 150, `third retry after ${gaps[2]} ms`);
    assert.equal(loop.consecutiveFailures, 0);
    assert.equal(failed.length, 3);
    assert.equal(failed[0]?.ok, false);
    assert.equal(failed[0]?.error, "nft: Could not process rule");
    assert.equal(synced.at(-1)?.full, true);
    assert.ok(
      log.some((l) => l.startsWith("sync failed (attempt 1, retry in 40 ms, old rules kept)")),
    );
    // After the recovery, changes are partial again.
    loop.enqueue([endpoints("web", 2)]);
    await loop.settled();
    assert.equal(applier.calls.at(-1)?.request.full, false);
  });
});

Deno.test("sync loop: backoff is capped by syncPeriod", async () => {
  await withLoop({ retryBaseMs: 100, syncPeriodMs: 120 }, async (loop, applier, log) => {
    applier.failures = 3;
    loop.markSourcesSynced();
    await waitFor("recovery", () => applier.ok.length === 1, 5000);
    assert.ok(log.some((l) => l.includes("retry in 120 ms")), log.join("\n"));
    assert.ok(!log.some((l) => l.includes("retry in 400 ms")));
  });
});

Deno.test("sync loop: service ports changed before a failed sync are passed to the next", async () => {
  await withLoop({ retryBaseMs: 60 }, async (loop, applier) => {
    loop.enqueue([service("web", 10), service("db", 30), service("api", 20)]);
    loop.markSourcesSynced();
    await loop.settled();
    applier.failures = 1;
    loop.enqueue([endpoints("web", 2)]);
    await waitFor("the failed sync", () => applier.calls.length === 2);
    assert.deepEqual(applier.calls[1]?.request.changedServicePorts, ["default/web:http"]);
    loop.enqueue([endpoints("db", 3)]);
    await loop.settled();
    assert.equal(applier.calls.length, 3, "the new event waited for the retry");
    const retry = applier.calls[2]?.request;
    assert.equal(retry?.full, true);
    assert.deepEqual(retry?.changedServicePorts, ["default/db:http", "default/web:http"]);
    loop.enqueue([endpoints("api", 4)]);
    await loop.settled();
    assert.deepEqual(applier.calls[3]?.request.changedServicePorts, ["default/api:http"]);
  });
});

Deno.test("sync loop: periodic full resync after syncPeriod", async () => {
  await withLoop({ syncPeriodMs: 120 }, async (loop, applier) => {
    loop.enqueue([service("web", 10)]);
    loop.markSourcesSynced();
    await loop.settled();
    await sleep(450);
    const calls = applier.calls;
    assert.ok(calls.length >= 3 && calls.length <= 6, `${calls.length} syncs in ~450 ms`);
    for (const c of calls) assert.equal(c.request.full, true);
    for (const c of calls.slice(1)) assert.deepEqual(c.request.changedServicePorts, []);
    for (let i = 1; i < calls.length; i++) {
      const gap = (calls[i]?.at ?? 0) - (calls[i - 1]?.at ?? 0);
      assert.ok(gap >= 110, `resync gap ${gap} ms`);
    }
  });
});

Deno.test("sync loop: a change that meets a due periodic resync goes live first", async () => {
  await withLoop({ syncPeriodMs: 300 }, async (loop, applier) => {
    loop.enqueue([service("web", 10)]);
    loop.markSourcesSynced();
    await loop.settled();
    const first = applier.calls.length;
    // The periodic resync falls due while the applier is busy; a change waits meanwhile.
    applier.delayMs = 400;
    await waitFor("the periodic resync", () => applier.calls.length === first + 1);
    loop.enqueue([service("api", 11)]);
    await waitFor("two more syncs", () => applier.calls.length >= first + 3, 3_000);
    const [resync, change, next] = applier.calls.slice(first);
    assert.equal(resync?.request.full, true);
    // The change waited for the resync in flight (nothing can cut a sync short), but when it ran
    // the next resync was already due (400 ms > 300 ms): it went first, as a partial sync...
    assert.equal(change?.request.full, false);
    assert.deepEqual(change?.request.changedServicePorts, ["default/api:http"]);
    // ...and the resync followed at once.
    assert.equal(next?.request.full, true);
    assert.deepEqual(next?.request.changedServicePorts, []);
  });
});

Deno.test("sync loop: under constant churn a periodic resync is put off by one period at most", async () => {
  await withLoop({ syncPeriodMs: 100 }, async (loop, applier) => {
    loop.enqueue([service("web", 10)]);
    loop.markSourcesSynced();
    await loop.settled();
    const t0 = Date.now();
    for (let i = 0; Date.now() - t0 < 700; i++) {
      loop.enqueue([endpoints("web", 1 + (i % 50))]);
      await sleep(5);
    }
    await loop.settled();
    const full = applier.calls.filter((c) => c.request.full && c.at >= t0).map((c) => c.at);
    assert.ok(full.length >= 3, `${full.length} full syncs in 700 ms of churn`);
    for (let i = 1; i < full.length; i++) {
      const gap = (full[i] ?? 0) - (full[i - 1] ?? 0);
      // Due after 100 ms, put off until 200 ms at most; the rest is scheduling slack.
      assert.ok(gap <= 350, `full syncs ${gap} ms apart`);
    }
  });
});

Deno.test("sync loop: requestFullSync and node changes make the next sync full", async () => {
  const nodes: string[] = [];
  await withLoop(
    { hooks: { onNodeChanged: (s) => nodes.push(String(s.node.zone)) } },
    async (loop, applier) => {
      loop.enqueue([service("web", 10)]);
      loop.markSourcesSynced();
      await loop.settled();
      loop.requestFullSync();
      await loop.settled();
      assert.equal(applier.calls[1]?.request.full, true);
      loop.enqueue([{
        type: "upsert",
        object: obj({
          kind: "Node",
          metadata: { name: "node-a", labels: { "topology.kubernetes.io/zone": "zone-a" } },
        }),
      }]);
      await loop.settled();
      assert.equal(applier.calls[2]?.request.full, true);
      assert.deepEqual(nodes, ["zone-a"]);
    },
  );
});

Deno.test("sync loop: hooks report queueing and network programming latency", async () => {
  const queued: number[] = [];
  const latencies: number[] = [];
  await withLoop({
    hooks: {
      onQueued: (now) => queued.push(now),
      onNetworkProgrammed: (s) => latencies.push(s),
    },
  }, async (loop) => {
    loop.markSourcesSynced();
    await loop.settled();
    const t0 = Date.now() - 2000;
    loop.enqueue([service("web", 10)], [t0]);
    loop.enqueue([endpoints("web", 2)]);
    await loop.settled();
    assert.equal(queued.length, 1, "once per unsynced batch");
    assert.equal(latencies.length, 1);
    assert.ok((latencies[0] ?? 0) >= 2 && (latencies[0] ?? 0) < 10, `latency ${latencies[0]}`);
    loop.enqueue([]);
    assert.equal(queued.length, 1, "empty batches are ignored");
  });
});

Deno.test("sync loop: stop waits for the sync in flight and then nothing more runs", async () => {
  const applier = new FakeApplier();
  const loop = new SyncLoop({ applier, settings: SETTINGS, minSyncPeriodMs: 0, syncPeriodMs: 50 });
  loop.start();
  loop.markSourcesSynced();
  await waitFor("first sync", () => applier.ok.length === 1);
  applier.delayMs = 80;
  loop.enqueue([service("web", 10)]);
  await waitFor("second sync", () => applier.calls.length === 2);
  await loop.stop();
  assert.equal(applier.active, 0);
  const n = applier.calls.length;
  await sleep(150);
  assert.equal(applier.calls.length, n, "no periodic sync after stop");
});

Deno.test("sync loop: NodeCIDR mode programs nothing until the Node has podCIDRs", async () => {
  const settings = {
    ...SETTINGS,
    detectLocal: { mode: "NodeCIDR" as const, bridgeInterface: "", interfaceNamePrefix: "" },
  };
  const nodeWith = (podCIDRs: string[] | null): ProxyEvent => ({
    type: "upsert",
    object: obj({
      ...node("node-a", null),
      ...(podCIDRs === null ? {} : { spec: { podCIDR: podCIDRs[0], podCIDRs } }),
    }),
  });
  await withLoop({ settings }, async (loop, applier, log) => {
    loop.enqueue([service("web", 10), endpoints("web", 5), nodeWith(null)]);
    loop.markSourcesSynced();
    await waitFor("the wait to begin", () => loop.awaitingPodCIDRs);
    // A change that does not give the Node pod CIDRs still programs nothing.
    loop.enqueue([service("db", 30)]);
    await sleep(100);
    assert.equal(applier.calls.length, 0);
    assert.equal(loop.hasSynced, false);
    assert.ok(log.some((l) => /waiting for Node node-a's spec\.podCIDRs/.test(l)), log.join("\n"));
    loop.enqueue([nodeWith(["198.18.1.0/24"])]);
    await loop.settled();
    assert.equal(loop.awaitingPodCIDRs, false);
    assert.equal(applier.calls.length, 1);
    const first = applier.calls[0]?.request;
    assert.equal(first?.full, true);
    assert.deepEqual(first?.snapshot.options.localDetector.cidrs, ["198.18.1.0/24"]);
    assert.equal(first?.snapshot.servicePorts.length, 2);
    // A new pod CIDR is followed with a full sync (upstream restarts instead).
    loop.enqueue([nodeWith(["198.18.2.0/24"])]);
    await waitFor("the second sync", () => applier.calls.length === 2);
    assert.equal(applier.calls[1]?.request.full, true);
    assert.deepEqual(applier.calls[1]?.request.snapshot.options.localDetector.cidrs, [
      "198.18.2.0/24",
    ]);
  });
});
