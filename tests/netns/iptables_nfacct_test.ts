/**
 * iptables mode's nfacct counters and the INVALID drop, kproxy and upstream kube-proxy v1.34
 * side by side in the same lab (one real kube-apiserver, each proxy in turn on a fresh node):
 *
 * - connections to a NodePort on 127.0.0.1 count in `localhost_nps_accepted_pkts`, reported as
 *   `kubeproxy_iptables_localhost_nodeports_accepted_packets_total` (one packet per connection:
 *   the nat rule sees the first);
 * - a forwarded TCP segment conntrack calls INVALID (SYN|FIN, rewritten so by an nft rule in the
 *   client's namespace) is dropped in KUBE-FORWARD and counts in `ct_state_invalid_dropped_pkts`,
 *   `kubeproxy_iptables_ct_state_invalid_dropped_packets_total`;
 * - with `--conntrack-tcp-be-liberal` (nf_conntrack_tcp_be_liberal=1) no INVALID drop is written.
 *
 * IP plan: tests/netns/topology.ts (node primary 198.19.0.1, pod0 198.18.1.10, client 198.19.0.2);
 * Service default/np ClusterIP 198.18.128.60:80, NodePort 30060 → pod0:8080.
 */
import assert from "node:assert/strict";
import { runToolResult } from "../../src/apply/run_tool.ts";
import { tool } from "../requirements.ts";
import { endpointSlice, local, service, thisNode } from "./manifests.ts";
import { scenarioSettings } from "./scenario_runner.ts";
import { createTopology, podIPv4 } from "./topology.ts";
import { type LabImplementation, UpstreamLab } from "./upstream_backend.ts";
import { goFixtures, netns, requiring } from "../requirements.ts";

const NODE_PORT = 30060;
const OBJECTS = [
  thisNode(),
  service("np", {
    type: "NodePort",
    clusterIPs: ["198.18.128.60"],
    ports: [{ name: "http", port: 80, nodePort: NODE_PORT }],
  }),
  endpointSlice("np", { ports: [{ name: "http", port: 8080 }], endpoints: [local(0)] }),
];
/** iptables' defaults for these: NodePorts on every local address, 127.0.0.1 included. */
const SETTINGS = {
  ...scenarioSettings({ name: "nfacct", pods: 1, steps: [] }),
  localhostNodePorts: true,
  nodePortAddresses: [],
};
const LOCALHOST_CONNECTIONS = 3;

/** Rewrites the client's outgoing SYNs to pod0:8080 into SYN|FIN, which conntrack calls INVALID. */
const INVALID_SYN = `table inet kp_invalid {
  chain out {
    type filter hook output priority 0;
    ip daddr ${podIPv4(0)} tcp dport 8080 tcp flags syn tcp flags set fin | syn
  }
}
`;

function metric(text: string, name: string): number | null {
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return m === null ? null : Number(m[1]);
}

interface Outcome {
  readonly localhostAnswers: number;
  readonly localhostPackets: number | null;
  readonly invalidPackets: number | null;
  readonly invalidRule: string;
  readonly liberalRules: string;
}

const lab = new UpstreamLab();

async function run(implementation: LabImplementation): Promise<Outcome> {
  let topology = await createTopology({ pods: 1 });
  let node = await lab.startNode(topology, "iptables", { implementation, settings: SETTINGS });
  const forwardRules = async (ns: string) =>
    (await runToolResult("iptables-save", ["-t", "filter"], { netns: ns })).stdout
      .split("\n").filter((l) => l.startsWith("-A KUBE-FORWARD") && l.includes("INVALID"))
      .join("\n");
  try {
    await node.sync(OBJECTS);
    const answers = await topology.probeMany(
      "node",
      { protocol: "TCP", ip: "127.0.0.1", port: NODE_PORT },
      LOCALHOST_CONNECTIONS,
      { concurrency: 1 },
    );
    const nft = await runToolResult("nft", ["-f", "-"], {
      netns: topology.client.netns,
      stdin: INVALID_SYN,
    });
    assert.equal(nft.code, 0, nft.stderr);
    const invalid = await topology.probe("client", {
      protocol: "TCP",
      ip: podIPv4(0),
      port: 8080,
    }, { timeoutMs: 1500 });
    assert.equal(invalid.kind, "timeout", `${implementation}: the SYN|FIN was not dropped`);
    const metrics = (await node.proxy!.get("metrics", "/metrics")).body;
    const invalidRule = await forwardRules(topology.nodeNetns);
    await node.close();
    await topology.teardown();

    topology = await createTopology({ pods: 1 });
    node = await lab.startNode(topology, "iptables", {
      implementation,
      settings: SETTINGS,
      args: ["--conntrack-max-per-core=0", "--conntrack-tcp-be-liberal=true"],
    });
    await node.sync(OBJECTS);
    return {
      localhostAnswers: answers.filter((a) => a.kind === "answer" && a.pod === "pod0").length,
      localhostPackets: metric(
        metrics,
        "kubeproxy_iptables_localhost_nodeports_accepted_packets_total",
      ),
      invalidPackets: metric(metrics, "kubeproxy_iptables_ct_state_invalid_dropped_packets_total"),
      invalidRule,
      liberalRules: await forwardRules(topology.nodeNetns),
    };
  } finally {
    await node.close();
    await topology.teardown();
  }
}

Deno.test(requiring([netns, goFixtures, tool("curl")], {
  name: "iptables: nfacct counters and the INVALID drop, as upstream kube-proxy",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const upstream = await run("upstream");
    const kproxy = await run("kproxy");
    console.log(
      `  kube-proxy: ${JSON.stringify(upstream)}\n  kproxy:     ${JSON.stringify(kproxy)}`,
    );
    for (const o of [upstream, kproxy]) {
      assert.equal(o.localhostAnswers, LOCALHOST_CONNECTIONS);
      assert.equal(o.localhostPackets, LOCALHOST_CONNECTIONS);
      assert.ok((o.invalidPackets ?? 0) >= 1, `INVALID packets counted: ${o.invalidPackets}`);
      assert.equal(o.liberalRules, "", "no INVALID drop with nf_conntrack_tcp_be_liberal=1");
    }
    // The same rule, word for word.
    assert.equal(kproxy.invalidRule, upstream.invalidRule);
    assert.match(kproxy.invalidRule, /--nfacct-name\s+ct_state_invalid_dropped_pkts -j DROP$/);
  },
}));

lab.registerStop();
