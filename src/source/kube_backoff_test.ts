import assert from "node:assert/strict";
import { backoffDelayMs } from "./kube_backoff.ts";

Deno.test("backoff doubles from the initial delay up to the maximum", () => {
  const policy = { initialMs: 100, maxMs: 1_000, jitter: 0 };
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 50].map((n) => backoffDelayMs(n, policy, 0)),
    [0, 100, 200, 400, 800, 1_000, 1_000],
  );
});

Deno.test("backoff jitter adds at most its fraction and never passes the maximum", () => {
  const policy = { initialMs: 100, maxMs: 1_000, jitter: 0.5 };
  assert.equal(backoffDelayMs(1, policy, 0.999), 150);
  assert.equal(backoffDelayMs(10, policy, 0.999), 1_000);
});
