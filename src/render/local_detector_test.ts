/**
 * Table tests of `--detect-local-mode` in both renderers: every rule that asks "is this source a
 * pod?" (masquerade of off-cluster traffic to a ClusterIP, the externalTrafficPolicy Local
 * short-circuit for pod traffic) uses the chosen mode, and nothing else changes. Each mode's
 * ruleset must equal the ClusterCIDR ruleset with the pod test swapped, word for word, so a rule
 * the mode forgot would show as a difference.
 *
 * IP plan: node-a 198.18.0.10; cluster CIDRs 198.18.0.0/16 and fd00:1::/64; node-a's pod CIDRs
 * 198.18.1.0/24 and fd00:1::/80 (pods 198.18.1.10, fd00:1::10); ClusterIPs 198.18.128.0/17 and
 * fd00:128::/64; external IPs 198.18.200.0/24.
 */
import assert from "node:assert/strict";
import { parseKubeObject } from "../model/kube_object.ts";
import { awaitingPodCIDRs, buildSnapshot, type SnapshotSettings } from "../snapshot/proxy_state.ts";
import type { LocalMode, ProxySnapshot } from "../snapshot/types.ts";
import { IptablesRenderer } from "./iptables/iptables_renderer.ts";
import { renderNftables } from "./nftables/nftables_renderer.ts";

const CLUSTER_CIDRS = ["198.18.0.0/16", "fd00:1::/64"];
const NODE_POD_CIDRS = ["198.18.1.0/24", "fd00:1::/80"];

function service(name: string, ip: string, ip6: string, spec: Record<string, unknown>) {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: "default" },
    spec: {
      clusterIP: ip,
      clusterIPs: [ip, ip6],
      ipFamilies: ["IPv4", "IPv6"],
      ipFamilyPolicy: "RequireDualStack",
      ports: [{ name: "http", protocol: "TCP", port: 80, targetPort: 8080 }],
      ...spec,
    },
  };
}

function slices(name: string) {
  return [["IPv4", "198.18.1.10"], ["IPv6", "fd00:1::10"]].map(([family, ip]) => ({
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: `${name}-${family?.toLowerCase()}`,
      namespace: "default",
      labels: { "kubernetes.io/service-name": name },
    },
    addressType: family,
    ports: [{ name: "http", protocol: "TCP", port: 8080 }],
    endpoints: [{ addresses: [ip], conditions: { ready: true }, nodeName: "node-a" }],
  }));
}

function nodeObject(podCIDRs: readonly string[] | null) {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: "node-a" },
    spec: podCIDRs === null ? {} : { podCIDR: podCIDRs[0], podCIDRs },
    status: { addresses: [{ type: "InternalIP", address: "198.18.0.10" }] },
  };
}

/** A map-held ClusterIP service, an eTP Local one with an external IP, and a chained one. */
const OBJECTS = [
  service("plain", "198.18.128.10", "fd00:128::10", {}),
  ...slices("plain"),
  service("local", "198.18.128.11", "fd00:128::11", {
    type: "NodePort",
    externalTrafficPolicy: "Local",
    externalIPs: ["198.18.200.1"],
    ports: [{ name: "http", protocol: "TCP", port: 80, targetPort: 8080, nodePort: 30080 }],
  }),
  ...slices("local"),
  service("sticky", "198.18.128.12", "fd00:128::12", {
    type: "NodePort",
    externalTrafficPolicy: "Local",
    sessionAffinity: "ClientIP",
    ports: [{ name: "http", protocol: "TCP", port: 80, targetPort: 8080, nodePort: 30081 }],
  }),
  ...slices("sticky"),
];

function snapshotFor(
  mode: LocalMode,
  podCIDRs: readonly string[] | null = NODE_POD_CIDRS,
): ProxySnapshot {
  const settings: SnapshotSettings = {
    nodeName: "node-a",
    clusterCIDRs: CLUSTER_CIDRS,
    detectLocal: { mode, bridgeInterface: "cbr0", interfaceNamePrefix: "veth" },
    masqueradeAll: false,
    masqueradeBit: 14,
    localhostNodePorts: false,
    nodePortAddresses: ["primary"],
    hostAddresses: [],
  };
  const parsed = [nodeObject(podCIDRs), ...OBJECTS].map((raw) => {
    const r = parseKubeObject(raw, "local detector test");
    if (r.ok !== true) throw new Error(`bad fixture: ${JSON.stringify(r)}`);
    return r.value;
  });
  return buildSnapshot(parsed, settings);
}

const nft = (s: ProxySnapshot) => renderNftables(s);
const ipt = (s: ProxySnapshot) => new IptablesRenderer().render(s);

