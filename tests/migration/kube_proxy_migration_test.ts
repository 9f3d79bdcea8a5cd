/**
 * Switching a node between upstream kube-proxy and kproxy without a reboot, with rules written
 * by the REAL upstream kube-proxy (v1.34.4, the fixture build) running inside a test network
 * namespace against a real kube-apiserver:
 *
 * - upstream (nftables or iptables mode) → `kproxy --cleanup --cleanup-kube-proxy` → kproxy's
 *   backend programs the same service: upstream's tables and chains are gone, the user's and
 *   kubelet's rules survive, and traffic flows through kproxy's rules;
 * - kproxy (nftables or iptables) → `kproxy --cleanup` → upstream kube-proxy starts and serves;
 * - upstream's iptables rules copied into iptables-legacy as well: both implementations cleaned;
 * - clean-up on a node without any proxy rules changes nothing and succeeds, twice.
 *
 * Traffic is checked with real connections: the client to the NodePort, the node to the
 * ClusterIP, both answered by pod0.
 *
 * IP plan (tests/netns/topology.ts): node primary 198.19.0.1 (NodePorts), pod0 198.18.1.10,
 * client 198.19.0.2; Service default/web ClusterIP 198.18.128.10:80, NodePort 30080 → pod0:8080;
 * the apiserver advertises 198.18.0.1 (default/kubernetes, never dialled).
 */
import assert from "node:assert/strict";
import { KubeConfig, KubernetesObjectApi } from "@kubernetes/client-node";
import type { Applier } from "../../src/apply/applier.ts";
import { IptablesApplier } from "../../src/apply/iptables_applier.ts";
import { NftablesApplier } from "../../src/apply/nftables_applier.ts";
import { parseKubeObject } from "../../src/model/kube_object.ts";
import type { KubeObject } from "../../src/model/kube_object.ts";
import { buildSnapshot } from "../../src/snapshot/proxy_state.ts";
import { startTestCluster, type TestCluster } from "../fixtures/apiserver.ts";
import { endpointSlice, service, THIS_NODE, thisNode } from "../netns/manifests.ts";
import type { ProbeResult } from "../netns/probe.ts";
import {
  createTopology,
  NODE_PRIMARY_IPV4,
  nodeAddresses,
  POD_CIDRS,
  type Topology,
} from "../netns/topology.ts";
import {
  addUserRules,
  allRules,
  copyIptablesNftToLegacy,
  kproxyCliOk,
  kubeFirewallLines,
  missingLegacyUserRules,
  missingUserRules,
  proxyLeftovers,
} from "./_node_rules.ts";
import {
  startUpstreamKubeProxy,
  type UpstreamKubeProxy,
  type UpstreamMode,
  waitUntil,
} from "../netns/upstream_kube_proxy.ts";
import { goFixtures, netns, requiring } from "../requirements.ts";

const CLUSTER_IP = "198.18.128.10";
const NODE_PORT = 30080;
const NODE_PORT_TARGET = { protocol: "TCP", ip: NODE_PRIMARY_IPV4, port: NODE_PORT } as const;
const CLUSTER_IP_TARGET = { protocol: "TCP", ip: CLUSTER_IP, port: 80 } as const;
const UPSTREAM_READY_MS = 90_000;

/** The objects both proxies serve: this node, Service web (NodePort) and its slice. */
function webObjects(): Record<string, unknown>[] {
  return [
    thisNode(),
    service("web", {
      type: "NodePort",
      clusterIPs: [CLUSTER_IP],
      ports: [{ name: "http", port: 80, nodePort: NODE_PORT }],
    }),
    endpointSlice("web", {
      ports: [{ name: "http", port: 8080 }],
      endpoints: [{ pod: 0 }],
    }),
  ];
}

async function createWebObjects(cluster: TestCluster): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfigPath);
  const api = KubernetesObjectApi.makeApiClient(kc);
  for (const object of webObjects()) {
    // deno-lint-ignore no-explicit-any
    await api.create(object as any);
  }
}

/** kproxy's snapshot of the same objects, for the node of the topology. */
function kproxySnapshot() {
  const objects: KubeObject[] = webObjects().map((raw) => {
    const r = parseKubeObject(raw, "migration test");
    if (r.ok !== true) {
      throw new Error(`Cannot parse a migration test object: ${JSON.stringify(r)}`);
    }
    return r.value;
  });
  return buildSnapshot(objects, {
    nodeName: THIS_NODE,
    clusterCIDRs: POD_CIDRS,
    masqueradeAll: false,
    masqueradeBit: 14,
    localhostNodePorts: false,
    nodePortAddresses: ["primary"],
    hostAddresses: nodeAddresses(false),
  });
}

function describe(r: ProbeResult): string {
  return r.kind === "answer" ? `answer from ${r.pod}` : `${r.kind} (${r.reason})`;
}

