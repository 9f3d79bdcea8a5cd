/**
 * Fast failure with real packets: a ClusterIP port the service lacks is refused at once (as
 * upstream's cluster-ips-check), from the node and from a pod. IP plan: topology.ts (pods
 * 198.18.1.(10+i), node 198.18.0.1); ClusterIP 198.18.128.41.
 */
import assert from "node:assert/strict";
import { NftablesApplier } from "../../src/apply/nftables_applier.ts";
import { buildSnapshot } from "../../src/snapshot/proxy_state.ts";
import { endpointSlice, local, service, thisNode } from "./manifests.ts";
import { formatDistribution } from "./probe.ts";
import { parseScenarioObjects, scenarioSettings } from "./scenario_runner.ts";
import { createTopology } from "./topology.ts";
import { netns, nft, requiring } from "../requirements.ts";

Deno.test(requiring([netns, nft], {
  name: "nftables: a ClusterIP port the service lacks is refused at once",
  async fn() {
    const topo = await createTopology({ pods: 2 });
    try {
      const settings = scenarioSettings({ name: "reject", pods: 2, steps: [] });
      const objects = parseScenarioObjects("reject", [
        thisNode(),
        service("web", { clusterIPs: ["198.18.128.41"], ports: [{ name: "http", port: 80 }] }),
        endpointSlice("web", { ports: [{ name: "http", port: 8080 }], endpoints: [local(0)] }),
      ]);
      const applier = new NftablesApplier({ netns: topo.nodeNetns });
      await applier.sync({
        snapshot: buildSnapshot(objects, settings),
        changedServicePorts: [],
        full: true,
      });
      for (const from of ["node", "pod1"]) {
        const ok = await topo.distribution(
          from,
          { protocol: "TCP", ip: "198.18.128.41", port: 80 },
          3,
        );
        assert.equal(ok.answers["pod0"], 3, `${from}: ${formatDistribution(ok)}`);
        for (const protocol of ["TCP", "UDP"] as const) {
          const bad = await topo.distribution(
            from,
            { protocol, ip: "198.18.128.41", port: 81 },
            3,
            {
              timeoutMs: 1000,
            },
          );
          assert.equal(bad.refused, 3, `${from} ${protocol}: ${formatDistribution(bad)}`);
        }
      }
    } finally {
      await topo.teardown();
    }
  },
}));
