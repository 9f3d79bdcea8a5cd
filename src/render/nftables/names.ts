/**
 * Names of kproxy's nftables objects: the fixed ones, and the per-service-port chains and sets,
 * spelled like upstream kube-proxy's (`service-HASH-ns/name/proto/port`) so a reader who knows
 * kube-proxy finds their way, with a hash prefix that keeps similar names apart.
 */
import { createHash } from "node:crypto";
import type { IPFamily, Protocol } from "../../snapshot/types.ts";

/** kproxy's table name (in both the `ip` and `ip6` families); upstream's is `kube-proxy`. */
export const TABLE_NAME = "kproxy";

/** The longest object name nftables accepts. */
const NAME_LENGTH_MAX = 256;
/** Room kept for the longest prefix (`affinity-`, `external-`, ...). */
const PREFIX_LENGTH_MAX = 16;

/** The fixed chains, sets and maps of the table. */
export const FIXED = Object.freeze({
  servicesChain: "services",
  serviceIPsMap: "service-ips",
  serviceNodePortsMap: "service-nodeports",
  nodePortIPsSet: "nodeport-ips",
  serviceEndpointsCheckChain: "service-endpoints-check",
  nodePortEndpointsCheckChain: "nodeport-endpoints-check",
  noEndpointServicesMap: "no-endpoint-services",
  noEndpointNodePortsMap: "no-endpoint-nodeports",
  rejectChain: "reject-chain",
  firewallIPsMap: "firewall-ips",
  firewallCheckChain: "firewall-check",
  markMasqChain: "mark-for-masquerade",
  masqueradingChain: "masquerading",
  hairpinSet: "hairpin-endpoints",
  clusterCIDRsSet: "cluster-cidrs",
  serviceCIDRsSet: "service-cidrs",
  clusterIPsSet: "cluster-ips",
  clusterIPsCheckChain: "cluster-ips-check",
  // Service ports whose endpoints live in maps (no chain of their own): the entry sets say which
  // fixed chain a ClusterIP, external address or NodePort goes to; the endpoint maps hold
  // `entry . N·65536+i : endpoint`, and the selection chains pick i uniformly among N.
  clusterIPClusterSet: "clusterip-cluster-services",
  clusterIPLocalSet: "clusterip-local-services",
  externalClusterSet: "external-cluster-services",
  externalLocalSet: "external-local-services",
  nodePortClusterSet: "nodeport-cluster-services",
  nodePortLocalSet: "nodeport-local-services",
  clusterIPClusterChain: "clusterip-cluster",
  clusterIPLocalChain: "clusterip-local",
  externalClusterChain: "external-cluster",
  externalLocalChain: "external-local",
  nodePortClusterChain: "nodeport-cluster",
  nodePortLocalChain: "nodeport-local",
  clusterEndpointsMap: "cluster-endpoints",
  localEndpointsMap: "local-endpoints",
  nodePortClusterEndpointsMap: "nodeport-cluster-endpoints",
  nodePortLocalEndpointsMap: "nodeport-local-endpoints",
  selectClusterChain: "select-cluster-endpoint",
  selectLocalChain: "select-local-endpoint",
  selectNodePortClusterChain: "select-nodeport-cluster-endpoint",
  selectNodePortLocalChain: "select-nodeport-local-endpoint",
});

/**
 * The most endpoints a service port may have (per policy) for its endpoints to live in the
 * endpoint maps; above it, and with session affinity, it gets chains of its own.
 */
export const MAP_MAX_ENDPOINTS = 16;

/** The numgen offset of service ports with `n` endpoints: their map keys are `n·65536 + i`. */
export function endpointKeyOffset(n: number): number {
  return n * 65536;
}

/** The nftables table family of an IP family. */
export function tableFamily(family: IPFamily): "ip" | "ip6" {
  return family === "IPv4" ? "ip" : "ip6";
}

/** The lower-case protocol keyword nftables uses. */
export function protocolKeyword(protocol: Protocol): "tcp" | "udp" | "sctp" {
  return protocol === "TCP" ? "tcp" : protocol === "UDP" ? "udp" : "sctp";
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** Eight base32 characters of the SHA-256 of `text` (40 bits, as upstream's chain names). */
function hash8(text: string): string {
  const digest = createHash("sha256").update(text).digest();
  let bits = 0n;
  for (let i = 0; i < 5; i++) bits = (bits << 8n) | BigInt(digest[i] ?? 0);
  let out = "";
  for (let i = 7; i >= 0; i--) out += BASE32[Number((bits >> BigInt(i * 5)) & 31n)];
  return out;
}

/** `HASH-text`, truncated with `...` when too long (the hash keeps it unique). */
function hashAndTruncate(text: string): string {
  const name = `${hash8(text)}-${text}`;
  const max = NAME_LENGTH_MAX - PREFIX_LENGTH_MAX;
  return name.length > max ? `${name.slice(0, max - 3)}...` : name;
}

/** The name base of a service port's chains: `HASH-ns/name/proto/portName`. */
export function servicePortNameBase(
  namespace: string,
  name: string,
  protocol: Protocol,
  portName: string,
): string {
  return hashAndTruncate(`${namespace}/${name}/${protocolKeyword(protocol)}/${portName}`);
}

/** The name base of an endpoint's objects: `HASH-ns/name/proto/portName__ip/port`. */
export function endpointNameBase(
  namespace: string,
  name: string,
  protocol: Protocol,
  portName: string,
  endpoint: { readonly ip: string; readonly port: number },
): string {
  const ip = endpoint.ip.replaceAll(":", ".");
  return hashAndTruncate(
    `${namespace}/${name}/${protocolKeyword(protocol)}/${portName}__${ip}/${endpoint.port}`,
  );
}

/** The chains of one service port, named from its ServicePortName. */
export interface ServicePortChainNames {
  /** `service-…`: picks an endpoint among the Cluster-policy endpoints. */
  readonly cluster: string;
  /** `local-…`: picks an endpoint among the node-local endpoints (Local policy). */
  readonly local: string;
  /** `external-…`: NodePort, ExternalIP and LoadBalancer traffic (masquerade or policy). */
  readonly external: string;
  /** `firewall-…`: loadBalancerSourceRanges of the LoadBalancer IPs. */
  readonly firewall: string;
}

/** What naming a service port's objects needs: its ServicePortName parts and protocol. */
export interface ServicePortNaming {
  /** Namespace. */
  readonly namespace: string;
  /** Service name. */
  readonly name: string;
  /** Protocol. */
  readonly protocol: Protocol;
  /** Port name (may be empty). */
  readonly portName: string;
}

/** The chain names of service port `sp` (the renderer and `kproxy explain` both use these). */
export function servicePortChainNames(sp: ServicePortNaming): ServicePortChainNames {
  const base = servicePortNameBase(sp.namespace, sp.name, sp.protocol, sp.portName);
  return {
    cluster: `service-${base}`,
    local: `local-${base}`,
    external: `external-${base}`,
    firewall: `firewall-${base}`,
  };
}

/** The session affinity set of one endpoint of `sp` (source addresses seen recently). */
export function affinitySetName(
  sp: ServicePortNaming,
  endpoint: { readonly ip: string; readonly port: number },
): string {
  return `affinity-${endpointNameBase(sp.namespace, sp.name, sp.protocol, sp.portName, endpoint)}`;
}

/** True for names of per-service-port chains (fixed names never contain a slash). */
export function isServicePortObjectName(name: string): boolean {
  return name.includes("/");
}
