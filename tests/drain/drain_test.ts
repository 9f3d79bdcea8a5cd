/**
 * Draining a node loses no connection: three nodes running kproxy (nftables) against the real
 * API server, a userspace load balancer health-checking them every second, and the cluster
 * autoscaler's drain of node 0 (taint, Node deletion, its pod moving, the node switched off) —
 * see drain_scenario.ts. IP plan: node_lab.ts.
 */
import assert from "node:assert/strict";
import { startTestCluster } from "../fixtures/apiserver.ts";
import { startKproxy } from "../reliability/_kproxy.ts";
import { goFixtures, netns, nft, requiring, root } from "../requirements.ts";
import { describeDrain, runDrainScenario } from "./drain_scenario.ts";
import { LAB_CLUSTER_CIDR } from "./node_lab.ts";

Deno.test(requiring([root, netns, nft, goFixtures], {
  name: "drain: a load balancer follows kproxy's health answers; no connection fails",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cluster = await startTestCluster();
    try {
      const report = await runDrainScenario(cluster, {
        nodes: 3,
        startProxy: async (node, nodeName) => {
          const p = await startKproxy(node.netns, [
            `--kubeconfig=${cluster.kubeProxyKubeconfigPath}`,
            `--hostname-override=${nodeName}`,
            "--proxy-mode=nftables",
            `--cluster-cidr=${LAB_CLUSTER_CIDR}`,
          ]);
          return { stop: async () => void await p.kill("SIGTERM") };
        },
        log: (line) => console.log(`    ${line}`),
      });
      const text = describeDrain(report);
      console.log(text.split("\n").map((l) => `    ${l}`).join("\n"));
      assert.equal(report.failures.length, 0, `failed connections:\n${text}`);
      for (const pool of ["local", "cluster"]) {
        assert.ok((report.pools[pool]?.sent ?? 0) > 200, `${pool}: too few connections\n${text}`);
      }
      // The balancer's view followed each health answer within its 1 s interval (plus the
      // proxy's own reaction to the API change).
      for (const lag of report.lags) {
        assert.ok(lag.ms !== null && lag.ms <= 3_000, `${lag.what}: ${lag.ms} ms\n${text}`);
      }
      assert.equal(report.afterPowerOff, 0);
      // The replacement pod's node took local traffic once its pod was ready.
      assert.ok((report.pools["local"]?.byNode["198.19.0.12"] ?? 0) > 0, text);
    } finally {
      await cluster.stop();
    }
  },
}));
