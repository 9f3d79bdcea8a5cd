import assert from "node:assert/strict";
import { fullBucket, RateLimiter, reserveToken } from "./kube_rate_limiter.ts";

Deno.test("token bucket: a full burst goes at once, then one request per 1/qps", () => {
  const limits = { qps: 5, burst: 3 };
  let state = fullBucket(limits, 0);
  const waits: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = reserveToken(state, limits, 0);
    state = r.state;
    waits.push(r.waitMs);
  }
  assert.deepEqual(waits, [0, 0, 0, 200, 400]);
});

Deno.test("token bucket: tokens refill over time up to the burst", () => {
  const limits = { qps: 10, burst: 2 };
  let state = fullBucket(limits, 0);
  state = reserveToken(state, limits, 0).state;
  state = reserveToken(state, limits, 0).state;
  assert.equal(reserveToken(state, limits, 0).waitMs, 100);
  // After 10 s the bucket is full again, not 100 tokens deep.
  state = reserveToken(state, limits, 10_000).state;
  state = reserveToken(state, limits, 10_000).state;
  assert.equal(reserveToken(state, limits, 10_000).waitMs, 100);
});

Deno.test("token bucket: qps 0 means no limit", () => {
  const limits = { qps: 0, burst: 1 };
  let state = fullBucket(limits, 0);
  for (let i = 0; i < 100; i++) {
    const r = reserveToken(state, limits, 0);
    assert.equal(r.waitMs, 0);
    state = r.state;
  }
});

Deno.test("RateLimiter waits for its token and gives it back on abort", async () => {
  const limiter = new RateLimiter({ qps: 20, burst: 1 });
  const t0 = performance.now();
  await limiter.wait();
  await limiter.wait();
  const waited = performance.now() - t0;
  assert.ok(waited >= 40, `waited ${waited} ms`);
  const controller = new AbortController();
  const pending = limiter.wait(controller.signal);
  controller.abort(new Error("stop"));
  await assert.rejects(pending, /stop/);
});
