/** The load balancer's decisions (pure). Node addresses are only names here. */
import assert from "node:assert/strict";
import { BalancerPool } from "./balancer.ts";

Deno.test("balancer pool: nodes start out, come in on a 2xx, go out on anything else", () => {
  const pool = new BalancerPool("local", ["a", "b", "c"]);
  assert.deepEqual(pool.healthy(), []);
  assert.equal(pool.pick(), null, "no healthy node: nowhere to send");
  assert.deepEqual(pool.record({ node: "a", status: 200, at: 1 }), {
    pool: "local",
    node: "a",
    healthy: true,
    status: 200,
    at: 1,
  });
  assert.equal(pool.record({ node: "a", status: 200, at: 2 }), null, "no change, no transition");
  pool.record({ node: "b", status: 204, at: 3 });
  pool.record({ node: "c", status: 503, at: 4 });
  assert.deepEqual(pool.healthy(), ["a", "b"]);
  assert.equal(pool.record({ node: "b", status: 0, at: 5 })?.healthy, false, "no answer: out");
  assert.equal(pool.record({ node: "x", status: 200, at: 6 }), null, "not a backend");
  assert.deepEqual(pool.healthy(), ["a"]);
});

Deno.test("balancer pool: round robin over the healthy nodes only", () => {
  const pool = new BalancerPool("cluster", ["a", "b", "c"]);
  for (const node of ["a", "b", "c"]) pool.record({ node, status: 200, at: 0 });
  assert.deepEqual([pool.pick(), pool.pick(), pool.pick(), pool.pick()], ["a", "b", "c", "a"]);
  pool.record({ node: "b", status: 503, at: 1 });
  assert.deepEqual([pool.pick(), pool.pick(), pool.pick()], ["c", "a", "c"]);
});
