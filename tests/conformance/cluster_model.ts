/**
 * The generated cluster as typed data (what the generator decides) and its rendering into the
 * API objects written to the kube-apiserver: Services, their LoadBalancer status, and
 * EndpointSlices. Also the API operations that turn one round's cluster into the next. Pure.
 *
 * @module
 */
import { LAB_PODS, type LabFamily, type LabPod, podAddress } from "../netns/two_node_plan.ts";

/** A transport protocol of a service port. */
export type Protocol = "TCP" | "UDP" | "SCTP";

/** One entry of a Service's `spec.ports`. */
export interface PortModel {
  /** Port name ("" only when it is the only port). */
  readonly name: string;
  /** Protocol. */
  readonly protocol: Protocol;
  /** Service port. */
  readonly port: number;
  /** NodePort, for NodePort and LoadBalancer services that allocate them. */
  readonly nodePort: number | null;
  /** `targetPort` (kube-proxy never reads it; the slices say where traffic goes). */
  readonly targetPort: number | string;
}

/** One endpoint of a slice: a lab pod and what the slice says about it. */
export interface EndpointModel {
  /** Lab pod name (`a0`, `b2`...). */
  readonly pod: string;
  /** `conditions.ready`; null leaves it out. */
  readonly ready: boolean | null;
  /** `conditions.serving`; null leaves it out. */
  readonly serving: boolean | null;
  /** `conditions.terminating`; null leaves it out. */
  readonly terminating: boolean | null;
  /** Whether `nodeName` (the pod's node) is set. */
  readonly nodeName: boolean;
  /** `zone`, or null. */
  readonly zone: string | null;
  /** `hints.forZones`, or null without zone hints. */
  readonly hintZones: readonly string[] | null;
  /** `hints.forNodes`, or null without node hints. */
  readonly hintNodes: readonly string[] | null;
}

/** One port of a slice. */
export interface SlicePortModel {
  /** Must equal a service port's name to be used. */
  readonly name: string;
  /** Protocol. */
  readonly protocol: Protocol;
  /** Target port on the pods. */
  readonly port: number;
}

/** One EndpointSlice of a service. */
export interface SliceModel {
  /** Object name. */
  readonly name: string;
  /** `addressType`. */
  readonly family: LabFamily;
  /** Ports. */
  readonly ports: readonly SlicePortModel[];
  /** Endpoints. */
  readonly endpoints: readonly EndpointModel[];
}

/** One LoadBalancer ingress entry (`status.loadBalancer.ingress[]`). */
export interface IngressModel {
  /** `ip`, or null for a hostname-only entry. */
  readonly ip: string | null;
  /** `hostname`, or null. */
  readonly hostname: string | null;
  /** `ipMode`, or null. */
  readonly ipMode: "VIP" | "Proxy" | null;
}

/** A Service kind as kube-proxy sees it. */
export type ServiceType = "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName";

/** A Service and its EndpointSlices. */
export interface ServiceModel {
  /** Object name (namespace `default`). */
  readonly name: string;
  /** `spec.type`. */
  readonly type: ServiceType;
  /** `clusterIP: None`. */
  readonly headless: boolean;
  /** `spec.ipFamilyPolicy`. */
  readonly ipFamilyPolicy: "SingleStack" | "PreferDualStack" | "RequireDualStack";
  /** `spec.ipFamilies`, primary first. */
  readonly ipFamilies: readonly LabFamily[];
  /** `spec.clusterIPs`, in `ipFamilies` order (empty for headless and ExternalName). */
  readonly clusterIPs: readonly string[];
  /** `spec.ports`. */
  readonly ports: readonly PortModel[];
  /** `spec.externalIPs`. */
  readonly externalIPs: readonly string[];
  /** `status.loadBalancer.ingress`. */
  readonly ingress: readonly IngressModel[];
  /** `spec.loadBalancerSourceRanges`. */
  readonly sourceRanges: readonly string[];
  /** `spec.allocateLoadBalancerNodePorts` (LoadBalancer only), or null. */
  readonly allocateNodePorts: boolean | null;
  /** `spec.externalTrafficPolicy`, or null (the API's default). */
  readonly externalTrafficPolicy: "Cluster" | "Local" | null;
  /** `spec.internalTrafficPolicy`, or null. */
  readonly internalTrafficPolicy: "Cluster" | "Local" | null;
  /** ClientIP affinity timeout in seconds, or null for no affinity. */
  readonly affinitySeconds: number | null;
  /** `spec.healthCheckNodePort` (LoadBalancer with eTP Local), or null. */
  readonly healthCheckNodePort: number | null;
  /** `spec.trafficDistribution`, or null. */
  readonly trafficDistribution: string | null;
  /** The service's EndpointSlices. */
  readonly slices: readonly SliceModel[];
}

