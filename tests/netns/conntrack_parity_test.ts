/**
 * Conntrack and iptables host facts against upstream kube-proxy v1.34 in the same lab, one shared
 * kube-apiserver for both tests of the file.
 *
 * The conntrack sysctls kube-proxy owns (`--conntrack-*`): kproxy and upstream kube-proxy v1.34
 * (the fixture build) each start in a node namespace of their own, fed by one real
 * kube-apiserver, with the same flags, and leave the same values in their namespace — and
 * nothing in the machine's own. kproxy runs under the compiled binary's Deno permissions (no
 * `--allow-write`: the sysctls go through the `sysctl` tool), which this proves enough.
 *
 * - upstream's defaults with `--conntrack-max-per-core=0`: TCP established 24h, close-wait 1h;
 *   UDP timeouts and be_liberal (default 0) left as the kernel has them;
 * - every flag set: the values given, in seconds;
 * - a conntrack limit to set: in a namespace nf_conntrack_max is global and read-only on Linux
 *   6.x, so both refuse to start, naming it.
 *
 * iptables mode's nfacct counters and the INVALID drop, each proxy in turn on a fresh node:
 *
 * - connections to a NodePort on 127.0.0.1 count in `localhost_nps_accepted_pkts`, reported as
 *   `kubeproxy_iptables_localhost_nodeports_accepted_packets_total` (one packet per connection:
 *   the nat rule sees the first);
 * - a forwarded TCP segment conntrack calls INVALID (SYN|FIN, rewritten so by an nft rule in the
 *   client's namespace) is dropped in KUBE-FORWARD and counts in `ct_state_invalid_dropped_pkts`,
 *   `kubeproxy_iptables_ct_state_invalid_dropped_packets_total`;
 * - with `--conntrack-tcp-be-liberal` (nf_conntrack_tcp_be_liberal=1) no INVALID drop is written.
 *
 * IP plan: tests/netns/topology.ts (node 198.18.0.1, primary 198.19.0.1, pod0 198.18.1.10, client
 * 198.19.0.2);
 * Service default/np ClusterIP 198.18.128.60:80, NodePort 30060 → pod0:8080.
 */
import assert from "node:assert/strict";
import { runToolResult } from "../../src/apply/run_tool.ts";
import { kproxyPermissionArgs } from "../../deploy/kproxy_permissions.ts";
import type { TestCluster } from "../fixtures/apiserver.ts";
import { startUpstreamKubeProxy } from "./upstream_kube_proxy.ts";
import { httpInNetns, startKproxy } from "../reliability/_kproxy.ts";
import { goFixtures, netns, requiring, tool } from "../requirements.ts";
import { ApiObjects } from "./api_objects.ts";
import { endpointSlice, local, service, THIS_NODE, thisNode } from "./manifests.ts";
import { scenarioSettings } from "./scenario_runner.ts";
import { createTopology, podIPv4 } from "./topology.ts";
import { type LabImplementation, UpstreamLab } from "./upstream_backend.ts";

const lab = new UpstreamLab();

const SYSCTLS = [
  "nf_conntrack_max",
  "nf_conntrack_tcp_timeout_established",
  "nf_conntrack_tcp_timeout_close_wait",
  "nf_conntrack_tcp_be_liberal",
  "nf_conntrack_udp_timeout",
  "nf_conntrack_udp_timeout_stream",
] as const;
type Sysctls = Record<(typeof SYSCTLS)[number], number>;

/** The netfilter sysctls of `ns` (or of the machine's own namespace, without `ns`). */
async function readSysctls(ns?: string): Promise<Sysctls> {
  const out: Partial<Sysctls> = {};
  for (const name of SYSCTLS) {
    const path = `/proc/sys/net/netfilter/${name}`;
    const text = ns === undefined
      ? await Deno.readTextFile(path)
      : (await runToolResult("cat", [path], { netns: ns })).stdout;
    out[name] = Number(text.trim());
  }
  return out as Sysctls;
}

/** What one start did: the namespace's sysctls before and after, or how it failed. */
interface Run {
  readonly before: Sysctls;
  readonly after: Sysctls;
  /** null when it started; else its exit code and the end of its log. */
  readonly failed: { readonly code: number; readonly log: string } | null;
}

type Starter = (ns: string, flags: readonly string[]) => Promise<Run["failed"]>;

/** Upstream: started once its servers answer (conntrack set-up comes before them). */
function upstream(cluster: TestCluster): Starter {
  return async (ns, flags) => {
    const kp = await startUpstreamKubeProxy(cluster, ns, "iptables", {
      nodeName: THIS_NODE,
      logDir: cluster.dir,
      args: flags,
    });
    try {
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const status = kp.exitStatus();
        if (status !== undefined) return { code: status.code, log: await kp.tail(5) };
        if ((await httpInNetns(ns, "http://127.0.0.1:10256/livez")).status !== 0) return null;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`kube-proxy in ${ns} neither served nor exited:\n${await kp.tail()}`);
    } finally {
      await kp.kill();
    }
  };
}

