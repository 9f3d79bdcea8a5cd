/**
 * ClientIP affinity of the nftables backend with real packets: a client stays on its pod across
 * a periodic full (flush) sync and when another endpoint leaves; when its own pod leaves it moves
 * on. IP plan: topology.ts (pods 198.18.1.(10+i), node 198.18.0.1, client 198.19.0.2);
 * ClusterIP 198.18.128.40.
 */
import assert from "node:assert/strict";
import { NftablesApplier } from "../../src/apply/nftables_applier.ts";
import { initialProxyState, type ProxyState, reconcile } from "../../src/snapshot/proxy_state.ts";
import { endpointSlice, local, service, thisNode } from "./manifests.ts";
import { formatDistribution } from "./probe.ts";
import { parseScenarioObjects, scenarioSettings } from "./scenario_runner.ts";
import { createTopology } from "./topology.ts";
import { netns, nft, requiring } from "../requirements.ts";

const HTTP = [{ name: "http", port: 80 }] as const;
const HTTP_TARGET = [{ name: "http", port: 8080 }] as const;
const TARGET = { protocol: "TCP", ip: "198.18.128.40", port: 80 } as const;

Deno.test(requiring([netns, nft], {
  name: "nftables: ClientIP affinity survives full syncs and other endpoints leaving",
  async fn() {
    const topo = await createTopology({ pods: 4 });
    try {
      const settings = scenarioSettings({ name: "affinity", pods: 4, steps: [] });
      let state: ProxyState = initialProxyState(settings);
      const applier = new NftablesApplier({ netns: topo.nodeNetns });
      const step = async (raws: unknown[], full: boolean) => {
        const objects = parseScenarioObjects("affinity", raws);
        const r = reconcile(state, objects.map((object) => ({ type: "upsert" as const, object })));
        state = r.state;
        await applier.sync({
          snapshot: state.snapshot,
          changedServicePorts: r.changedServicePorts,
          full,
        });
      };
      const onePod = async (from: string, not?: string) => {
        const d = await topo.distribution(from, TARGET, 12);
        const pods = Object.keys(d.answers);
        assert.equal(pods.length, 1, `${from}: ${formatDistribution(d)}`);
        assert.equal(d.answers[pods[0]!], 12, `${from}: ${formatDistribution(d)}`);
        if (not !== undefined) assert.notEqual(pods[0], not);
        return pods[0]!;
      };
      const slice = (pods: number[]) =>
        endpointSlice("sticky", { ports: HTTP_TARGET, endpoints: pods.map((p) => local(p)) });

      await step([
        thisNode(),
        service("sticky", { clusterIPs: ["198.18.128.40"], ports: HTTP, affinitySeconds: 600 }),
        slice([0, 1, 2]),
      ], true);
      const pod = await onePod("pod3");
      const nodePod = await onePod("node");

      // A periodic full sync rewrites the table in place and keeps the affinity state.
      await applier.sync({ snapshot: state.snapshot, changedServicePorts: [], full: true });
      assert.equal(applier.lastSyncKind, "flush");
      assert.equal(await onePod("pod3"), pod);
      assert.equal(await onePod("node"), nodePod);

      // Another endpoint leaves: the client stays.
      const others = [0, 1, 2].filter((i) => `pod${i}` !== pod);
      await step([slice([Number(pod.slice(3)), others[0]!])], false);
      assert.equal(applier.lastSyncKind, "partial");
      assert.equal(await onePod("pod3"), pod);

      // Its own endpoint leaves: it moves to another pod and sticks there.
      await step([slice([others[0]!, others[1]!])], false);
      await onePod("pod3", pod);
    } finally {
      await topo.teardown();
    }
  },
}));
