/**
 * The fast path writes what the text says: in a throwaway namespace (`kp-fp-*`) holding a
 * 1,000-service cluster, random sequences of changes (fast-check; tests/netns/_fast_path_cluster.ts)
 * are synced incrementally — as nf_tables netlink batches — and afterwards the kernel's ruleset
 * equals what `nft -f` of a fresh render of the same snapshot gives in another namespace. Then
 * drift made behind kproxy's back is repaired by the next periodic resync, and a resync with
 * nothing touched sends nothing. Runs and sequence length are small enough for CI; set
 * `KPROXY_PROPERTY_RUNS` / `KPROXY_PROPERTY_SEED` to search harder or replay a failure.
 * IP plan: see _fast_path_cluster.ts.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { NftablesApplier } from "../../src/apply/nftables_applier.ts";
import { runTool } from "../../src/apply/run_tool.ts";
import { FIXTURE_SETTINGS } from "../../src/render/nftables/_fixtures.ts";
import { renderNftables } from "../../src/render/nftables/nftables_renderer.ts";
import { initialProxyState, type ProxyState, reconcile } from "../../src/snapshot/proxy_state.ts";
import { canonicalNftListing } from "../reliability/_nft_listing.ts";
import { netns, nft, requiring, root } from "../requirements.ts";
import { type Change, CHANGE_KINDS, FastPathCluster } from "./_fast_path_cluster.ts";
import { withScratchNetns } from "./scratch_netns.ts";

const SERVICES = 1000;
const RUNS = Number(Deno.env.get("KPROXY_PROPERTY_RUNS") ?? "4");
const SEED = Number(Deno.env.get("KPROXY_PROPERTY_SEED") ?? `${Date.now() % 100000}`);

async function listing(ns: string): Promise<string> {
  return canonicalNftListing(await runTool("nft", ["list", "ruleset"], { netns: ns }));
}

/** What `nft -f` of a fresh render of `state` leaves in the (emptied) namespace `ns`. */
async function reference(ns: string, state: ProxyState): Promise<string> {
  await runTool("nft", ["-f", "-"], {
    netns: ns,
    stdin: "flush ruleset\n" + renderNftables(state.snapshot),
  });
  return await listing(ns);
}

const change: fc.Arbitrary<Change> = fc.record({
  kind: fc.constantFrom(...CHANGE_KINDS),
  target: fc.nat({ max: 100_000 }),
  n: fc.nat({ max: 1000 }),
});

Deno.test(requiring([root, netns, nft], {
  name: "nftables fast path: after random incremental syncs the kernel holds the fresh render",
  async fn() {
    console.log(`  seed ${SEED}, ${RUNS} runs (KPROXY_PROPERTY_SEED replays)`);
    await withScratchNetns("kp-fp", (ns) =>
      withScratchNetns("kp-fp", async (fresh) => {
        const applier = new NftablesApplier({ netns: ns, conntrackCleanup: false });
        try {
          await fc.assert(
            fc.asyncProperty(
              fc.array(fc.array(change, { minLength: 1, maxLength: 3 }), {
                minLength: 1,
                maxLength: 12,
              }),
              async (batches) => {
                // Every run starts from the same cluster, loaded the long way.
                const cluster = new FastPathCluster(SERVICES);
                let state = reconcile(initialProxyState(FIXTURE_SETTINGS), [cluster.allObjects()])
                  .state;
                await applier.sync({
                  snapshot: state.snapshot,
                  changedServicePorts: [],
                  full: true,
                });
                for (const [k, batch] of batches.entries()) {
                  const r = reconcile(state, batch.flatMap((c) => cluster.apply(c)));
                  state = r.state;
                  const result = await applier.sync({
                    snapshot: state.snapshot,
                    changedServicePorts: r.changedServicePorts,
                    full: false,
                  });
                  assert.equal(result.full, false, `batch ${k} was not partial`);
                  if (result.linesSent > 0) {
                    assert.equal(
                      applier.lastTransport,
                      "netlink",
                      `batch ${k} went through nft -f`,
                    );
                  }
                }
                assert.equal(await listing(ns), await reference(fresh, state));
              },
            ),
            { numRuns: RUNS, seed: SEED, endOnFailure: false },
          );

          // Drift behind kproxy's back: the periodic resync sees a foreign transaction and
          // rewrites; with nothing touched it sends nothing.
          const cluster = new FastPathCluster(SERVICES);
          const state = reconcile(initialProxyState(FIXTURE_SETTINGS), [cluster.allObjects()])
            .state;
          await applier.sync({ snapshot: state.snapshot, changedServicePorts: [], full: true });
          const expected = await reference(fresh, state);
          const resync = { snapshot: state.snapshot, changedServicePorts: [], full: true };
          let result = await applier.sync({ ...resync, resync: true });
          assert.equal(result.linesSent, 0, "an untouched namespace's resync sends nothing");
          const chain = (await runTool("nft", ["list", "chains", "ip"], { netns: ns }))
            .match(/chain (service-\S+)/)?.[1] as string;
          await runTool("nft", ["-f", "-"], {
            netns: ns,
            stdin: [
              `flush chain ip kproxy ${chain}`,
              `delete element ip kproxy cluster-ips { 198.18.128.5 }`,
              `add rule ip kproxy services ip daddr 198.18.128.5 drop`,
            ].join("\n") + "\n",
          });
          assert.notEqual(await listing(ns), expected);
          result = await applier.sync({ ...resync, resync: true });
          assert.equal(result.full, true, "the resync rewrote the tables");
          assert.equal(await listing(ns), expected);
        } finally {
          applier.close();
        }
      }));
  },
}));
