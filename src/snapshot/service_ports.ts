/** One Service plus its EndpointSlices → its frozen, hashed service port entries (pure). */
import type { EndpointSlice } from "../model/endpoint_slice.ts";
import { compareIPs, type IPFamily, parseCIDR, parseIP } from "../model/ip.ts";
import type { Service } from "../model/service.ts";
import { categorizeEndpoints } from "./categorize_endpoints.ts";
import { deepFreeze } from "./deep_freeze.ts";
import { canonicalJSON, contentHash } from "./hash.ts";
import type {
  EndpointInfo,
  Protocol,
  ServicePortFamily,
  ServicePortSnapshot,
  ServiceType,
  TrafficPolicy,
} from "./types.ts";

/** The label that opts a Service out of the default proxy. */
export const SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name";
/** kube-proxy's default ClientIP affinity timeout. */
export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10800;

/** What the service port builder needs to know of this node. */
export interface NodeContext {
  /** This node's name (endpoints with this nodeName are local). */
  readonly name: string;
  /** This node's zone, for topology hints. */
  readonly zone: string | null;
}

/** The key of a Service in stores and change sets: `namespace/name`. */
export function serviceKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** kube-proxy's ServicePortName text: `namespace/name:port`, or `namespace/name` when unnamed. */
export function servicePortId(namespace: string, name: string, portName: string): string {
  return portName === "" ? `${namespace}/${name}` : `${namespace}/${name}:${portName}`;
}

/** True when the Service gets no rules at all (ExternalName, headless, other proxy). */
export function isIgnoredService(service: Service): boolean {
  const spec = service.spec;
  if (spec.type === "ExternalName") return true;
  if (service.metadata.labels?.[SERVICE_PROXY_NAME_LABEL] !== undefined) return true;
  const ips = clusterIPsOf(service);
  return ips.length === 0;
}

function clusterIPsOf(service: Service): string[] {
  const spec = service.spec;
  const raw = spec.clusterIPs && spec.clusterIPs.length > 0
    ? spec.clusterIPs
    : spec.clusterIP
    ? [spec.clusterIP]
    : [];
  const out: string[] = [];
  for (const text of raw) {
    const ip = parseIP(text);
    if (ip !== null && !out.some((o) => parseIP(o)?.family === ip.family)) out.push(ip.text);
  }
  return out;
}

function byFamily(texts: readonly string[], family: IPFamily): string[] {
  const out = new Set<string>();
  for (const t of texts) {
    const ip = parseIP(t);
    if (ip !== null && ip.family === family) out.add(ip.text);
  }
  return [...out].sort(compareIPs);
}

function cidrsByFamily(texts: readonly string[], family: IPFamily): string[] {
  const out = new Set<string>();
  for (const t of texts) {
    const c = parseCIDR(t.trim());
    if (c !== null && c.family === family) out.add(c.text);
  }
  return [...out].sort();
}

/**
 * Which copy of an endpoint listed in several slices wins. As upstream, a copy on this node
 * beats one that is not (upstream overwrites with every local copy and keeps the first of the
 * others); among equally local copies upstream keeps whichever its map iteration visits last or
 * first, which changes from sync to sync, so kproxy takes the most ready one (README,
 * "Differences from kube-proxy").
 */
function endpointRank(ep: EndpointInfo): number {
  return (ep.isLocal ? 4 : 0) + (ep.ready ? 2 : ep.serving ? 1 : 0);
}

function compareEndpoints(a: EndpointInfo, b: EndpointInfo): number {
  return compareIPs(a.ip, b.ip) || a.port - b.port;
}

/**
 * Gathers the endpoints of one service port and family from all the service's slices:
 * matched by port name and protocol, deduplicated by address and port (a local copy wins,
 * then a ready one: {@link endpointRank}).
 */
function collectEndpoints(
  slices: readonly EndpointSlice[],
  family: IPFamily,
  portName: string,
  protocol: Protocol,
  node: NodeContext,
): EndpointInfo[] {
  const byKey = new Map<string, EndpointInfo>();
  for (const slice of slices) {
    if (slice.addressType !== family) continue;
    const port = (slice.ports ?? []).find((p) =>
      (p.name ?? "") === portName && (p.protocol ?? "TCP") === protocol
    );
    if (port === undefined || port.port === null || port.port === undefined) continue;
    for (const ep of slice.endpoints ?? []) {
      const ip = parseIP(ep.addresses[0] ?? "");
      if (ip === null) continue;
      const ready = ep.conditions?.ready ?? true;
      const zoneHints = ep.hints?.forZones ? ep.hints.forZones.map((z) => z.name).sort() : null;
      const nodeHints = ep.hints?.forNodes ? ep.hints.forNodes.map((n) => n.name).sort() : null;
      const info: EndpointInfo = {
        ip: ip.text,
        port: port.port,
        ready,
        // kube-proxy reads an absent `serving` as true, whatever `ready` says.
        serving: ep.conditions?.serving ?? true,
        terminating: ep.conditions?.terminating ?? false,
        nodeName: ep.nodeName ?? null,
        zone: ep.zone ?? null,
        isLocal: node.name !== "" && ep.nodeName === node.name,
        zoneHints,
        nodeHints,
      };
      const key = `${info.ip}|${info.port}`;
      const existing = byKey.get(key);
      if (existing === undefined || endpointRank(info) > endpointRank(existing)) {
        byKey.set(key, info);
      }
    }
  }
  return [...byKey.values()].sort(compareEndpoints);
}

/**
 * Distinct IPs of ready endpoints on this node in the service's slices of `family`, over every
 * port the slices name — also ports no service port matches — each port's copies deduplicated
 * as {@link collectEndpoints} does: upstream's health-check count (`LocalReadyEndpoints` walks
 * every port name its endpoint slice cache holds).
 */
