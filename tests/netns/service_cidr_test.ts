/**
 * ServiceCIDRs, as kube-proxy v1.34 reads them: in nftables mode, traffic to an address inside a
 * service CIDR that no Service holds is dropped (`cluster-ips-check`), so a stale route or a
 * leftover DNS answer cannot reach whatever else owns the address; iptables mode leaves it alone.
 * The ServiceCIDR is one of the objects, as a manifest folder or the API server holds it; the
 * same test runs against kproxy (nftables, iptables-nft, and as a `--kubeconfig` process reading
 * ServiceCIDRs from the API server) and upstream kube-proxy (both modes). In process, the range
 * then moves off the addresses and back: nftables sends that as a netlink batch of elements.
 *
 * To make the drop visible from outside, the lab gives the unallocated address 198.18.128.99 (and
 * fd00:128::99) to pod1 and routes it there from the node: without the drop, pod0 reaches pod1
 * through it.
 *
 * IP plan (topology.ts): pods pod0 198.18.1.10 (client), pod1 198.18.1.11 (also 198.18.128.99,
 * fd00:128::99); service CIDRs 198.18.128.0/17 and fd00:128::/112 (ServiceCIDR `lab-extra`, and
 * the lab API server's own `kubernetes`); Service default/held ClusterIP 198.18.128.60:80 → pod1.
 */
import assert from "node:assert/strict";
import { IptablesApplier } from "../../src/apply/iptables_applier.ts";
import { NftablesApplier } from "../../src/apply/nftables_applier.ts";
import { goFixtures, netns, type Requirement, requiring } from "../requirements.ts";
import { endpointSlice, local, service, thisNode } from "./manifests.ts";
import type { ProbeTarget } from "./probe.ts";
import type { Scenario } from "./scenario.ts";
import { openDriver, type ScenarioBackend } from "./scenario_runner.ts";
import { createTopology, type Topology } from "./topology.ts";
import { UpstreamLab } from "./upstream_backend.ts";

const UNALLOCATED_V4 = "198.18.128.99";
const UNALLOCATED_V6 = "fd00:128::99";

const OBJECTS = [
  thisNode(),
  {
    apiVersion: "networking.k8s.io/v1",
    kind: "ServiceCIDR",
    metadata: { name: "lab-extra" },
    spec: { cidrs: ["198.18.128.0/17", "fd00:128::/112"] },
  },
  service("held", { clusterIPs: ["198.18.128.60"], ports: [{ name: "http", port: 80 }] }),
  endpointSlice("held", { ports: [{ name: "http", port: 8080 }], endpoints: [local(1)] }),
];

const SCENARIO: Scenario = { name: "ServiceCIDR", pods: 2, steps: [] };

/** Gives pod1 the unallocated addresses and routes them to it from the node. */
async function routeToPod1(topology: Topology): Promise<void> {
  const pod1 = topology.pods[1]!;
  for (
    const argv of [
      ["ip", "addr", "add", `${UNALLOCATED_V4}/32`, "dev", "eth0"],
      // On eth0 (not lo): the node finds it by neighbour discovery.
      ["ip", "-6", "addr", "add", `${UNALLOCATED_V6}/128`, "dev", "eth0", "nodad"],
    ]
  ) {
    const r = await topology.exec("pod1", argv);
    assert.equal(r.code, 0, r.stderr);
  }
  for (
    const argv of [
      ["ip", "route", "add", `${UNALLOCATED_V4}/32`, "dev", pod1.nodeLink],
      ["ip", "-6", "route", "add", `${UNALLOCATED_V6}/128`, "dev", pod1.nodeLink],
    ]
  ) {
    const r = await topology.exec("node", argv);
    assert.equal(r.code, 0, r.stderr);
  }
}

function target(ip: string, port: number): ProbeTarget {
  return { protocol: "TCP", ip, port };
}

