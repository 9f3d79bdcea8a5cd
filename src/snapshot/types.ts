/**
 * The immutable snapshot of what one node must program: kproxy's central data type.
 *
 * Every renderer reads only this; it is deeply frozen, sorted, and content-hashed, so equal
 * inputs give byte-identical snapshots and two snapshots compare by hash.
 */
import type { IPFamily } from "../model/ip.ts";

export type { IPFamily };

/** A transport protocol, as Kubernetes spells it. */
export type Protocol = "TCP" | "UDP" | "SCTP";

/** The Service types that get rules (ExternalName and headless services get none). */
export type ServiceType = "ClusterIP" | "NodePort" | "LoadBalancer";

/** `externalTrafficPolicy` / `internalTrafficPolicy` values. */
export type TrafficPolicy = "Cluster" | "Local";

/** How topology hints narrowed a cluster endpoint set (upstream's topology modes). */
export type TopologyMode = "PreferSameNode" | "PreferSameZone";

/** One endpoint (pod address and port) of a service port, merged from all its slices. */
export interface EndpointInfo {
  /** Canonical IP address. */
  readonly ip: string;
  /** Target port. */
  readonly port: number;
  /** `conditions.ready` (absent means true). */
  readonly ready: boolean;
  /** `conditions.serving` (absent means true, as kube-proxy reads it). */
  readonly serving: boolean;
  /** `conditions.terminating` (absent means false). */
  readonly terminating: boolean;
  /** The node the endpoint runs on, when known. */
  readonly nodeName: string | null;
  /** The zone the endpoint runs in, when known. */
  readonly zone: string | null;
  /** True when `nodeName` is this node. */
  readonly isLocal: boolean;
  /** `hints.forZones` names, or null when the endpoint has no zone hints. */
  readonly zoneHints: readonly string[] | null;
  /** `hints.forNodes` names (trafficDistribution PreferSameNode), or null without node hints. */
  readonly nodeHints: readonly string[] | null;
}

/** The part of a service port that belongs to one IP family (one kube-proxy per family). */
export interface ServicePortFamily {
  /** The family these addresses and endpoints belong to. */
  readonly family: IPFamily;
  /** The ClusterIP of this family. */
  readonly clusterIP: string;
  /** `spec.externalIPs` of this family. */
  readonly externalIPs: readonly string[];
  /** LoadBalancer ingress IPs of this family (only ipMode VIP or absent, as upstream). */
  readonly loadBalancerIPs: readonly string[];
  /** `spec.loadBalancerSourceRanges` of this family, canonical CIDRs. */
  readonly loadBalancerSourceRanges: readonly string[];
  /** Every known endpoint of this family, sorted by address and port. */
  readonly endpoints: readonly EndpointInfo[];
  /** The endpoints traffic with a Cluster policy goes to (after topology and fallback). */
  readonly clusterEndpoints: readonly EndpointInfo[];
  /** The endpoints traffic with a Local policy goes to (node-local; may be empty). */
  readonly localEndpoints: readonly EndpointInfo[];
  /** True when some usable endpoint exists anywhere in the cluster. */
  readonly hasAnyEndpoints: boolean;
  /** Which hints narrowed `clusterEndpoints`, or null when none did. */
  readonly topologyMode: TopologyMode | null;
  /**
   * With a healthCheckNodePort: distinct IPs of ready endpoints on this node in the service's
   * slices of this family, over every port the slices name (what upstream's health check
   * counts, ports no service port matches included).
   */
  readonly healthCheckLocalIPs?: readonly string[];
}

/** One port of one Service: kube-proxy's `ServicePortName` and everything it acts on. */
export interface ServicePortSnapshot {
  /** `namespace/name:port`, or `namespace/name` for an unnamed port: kube-proxy's ServicePortName. */
  readonly id: string;
  /** The Service's namespace. */
  readonly namespace: string;
  /** The Service's name. */
  readonly name: string;
  /** The port's name, possibly empty. */
  readonly portName: string;
  /** The port's protocol. */
  readonly protocol: Protocol;
  /** The service port number. */
  readonly port: number;
  /** The Service's type. */
  readonly type: ServiceType;
  /** The NodePort, when the Service has one. */
  readonly nodePort: number | null;
  /** `spec.healthCheckNodePort`, when the Service has one. */
  readonly healthCheckNodePort: number | null;
  /** ClientIP affinity timeout in seconds, or null without affinity. */
  readonly sessionAffinityTimeoutSeconds: number | null;
  /** External traffic policy; `Local` only when the port is reachable from outside. */
  readonly externalTrafficPolicy: TrafficPolicy;
  /** Internal traffic policy. */
  readonly internalTrafficPolicy: TrafficPolicy;
  /** Per-family addresses and endpoints, IPv4 first. */
  readonly families: readonly ServicePortFamily[];
  /** Content hash of this entry (hex sha256 prefix). */
  readonly hash: string;
}

