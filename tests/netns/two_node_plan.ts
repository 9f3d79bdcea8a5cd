/**
 * The IP plan of the two-node lab (`two_node_lab.ts`): fixed addresses, so generators and
 * matrices can name them and two labs side by side (separate namespaces) look the same inside.
 * Pure constants and helpers; no I/O.
 *
 * ```text
 *  client ── ext0 ──┐                      ┌── nodeb0 ── node B (no proxy)
 *  198.19.0.2       │ 198.19.0.1   198.19.1.1 │  198.19.1.2 (InternalIP)
 *  fd00:19::2       │ fd00:19::1 fd00:19:1::1 │  fd00:19:1::2
 *                   └──────── node A ─────────┘  lo 198.18.0.2 / fd00::2 (its pods' gateway)
 *                     lo 198.18.0.1 / fd00::1 (its pods' gateway)
 *                     default route → null0 (VIPs routable, dead without the proxy's DNAT)
 *  pods on A: a<i> 198.18.2.(10+i) / fd00:2:0:a::(10+i), veth a<i> on node A
 *  pods on B: b<i> 198.18.3.(10+i) / fd00:2:0:b::(10+i), veth b<i> on node B
 *  cluster CIDRs: 198.18.2.0/23, fd00:2::/56; B's default route (and its pods') go through A.
 *  ExternalIPs and LoadBalancer IPs: 198.18.200.0/24, fd00:200::/64 (routed to A by the client,
 *  by B, and by A's pods through their gateway).
 * ```
 *
 * @module
 */

/** An IP family. */
export type LabFamily = "IPv4" | "IPv6";

/** Node A's name: it runs the proxy under test. */
export const NODE_A = "node-a";
/** Node B's name: it hosts off-node pods and runs no proxy. */
export const NODE_B = "node-b";
/** Node A's topology zone label. */
export const ZONE_A = "zone-a";
/** Node B's topology zone label. */
export const ZONE_B = "zone-b";

/** Node A's primary addresses (its InternalIPs), on the client link. */
export const NODE_A_PRIMARY: Readonly<Record<LabFamily, string>> = Object.freeze({
  IPv4: "198.19.0.1",
  IPv6: "fd00:19::1",
});
/** Node A's addresses on the link to node B: node addresses, but not primary ones. */
export const NODE_A_SECONDARY: Readonly<Record<LabFamily, string>> = Object.freeze({
  IPv4: "198.19.1.1",
  IPv6: "fd00:19:1::1",
});
/** Node A's loopback addresses: its pods' gateway, a third kind of node address. */
export const NODE_A_INTERNAL: Readonly<Record<LabFamily, string>> = Object.freeze({
  IPv4: "198.18.0.1",
  IPv6: "fd00::1",
});
/** Node B's addresses (its InternalIPs), on the link to node A. */
export const NODE_B_PRIMARY: Readonly<Record<LabFamily, string>> = Object.freeze({
  IPv4: "198.19.1.2",
  IPv6: "fd00:19:1::2",
});
/** Node B's loopback addresses: its pods' gateway. */
export const NODE_B_INTERNAL: Readonly<Record<LabFamily, string>> = Object.freeze({
  IPv4: "198.18.0.2",
  IPv6: "fd00::2",
});
/** The external client's addresses. */
export const LAB_CLIENT: Readonly<Record<LabFamily, string>> = Object.freeze({
  IPv4: "198.19.0.2",
  IPv6: "fd00:19::2",
});
/** Localhost, per family (NodePorts on localhost, from node A itself). */
export const LOCALHOST: Readonly<Record<LabFamily, string>> = Object.freeze({
  IPv4: "127.0.0.1",
  IPv6: "::1",
});
/** The cluster (pod) CIDRs, one per family: `--cluster-cidr` of both proxies. */
export const LAB_CLUSTER_CIDRS: readonly string[] = Object.freeze([
  "198.18.2.0/23",
  "fd00:2::/56",
]);
/**
 * The service CIDRs of the API server, IPv4 first (`--service-cluster-ip-range`): clear of the
 * ExternalIP / LoadBalancer range (upstream's nftables mode drops traffic to unallocated
 * addresses of a service CIDR).
 */
export const LAB_SERVICE_CIDRS: readonly string[] = Object.freeze([
  "198.18.128.0/18",
  "fd00:128::/108",
]);
/** Addresses inside the service CIDRs that no Service ever gets. */
export const UNALLOCATED_CLUSTER_IP: Readonly<Record<LabFamily, string>> = Object.freeze({
  IPv4: "198.18.191.250",
  IPv6: "fd00:128::f:fffa",
});
/** Ports every lab pod serves on, for TCP, UDP and SCTP alike. */
export const LAB_POD_PORTS: readonly number[] = Object.freeze([8080, 8081, 8082]);
/** Pods per node. */
export const LAB_PODS_PER_NODE = 3;

/** Which node a pod runs on. */
export type LabNode = "A" | "B";

/** A pod of the lab: `a0`, `b2`... */
export interface LabPod {
  /** Pod name, also what its server answers with. */
  readonly name: string;
  /** Node it runs on. */
  readonly node: LabNode;
  /** Index on its node. */
  readonly index: number;
  /** IPv4 address. */
  readonly ipv4: string;
  /** IPv6 address. */
  readonly ipv6: string;
}

/** Pod `index` on `node`. */
export function labPod(node: LabNode, index: number): LabPod {
  const n = 10 + index;
  return node === "A"
    ? { name: `a${index}`, node, index, ipv4: `198.18.2.${n}`, ipv6: `fd00:2:0:a::${n}` }
    : { name: `b${index}`, node, index, ipv4: `198.18.3.${n}`, ipv6: `fd00:2:0:b::${n}` };
}

/** Every pod of the lab, A's first. */
export const LAB_PODS: readonly LabPod[] = Object.freeze([
  ...Array.from({ length: LAB_PODS_PER_NODE }, (_, i) => labPod("A", i)),
  ...Array.from({ length: LAB_PODS_PER_NODE }, (_, i) => labPod("B", i)),
]);

/** A pod's address of `family`. */
export function podAddress(pod: LabPod, family: LabFamily): string {
  return family === "IPv4" ? pod.ipv4 : pod.ipv6;
}

/** The pod that has address `ip`, if any. */
export function podByAddress(ip: string): LabPod | undefined {
  return LAB_PODS.find((p) => p.ipv4 === ip || p.ipv6 === ip);
}

/** The pod on node A that sends probes (also a possible endpoint: hairpin traffic). */
export const SOURCE_POD_A = "a0";
/** The pod on node B that sends probes. */
export const SOURCE_POD_B = "b0";

/** The node objects both proxies see: A and B, with zones and InternalIPs. */
export function labNodes(): Record<string, unknown>[] {
  const node = (name: string, zone: string, ips: Readonly<Record<LabFamily, string>>) => ({
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      labels: { "kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone },
    },
    spec: {
      podCIDRs: name === NODE_A ? ["198.18.2.0/24", "fd00:2:0:a::/64"] : [
        "198.18.3.0/24",
        "fd00:2:0:b::/64",
      ],
    },
    status: {
      addresses: [
        { type: "InternalIP", address: ips.IPv4 },
        { type: "InternalIP", address: ips.IPv6 },
        { type: "Hostname", address: name },
      ],
    },
  });
  return [node(NODE_A, ZONE_A, NODE_A_PRIMARY), node(NODE_B, ZONE_B, NODE_B_PRIMARY)];
}
