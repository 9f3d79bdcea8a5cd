/**
 * `--detect-local-mode` as packets see it: one scenario per mode, the same checks in each. A pod
 * of this node keeps its address to a ClusterIP and takes the externalTrafficPolicy Local
 * short-circuit to an external IP (any endpoint); the external client is masqueraded to the
 * ClusterIP and dropped at the Local service (no endpoint on this node).
 *
 * `--cluster-cidr` is set to the clients' networks on purpose: a proxy that ignored the mode and
 * tested the source against the cluster CIDR would get every check backwards.
 *
 * IP plan (topology.ts): pods 198.18.1.10–11 / fd00:1::10–11 (the Node's podCIDRs 198.18.1.0/24,
 * fd00:1::/64), client 198.19.0.2 / fd00:19::2 on `ext0`; the decoy cluster CIDRs
 * 198.19.0.0/16, fd00:19::/48; ClusterIPs 198.18.128.40, fd00:128::40, 198.18.128.41; external
 * IP 198.18.200.41; NodePort 30141.
 *
 * @module
 */
import type { DetectLocalSettings } from "../../src/snapshot/proxy_state.ts";
import { endpointSlice, remote, service, thisNode } from "./manifests.ts";
import type { Scenario, ScenarioCheck } from "./scenario.ts";

/** The bridge the BridgeInterface scenario puts the pods behind. */
export const POD_BRIDGE = "kpbr0";
/** The cluster CIDRs the scenarios set: the clients' networks, so ClusterCIDR would be wrong. */
export const DECOY_CLUSTER_CIDRS: readonly string[] = Object.freeze([
  "198.19.0.0/16",
  "fd00:19::/48",
]);

const HTTP = [{ name: "http", port: 8080 }] as const;
const DROP_MS = 300;

const OBJECTS = [
  thisNode(),
  service("web", {
    clusterIPs: ["198.18.128.40", "fd00:128::40"],
    ports: [{ name: "http", port: 80 }],
  }),
  endpointSlice("web", { ports: HTTP, endpoints: [remote(0)] }),
  endpointSlice("web", { family: "IPv6", ports: HTTP, endpoints: [remote(0)] }),
  service("etp-local", {
    type: "NodePort",
    clusterIPs: ["198.18.128.41"],
    ports: [{ name: "http", port: 80, nodePort: 30141 }],
    externalIPs: ["198.18.200.41"],
    externalTrafficPolicy: "Local",
  }),
  endpointSlice("etp-local", { ports: HTTP, endpoints: [remote(0)] }),
];

const CHECKS: readonly ScenarioCheck[] = [
  {
    name: "a pod reaches a ClusterIP with its own address",
    from: "pod1",
    ip: "198.18.128.40",
    port: 80,
    probes: 3,
    expect: { kind: "answer", pods: ["pod0"], clientIP: "preserved" },
  },
  {
    name: "a pod reaches an IPv6 ClusterIP with its own address",
    from: "pod1",
    ip: "fd00:128::40",
    port: 80,
    probes: 3,
    expect: { kind: "answer", pods: ["pod0"], clientIP: "preserved" },
  },
  {
    name: "the outside client reaches a ClusterIP masqueraded",
    from: "client",
    ip: "198.18.128.40",
    port: 80,
    probes: 3,
    expect: { kind: "answer", pods: ["pod0"], clientIP: "node" },
  },
  {
    name: "the outside client reaches an IPv6 ClusterIP masqueraded",
    from: "client",
    ip: "fd00:128::40",
    port: 80,
    probes: 3,
    expect: { kind: "answer", pods: ["pod0"], clientIP: "node" },
  },
  {
    name: "the node reaches a ClusterIP",
    from: "node",
    ip: "198.18.128.40",
    port: 80,
    probes: 2,
    expect: { kind: "answer", pods: ["pod0"], clientIP: "node" },
  },
  {
    name: "a pod takes the Local short-circuit to an external IP: any endpoint, its own address",
    from: "pod1",
    ip: "198.18.200.41",
    port: 80,
    probes: 3,
    expect: { kind: "answer", pods: ["pod0"], clientIP: "preserved" },
  },
  {
    name: "the outside client finds no local endpoint at the Local external IP",
    from: "client",
    ip: "198.18.200.41",
    port: 80,
    probes: 2,
    timeoutMs: DROP_MS,
    expect: { kind: "timeout" },
  },
];

function scenario(
  detectLocal: DetectLocalSettings,
  extra: Partial<Scenario> = {},
): Scenario {
  return {
    name: `detect-local-mode ${detectLocal.mode}`,
    pods: 2,
    settings: { clusterCIDRs: DECOY_CLUSTER_CIDRS, detectLocal },
    steps: [{ name: "pod and outside traffic", objects: OBJECTS, checks: CHECKS }],
    ...extra,
  };
}

/** One scenario per non-default mode. */
export const DETECT_LOCAL_SCENARIOS: readonly Scenario[] = [
  scenario({ mode: "NodeCIDR", bridgeInterface: "", interfaceNamePrefix: "" }),
  // The pods' node-side veths are pod0, pod1; the client's link is ext0.
  scenario({ mode: "InterfaceNamePrefix", bridgeInterface: "", interfaceNamePrefix: "pod" }),
  scenario(
    { mode: "BridgeInterface", bridgeInterface: POD_BRIDGE, interfaceNamePrefix: "" },
    { podBridge: POD_BRIDGE },
  ),
];