async function seen(topology: Topology, ip: string, port: number): Promise<string> {
  const r = await topology.probe("pod0", target(ip, port), { timeoutMs: 400 });
  return r.kind === "answer" ? r.pod : r.kind;
}

/**
 * The ServiceCIDR moved off the unallocated addresses (in process only: a lab API server's own
 * `kubernetes` ServiceCIDR keeps covering them, and upstream takes a change only at a full sync).
 */
const MOVED = OBJECTS.map((o) =>
  (o as { kind: string }).kind === "ServiceCIDR"
    ? { ...o, spec: { cidrs: ["198.18.192.0/18", "fd00:128::1:0/112"] } }
    : o
);

const lab = new UpstreamLab();
let nftables: NftablesApplier | null = null;
const CASES: readonly [ScenarioBackend, "drop" | "pass", readonly Requirement[]][] = [
  [
    {
      name: "nftables",
      makeApplier: (ns) => nftables = new NftablesApplier({ netns: ns }),
    },
    "drop",
    [],
  ],
  [
    {
      name: "iptables-nft",
      makeApplier: (ns) => new IptablesApplier({ netns: ns, variant: "nft" }),
    },
    "pass",
    [],
  ],
  // kproxy as a process, reading the ServiceCIDRs through the API server (kube-proxy's RBAC).
  [lab.backend("nftables", { implementation: "kproxy" }), "drop", [goFixtures]],
  [lab.backend("nftables"), "drop", [goFixtures]],
  [lab.backend("iptables"), "pass", [goFixtures]],
];

for (const [backend, want, needs] of CASES) {
  Deno.test(requiring([netns, ...needs], {
    name: `${backend.name}: an unallocated address of a service CIDR is ${
      want === "drop" ? "dropped" : "left alone (iptables mode)"
    }; a held ClusterIP still answers`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const topology = await createTopology({ pods: 2 });
      const driver = await openDriver(backend, topology, SCENARIO).catch(async (e) => {
        await topology.teardown();
        throw e;
      });
      try {
        await routeToPod1(topology);
        await driver.sync(OBJECTS);
        const other = want === "drop" ? "timeout" : "pod1";
        assert.equal(await seen(topology, UNALLOCATED_V4, 8080), other, "IPv4 unallocated");
        assert.equal(await seen(topology, UNALLOCATED_V6, 8080), other, "IPv6 unallocated");
        assert.equal(await seen(topology, "198.18.128.60", 80), "pod1", "the held ClusterIP");
        // nftables rejects a port the ClusterIP lacks; iptables mode has no such rule (the
        // packet follows the lab's dead default route).
        const lacking = want === "drop" ? "refused" : "timeout";
        assert.equal(await seen(topology, "198.18.128.60", 81), lacking, "a port it lacks");
        if (!("makeApplier" in backend)) return;
        // The range moves away: the addresses answer again, in a sync of elements only.
        await driver.sync(MOVED);
        if (backend.name === "nftables") {
          assert.equal(nftables?.lastSyncKind, "partial");
          assert.equal(nftables?.lastTransport, "netlink");
        }
        assert.equal(await seen(topology, UNALLOCATED_V4, 8080), "pod1", "IPv4, range moved");
        assert.equal(await seen(topology, UNALLOCATED_V6, 8080), "pod1", "IPv6, range moved");
        assert.equal(await seen(topology, "198.18.128.60", 80), "pod1", "the held ClusterIP");
        // And back.
        await driver.sync(OBJECTS);
        assert.equal(await seen(topology, UNALLOCATED_V4, 8080), other, "IPv4, range back");
        assert.equal(await seen(topology, UNALLOCATED_V6, 8080), other, "IPv6, range back");
      } catch (e) {
        console.error(`live rules:\n${await driver.liveRules().catch(() => "")}`);
        throw e;
      } finally {
        await driver.close();
        await topology.teardown();
      }
    },
  }));
}

lab.registerStop();