/** One state of the generated cluster. */
export interface ClusterModel {
  /** Every service, in creation order. */
  readonly services: readonly ServiceModel[];
}

/** The namespace every generated object lives in. */
export const CASE_NAMESPACE = "default";
/** Label on every generated object, so a run can find and delete what it wrote. */
export const GENERATED_LABEL = "conformance.kproxy.dev/seed";

/** The lab pod of an endpoint. */
export function endpointPod(ep: EndpointModel): LabPod {
  const pod = LAB_PODS.find((p) => p.name === ep.pod);
  if (pod === undefined) throw new Error(`Unknown lab pod ${ep.pod}`);
  return pod;
}

/** True when kube-proxy programs anything for the service (not headless, not ExternalName). */
export function isProxied(svc: ServiceModel): boolean {
  return !svc.headless && svc.type !== "ExternalName";
}

/** The ClusterIP of `family`, or null. */
export function clusterIPOf(svc: ServiceModel, family: LabFamily): string | null {
  const i = svc.ipFamilies.indexOf(family);
  return i < 0 || !isProxied(svc) ? null : svc.clusterIPs[i] ?? null;
}

/** The family of an address. */
export function familyOf(ip: string): LabFamily {
  return ip.includes(":") ? "IPv6" : "IPv4";
}

/** The Service object (without status) as the API takes it. */
export function serviceObject(svc: ServiceModel, seed: number): Record<string, unknown> {
  const metadata = {
    name: svc.name,
    namespace: CASE_NAMESPACE,
    labels: { [GENERATED_LABEL]: String(seed) },
  };
  const ports = svc.ports.map((p) => ({
    ...(p.name === "" ? {} : { name: p.name }),
    protocol: p.protocol,
    port: p.port,
    targetPort: p.targetPort,
    ...(p.nodePort === null ? {} : { nodePort: p.nodePort }),
  }));
  if (svc.type === "ExternalName") {
    return {
      apiVersion: "v1",
      kind: "Service",
      metadata,
      spec: { type: "ExternalName", externalName: `${svc.name}.example.com`, ports },
    };
  }
  const spec: Record<string, unknown> = {
    type: svc.type,
    ipFamilyPolicy: svc.ipFamilyPolicy,
    ipFamilies: [...svc.ipFamilies],
    ports,
  };
  if (svc.headless) {
    spec["clusterIP"] = "None";
    spec["clusterIPs"] = ["None"];
  } else {
    spec["clusterIP"] = svc.clusterIPs[0];
    spec["clusterIPs"] = [...svc.clusterIPs];
  }
  if (svc.externalIPs.length > 0) spec["externalIPs"] = [...svc.externalIPs];
  if (svc.sourceRanges.length > 0) spec["loadBalancerSourceRanges"] = [...svc.sourceRanges];
  if (svc.allocateNodePorts !== null) spec["allocateLoadBalancerNodePorts"] = svc.allocateNodePorts;
  if (svc.externalTrafficPolicy !== null) {
    spec["externalTrafficPolicy"] = svc.externalTrafficPolicy;
  }
  if (svc.internalTrafficPolicy !== null) {
    spec["internalTrafficPolicy"] = svc.internalTrafficPolicy;
  }
  if (svc.affinitySeconds !== null) {
    spec["sessionAffinity"] = "ClientIP";
    spec["sessionAffinityConfig"] = { clientIP: { timeoutSeconds: svc.affinitySeconds } };
  }
  if (svc.healthCheckNodePort !== null) spec["healthCheckNodePort"] = svc.healthCheckNodePort;
  if (svc.trafficDistribution !== null) spec["trafficDistribution"] = svc.trafficDistribution;
  return { apiVersion: "v1", kind: "Service", metadata, spec };
}

/** The Service's `status` (LoadBalancer ingress), or null when it has none. */
export function serviceStatus(svc: ServiceModel): Record<string, unknown> | null {
  if (svc.type !== "LoadBalancer" || svc.ingress.length === 0) return null;
  return {
    loadBalancer: {
      ingress: svc.ingress.map((i) => ({
        ...(i.ip === null ? {} : { ip: i.ip }),
        ...(i.hostname === null ? {} : { hostname: i.hostname }),
        ...(i.ipMode === null ? {} : { ipMode: i.ipMode }),
      })),
    },
  };
}

