import assert from "node:assert/strict";
import { formatBytes, formatCount, formatMs, median, quantile, summarize } from "./stats.ts";

Deno.test("quantile interpolates between sorted samples", () => {
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
  assert.equal(quantile([10], 0.99), 10);
  assert.ok(Number.isNaN(quantile([], 0.5)));
});

Deno.test("summarize gives percentiles of unsorted samples", () => {
  const s = summarize([5, 1, 4, 2, 3]);
  assert.deepEqual([s.n, s.min, s.p50, s.max, s.mean], [5, 1, 3, 5, 3]);
  assert.equal(median([3, 1, 2]), 2);
  assert.ok(Number.isNaN(summarize([]).p50));
});

Deno.test("formatters pick a readable unit", () => {
  assert.equal(formatMs(0.5), "0.50 ms");
  assert.equal(formatMs(12.34), "12.3 ms");
  assert.equal(formatMs(4560), "4.56 s");
  assert.equal(formatMs(360_000), "6.0 min");
  assert.equal(formatMs(null), "—");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(15 * 1024 * 1024), "15.0 MiB");
  assert.equal(formatCount(261714), "261,714");
});
