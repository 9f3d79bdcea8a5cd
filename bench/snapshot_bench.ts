/**
 * `deno bench -A bench/`: snapshot build and one-change reconcile at each size (the smallest
 * size is the baseline, so the ratios show how the cost grows). Sizes: KPROXY_BENCH_SIZES,
 * default `1000,10000`.
 *
 * @module
 */
import { initialProxyState, reconcile } from "../src/snapshot/proxy_state.ts";
import { BENCH_SETTINGS, benchFixture, endpointChanges } from "./_fixtures.ts";

/** Benchmark sizes from KPROXY_BENCH_SIZES (default 1k and 10k services). */
export function benchSizes(): number[] {
  const text = Deno.env.get("KPROXY_BENCH_SIZES") ?? "1000,10000";
  return text.split(",").map(Number).filter((n) => Number.isInteger(n) && n > 0);
}

const sizes = benchSizes();
const label = (n: number) => (n % 1000 === 0 ? `${n / 1000}k services` : `${n} services`);

for (const size of sizes) {
  const f = benchFixture(size);
  Deno.bench({
    group: "snapshot build",
    name: label(size),
    baseline: size === sizes[0],
    n: size >= 10_000 ? 5 : 20,
    warmup: 1,
    fn: () => {
      reconcile(initialProxyState(BENCH_SETTINGS), [{ type: "replace", objects: f.objects }]);
    },
  });
  const changes = endpointChanges(f.cluster, 50);
  let i = 0;
  Deno.bench({
    group: "one-change reconcile",
    name: label(size),
    baseline: size === sizes[0],
    fn: () => {
      reconcile(f.state, changes[i++ % changes.length] ?? []);
    },
  });
}
