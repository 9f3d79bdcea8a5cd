import assert from "node:assert/strict";
import { deepFreeze } from "./deep_freeze.ts";
import { canonicalJSON, contentHash } from "./hash.ts";

Deno.test("hash: canonical JSON sorts keys at every depth and keeps array order", () => {
  const a = { b: 1, a: [{ y: 2, x: 1 }, 3], c: { e: null, d: "x" } };
  const b = { c: { d: "x", e: null }, a: [{ x: 1, y: 2 }, 3], b: 1 };
  assert.equal(canonicalJSON(a), '{"a":[{"x":1,"y":2},3],"b":1,"c":{"d":"x","e":null}}');
  assert.equal(canonicalJSON(a), canonicalJSON(b));
  assert.notEqual(canonicalJSON([1, 2]), canonicalJSON([2, 1]));
});

Deno.test("hash: content hash is the first 32 hex digits of SHA-256", () => {
  assert.equal(contentHash(""), "e3b0c44298fc1c149afbf4c8996fb924");
  assert.equal(contentHash("kproxy"), contentHash("kproxy"));
  assert.notEqual(contentHash("a"), contentHash("b"));
});

Deno.test("deep freeze: freezes nested objects and arrays, returns the same value", () => {
  const value = { a: [{ b: 1 }], c: { d: [1, 2] } };
  const frozen = deepFreeze(value);
  assert.equal(frozen, value);
  assert.ok(Object.isFrozen(value.a[0]) && Object.isFrozen(value.c.d));
  assert.throws(() => {
    (value.c.d as number[]).push(3);
  }, TypeError);
  assert.equal(deepFreeze(null), null);
  assert.equal(deepFreeze(5), 5);
});
