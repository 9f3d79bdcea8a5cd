/** The persistent map: versions share what they did not touch, and never change. */
import assert from "node:assert/strict";
import { PersistentMap } from "./persistent_map.ts";

Deno.test("persistent map: an edit makes a new version and leaves the old one as it was", () => {
  const a = PersistentMap.from(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i] as const));
  assert.equal(a.size, 5000);
  const e = a.edit();
  e.set("k1", -1);
  e.set("new", 42);
  assert.equal(e.delete("k2"), true);
  assert.equal(e.delete("absent"), false);
  assert.equal(e.get("k1"), -1);
  assert.equal(e.size, 5000);
  const b = e.done();
  assert.deepEqual([a.get("k1"), a.get("k2"), a.has("new"), a.size], [1, 2, false, 5000]);
  assert.deepEqual([b.get("k1"), b.get("k2"), b.get("new"), b.size], [-1, undefined, 42, 5000]);
  assert.equal([...b.keys()].length, 5000);
  assert.deepEqual(
    new Set(b.keys()),
    new Set([...a.keys()].filter((k) => k !== "k2").concat("new")),
  );
  assert.throws(() => e.set("late", 0), /after done/);
});

Deno.test("persistent map: reads through the ReadonlyMap interface", () => {
  const m = PersistentMap.from([["a", 1], ["b", 2]]);
  const seen: string[] = [];
  m.forEach((v, k) => seen.push(`${k}=${v}`));
  assert.deepEqual(seen.sort(), ["a=1", "b=2"]);
  assert.deepEqual(new Map(m), new Map([["a", 1], ["b", 2]]));
  assert.equal(PersistentMap.empty().size, 0);
});