function healthCheckLocalIPs(
  slices: readonly EndpointSlice[],
  family: IPFamily,
  node: NodeContext,
): string[] {
  const ports = new Map<string, { name: string; protocol: Protocol }>();
  for (const slice of slices) {
    if (slice.addressType !== family) continue;
    for (const p of slice.ports ?? []) {
      if (p.port === null || p.port === undefined) continue;
      const name = p.name ?? "";
      const protocol: Protocol = p.protocol ?? "TCP";
      ports.set(`${name}/${protocol}`, { name, protocol });
    }
  }
  const ips = new Set<string>();
  for (const { name, protocol } of ports.values()) {
    for (const ep of collectEndpoints(slices, family, name, protocol, node)) {
      if (ep.isLocal && ep.ready) ips.add(ep.ip);
    }
  }
  return [...ips].sort(compareIPs);
}

/** Content hash of a service port entry (everything but the hash itself). */
export function hashServicePort(entry: Omit<ServicePortSnapshot, "hash">): string {
  return contentHash(canonicalJSON(entry));
}

/**
 * Builds the service port entries of one Service from the slices that name it.
 * Returns an empty list for services that get no rules (ExternalName, headless).
 */
export function buildServicePorts(
  service: Service,
  slices: readonly EndpointSlice[],
  node: NodeContext,
): ServicePortSnapshot[] {
  if (isIgnoredService(service)) return [];
  const spec = service.spec;
  const namespace = service.metadata.namespace ?? "default";
  const name = service.metadata.name;
  const type: ServiceType = spec.type === "NodePort" || spec.type === "LoadBalancer"
    ? spec.type
    : "ClusterIP";
  const clusterIPs = clusterIPsOf(service);
  // As upstream's newBaseServiceInfo: every ingress IP whose ipMode is absent or VIP, whatever
  // the type (the API server keeps status.loadBalancer for LoadBalancer Services only).
  const lbIPs = (service.status?.loadBalancer?.ingress ?? [])
    .filter((i) => i.ip && (i.ipMode == null || i.ipMode === "VIP"))
    .map((i) => i.ip as string);
  const externalIPs = spec.externalIPs ?? [];
  const affinity = spec.sessionAffinity === "ClientIP"
    ? spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_AFFINITY_TIMEOUT_SECONDS
    : null;
  // kube-proxy's ExternallyAccessible(service): the policy applies to NodePort and LoadBalancer
  // services, and to others with external IPs (per family, rules only exist for reachable IPs).
  const externallyAccessible = type !== "ClusterIP" || externalIPs.length > 0;
  const internalTrafficPolicy: TrafficPolicy = spec.internalTrafficPolicy === "Local"
    ? "Local"
    : "Cluster";
  const sortedSlices = [...slices].sort((a, b) =>
    a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0
  );

  const entries: ServicePortSnapshot[] = [];
  const seen = new Set<string>();
  for (const port of spec.ports ?? []) {
    const portName = port.name ?? "";
    const id = servicePortId(namespace, name, portName);
    if (seen.has(id)) continue;
    seen.add(id);
    const protocol: Protocol = port.protocol ?? "TCP";
    const nodePort = type !== "ClusterIP" && port.nodePort ? port.nodePort : null;
    const externalTrafficPolicy: TrafficPolicy =
      externallyAccessible && spec.externalTrafficPolicy === "Local" ? "Local" : "Cluster";
    // Like kube-proxy's NeedsHealthCheck: only LoadBalancer services with a Local policy.
    const healthCheckNodePort =
      type === "LoadBalancer" && externalTrafficPolicy === "Local" && spec.healthCheckNodePort
        ? spec.healthCheckNodePort
        : null;
    const families: ServicePortFamily[] = [];
    for (const clusterIP of clusterIPs) {
      const family = parseIP(clusterIP)?.family as IPFamily;
      const fExternal = byFamily(externalIPs, family);
      const fLB = byFamily(lbIPs, family);
      families.push({
        family,
        clusterIP,
        externalIPs: fExternal,
        loadBalancerIPs: fLB,
        loadBalancerSourceRanges: cidrsByFamily(spec.loadBalancerSourceRanges ?? [], family),
        endpoints: collectEndpoints(sortedSlices, family, portName, protocol, node),
        clusterEndpoints: [],
        localEndpoints: [],
        hasAnyEndpoints: false,
        topologyMode: null,
        ...(healthCheckNodePort === null
          ? {}
          : { healthCheckLocalIPs: healthCheckLocalIPs(sortedSlices, family, node) }),
      });
    }
    families.sort((a, b) => (a.family < b.family ? -1 : 1));
    const categorized = families.map((f) => {
      const anyExternalHere = nodePort !== null || f.externalIPs.length > 0 ||
        f.loadBalancerIPs.length > 0;
      return {
        ...f,
        ...categorizeEndpoints({
          endpoints: f.endpoints,
          internalTrafficPolicy,
          externalTrafficPolicy,
          externallyAccessible: anyExternalHere,
          zone: node.zone,
          nodeName: node.name,
        }),
      };
    });
    const body: Omit<ServicePortSnapshot, "hash"> = {
      id,
      namespace,
      name,
      portName,
      protocol,
      port: port.port,
      type,
      nodePort,
      healthCheckNodePort,
      sessionAffinityTimeoutSeconds: affinity,
      externalTrafficPolicy,
      internalTrafficPolicy,
      families: categorized,
    };
    entries.push(deepFreeze({ ...body, hash: hashServicePort(body) }));
  }
  return entries.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
