/**
 * The differential conformance suite in CI: a small fixed set of seeds plus every kept
 * regression seed, each through kproxy and upstream kube-proxy v1.34 side by side (two two-node
 * labs, one real kube-apiserver), in both backends; any unexplained divergence fails and is
 * printed with its seed, objects and packet. The long run is `deno task conformance --seeds N`.
 *
 * IP plan: tests/netns/two_node_plan.ts.
 */
import assert from "node:assert/strict";
import { conntrack, goFixtures, iptables, netns, nft, requiring } from "../requirements.ts";
import { type ConformanceMode, startConformanceLabs } from "./lab.ts";
import { REGRESSION_SEEDS } from "./regression_seeds.ts";
import { formatDivergence } from "./report.ts";
import { runSeed } from "./runner.ts";

/** Seeds every CI run sends through both backends (besides the regression seeds). */
const CI_SEEDS: Readonly<Record<ConformanceMode, readonly number[]>> = {
  nftables: [1],
  iptables: [1, 3],
};

function seedsFor(mode: ConformanceMode): number[] {
  const kept = REGRESSION_SEEDS.filter((r) => r.modes.includes(mode)).map((r) => r.seed);
  return [...new Set([...CI_SEEDS[mode], ...kept])].sort((a, b) => a - b);
}

for (const mode of ["nftables", "iptables"] as const) {
  Deno.test(requiring([netns, goFixtures, nft, iptables, conntrack], {
    name: `conformance (${mode}): seeds ${
      seedsFor(mode).join(", ")
    } agree with upstream kube-proxy`,
    // The API server's client keeps pooled connections; agents run until the labs stop.
    sanitizeResources: false,
    sanitizeOps: false,
    async fn(t) {
      const labs = await startConformanceLabs(mode);
      try {
        for (const seed of seedsFor(mode)) {
          await t.step(`seed ${seed}`, async () => {
            const result = await runSeed(labs, seed);
            assert.equal(result.error, null, `seed ${seed} stopped: ${result.error}`);
            const unexplained = result.rounds.flatMap((r) =>
              r.divergences.filter((d) => d.deliberate === null).map((d) =>
                formatDivergence(seed, r, d)
              )
            );
            const cells = result.rounds.reduce((n, r) => n + r.cells, 0);
            assert.ok(cells > 0, `seed ${seed} compared no cells`);
            assert.deepEqual(unexplained, [], `seed ${seed}: ${cells} cells compared`);
          });
        }
      } finally {
        await labs.stop();
      }
    },
  }));
}
