/**
 * NodePort addresses per IP family, as kube-proxy v1.34's `NodePortAddresses` has them: a family
 * that `--nodeport-addresses` (or `primary`) gives no address of accepts NodePorts on every local
 * address of that family, and `0.0.0.0/0` / `::/0` mean every local address at packet time (not
 * the addresses kproxy read at start). The same scenarios run against kproxy (nftables,
 * iptables-nft) and upstream kube-proxy (both modes). Mixing `primary` with CIDRs is refused by
 * both, each with one line.
 *
 * IP plan (topology.ts): the node's primary IPs 198.19.0.1 / fd00:19::1 (client link) and
 * 198.19.1.1 / fd00:19:1::1 (client2 link); pods pod0 (local), pod1 (remote); Service
 * default/np-dual ClusterIPs 198.18.128.50 / fd00:128::50, NodePort 30095 → pods' 8080.
 */
import assert from "node:assert/strict";
import { IptablesApplier } from "../../src/apply/iptables_applier.ts";
import { NftablesApplier } from "../../src/apply/nftables_applier.ts";
import { runToolResult } from "../../src/apply/run_tool.ts";
import { fixtureBinary } from "../fixtures/apiserver.ts";
import { runKproxyOnce } from "../reliability/_kproxy.ts";
import { goFixtures, requiring } from "../requirements.ts";
import { endpointSlice, local, remote, service, thisNode } from "./manifests.ts";
import type { Scenario } from "./scenario.ts";
import { registerScenarioTests } from "./scenario_runner.ts";
import {
  NODE_CLIENT2_IPV4,
  NODE_CLIENT2_IPV6,
  NODE_PRIMARY_IPV4,
  NODE_PRIMARY_IPV6,
} from "./topology.ts";
import { UpstreamLab } from "./upstream_backend.ts";

const NODE_PORT = 30095;
const BOTH = ["pod0", "pod1"];

/** This node with only its IPv4 address in the Node object (an IPv4-primary node). */
function ipv4OnlyNode(): Record<string, unknown> {
  const node = thisNode();
  const status = node["status"] as { addresses: { type: string; address: string }[] };
  return {
    ...node,
    status: { addresses: status.addresses.filter((a) => !a.address.includes(":")) },
  };
}

function dualStackNodePort(): Record<string, unknown>[] {
  const ports = [{ name: "http", port: 8080 }];
  return [
    service("np-dual", {
      type: "NodePort",
      clusterIPs: ["198.18.128.50", "fd00:128::50"],
      ports: [{ name: "http", port: 80, nodePort: NODE_PORT }],
    }),
    endpointSlice("np-dual", { ports, endpoints: [local(0), remote(1)] }),
    endpointSlice("np-dual", { family: "IPv6", ports, endpoints: [local(0), remote(1)] }),
  ];
}

const answers = (from: string, ip: string, name: string) => ({
  name,
  from,
  ip,
  port: NODE_PORT,
  probes: 8,
  expect: { kind: "answer" as const, pods: BOTH },
});

const SCENARIOS: readonly Scenario[] = [
  {
    name: "primary with an IPv4-only Node: IPv6 NodePorts on every IPv6 address",
    pods: 2,
    secondClient: true,
    settings: { nodePortAddresses: ["primary"] },
    steps: [{
      name: "dual-stack NodePort service",
      objects: [ipv4OnlyNode(), ...dualStackNodePort()],
      checks: [
        answers("client", NODE_PRIMARY_IPV4, "the IPv4 primary IP takes the NodePort"),
        answers("client", NODE_PRIMARY_IPV6, "an IPv6 address takes it (no IPv6 primary)"),
        answers("client2", NODE_CLIENT2_IPV6, "so does every other IPv6 address"),
        {
          name: "an IPv4 address that is not primary does not",
          from: "client2",
          ip: NODE_CLIENT2_IPV4,
          port: NODE_PORT,
          timeoutMs: 500,
          expect: { kind: "refused" },
        },
      ],
    }],
  },
  {
    name: "0.0.0.0/0 and ::/0: every local address at packet time",
    pods: 2,
    secondClient: true,
    // kproxy read no interface address at start: the match must not depend on them.
    settings: { nodePortAddresses: ["0.0.0.0/0", "::/0"], hostAddresses: [] },
    steps: [{
      name: "dual-stack NodePort service",
      objects: [thisNode(), ...dualStackNodePort()],
      checks: [
        answers("client", NODE_PRIMARY_IPV4, "the IPv4 primary IP"),
        answers("client2", NODE_CLIENT2_IPV4, "another IPv4 address"),
        answers("client", NODE_PRIMARY_IPV6, "the IPv6 primary IP"),
        answers("client2", NODE_CLIENT2_IPV6, "another IPv6 address"),
      ],
    }],
  },
];

registerScenarioTests(
  { name: "nftables", makeApplier: (netns) => new NftablesApplier({ netns }) },
  SCENARIOS,
);
registerScenarioTests(
  {
    name: "iptables-nft",
    makeApplier: (netns) => new IptablesApplier({ netns, variant: "nft" }),
  },
  SCENARIOS,
);
const lab = new UpstreamLab();
registerScenarioTests(lab.backend("nftables"), SCENARIOS);
registerScenarioTests(lab.backend("iptables"), SCENARIOS);

Deno.test(requiring([goFixtures], {
  name: "--nodeport-addresses primary with a CIDR is refused by kproxy and by upstream kube-proxy",
  async fn() {
    const flag = "--nodeport-addresses=primary,198.19.0.0/24";
    const kproxy = await runKproxyOnce("", ["--manifests=deploy/examples", "--dry-run", flag]);
    assert.equal(kproxy.code, 2, kproxy.log);
    assert.match(kproxy.log, /--nodeport-addresses: can't use both 'primary' and CIDRs/);
    assert.equal(kproxy.log.trim().split("\n").length, 1, kproxy.log);
    const upstream = await runToolResult(fixtureBinary("kube-proxy"), [
      flag,
      "--kubeconfig=/nonexistent",
      "--hostname-override=node-a",
    ], { timeoutMs: 30_000 });
    assert.notEqual(upstream.code, 0, upstream.stderr);
    assert.match(upstream.stderr, /can't use both 'primary' and CIDRs/);
  },
}));

lab.registerStop();
