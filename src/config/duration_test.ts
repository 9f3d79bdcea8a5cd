import assert from "node:assert/strict";
import { formatDuration, parseDuration } from "./duration.ts";

Deno.test("duration: parses Go durations to milliseconds", async (t) => {
  const cases: [string, number | null][] = [
    ["30s", 30_000],
    ["1m0s", 60_000],
    ["1m30s", 90_000],
    ["1h2m3.5s", 3_723_500],
    ["250ms", 250],
    ["250us", 0.25],
    ["250µs", 0.25],
    ["1500000ns", 1.5],
    ["4.35m", 261_000],
    ["1.005s", 1005],
    ["0", 0],
    ["0s", 0],
    [" 10s ", 10_000],
    ["", null],
    ["30", null],
    ["-1s", null],
    ["1d", null],
    ["s", null],
    ["1s2", null],
    ["1 s", null],
  ];
  for (const [text, want] of cases) {
    await t.step(JSON.stringify(text), () => assert.equal(parseDuration(text), want));
  }
  assert.equal(parseDuration(30 as unknown as string), null);
});

Deno.test("duration: formats like Go's String()", () => {
  assert.equal(formatDuration(0), "0s");
  assert.equal(formatDuration(250), "250ms");
  assert.equal(formatDuration(1000), "1s");
  assert.equal(formatDuration(1500), "1.5s");
  assert.equal(formatDuration(90_000), "1m30s");
  assert.equal(formatDuration(3_600_000), "1h0m0s");
  assert.equal(formatDuration(3_723_500), "1h2m3.5s");
  for (const ms of [10, 1000, 30_000, 90_000, 3_723_500]) {
    assert.equal(parseDuration(formatDuration(ms)), ms, `round trip ${ms}`);
  }
});
