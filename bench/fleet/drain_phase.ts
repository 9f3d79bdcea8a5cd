/**
 * The drain scenario of tests/drain (a load balancer in front of N nodes; node 0 tainted,
 * deleted, its pod moved, switched off) as a phase of the fleet lab, for kproxy and for upstream
 * kube-proxy on the same API server.
 *
 * @module
 */
import type { TestCluster } from "../../tests/fixtures/apiserver.ts";
import { type DrainReport, runDrainScenario } from "../../tests/drain/drain_scenario.ts";
import { LAB_CLUSTER_CIDR } from "../../tests/drain/node_lab.ts";
import { startUpstreamKubeProxy } from "../../tests/netns/upstream_kube_proxy.ts";
import { startKproxy } from "../../tests/reliability/_kproxy.ts";
import type { ProxyImpl } from "../proxy_process.ts";

/** One implementation's drain. */
export interface DrainResult {
  /** Which proxy. */
  readonly impl: ProxyImpl;
  /** Nodes. */
  readonly nodes: number;
  /** What the scenario saw (null: it did not complete). */
  readonly report: DrainReport | null;
  /** Why it did not complete. */
  readonly error: string | null;
}

/** Runs the drain with `impl` on every node. */
export async function runDrainPhase(
  cluster: TestCluster,
  impl: ProxyImpl,
  nodes: number,
  log: (line: string) => void,
): Promise<DrainResult> {
  try {
    const report = await runDrainScenario(cluster, {
      nodes,
      log: (line) => log(`${impl} drain: ${line}`),
      startProxy: async (node, nodeName) => {
        if (impl === "kproxy") {
          const p = await startKproxy(node.netns, [
            `--kubeconfig=${cluster.kubeProxyKubeconfigPath}`,
            `--hostname-override=${nodeName}`,
            "--proxy-mode=nftables",
            `--cluster-cidr=${LAB_CLUSTER_CIDR}`,
          ], { startTimeoutMs: 180_000 });
          return { stop: async () => void await p.kill("SIGTERM") };
        }
        const p = await startUpstreamKubeProxy(cluster, node.netns, "nftables", {
          nodeName,
          clusterCIDR: LAB_CLUSTER_CIDR,
          // The load balancer checks /healthz from outside the node.
          args: ["--healthz-bind-address=0.0.0.0:10256"],
        });
        return { stop: () => p.kill() };
      },
    });
    return { impl, nodes, report, error: null };
  } catch (e) {
    return { impl, nodes, report: null, error: e instanceof Error ? e.message : String(e) };
  }
}
