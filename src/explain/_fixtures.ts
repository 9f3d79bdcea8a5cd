/**
 * Test fixtures for explain (private to src/explain): snapshots built by kproxy's own reconciler
 * from plain objects.
 *
 * IP plan: node-a 198.18.0.10 / fd00::10 (zone a), pods 198.18.1.0/24 and fd00:1::/64, ClusterIPs
 * 198.18.128.0/17 and fd00:128::/64, external and LoadBalancer IPs 198.18.200.0/24, outside
 * clients 198.19.0.0/24.
 */
import { type KubeObject, parseKubeObject } from "../model/kube_object.ts";
import { buildSnapshot, type SnapshotSettings } from "../snapshot/proxy_state.ts";
import type { ProxySnapshot } from "../snapshot/types.ts";

/** This node's primary IPv4 address. */
export const NODE_IP = "198.18.0.10";
/** A pod on this node that is no endpoint. */
export const POD_CLIENT = "198.18.1.99";
/** A client outside the cluster. */
export const OUTSIDE_CLIENT = "198.19.0.2";

/** The fixture node's settings. */
export const SETTINGS: SnapshotSettings = Object.freeze({
  nodeName: "node-a",
  clusterCIDRs: ["198.18.1.0/24", "fd00:1::/64"],
  masqueradeAll: false,
  masqueradeBit: 14,
  localhostNodePorts: false,
  nodePortAddresses: ["primary"],
  hostAddresses: [],
});

/** One endpoint of {@link slice}. */
export interface EndpointSpec {
  /** Address. */
  readonly ip: string;
  /** Node (default node-a). */
  readonly node?: string;
  /** Zone. */
  readonly zone?: string;
  /** `conditions.ready` (default true). */
  readonly ready?: boolean;
  /** `conditions.serving` (default: ready). */
  readonly serving?: boolean;
  /** `conditions.terminating` (default false). */
  readonly terminating?: boolean;
  /** `hints.forZones`. */
  readonly forZones?: readonly string[];
  /** `hints.forNodes`. */
  readonly forNodes?: readonly string[];
}

/** A Service in `default` named `name` with `spec` (and LoadBalancer ingress IPs). */
export function svc(name: string, spec: Record<string, unknown>, lbIPs: readonly string[] = []) {
  const clusterIPs = spec["clusterIPs"] as string[];
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: "default" },
    spec: { clusterIP: clusterIPs[0], ...spec },
    ...(lbIPs.length > 0
      ? { status: { loadBalancer: { ingress: lbIPs.map((ip) => ({ ip })) } } }
      : {}),
  };
}

/** An EndpointSlice of Service `service` with one port named `http` (TCP unless given). */
export function slice(
  service: string,
  endpoints: readonly EndpointSpec[],
  port: { readonly name?: string; readonly port?: number; readonly protocol?: string } = {},
) {
  const family = endpoints[0]?.ip.includes(":") ? "IPv6" : "IPv4";
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: `${service}-${family.toLowerCase()}`,
      namespace: "default",
      labels: { "kubernetes.io/service-name": service },
    },
    addressType: family,
    ports: [{
      name: port.name ?? "http",
      protocol: port.protocol ?? "TCP",
      port: port.port ?? 8080,
    }],
    endpoints: endpoints.map((ep) => {
      const ready = ep.ready ?? true;
      const hints: Record<string, unknown> = {};
      if (ep.forZones) hints["forZones"] = ep.forZones.map((name) => ({ name }));
      if (ep.forNodes) hints["forNodes"] = ep.forNodes.map((name) => ({ name }));
      return {
        addresses: [ep.ip],
        conditions: {
          ready,
          serving: ep.serving ?? ready,
          terminating: ep.terminating ?? false,
        },
        nodeName: ep.node ?? "node-a",
        ...(ep.zone === undefined ? {} : { zone: ep.zone }),
        ...(Object.keys(hints).length > 0 ? { hints } : {}),
      };
    }),
  };
}

/** The Node object of node-a (zone a). */
export function node() {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: "node-a",
      labels: { "topology.kubernetes.io/zone": "a", "kubernetes.io/hostname": "node-a" },
    },
    status: {
      addresses: [
        { type: "InternalIP", address: NODE_IP },
        { type: "InternalIP", address: "fd00::10" },
      ],
    },
  };
}

function parsed(raws: readonly unknown[]): KubeObject[] {
  return raws.map((raw) => {
    const r = parseKubeObject(raw, "explain fixture");
    if (r.ok !== true) throw new Error(`Cannot parse fixture object: ${JSON.stringify(r)}`);
    return r.value;
  });
}

/** A snapshot of node-a from raw objects (the Node is added), with optional setting overrides. */
export function snapshotOf(
  raws: readonly unknown[],
  settings: Partial<SnapshotSettings> = {},
): ProxySnapshot {
  return buildSnapshot(parsed([node(), ...raws]), { ...SETTINGS, ...settings });
}