/** An EndpointSlice object as the API takes it. */
export function sliceObject(
  svc: ServiceModel,
  slice: SliceModel,
  seed: number,
): Record<string, unknown> {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: slice.name,
      namespace: CASE_NAMESPACE,
      labels: {
        "kubernetes.io/service-name": svc.name,
        "endpointslice.kubernetes.io/managed-by": "conformance.kproxy.dev",
        [GENERATED_LABEL]: String(seed),
      },
    },
    addressType: slice.family,
    ports: slice.ports.map((p) => ({
      ...(p.name === "" ? {} : { name: p.name }),
      protocol: p.protocol,
      port: p.port,
    })),
    endpoints: slice.endpoints.map((ep) => {
      const pod = endpointPod(ep);
      const conditions: Record<string, boolean> = {};
      if (ep.ready !== null) conditions["ready"] = ep.ready;
      if (ep.serving !== null) conditions["serving"] = ep.serving;
      if (ep.terminating !== null) conditions["terminating"] = ep.terminating;
      const hints: Record<string, unknown> = {};
      if (ep.hintZones !== null) hints["forZones"] = ep.hintZones.map((name) => ({ name }));
      if (ep.hintNodes !== null) hints["forNodes"] = ep.hintNodes.map((name) => ({ name }));
      return {
        addresses: [podAddress(pod, slice.family)],
        conditions,
        ...(ep.nodeName ? { nodeName: pod.node === "A" ? "node-a" : "node-b" } : {}),
        ...(ep.zone === null ? {} : { zone: ep.zone }),
        ...(Object.keys(hints).length === 0 ? {} : { hints }),
        targetRef: { kind: "Pod", namespace: CASE_NAMESPACE, name: pod.name },
      };
    }),
  };
}

/** One write to the API server. */
export type ApiOperation =
  | {
    readonly op: "create" | "replace";
    readonly kind: "Service";
    readonly name: string;
    readonly object: Record<string, unknown>;
  }
  | {
    readonly op: "status";
    readonly kind: "Service";
    readonly name: string;
    readonly status: Record<string, unknown>;
  }
  | {
    readonly op: "create" | "replace";
    readonly kind: "EndpointSlice";
    readonly name: string;
    readonly object: Record<string, unknown>;
  }
  | { readonly op: "delete"; readonly kind: "Service" | "EndpointSlice"; readonly name: string };

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The writes that turn cluster `from` (null: nothing) into `to`, in an order the API accepts:
 * services first (deletions, then creations and replacements, then status), then slices.
 */
export function apiOperations(
  from: ClusterModel | null,
  to: ClusterModel,
  seed: number,
): ApiOperation[] {
  const ops: ApiOperation[] = [];
  const before = new Map((from?.services ?? []).map((s) => [s.name, s]));
  const after = new Map(to.services.map((s) => [s.name, s]));
  const slicesOf = (c: ClusterModel | null) => {
    const m = new Map<string, Record<string, unknown>>();
    for (const svc of c?.services ?? []) {
      for (const slice of svc.slices) m.set(slice.name, sliceObject(svc, slice, seed));
    }
    return m;
  };
  const oldSlices = slicesOf(from);
  const newSlices = slicesOf(to);
  for (const name of oldSlices.keys()) {
    if (!newSlices.has(name)) ops.push({ op: "delete", kind: "EndpointSlice", name });
  }
  for (const name of before.keys()) {
    if (!after.has(name)) ops.push({ op: "delete", kind: "Service", name });
  }
  for (const svc of to.services) {
    const old = before.get(svc.name);
    const object = serviceObject(svc, seed);
    if (old === undefined) ops.push({ op: "create", kind: "Service", name: svc.name, object });
    else if (!sameJson(serviceObject(old, seed), object)) {
      ops.push({ op: "replace", kind: "Service", name: svc.name, object });
    }
    const status = serviceStatus(svc);
    const oldStatus = old === undefined ? null : serviceStatus(old);
    if (!sameJson(status, oldStatus)) {
      ops.push({
        op: "status",
        kind: "Service",
        name: svc.name,
        status: status ?? { loadBalancer: {} },
      });
    }
  }
  for (const [name, object] of newSlices) {
    const old = oldSlices.get(name);
    if (old === undefined) ops.push({ op: "create", kind: "EndpointSlice", name, object });
    else if (!sameJson(old, object)) {
      ops.push({ op: "replace", kind: "EndpointSlice", name, object });
    }
  }
  return ops;
}