/** Swaps every occurrence of `from` for `to` and asserts there was at least `min` of them. */
function swap(text: string, from: string, to: string, min: number): string {
  const n = text.split(from).length - 1;
  assert.ok(n >= min, `expected at least ${min} × ${JSON.stringify(from)}, found ${n}`);
  return text.replaceAll(from, to);
}

Deno.test("local detector: ClusterCIDR (the default) tests the source against --cluster-cidr", () => {
  const text = nft(snapshotFor("ClusterCIDR"));
  assert.match(text, /ip saddr != 198\.18\.0\.0\/16 jump mark-for-masquerade/);
  assert.match(text, /ip6 saddr != fd00:1::\/64 /);
  assert.match(text, /ip saddr 198\.18\.0\.0\/16 goto /);
  assert.doesNotMatch(text, /iifname/);
  const restore = ipt(snapshotFor("ClusterCIDR"));
  assert.match(restore, /! -s 198\.18\.0\.0\/16 -j KUBE-MARK-MASQ/);
  assert.match(restore, /-s 198\.18\.0\.0\/16 -j KUBE-SVC-/);
});

const MODES: readonly {
  mode: LocalMode;
  nft: readonly [string, string][];
  ipt: readonly [string, string][];
}[] = [
  {
    mode: "NodeCIDR",
    nft: [["198.18.0.0/16", "198.18.1.0/24"], ["fd00:1::/64", "fd00:1::/80"]],
    ipt: [["198.18.0.0/16", "198.18.1.0/24"], ["fd00:1::/64", "fd00:1::/80"]],
  },
  {
    mode: "BridgeInterface",
    nft: [
      ["ip saddr != 198.18.0.0/16", 'iifname != "cbr0"'],
      ["ip saddr 198.18.0.0/16", 'iifname "cbr0"'],
      ["ip6 saddr != fd00:1::/64", 'iifname != "cbr0"'],
      ["ip6 saddr fd00:1::/64", 'iifname "cbr0"'],
    ],
    ipt: [["-s 198.18.0.0/16", "-i cbr0"], ["-s fd00:1::/64", "-i cbr0"]],
  },
  {
    mode: "InterfaceNamePrefix",
    nft: [
      ["ip saddr != 198.18.0.0/16", 'iifname != "veth*"'],
      ["ip saddr 198.18.0.0/16", 'iifname "veth*"'],
      ["ip6 saddr != fd00:1::/64", 'iifname != "veth*"'],
      ["ip6 saddr fd00:1::/64", 'iifname "veth*"'],
    ],
    ipt: [["-s 198.18.0.0/16", "-i veth+"], ["-s fd00:1::/64", "-i veth+"]],
  },
];

for (const m of MODES) {
  Deno.test(`local detector: ${m.mode} changes every pod test and nothing else (nftables)`, () => {
    let expected = nft(snapshotFor("ClusterCIDR"));
    // Masquerade in two fixed chains and the chained service, the eTP Local short-circuit in
    // two fixed chains and the chained service's external chain.
    for (const [from, to] of m.nft) expected = swap(expected, from, to, 3);
    assert.equal(nft(snapshotFor(m.mode)), expected);
  });
  Deno.test(`local detector: ${m.mode} changes every pod test and nothing else (iptables)`, () => {
    let expected = ipt(snapshotFor("ClusterCIDR"));
    for (const [from, to] of m.ipt) expected = swap(expected, from, to, 4);
    assert.equal(ipt(snapshotFor(m.mode)), expected);
  });
}

Deno.test("local detector: NodeCIDR takes the Node's podCIDRs and follows them", () => {
  assert.match(nft(snapshotFor("NodeCIDR")), /ip saddr != 198\.18\.1\.0\/24 /);
  const moved = snapshotFor("NodeCIDR", ["198.18.2.0/24"]);
  assert.deepEqual(moved.options.localDetector.cidrs, ["198.18.2.0/24"]);
  assert.match(nft(moved), /ip saddr != 198\.18\.2\.0\/24 /);
  // No IPv6 pod CIDR: IPv6 pod traffic cannot be told, as upstream's no-op detector.
  assert.doesNotMatch(nft(moved), /ip6 saddr != /);
  assert.doesNotMatch(ipt(moved), /! -s fd00/);
});

Deno.test("local detector: NodeCIDR waits while the Node has no podCIDRs", () => {
  assert.equal(awaitingPodCIDRs(snapshotFor("NodeCIDR", null)), true);
  assert.equal(awaitingPodCIDRs(snapshotFor("NodeCIDR")), false);
  // The other modes never wait for the Node.
  for (const mode of ["ClusterCIDR", "BridgeInterface", "InterfaceNamePrefix"] as const) {
    assert.equal(awaitingPodCIDRs(snapshotFor(mode, null)), false, mode);
  }
});
