/**
 * `--detect-local-mode=NodeCIDR` waits for the Node's `spec.podCIDRs` before programming
 * anything, then uses them — upstream kube-proxy v1.34 and kproxy (as a process), both modes,
 * through the lab's real kube-apiserver. While the Node has no podCIDRs, the proxy keeps running
 * and a ClusterIP goes nowhere; once they are set (the API server allows unset → set), a pod
 * keeps its address to the ClusterIP and the outside client is masqueraded. Then kproxy alone
 * (with `--manifests`, where a Node's podCIDRs can change): it follows a changed podCIDR without
 * a restart, where upstream exits to be restarted (README, Differences).
 *
 * IP plan (topology.ts): pods 198.18.1.10–11, client 198.19.0.2; the Node's podCIDRs
 * 198.18.1.0/24, fd00:1::/64; the decoy --cluster-cidr 198.19.0.0/16, fd00:19::/48; ClusterIP
 * 198.18.128.40.
 */
import { type KproxyProcess, startKproxy } from "../reliability/_kproxy.ts";
import { manifestDir } from "../reliability/_manifests.ts";
import { goFixtures, netns, requiring } from "../requirements.ts";
import { DECOY_CLUSTER_CIDRS } from "./detect_local_scenarios.ts";
import { endpointSlice, remote, service, THIS_NODE, thisNode } from "./manifests.ts";
import { evaluateCheck, type ScenarioCheck } from "./scenario.ts";
import { createTopology, type Topology } from "./topology.ts";
import { type LabImplementation, UpstreamLab, type UpstreamMode } from "./upstream_backend.ts";

const lab = new UpstreamLab();
const CASES: readonly [LabImplementation, UpstreamMode][] = [
  ["upstream", "nftables"],
  ["upstream", "iptables"],
  ["kproxy", "nftables"],
  ["kproxy", "iptables"],
];
/** How long the proxy is watched while the Node has no podCIDRs. */
const WAIT_MS = 4_000;

function objects(podCIDRs: boolean | readonly string[]): unknown[] {
  const node = thisNode();
  if (podCIDRs === false) delete node["spec"];
  else if (podCIDRs !== true) node["spec"] = { podCIDR: podCIDRs[0], podCIDRs };
  return [
    node,
    service("web", { clusterIPs: ["198.18.128.40"], ports: [{ name: "http", port: 80 }] }),
    endpointSlice("web", { ports: [{ name: "http", port: 8080 }], endpoints: [remote(0)] }),
  ];
}

const check = (
  name: string,
  from: string,
  expect: ScenarioCheck["expect"],
  timeoutMs?: number,
): ScenarioCheck => ({
  name,
  from,
  ip: "198.18.128.40",
  port: 80,
  probes: 2,
  ...(timeoutMs === undefined ? {} : { timeoutMs }),
  expect,
});

async function judge(topology: Topology, checks: readonly ScenarioCheck[]): Promise<string[]> {
  const problems: string[] = [];
  for (const c of checks) {
    const results = await topology.probeMany(
      c.from,
      { protocol: "TCP", ip: c.ip, port: c.port },
      c.probes ?? 1,
      c.timeoutMs === undefined ? {} : { timeoutMs: c.timeoutMs },
    );
    problems.push(...evaluateCheck(c, results, { nodeAddresses: topology.node.addresses }));
  }
  return problems;
}

for (const [implementation, mode] of CASES) {
  Deno.test(requiring([netns, goFixtures], {
    name: `detect-local-mode NodeCIDR (${implementation} ${mode}): nothing is programmed until ` +
      "the Node has podCIDRs, then pods keep their address and others are masqueraded",
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const topology = await createTopology({ pods: 2 });
      const node = await lab.startNode(topology, mode, {
        implementation,
        args: ["--detect-local-mode=NodeCIDR", `--cluster-cidr=${DECOY_CLUSTER_CIDRS.join(",")}`],
      });
      try {
        await node.write(objects(false));
        await node.start();
        await new Promise((r) => setTimeout(r, WAIT_MS));
        const proxy = node.proxy!;
        if (proxy.exitCode() !== null) {
          throw new Error(`${implementation} exited while waiting:\n${await proxy.tail(20)}`);
        }
        const rules = await node.liveRules();
        if (rules.includes("198.18.128.40")) {
          throw new Error(`${implementation} programmed the ClusterIP before podCIDRs:\n${rules}`);
        }
        const waiting = await judge(topology, [
          check("a ClusterIP goes nowhere while the proxy waits", "pod1", { kind: "timeout" }, 500),
        ]);
        if (waiting.length > 0) throw new Error(waiting.join("\n"));

        await node.sync(objects(true));
        const problems = await judge(topology, [
          check("a pod keeps its address", "pod1", {
            kind: "answer",
            pods: ["pod0"],
            clientIP: "preserved",
          }),
          check("the outside client is masqueraded", "client", {
            kind: "answer",
            pods: ["pod0"],
            clientIP: "node",
          }),
        ]);
        if (problems.length > 0) {
          throw new Error(`${problems.join("\n")}\nrules:\n${await node.liveRules()}`);
        }
      } finally {
        await node.close();
        await topology.teardown();
      }
    },
  }));
}
for (const mode of ["nftables", "iptables"] as const) {
  Deno.test(requiring([netns], {
    name: `detect-local-mode NodeCIDR (kproxy ${mode}, manifests): a changed podCIDR is ` +
      "followed without a restart",
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const topology = await createTopology({ pods: 2 });
      const dir = await manifestDir(objects(["198.18.1.0/24"]));
      let kproxy: KproxyProcess | null = null;
      try {
        kproxy = await startKproxy(topology.nodeNetns, [
          "--manifests",
          dir.path,
          `--proxy-mode=${mode}`,
          `--hostname-override=${THIS_NODE}`,
          "--detect-local-mode=NodeCIDR",
          `--cluster-cidr=${DECOY_CLUSTER_CIDRS.join(",")}`,
          "--healthz-bind-address=127.0.0.1:10256",
          "--metrics-bind-address=127.0.0.1:10249",
        ]);
        const preserved = await judge(topology, [
          check("a pod of the Node's pod CIDR keeps its address", "pod1", {
            kind: "answer",
            pods: ["pod0"],
            clientIP: "preserved",
          }),
        ]);
        if (preserved.length > 0) throw new Error(preserved.join("\n"));
        // The Node's pod CIDR moves away from the pods: their traffic is now off-node.
        const syncs = (kproxy.log().match(/sync ok: full/g) ?? []).length;
        await dir.write(objects(["198.18.2.0/24"]));
        const deadline = Date.now() + 20_000;
        while ((kproxy.log().match(/sync ok: full/g) ?? []).length === syncs) {
          if (Date.now() > deadline) throw new Error(`no full sync:\n${kproxy.log()}`);
          await new Promise((r) => setTimeout(r, 50));
        }
        const masqueraded = await judge(topology, [
          check("the same pod outside the new pod CIDR is masqueraded", "pod1", {
            kind: "answer",
            pods: ["pod0"],
            clientIP: "node",
          }),
        ]);
        if (masqueraded.length > 0) throw new Error(masqueraded.join("\n"));
        if (kproxy.exitStatus() !== null) throw new Error(`kproxy exited:\n${kproxy.log()}`);
      } finally {
        await kproxy?.kill("SIGTERM");
        await dir.remove();
        await topology.teardown();
      }
    },
  }));
}

lab.registerStop();