/** True when the client reaches pod0 through the NodePort and the node through the ClusterIP. */
async function served(topology: Topology): Promise<boolean> {
  const viaNodePort = await topology.probe("client", NODE_PORT_TARGET);
  const viaClusterIP = await topology.probe("node", CLUSTER_IP_TARGET);
  return viaNodePort.kind === "answer" && viaNodePort.pod === "pod0" &&
    viaClusterIP.kind === "answer" && viaClusterIP.pod === "pod0";
}

async function assertServed(topology: Topology, who: string): Promise<void> {
  const viaNodePort = await topology.probe("client", NODE_PORT_TARGET);
  const viaClusterIP = await topology.probe("node", CLUSTER_IP_TARGET);
  assert.equal(describe(viaNodePort), "answer from pod0", `${who}: NodePort from the client`);
  assert.equal(describe(viaClusterIP), "answer from pod0", `${who}: ClusterIP from the node`);
}

async function assertNotServed(topology: Topology, who: string): Promise<void> {
  const short = { timeoutMs: 500 };
  const viaNodePort = await topology.probe("client", NODE_PORT_TARGET, short);
  const viaClusterIP = await topology.probe("node", CLUSTER_IP_TARGET, short);
  assert.notEqual(viaNodePort.kind, "answer", `${who}: NodePort still answers`);
  assert.notEqual(viaClusterIP.kind, "answer", `${who}: ClusterIP still answers`);
}

/** A topology with the apiserver exposed and the user's rules in place; always torn down. */
async function withNode(
  cluster: TestCluster,
  fn: (
    topology: Topology,
    run: (mode: UpstreamMode) => Promise<UpstreamKubeProxy>,
  ) => Promise<void>,
): Promise<void> {
  const topology = await createTopology({ pods: 1 });
  const started: UpstreamKubeProxy[] = [];
  try {
    const bridge = await cluster.exposeInNetns(topology.nodeNetns);
    try {
      await addUserRules(topology.nodeNetns);
      const run = async (mode: UpstreamMode) => {
        const kp = await startUpstreamKubeProxy(cluster, topology.nodeNetns, mode, {
          nodeName: THIS_NODE,
          clusterCIDR: POD_CIDRS.join(","),
          logDir: cluster.dir,
        });
        started.push(kp);
        await waitUntil(
          () => served(topology),
          UPSTREAM_READY_MS,
          async () =>
            `upstream kube-proxy (${mode}) did not serve web within ${UPSTREAM_READY_MS} ms; ` +
            `exit ${JSON.stringify(kp.exitStatus())}; log ${kp.logPath}:\n${await kp.tail()}`,
        );
        return kp;
      };
      await fn(topology, run);
    } finally {
      await Promise.allSettled(started.map((kp) => kp.kill()));
      await bridge.close();
    }
  } finally {
    await Promise.allSettled(started.map((kp) => kp.kill()));
    await topology.teardown();
  }
}