/** NodePort addresses of each family; null means every local address of that family. */
export interface NodePortIPs {
  /** IPv4 addresses, or null for every local IPv4 address. */
  readonly IPv4: readonly string[] | null;
  /** IPv6 addresses, or null for every local IPv6 address. */
  readonly IPv6: readonly string[] | null;
}

/** What the snapshot knows of this node. */
export interface NodeSnapshot {
  /** This node's name. */
  readonly name: string;
  /** `topology.kubernetes.io/zone`, when set. */
  readonly zone: string | null;
  /** The node's primary IPs (first InternalIP, else ExternalIP, per family). */
  readonly primaryIPs: readonly string[];
  /**
   * Addresses NodePorts are accepted on, per family: a list, or null for every local address of
   * the family at packet time (matched with `addrtype LOCAL` / `fib daddr type local`). As
   * upstream, a family that `--nodeport-addresses` (or `primary`) gives no address of, or gives
   * `0.0.0.0/0` / `::/0`, takes every local address.
   */
  readonly nodePortIPs: NodePortIPs;
  /** True when the Node object is being deleted (`metadata.deletionTimestamp`). */
  readonly deleting: boolean;
  /** True when the Node has the `ToBeDeletedByClusterAutoscaler` taint (about to be removed). */
  readonly toBeDeleted: boolean;
  /** True once a Node object was seen (or none is expected). */
  readonly known: boolean;
}

/** `--detect-local-mode`: how kube-proxy tells traffic from a pod of this node from the rest. */
export type LocalMode = "ClusterCIDR" | "NodeCIDR" | "BridgeInterface" | "InterfaceNamePrefix";

/** Every `--detect-local-mode` value, as upstream lists them. */
export const LOCAL_MODES: readonly LocalMode[] = Object.freeze([
  "ClusterCIDR",
  "NodeCIDR",
  "BridgeInterface",
  "InterfaceNamePrefix",
]);

/**
 * The resolved "is this source a pod?" test every rule that asks it uses (upstream's
 * LocalTrafficDetector): source CIDRs in the CIDR modes, the input interface in the others.
 */
export interface LocalDetector {
  /** The mode it came from. */
  readonly mode: LocalMode;
  /**
   * Pod source CIDRs, canonical and sorted: `--cluster-cidr` (ClusterCIDR) or the Node's
   * `spec.podCIDRs` (NodeCIDR); empty in the interface modes, and while the Node has none.
   */
  readonly cidrs: readonly string[];
  /**
   * The input interface of pod traffic: the bridge's name (BridgeInterface) or the name prefix
   * of the pods' host-side interfaces (InterfaceNamePrefix); null in the CIDR modes.
   */
  readonly interfaceName: string | null;
}

/** Proxy-wide options that change rule text. */
export interface ProxyOptions {
  /** `--cluster-cidr` CIDRs, canonical (what ClusterCIDR mode detects pods by). */
  readonly clusterCIDRs: readonly string[];
  /** How pod traffic is told from other traffic; empty CIDRs in a CIDR mode: it cannot be. */
  readonly localDetector: LocalDetector;
  /** Masquerade every packet to a service. */
  readonly masqueradeAll: boolean;
  /** The fwmark bit used for masquerade marking. */
  readonly masqueradeBit: number;
  /** Accept NodePorts on 127.0.0.1 (iptables only). */
  readonly localhostNodePorts: boolean;
}

/** The immutable, deterministic picture of what this node must program. */
export interface ProxySnapshot {
  /** Format version. */
  readonly version: 1;
  /** Content hash of the whole snapshot; the id `/diff?from=` takes. */
  readonly hash: string;
  /** This node. */
  readonly node: NodeSnapshot;
  /** Proxy-wide options. */
  readonly options: ProxyOptions;
  /**
   * The cluster's service CIDRs (every `networking.k8s.io/v1 ServiceCIDR`'s `spec.cidrs`),
   * canonical and sorted; nftables mode drops traffic to an address in them no Service holds.
   */
  readonly serviceCIDRs: readonly string[];
  /** Every service port, sorted by id. */
  readonly servicePorts: readonly ServicePortSnapshot[];
}
