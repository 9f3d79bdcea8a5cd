import assert from "node:assert/strict";
import { diffLines, unifiedDiff } from "./unified_diff.ts";

function apply(_a: string[], ops: ReturnType<typeof diffLines>): { a: string[]; b: string[] } {
  return {
    a: ops.filter((o) => o.op !== "+").map((o) => o.line),
    b: ops.filter((o) => o.op !== "-").map((o) => o.line),
  };
}

Deno.test("diffLines reproduces both sides and finds a minimal edit", () => {
  const a = ["a", "b", "c", "d", "e", "f"];
  const b = ["a", "x", "c", "d", "f", "g"];
  const ops = diffLines(a, b);
  assert.deepEqual(apply(a, ops), { a, b });
  assert.equal(ops.filter((o) => o.op !== " ").length, 4);
});

Deno.test("diffLines is correct on random inputs", () => {
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let t = 0; t < 200; t++) {
    const a = Array.from({ length: Math.floor(rand() * 30) }, () => String(Math.floor(rand() * 5)));
    const b = Array.from({ length: Math.floor(rand() * 30) }, () => String(Math.floor(rand() * 5)));
    assert.deepEqual(apply(a, diffLines(a, b)), { a, b });
  }
});

Deno.test("unifiedDiff prints hunks with headers and is empty for equal text", () => {
  assert.equal(unifiedDiff("x\ny\n", "x\ny\n"), "");
  const text = unifiedDiff("1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\n3\n4\nfive\n6\n7\n8\n9\n", {
    fromLabel: "old",
    toLabel: "new",
  });
  assert.equal(
    text,
    "--- old\n+++ new\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n",
  );
});

Deno.test("unifiedDiff handles additions to an empty text", () => {
  assert.equal(unifiedDiff("", "a\nb\n"), "--- a\n+++ b\n@@ -0,0 +1,2 @@\n+a\n+b\n");
});