/** Upstream kube-proxy in `upstream` mode → clean-up through the CLI → kproxy's `backend`. */
async function upstreamToKproxy(
  cluster: TestCluster,
  upstream: UpstreamMode,
  backend: "nftables" | "iptables",
  options: { readonly alsoLegacy?: boolean } = {},
): Promise<void> {
  await withNode(cluster, async (topology, run) => {
    const ns = topology.nodeNetns;
    const kp = await run(upstream);
    // Upstream's rules are really there (its IPv6 proxier may sync a moment after the IPv4 one).
    let before = await proxyLeftovers(ns);
    await waitUntil(
      async () => {
        before = await proxyLeftovers(ns);
        return upstream === "nftables"
          ? before.includes("nft table ip6 kube-proxy")
          : before.some((l) => /^ip6tables-nft-save: :KUBE-SERVICES/.test(l));
      },
      10_000,
      () => Promise.resolve(`upstream's IPv6 rules did not appear:\n${before.join("\n")}`),
    );
    if (upstream === "nftables") {
      assert.ok(before.includes("nft table ip kube-proxy"), before.join("\n"));
      assert.ok(before.includes("nft table ip6 kube-proxy"), before.join("\n"));
    } else {
      assert.ok(before.some((l) => /^iptables-nft-save: :KUBE-SVC-/.test(l)), before.join("\n"));
      assert.ok(before.some((l) => /^ip6tables-nft-save: :KUBE-SERVICES/.test(l)));
    }
    // Replaced: killed (SIGKILL), its rules stay and still serve.
    await kp.kill();
    await assertServed(topology, "after killing upstream kube-proxy");
    if (options.alsoLegacy) {
      await copyIptablesNftToLegacy(ns);
      assert.ok(
        (await proxyLeftovers(ns)).some((l) => /^iptables-legacy-save: :KUBE-SVC-/.test(l)),
      );
    }

    const log = await kproxyCliOk(ns, [
      "--cleanup",
      "--cleanup-kube-proxy",
      `--proxy-mode=${backend}`,
    ]);
    assert.match(log, /cleanup: removed kproxy's/);
    assert.match(
      log,
      upstream === "nftables"
        ? /deleted kube-proxy's nftables tables ip kube-proxy, ip6 kube-proxy/
        : /iptables-nft (nat|filter|mangle): deleted/,
    );
    assert.deepEqual(await proxyLeftovers(ns), []);
    assert.deepEqual(await missingUserRules(ns), []);
    if (options.alsoLegacy) {
      assert.match(log, /iptables-legacy nat: deleted/);
      assert.match(log, /ip6tables-legacy filter: deleted/);
      assert.deepEqual(await missingLegacyUserRules(ns), []);
    }
    if (upstream === "iptables") {
      // kubelet's KUBE-FIREWALL (which kube-proxy's iptables mode also writes) stays.
      assert.ok((await kubeFirewallLines(ns)).length > 0);
    }
    await assertNotServed(topology, "after the clean-up");

    // kproxy takes over.
    const applier: Applier = backend === "nftables"
      ? new NftablesApplier({ netns: ns })
      : new IptablesApplier({ netns: ns });
    await applier.sync({ snapshot: kproxySnapshot(), changedServicePorts: [], full: true });
    const live = await applier.liveRules();
    assert.match(live, backend === "nftables" ? /table ip kproxy/ : /:KUBE-SVC-/);
    await assertServed(topology, `kproxy ${backend}`);
    assert.deepEqual(await missingUserRules(ns), []);
  });
}

/** kproxy's `backend` → `kproxy --cleanup` → upstream kube-proxy in the same mode serves. */
async function kproxyToUpstream(cluster: TestCluster, mode: UpstreamMode): Promise<void> {
  await withNode(cluster, async (topology, run) => {
    const ns = topology.nodeNetns;
    const applier: Applier = mode === "nftables"
      ? new NftablesApplier({ netns: ns })
      : new IptablesApplier({ netns: ns });
    await applier.sync({ snapshot: kproxySnapshot(), changedServicePorts: [], full: true });
    await assertServed(topology, `kproxy ${mode}`);

    await kproxyCliOk(ns, ["--cleanup", `--proxy-mode=${mode}`]);
    assert.deepEqual(await proxyLeftovers(ns), []);
    assert.deepEqual(await missingUserRules(ns), []);
    await assertNotServed(topology, "after kproxy --cleanup");

    const kp = await run(mode);
    const after = await proxyLeftovers(ns);
    assert.ok(
      after.some((l) => (mode === "nftables" ? /^nft table ip kube-proxy$/ : /:KUBE-SVC-/).test(l)),
      after.join("\n"),
    );
    await assertServed(topology, `upstream kube-proxy ${mode} after kproxy`);
    assert.deepEqual(await missingUserRules(ns), []);
    await kp.kill();

    // And back again: both clean-ups together leave only the user's and kubelet's rules.
    await kproxyCliOk(ns, ["--cleanup", "--cleanup-kube-proxy", `--proxy-mode=${mode}`]);
    assert.deepEqual(await proxyLeftovers(ns), []);
    assert.deepEqual(await missingUserRules(ns), []);
  });
}

Deno.test(requiring([netns, goFixtures], {
  name: "migration: upstream kube-proxy ⇄ kproxy without a reboot",
  // client-node keeps pooled keep-alive sockets beyond each step.
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const cluster = await startTestCluster({ build: false });
    try {
      await createWebObjects(cluster);

      await t.step("clean-up on a node without proxy rules changes nothing, twice", async () => {
        await withNode(cluster, async (topology) => {
          const ns = topology.nodeNetns;
          const before = await allRules(ns);
          for (const mode of ["nftables", "iptables", "nftables"]) {
            const log = await kproxyCliOk(ns, [
              "--cleanup",
              "--cleanup-kube-proxy",
              `--proxy-mode=${mode}`,
            ]);
            assert.match(log, /no upstream kube-proxy rules found/);
            assert.equal(await allRules(ns), before);
          }
        });
      });

      await t.step("upstream nftables → kproxy nftables", async () => {
        await upstreamToKproxy(cluster, "nftables", "nftables");
      });
      await t.step("upstream iptables, in iptables-nft and -legacy → kproxy nftables", async () => {
        await upstreamToKproxy(cluster, "iptables", "nftables", { alsoLegacy: true });
      });
      await t.step("upstream iptables → kproxy iptables", async () => {
        await upstreamToKproxy(cluster, "iptables", "iptables");
      });
      await t.step("kproxy nftables → upstream nftables", async () => {
        await kproxyToUpstream(cluster, "nftables");
      });
      await t.step("kproxy iptables → upstream iptables", async () => {
        await kproxyToUpstream(cluster, "iptables");
      });
    } finally {
      await cluster.stop();
    }
  },
}));
