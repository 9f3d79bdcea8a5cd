import assert from "node:assert/strict";
import { formatFixed10, probability } from "./probability.ts";

Deno.test("probability prints 1/n with ten decimals like Go's %0.10f", () => {
  assert.equal(probability(1), "1.0000000000");
  assert.equal(probability(2), "0.5000000000");
  assert.equal(probability(3), "0.3333333333");
  assert.equal(probability(6), "0.1666666667");
  assert.equal(probability(7), "0.1428571429");
  assert.equal(probability(1000), "0.0010000000");
});

Deno.test("probability rounds exact ties to even, as Go does", () => {
  // 1/2048 = 0.00048828125 exactly: Go prints ...812, JavaScript's toFixed ...813.
  assert.equal(probability(2048), "0.0004882812");
  assert.equal(formatFixed10(0.00048828125), "0.0004882812");
});

Deno.test("probability agrees with toFixed wherever there is no exact tie", () => {
  for (let n = 1; n <= 1500; n++) {
    if (n === 2048) continue;
    assert.equal(probability(n), (1 / n).toFixed(10), `n=${n}`);
  }
});
