/**
 * Which endpoints a service port sends traffic to, with kube-proxy's semantics:
 * ready endpoints first; serving-and-terminating ones when a policy's set has none; topology
 * hints only when every ready endpoint carries hints and this node's zone has some.
 */
import type { EndpointInfo, TrafficPolicy } from "./types.ts";

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
}

/** The endpoint sets a renderer uses. */
export interface CategorizedEndpoints {
  /** Endpoints for Cluster-policy traffic. */
  readonly clusterEndpoints: readonly EndpointInfo[];
  /** Endpoints for Local-policy traffic. */
  readonly localEndpoints: readonly EndpointInfo[];
  /** True when any usable endpoint exists anywhere. */
  readonly hasAnyEndpoints: boolean;
  /** True when topology hints narrowed the cluster set. */
  readonly topologyApplied: boolean;
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

/** Splits endpoints into the cluster-wide and node-local sets kube-proxy would use. */
export function categorizeEndpoints(input: CategorizeInput): CategorizedEndpoints {
  const { endpoints } = input;
  const internalLocal = input.internalTrafficPolicy === "Local";
  const externalLocal = input.externallyAccessible && input.externalTrafficPolicy === "Local";
  const usesCluster = !internalLocal || input.externallyAccessible;
  const usesLocal = internalLocal || externalLocal;

  let clusterEndpoints: readonly EndpointInfo[] = [];
  let topologyApplied = false;
  let hasAnyEndpoints = false;
  if (usesCluster) {
    topologyApplied = canUseTopology(endpoints, input.zone);
    const zone = input.zone ?? "";
    clusterEndpoints = endpoints.filter((ep) =>
      ep.ready && (!topologyApplied || (ep.zoneHints ?? []).includes(zone))
    );
    if (clusterEndpoints.length === 0) {
      topologyApplied = false;
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
  return { clusterEndpoints, localEndpoints, hasAnyEndpoints, topologyApplied };
}
