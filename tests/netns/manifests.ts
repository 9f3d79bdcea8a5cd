/**
 * Small builders of plain Kubernetes objects (Service, EndpointSlice, Node) for scenario tables,
 * so each scenario states only what matters to it. Output is what an API server would return;
 * kproxy's own validation (`parseKubeObject`) reads it.
 *
 * @module
 */
import { SERVICE_NAME_LABEL } from "../../src/model/endpoint_slice.ts";
import { NODE_PRIMARY_IPV4, NODE_PRIMARY_IPV6, podIPv4, podIPv6 } from "./topology.ts";

/** The node kproxy runs as in scenarios. */
export const THIS_NODE = "node-a";
/** Another node of the cluster: endpoints there are remote (their pods still sit behind veths). */
export const OTHER_NODE = "node-b";

/** One port of a {@link service}. */
export interface ServicePortInput {
  /** Port name (matches the slice's port name); default "". */
  readonly name?: string;
  /** Default TCP. */
  readonly protocol?: "TCP" | "UDP";
  /** Service port. */
  readonly port: number;
  /** NodePort, for NodePort and LoadBalancer services. */
  readonly nodePort?: number;
}

/** What a scenario says about a Service. */
export interface ServiceInput {
  /** Default ClusterIP. */
  readonly type?: "ClusterIP" | "NodePort" | "LoadBalancer";
  /** ClusterIP(s), first one first; the family follows from the address. */
  readonly clusterIPs: readonly string[];
  /** Ports. */
  readonly ports: readonly ServicePortInput[];
  /** `spec.externalIPs`. */
  readonly externalIPs?: readonly string[];
  /** LoadBalancer ingress IPs; `{ ip, ipMode: "Proxy" }` for proxy-mode ingress. */
  readonly loadBalancerIPs?: readonly (string | { ip: string; ipMode: "VIP" | "Proxy" })[];
  /** `spec.loadBalancerSourceRanges`. */
  readonly loadBalancerSourceRanges?: readonly string[];
  /** `spec.externalTrafficPolicy`. */
  readonly externalTrafficPolicy?: "Cluster" | "Local";
  /** `spec.internalTrafficPolicy`. */
  readonly internalTrafficPolicy?: "Cluster" | "Local";
  /** ClientIP session affinity timeout in seconds (ClientIP affinity when set). */
  readonly affinitySeconds?: number;
  /** `spec.healthCheckNodePort`. */
  readonly healthCheckNodePort?: number;
}

/** A Service in namespace `default`. */
export function service(name: string, input: ServiceInput): Record<string, unknown> {
  const families = input.clusterIPs.map((ip) => (ip.includes(":") ? "IPv6" : "IPv4"));
  const spec: Record<string, unknown> = {
    type: input.type ?? "ClusterIP",
    clusterIP: input.clusterIPs[0],
    clusterIPs: [...input.clusterIPs],
    ipFamilies: families,
    ports: input.ports.map((p) => ({
      name: p.name ?? "",
      protocol: p.protocol ?? "TCP",
      port: p.port,
      ...(p.nodePort === undefined ? {} : { nodePort: p.nodePort }),
    })),
  };
  if (input.externalIPs) spec["externalIPs"] = [...input.externalIPs];
  if (input.loadBalancerSourceRanges) {
    spec["loadBalancerSourceRanges"] = [...input.loadBalancerSourceRanges];
  }
  if (input.externalTrafficPolicy) spec["externalTrafficPolicy"] = input.externalTrafficPolicy;
  if (input.internalTrafficPolicy) spec["internalTrafficPolicy"] = input.internalTrafficPolicy;
  if (input.healthCheckNodePort) spec["healthCheckNodePort"] = input.healthCheckNodePort;
  if (input.affinitySeconds !== undefined) {
    spec["sessionAffinity"] = "ClientIP";
    spec["sessionAffinityConfig"] = { clientIP: { timeoutSeconds: input.affinitySeconds } };
  }
  const out: Record<string, unknown> = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: "default", uid: `uid-${name}` },
    spec,
  };
  if (input.loadBalancerIPs) {
    out["status"] = {
      loadBalancer: {
        ingress: input.loadBalancerIPs.map((lb) => (typeof lb === "string" ? { ip: lb } : lb)),
      },
    };
  }
  return out;
}

/** One endpoint of an {@link endpointSlice}: a pod by index, where it runs, its conditions. */
export interface EndpointInput {
  /** Pod index in the topology (`pod<i>`). */
  readonly pod: number;
  /** Node the pod runs on; default {@link THIS_NODE}. */
  readonly node?: string;
  /** `conditions.ready`; default true. */
  readonly ready?: boolean;
  /** `conditions.serving`; default = ready. */
  readonly serving?: boolean;
  /** `conditions.terminating`; default false. */
  readonly terminating?: boolean;
}

/** An endpoint on this node (shorthand). */
export function local(pod: number, extra: Omit<EndpointInput, "pod" | "node"> = {}): EndpointInput {
  return { pod, node: THIS_NODE, ...extra };
}

/** An endpoint on another node (shorthand). */
export function remote(
  pod: number,
  extra: Omit<EndpointInput, "pod" | "node"> = {},
): EndpointInput {
  return { pod, node: OTHER_NODE, ...extra };
}

/** One port of an {@link endpointSlice}. */
export interface EndpointPortInput {
  /** Must equal the Service port's name. */
  readonly name?: string;
  /** Default TCP. */
  readonly protocol?: "TCP" | "UDP";
  /** Target port on the pods. */
  readonly port: number;
}

/** An EndpointSlice of Service `serviceName` (IPv4 unless `family` says IPv6). */
export function endpointSlice(
  serviceName: string,
  input: {
    readonly family?: "IPv4" | "IPv6";
    readonly ports: readonly EndpointPortInput[];
    readonly endpoints: readonly EndpointInput[];
    /** Slice name suffix; default the family. */
    readonly suffix?: string;
  },
): Record<string, unknown> {
  const family = input.family ?? "IPv4";
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: `${serviceName}-${input.suffix ?? family.toLowerCase()}`,
      namespace: "default",
      labels: { [SERVICE_NAME_LABEL]: serviceName },
    },
    addressType: family,
    ports: input.ports.map((p) => ({
      name: p.name ?? "",
      protocol: p.protocol ?? "TCP",
      port: p.port,
    })),
    endpoints: input.endpoints.map((ep) => {
      const ready = ep.ready ?? true;
      return {
        addresses: [family === "IPv4" ? podIPv4(ep.pod) : podIPv6(ep.pod)],
        conditions: {
          ready,
          serving: ep.serving ?? ready,
          terminating: ep.terminating ?? false,
        },
        nodeName: ep.node ?? THIS_NODE,
        targetRef: { kind: "Pod", namespace: "default", name: `pod${ep.pod}` },
      };
    }),
  };
}

/** The Node object of this node: primary IPs = its addresses on the client link. */
export function thisNode(): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: THIS_NODE, labels: { "kubernetes.io/hostname": THIS_NODE } },
    spec: { podCIDRs: ["198.18.1.0/24", "fd00:1::/64"] },
    status: {
      addresses: [
        { type: "InternalIP", address: NODE_PRIMARY_IPV4 },
        { type: "InternalIP", address: NODE_PRIMARY_IPV6 },
        { type: "Hostname", address: THIS_NODE },
      ],
    },
  };
}
