/**
 * Test and bench fixtures for the nftables backend: snapshots built by kproxy's own reconciler
 * from plain objects. IP plan: node 198.18.0.10, pods in 198.18.1.0–198.18.118.255 (reused
 * beyond 30,000 endpoints), ClusterIPs from 198.18.128.0, external IPs 198.18.200.0/24,
 * IPv6 ClusterIPs fd00:128::/64 and pods fd00:1::/64.
 */
import { type KubeObject, parseKubeObject } from "../../model/kube_object.ts";
import {
  buildSnapshot,
  initialProxyState,
  type ProxyState,
  reconcile,
  type SnapshotSettings,
} from "../../snapshot/proxy_state.ts";
import type { ProxySnapshot } from "../../snapshot/types.ts";

/** Settings of the fixture node. */
export const FIXTURE_SETTINGS: SnapshotSettings = Object.freeze({
  nodeName: "node-a",
  clusterCIDRs: ["198.18.0.0/17", "fd00:1::/64"],
  masqueradeAll: false,
  masqueradeBit: 14,
  localhostNodePorts: true,
  nodePortAddresses: [],
  hostAddresses: [],
});

/** Parses raw objects, throwing on any invalid one. */
export function objects(raws: readonly unknown[]): KubeObject[] {
  return raws.map((raw) => {
    const r = parseKubeObject(raw);
    if (r.ok !== true) throw new Error(`Cannot parse fixture object: ${JSON.stringify(r)}`);
    return r.value;
  });
}

/** The ClusterIP of synthetic service `i`. */
export function syntheticClusterIP(i: number): string {
  return `198.18.${128 + (i >> 8)}.${i & 255}`;
}

/** The address of synthetic endpoint `k`. */
export function syntheticPodIP(k: number): string {
  const n = (k % 30000) + 256;
  return `198.18.${n >> 8}.${n & 255}`;
}

/** Raw Service + EndpointSlice of synthetic service `i` with `endpoints` endpoints. */
export function syntheticService(
  i: number,
  endpoints: number,
  options: { readonly firstEndpoint?: number; readonly protocol?: "TCP" | "UDP" } = {},
): unknown[] {
  const name = `svc-${i}`;
  const protocol = options.protocol ?? "TCP";
  const first = options.firstEndpoint ?? i * endpoints;
  return [
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace: "bench" },
      spec: {
        clusterIP: syntheticClusterIP(i),
        clusterIPs: [syntheticClusterIP(i)],
        ports: [{ name: "http", protocol, port: 80, targetPort: 8080 }],
      },
    },
    {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: {
        name: `${name}-a`,
        namespace: "bench",
        labels: { "kubernetes.io/service-name": name },
      },
      addressType: "IPv4",
      ports: [{ name: "http", protocol, port: 8080 }],
      endpoints: Array.from({ length: endpoints }, (_, j) => ({
        addresses: [syntheticPodIP(first + j)],
        nodeName: j % 2 === 0 ? "node-a" : "node-b",
      })),
    },
  ];
}

/** A reconciler state holding `services` synthetic services of `endpoints` endpoints each. */
export function syntheticState(services: number, endpoints: number): ProxyState {
  const raws: unknown[] = [];
  for (let i = 0; i < services; i++) raws.push(...syntheticService(i, endpoints));
  return reconcile(initialProxyState(FIXTURE_SETTINGS), [
    { type: "replace", objects: objects(raws) },
  ]).state;
}

/** A snapshot from raw objects with the fixture settings (and optional overrides). */
export function snapshotOf(
  raws: readonly unknown[],
  settings: Partial<SnapshotSettings> = {},
): ProxySnapshot {
  return buildSnapshot(objects(raws), { ...FIXTURE_SETTINGS, ...settings });
}

/** A raw Service in namespace `default` with the given spec (and optional LB ingress IPs). */
export function rawService(
  name: string,
  spec: Record<string, unknown>,
  lbIPs: readonly string[] = [],
): unknown {
  const clusterIPs = spec["clusterIPs"] as string[] | undefined;
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: "default" },
    spec: { clusterIP: clusterIPs?.[0], ...spec },
    ...(lbIPs.length > 0
      ? { status: { loadBalancer: { ingress: lbIPs.map((ip) => ({ ip })) } } }
      : {}),
  };
}

/** One fixture endpoint: address, node, and optional conditions. */
export interface RawEndpoint {
  /** Pod address. */
  readonly ip: string;
  /** Node name (default node-a, this node). */
  readonly node?: string;
  /** `conditions.ready` (default true). */
  readonly ready?: boolean;
  /** `conditions.serving`. */
  readonly serving?: boolean;
  /** `conditions.terminating`. */
  readonly terminating?: boolean;
}

/** A raw EndpointSlice of Service `service` with one port. */
export function rawSlice(
  service: string,
  port: { readonly name?: string; readonly protocol?: string; readonly port: number },
  endpoints: readonly RawEndpoint[],
  suffix = "a",
): unknown {
  const family = endpoints[0]?.ip.includes(":") ? "IPv6" : "IPv4";
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: `${service}-${suffix}`,
      namespace: "default",
      labels: { "kubernetes.io/service-name": service },
    },
    addressType: family,
    ports: [{ name: port.name ?? "", protocol: port.protocol ?? "TCP", port: port.port }],
    endpoints: endpoints.map((ep) => ({
      addresses: [ep.ip],
      conditions: {
        ready: ep.ready ?? true,
        ...(ep.serving !== undefined ? { serving: ep.serving } : {}),
        ...(ep.terminating !== undefined ? { terminating: ep.terminating } : {}),
      },
      nodeName: ep.node ?? "node-a",
    })),
  };
}

/** The fixture Node object (InternalIP 198.18.0.10, fd00::10). */
export function rawNode(): unknown {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: "node-a" },
    status: {
      addresses: [
        { type: "InternalIP", address: "198.18.0.10" },
        { type: "InternalIP", address: "fd00::10" },
      ],
    },
  };
}
