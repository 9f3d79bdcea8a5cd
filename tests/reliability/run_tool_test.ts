/**
 * run_tool.ts under pressure: a tool that echoes a large input before reading all of it (more
 * than a pipe buffer either way) must not deadlock, a tool that exits without reading its input
 * must not hang or throw, and a hung tool is killed at its timeout.
 */
import assert from "node:assert/strict";
import { runTool, runToolResult } from "../../src/apply/run_tool.ts";

Deno.test("run_tool: a large input echoed back does not deadlock", async () => {
  const input = "0123456789abcdef".repeat(256 * 1024); // 4 MiB, far beyond a 64 KiB pipe
  const started = performance.now();
  const out = await runTool("cat", [], { stdin: input, timeoutMs: 30_000 });
  assert.equal(out.length, input.length);
  assert.ok(performance.now() - started < 20_000);
});

Deno.test("run_tool: a tool that ignores its input and exits is reported, not hung", async () => {
  const r = await runToolResult("false", [], {
    stdin: "x".repeat(4 * 1024 * 1024),
    timeoutMs: 30_000,
  });
  assert.equal(r.code, 1);
});

Deno.test("run_tool: a hung tool is killed at its timeout", async () => {
  const started = performance.now();
  const r = await runToolResult("sleep", ["30"], { timeoutMs: 300 });
  assert.equal(r.code, -1);
  assert.ok(performance.now() - started < 5_000);
});
