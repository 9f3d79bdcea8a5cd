/**
 * Which endpoints a service port sends traffic to, with kube-proxy's semantics:
 * ready endpoints first; serving-and-terminating ones when a policy's set has none; topology
 * hints only when every ready endpoint carries hints and this node's zone has some.
 */
import type { EndpointInfo, TopologyMode, TrafficPolicy } from "./types.ts";

/** What the categorisation needs to know of the service port. */
export interface CategorizeInput {
  /** All endpoints of one family, deduplicated and sorted. */
  readonly endpoints: readonly EndpointInfo[];
  /** Effective internal traffic policy. */
  readonly internalTrafficPolicy: TrafficPolicy;
  /** Effective external traffic policy (Local only when externally accessible). */
  readonly externalTrafficPolicy: TrafficPolicy;
  /** True when the port has a NodePort, external IPs or LoadBalancer IPs. */
  readonly externallyAccessible: boolean;
  /** This node's zone, if known. */
  readonly zone: string | null;
  /** This node's name, for node hints (absent: node hints are not used). */
  readonly nodeName?: string;
}

/** The endpoint sets a renderer uses. */
export interface CategorizedEndpoints {
  /** Endpoints for Cluster-policy traffic. */
  readonly clusterEndpoints: readonly EndpointInfo[];
  /** Endpoints for Local-policy traffic. */
  readonly localEndpoints: readonly EndpointInfo[];
  /** True when any usable endpoint exists anywhere. */
  readonly hasAnyEndpoints: boolean;
  /** Which hints narrowed the cluster set, or null. */
  readonly topologyMode: TopologyMode | null;
}

function servingTerminating(ep: EndpointInfo): boolean {
  return ep.serving && ep.terminating;
}

/** True when zone hints may be used: every ready endpoint has hints, one names this zone. */
export function canUseTopology(endpoints: readonly EndpointInfo[], zone: string | null): boolean {
  if (zone === null || zone === "") return false;
  let zoneHasEndpoint = false;
  for (const ep of endpoints) {
    if (!ep.ready) continue;
    if (ep.zoneHints === null || ep.zoneHints.length === 0) return false;
    if (ep.zoneHints.includes(zone)) zoneHasEndpoint = true;
  }
  return zoneHasEndpoint;
}

/**
 * Which hints to follow, as upstream decides: node hints when every ready endpoint has one and
 * one names this node; else zone hints when every ready endpoint has one and one names this
 * node's zone; else none.
 */
export function topologyModeFromHints(
  endpoints: readonly EndpointInfo[],
  nodeName: string,
  zone: string | null,
): TopologyMode | null {
  let anyReady = false;
  let allNodeHints = true;
  let forNode = false;
  for (const ep of endpoints) {
    if (!ep.ready) continue;
    anyReady = true;
    if (ep.nodeHints === null || ep.nodeHints.length === 0) allNodeHints = false;
    else if (nodeName !== "" && ep.nodeHints.includes(nodeName)) forNode = true;
  }
  if (!anyReady) return null;
  if (allNodeHints && forNode) return "PreferSameNode";
  return canUseTopology(endpoints, zone) ? "PreferSameZone" : null;
}

function availableForTopology(
  ep: EndpointInfo,
  mode: TopologyMode | null,
  nodeName: string,
  zone: string,
): boolean {
  if (mode === "PreferSameNode") return (ep.nodeHints ?? []).includes(nodeName);
  if (mode === "PreferSameZone") return (ep.zoneHints ?? []).includes(zone);
  return true;
}

/** Splits endpoints into the cluster-wide and node-local sets kube-proxy would use. */
export function categorizeEndpoints(input: CategorizeInput): CategorizedEndpoints {
  const { endpoints } = input;
  const internalLocal = input.internalTrafficPolicy === "Local";
  const externalLocal = input.externallyAccessible && input.externalTrafficPolicy === "Local";
  const usesCluster = !internalLocal || input.externallyAccessible;
  const usesLocal = internalLocal || externalLocal;

  let clusterEndpoints: readonly EndpointInfo[] = [];
  let topologyMode: TopologyMode | null = null;
  let hasAnyEndpoints = false;
  if (usesCluster) {
    const nodeName = input.nodeName ?? "";
    topologyMode = topologyModeFromHints(endpoints, nodeName, input.zone);
    const zone = input.zone ?? "";
    clusterEndpoints = endpoints.filter((ep) =>
      ep.ready && availableForTopology(ep, topologyMode, nodeName, zone)
    );
    if (clusterEndpoints.length === 0) {
      topologyMode = null;
      clusterEndpoints = endpoints.filter(servingTerminating);
    }
    hasAnyEndpoints = clusterEndpoints.length > 0;
  }

  let localEndpoints: readonly EndpointInfo[] = [];
  if (usesLocal) {
    let localReady = false;
    let localServingTerminating = false;
    for (const ep of endpoints) {
      if (ep.ready) {
        hasAnyEndpoints = true;
        if (ep.isLocal) localReady = true;
      } else if (servingTerminating(ep)) {
        hasAnyEndpoints = true;
        if (ep.isLocal) localServingTerminating = true;
      }
    }
    if (localReady) localEndpoints = endpoints.filter((ep) => ep.isLocal && ep.ready);
    else if (localServingTerminating) {
      localEndpoints = endpoints.filter((ep) => ep.isLocal && servingTerminating(ep));
    }
  }
  return { clusterEndpoints, localEndpoints, hasAnyEndpoints, topologyMode };
}
