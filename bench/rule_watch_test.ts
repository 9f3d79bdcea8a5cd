// IP plan: the synthetic cluster's (198.18.0.0/15); rules only inside a kpb-… namespace.
import assert from "node:assert/strict";
import { NftablesApplier } from "../src/apply/nftables_applier.ts";
import { type ProxyEvent, reconcile } from "../src/snapshot/proxy_state.ts";
import { benchFixture, spreadSlices } from "./_fixtures.ts";
import { withBenchNetns } from "./netns.ts";
import { netns, nft, requiring } from "../tests/requirements.ts";
import { ipv4Hex, NfEventWatch, nowMs, textHex } from "./rule_watch.ts";
import { freshEndpointIPv4, sliceWithEndpoint, toKubeObject } from "./synthetic_cluster.ts";

Deno.test("patterns are the bytes nf_tables carries", () => {
  assert.equal(ipv4Hex("198.18.250.3"), "c612fa03");
  assert.equal(textHex("KUBE-SEP"), "4b5542452d534550");
});

Deno.test(requiring([netns, nft], {
  name: "the listener sees changes appear and disappear, and full resyncs as neither",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const f = benchFixture(200);
    await withBenchNetns("test", async (ns) => {
      const watch = await NfEventWatch.start(ns.name);
      try {
        const applier = new NftablesApplier({ netns: ns.name, conntrackCleanup: false });
        await applier.sync({ snapshot: f.state.snapshot, changedServicePorts: [], full: true });
        let state = f.state;
        const step = async (dir: "appear" | "disappear", events: ProxyEvent[], hex: string) => {
          const { sighting } = await watch.arm(dir, [hex], 5_000);
          const r = reconcile(state, events);
          state = r.state;
          const t0 = nowMs();
          await applier.sync({
            snapshot: state.snapshot,
            changedServicePorts: r.changedServicePorts,
            full: false,
          });
          const seen = await sighting;
          assert.ok(seen !== null, `${dir} ${hex} was not seen`);
          assert.ok(seen.at >= t0 && seen.transactionMessages > 0);
        };
        const slice = spreadSlices(f.cluster, 2)[1]!;
        const ip = freshEndpointIPv4(7);
        await step("appear", [{
          type: "upsert",
          object: toKubeObject(sliceWithEndpoint(slice, ip)),
        }], ipv4Hex(ip));
        const { sighting } = await watch.arm("disappear", [ipv4Hex(ip)], 1_500);
        await applier.sync({ snapshot: state.snapshot, changedServicePorts: [], full: true });
        assert.equal(await sighting, null, "a full resync is not a disappearance");
        await step("disappear", [{ type: "upsert", object: toKubeObject(slice) }], ipv4Hex(ip));
        const svc = f.cluster.services[5]!;
        const clusterIP = (svc["spec"] as { clusterIP: string }).clusterIP;
        await step(
          "disappear",
          [{
            type: "delete",
            kind: "Service",
            namespace: svc.metadata.namespace ?? null,
            name: svc.metadata.name,
          }],
          ipv4Hex(clusterIP),
        );
        assert.equal(watch.lost, 0);
      } finally {
        await watch.stop();
      }
    });
  },
}));