/** kproxy under the compiled binary's permissions: started once its first sync is live. */
function kproxy(cluster: TestCluster): Starter {
  return async (ns, flags) => {
    try {
      const kp = await startKproxy(ns, [
        `--kubeconfig=${cluster.kubeProxyKubeconfigPath}`,
        `--hostname-override=${THIS_NODE}`,
        "--proxy-mode=iptables",
        "--healthz-bind-address=127.0.0.1:10256",
        "--metrics-bind-address=127.0.0.1:10249",
        ...flags,
      ], { permissions: kproxyPermissionArgs() });
      await kp.kill("SIGTERM");
      return null;
    } catch (e) {
      // startKproxy throws with the log when the process exits before it started.
      const m = /exited \((\d+)\)[^\n]*\n([\s\S]*)$/.exec((e as Error).message);
      if (m === null) throw e;
      return { code: Number(m[1]), log: m[2] ?? "" };
    }
  };
}

const CASES: readonly { readonly name: string; readonly flags: readonly string[] }[] = [
  { name: "defaults, limit left", flags: ["--conntrack-max-per-core=0"] },
  {
    name: "every flag",
    flags: [
      "--conntrack-max-per-core=0",
      "--conntrack-tcp-timeout-established=2h",
      "--conntrack-tcp-timeout-close-wait=30m",
      "--conntrack-tcp-be-liberal=true",
      "--conntrack-udp-timeout=45s",
      "--conntrack-udp-timeout-stream=3m0.5s",
    ],
  },
  { name: "a limit to set", flags: ["--conntrack-max-per-core=1", "--conntrack-min=1234"] },
];

Deno.test(requiring([netns, goFixtures, tool("curl")], {
  name: "conntrack sysctls: kproxy sets what kube-proxy sets, in its own namespace only",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const host = await readSysctls();
    const cluster = await lab.cluster();
    const objects = new ApiObjects(cluster);
    try {
      await objects.sync([thisNode()]);
      const results: Record<string, Record<string, Run>> = {};
      for (
        const [who, start] of [["kube-proxy", upstream(cluster)], [
          "kproxy",
          kproxy(cluster),
        ]] as const
      ) {
        const topology = await createTopology({ pods: 0 });
        const bridge = await cluster.exposeInNetns(topology.nodeNetns);
        try {
          for (const c of CASES) {
            const before = await readSysctls(topology.nodeNetns);
            const failed = await start(topology.nodeNetns, c.flags);
            const after = await readSysctls(topology.nodeNetns);
            (results[c.name] ??= {})[who] = { before, after, failed };
          }
        } finally {
          await bridge.close();
          await topology.teardown();
        }
      }
      for (const c of CASES) {
        const up = results[c.name]?.["kube-proxy"] as Run;
        const kp = results[c.name]?.["kproxy"] as Run;
        console.log(
          `  ${c.name}: kube-proxy ${JSON.stringify(up.after)}${up.failed ? " (exited)" : ""}\n` +
            `  ${" ".repeat(c.name.length)}  kproxy     ${JSON.stringify(kp.after)}${
              kp.failed ? " (exited)" : ""
            }`,
        );
        assert.deepEqual(
          kp.after,
          up.after,
          `${c.name}: the namespace's sysctls; ${kp.failed?.log ?? ""} ${up.failed?.log ?? ""}`,
        );
        assert.equal(kp.failed === null, up.failed === null, `${c.name}: started or not`);
      }
      const defaults = results["defaults, limit left"]?.["kproxy"] as Run;
      assert.deepEqual(defaults.after, {
        ...defaults.before,
        nf_conntrack_tcp_timeout_established: 86400,
        nf_conntrack_tcp_timeout_close_wait: 3600,
      });
      const every = results["every flag"]?.["kproxy"] as Run;
      assert.deepEqual(every.after, {
        nf_conntrack_max: host.nf_conntrack_max,
        nf_conntrack_tcp_timeout_established: 7200,
        nf_conntrack_tcp_timeout_close_wait: 1800,
        nf_conntrack_tcp_be_liberal: 1,
        nf_conntrack_udp_timeout: 45,
        nf_conntrack_udp_timeout_stream: 180,
      });
      const limit = results["a limit to set"] as Record<string, Run>;
      assert.match(limit["kube-proxy"]?.failed?.log ?? "", /nf_conntrack_max: permission denied/);
      assert.match(
        limit["kproxy"]?.failed?.log ?? "",
        /Cannot set net\/netfilter\/nf_conntrack_max to 1234: it stays \d+ .*--conntrack-max-per-core=0 leaves it/,
      );
      assert.deepEqual(await readSysctls(), host, "the machine's own sysctls did not move");
    } finally {
      await objects.clear();
    }
  },
}));

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
