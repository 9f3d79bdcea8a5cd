/**
 * `deno bench -A bench/`: full render and the one-endpoint-change transaction per backend at
 * each size (nftables is the baseline of each group). Sizes: KPROXY_BENCH_SIZES, default
 * `1000,10000`.
 *
 * @module
 */
import type { IPFamily } from "../src/model/ip.ts";
import { fullTableText, planIncremental, renderFamily } from "../src/render/nftables/table_plan.ts";
import { renderFamilyRestore } from "../src/render/iptables/full_restore.ts";
import { renderPartialRestore } from "../src/render/iptables/partial_restore.ts";
import { reconcile } from "../src/snapshot/proxy_state.ts";
import { benchFixture, endpointChanges } from "./_fixtures.ts";
import { benchSizes } from "./snapshot_bench.ts";

const FAMILIES: readonly IPFamily[] = ["IPv4", "IPv6"];

for (const size of benchSizes()) {
  const f = benchFixture(size);
  const snapshot = f.state.snapshot;
  const label = size % 1000 === 0 ? `${size / 1000}k services` : `${size} services`;
  const heavy = size >= 10_000 ? { n: 5, warmup: 1 } : {};
  Deno.bench({
    group: `full render, ${label}`,
    name: "nftables",
    baseline: true,
    ...heavy,
    fn: () => {
      for (const fam of FAMILIES) fullTableText(renderFamily(snapshot, fam));
    },
  });
  Deno.bench({
    group: `full render, ${label}`,
    name: "iptables (rendered entries reused)",
    ...heavy,
    fn: () => {
      for (const fam of FAMILIES) renderFamilyRestore(snapshot, fam);
    },
  });

  const change = reconcile(f.state, endpointChanges(f.cluster, 1)[0] ?? []);
  const next = change.state.snapshot;
  const ids = change.changedServicePorts;
  const nftLive = FAMILIES.map((fam) => renderFamily(snapshot, fam));
  const iptLive = FAMILIES.map((fam) => renderFamilyRestore(snapshot, fam).services);
  Deno.bench({
    group: `one-endpoint transaction, ${label}`,
    name: "nftables",
    baseline: true,
    fn: () => {
      FAMILIES.forEach((fam, j) => planIncremental(nftLive[j]!, renderFamily(next, fam, ids), ids));
    },
  });
  Deno.bench({
    group: `one-endpoint transaction, ${label}`,
    name: "iptables",
    fn: () => {
      FAMILIES.forEach((fam, j) => renderPartialRestore(next, fam, iptLive[j]!, ids));
    },
  });
}
