import assert from "node:assert/strict";
import { quoteComment } from "./comment.ts";
import { splitWords } from "./restore_fake.ts";

Deno.test("quoteComment keeps ordinary names readable", () => {
  assert.equal(quoteComment("ns/web:http cluster IP"), '"ns/web:http cluster IP"');
});

Deno.test("quoteComment never lets a name break out of its word or line", () => {
  const evil = "a\" -j ACCEPT\n-A INPUT -j DROP \\ 'x";
  const quoted = quoteComment(evil);
  assert.ok(!quoted.includes("\n"));
  const words = splitWords(`-A X -m comment --comment ${quoted} -j RETURN`);
  assert.equal(words.length, 8);
  assert.equal(words[7], "RETURN");
});

Deno.test("quoteComment stays under the kernel's 256-byte comment limit", () => {
  assert.ok(quoteComment("x".repeat(1000)).length <= 257);
});
