/**
 * Scale of the nftables backend at 10,000 services × 10 endpoints (override with
 * `KPROXY_NFT_SCALE=services`): full render time, first full apply in a namespace, and one
 * endpoint change (transaction size and time). Asserts what does not depend on the machine's
 * load — the first sync is one full load, each endpoint change is a partial sync of a few lines
 * whatever the table's size — and prints the times; the times are judged by the benchmarks
 * (bench/kernel_bench.ts), side by side with their floors, not here. IP plan: render/nftables/_fixtures.ts (ClusterIPs from
 * 198.18.128.0, pods in 198.18.1.0–198.18.118.255).
 */
import assert from "node:assert/strict";
import { NftablesApplier } from "../../src/apply/nftables_applier.ts";
import { runTool, runToolResult } from "../../src/apply/run_tool.ts";
import { objects, syntheticService, syntheticState } from "../../src/render/nftables/_fixtures.ts";
import { renderNftables } from "../../src/render/nftables/nftables_renderer.ts";
import { reconcile } from "../../src/snapshot/proxy_state.ts";
import { netns, nft, requiring } from "../requirements.ts";

const SERVICES = Number(Deno.env.get("KPROXY_NFT_SCALE") ?? 10_000);
const ENDPOINTS = 10;

Deno.test(requiring([netns, nft], {
  name: `nftables: scale ${SERVICES} services × ${ENDPOINTS} endpoints`,
  async fn() {
    let state = syntheticState(SERVICES, ENDPOINTS);
    let t = performance.now();
    const text = renderNftables(state.snapshot);
    const renderMs = performance.now() - t;
    const ns = `kp-nft-scale-${Deno.pid}`;
    await runTool("ip", ["netns", "add", ns]);
    try {
      const applier = new NftablesApplier({ netns: ns });
      t = performance.now();
      const first = await applier.sync({
        snapshot: state.snapshot,
        changedServicePorts: [],
        full: true,
      });
      const fullMs = performance.now() - t;
      const partials: { ms: number; lines: number }[] = [];
      for (let k = 0; k < 5; k++) {
        const i = Math.floor((SERVICES / 5) * k) + 7;
        const slice = objects(syntheticService(i, ENDPOINTS, { firstEndpoint: 20_000 + k }))[1]!;
        const r = reconcile(state, [{ type: "upsert", object: slice }]);
        state = r.state;
        t = performance.now();
        const result = await applier.sync({
          snapshot: state.snapshot,
          changedServicePorts: r.changedServicePorts,
          full: false,
        });
        partials.push({ ms: performance.now() - t, lines: result.linesSent });
        assert.equal(result.full, false);
      }
      t = performance.now();
      await applier.sync({ snapshot: state.snapshot, changedServicePorts: [], full: true });
      const flushMs = performance.now() - t;
      const median = partials.map((p) => p.ms).sort((a, b) => a - b)[2]!;
      console.log(
        `  render ${renderMs.toFixed(0)} ms (${text.split("\n").length} lines); ` +
          `first full apply ${fullMs.toFixed(0)} ms (${first.linesSent} lines, ` +
          `${first.ruleCount} rules); one endpoint change: median ${median.toFixed(0)} ms, ` +
          `${partials[0]!.lines} lines; periodic full ${flushMs.toFixed(0)} ms`,
      );
      assert.equal(first.full, true);
      assert.ok(first.linesSent > SERVICES, `the first sync sent the table: ${first.linesSent}`);
      assert.ok(partials.every((p) => p.lines > 0 && p.lines <= 30), JSON.stringify(partials));
    } finally {
      await runToolResult("ip", ["netns", "del", ns]);
    }
  },
}));
