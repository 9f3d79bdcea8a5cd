/**
 * Named snapshots for the iptables tests (goldens, fake round trips, `iptables-restore --test`).
 *
 * IP plan: node-a 198.18.0.10 / fd00::10, pods 198.18.1.0/24 / fd00:1::/64 (the cluster CIDRs),
 * services 198.18.128.0/17 / fd00:80::/64, external and LB IPs 198.18.200.0/24 and
 * 198.18.250.0/24, external clients 198.19.0.0/24.
 *
 * @module
 */
import { type KubeObject, parseKubeObject } from "../../model/kube_object.ts";
import { buildSnapshot, type SnapshotSettings } from "../../snapshot/proxy_state.ts";
import type { ProxySnapshot } from "../../snapshot/types.ts";
import { loadManifests } from "../../source/manifest_loader.ts";

/** The settings every case starts from. */
export const BASE_SETTINGS: SnapshotSettings = {
  nodeName: "node-a",
  clusterCIDRs: ["198.18.1.0/24", "fd00:1::/64"],
  masqueradeAll: false,
  masqueradeBit: 14,
  localhostNodePorts: true,
  nodePortAddresses: [],
  hostAddresses: [],
};

/** Parses raw objects, failing loudly on any invalid one. */
export function objects(raws: readonly unknown[]): KubeObject[] {
  return raws.map((raw) => {
    const r = parseKubeObject(raw, "test");
    if (r.ok !== true) throw new Error(`bad test object: ${JSON.stringify(r)}`);
    return r.value;
  });
}

/** A Node object for node-a. */
export function nodeA(): unknown {
  return {
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

/** Options of {@link service}. */
export interface ServiceSpec {
  readonly ns?: string;
  readonly type?: "ClusterIP" | "NodePort" | "LoadBalancer";
  readonly clusterIPs: readonly string[];
  readonly ports: readonly { name?: string; protocol?: string; port: number; nodePort?: number }[];
  readonly externalIPs?: readonly string[];
  readonly lbIPs?: readonly string[];
  readonly sourceRanges?: readonly string[];
  readonly etp?: "Cluster" | "Local";
  readonly itp?: "Cluster" | "Local";
  readonly hcNodePort?: number;
  readonly affinity?: number;
}

/** A Service object. */
export function service(name: string, spec: ServiceSpec): unknown {
  return {
    kind: "Service",
    metadata: { name, namespace: spec.ns ?? "default" },
    spec: {
      type: spec.type ?? "ClusterIP",
      clusterIP: spec.clusterIPs[0],
      clusterIPs: spec.clusterIPs,
      ports: spec.ports,
      ...(spec.externalIPs ? { externalIPs: spec.externalIPs } : {}),
      ...(spec.sourceRanges ? { loadBalancerSourceRanges: spec.sourceRanges } : {}),
      ...(spec.etp ? { externalTrafficPolicy: spec.etp } : {}),
      ...(spec.itp ? { internalTrafficPolicy: spec.itp } : {}),
      ...(spec.hcNodePort ? { healthCheckNodePort: spec.hcNodePort } : {}),
      ...(spec.affinity
        ? {
          sessionAffinity: "ClientIP",
          sessionAffinityConfig: { clientIP: { timeoutSeconds: spec.affinity } },
        }
        : {}),
    },
    ...(spec.lbIPs
      ? { status: { loadBalancer: { ingress: spec.lbIPs.map((ip) => ({ ip })) } } }
      : {}),
  };
}

/** One endpoint of {@link slice}: address, node, and optional conditions. */
export interface EndpointSpec {
  readonly ip: string;
  readonly node?: string;
  readonly ready?: boolean;
  readonly serving?: boolean;
  readonly terminating?: boolean;
}

/** An EndpointSlice for service `svc`. */
export function slice(
  svc: string,
  name: string,
  spec: {
    ns?: string;
    family?: "IPv4" | "IPv6";
    ports: readonly { name?: string; protocol?: string; port: number }[];
    endpoints: readonly EndpointSpec[];
  },
): unknown {
  return {
    kind: "EndpointSlice",
    metadata: {
      name,
      namespace: spec.ns ?? "default",
      labels: { "kubernetes.io/service-name": svc },
    },
    addressType: spec.family ?? "IPv4",
    ports: spec.ports,
    endpoints: spec.endpoints.map((e) => ({
      addresses: [e.ip],
      nodeName: e.node ?? "node-b",
      conditions: {
        ready: e.ready ?? true,
        serving: e.serving ?? e.ready ?? true,
        terminating: e.terminating ?? false,
      },
    })),
  };
}

/** A named test case. */
export interface TestCase {
  /** Golden file base name. */
  readonly name: string;
  /** What it shows. */
  readonly description: string;
  /** Builds the snapshot. */
  readonly snapshot: () => Promise<ProxySnapshot> | ProxySnapshot;
}

function build(raws: readonly unknown[], settings: Partial<SnapshotSettings> = {}) {
  return buildSnapshot(objects([nodeA(), ...raws]), { ...BASE_SETTINGS, ...settings });
}

const HTTP = [{ name: "http", protocol: "TCP", port: 80 }];
const HTTP_EP = [{ name: "http", protocol: "TCP", port: 8080 }];

/** Every golden case. */
export const TEST_CASES: readonly TestCase[] = [
  {
    name: "examples",
    description: "deploy/examples as node-a",
    snapshot: async () => {
      const dir = new URL("../../../deploy/examples", import.meta.url).pathname;
      const { objects: objs, errors } = await loadManifests(dir);
      if (errors.length > 0) throw new Error(errors.map((e) => e.message).join("; "));
      return buildSnapshot(objs, BASE_SETTINGS);
    },
  },
  {
    name: "empty",
    description: "no services: only the fixed chains",
    snapshot: () => build([]),
  },
  {
    name: "no_endpoints",
    description: "every kind of destination REJECTed in filter when there are no endpoints",
    snapshot: () =>
      build([
        service("lonely", {
          type: "LoadBalancer",
          clusterIPs: ["198.18.128.30"],
          ports: [{ name: "http", protocol: "TCP", port: 80, nodePort: 30030 }],
          externalIPs: ["198.18.200.30"],
          lbIPs: ["198.18.250.30"],
          sourceRanges: ["198.19.0.0/24"],
        }),
      ]),
  },
  {
    name: "etp_local_no_local_endpoints",
    description: "externalTrafficPolicy Local, endpoints only elsewhere: external DROP, EXT chain",
    snapshot: () =>
      build([
        service("edge", {
          type: "LoadBalancer",
          clusterIPs: ["198.18.128.31"],
          ports: [{ name: "http", protocol: "TCP", port: 80, nodePort: 30031 }],
          lbIPs: ["198.18.250.31"],
          etp: "Local",
          hcNodePort: 32031,
        }),
        slice("edge", "edge-1", {
          ports: HTTP_EP,
          endpoints: [{ ip: "198.18.1.31", node: "node-b" }],
        }),
      ]),
  },
  {
    name: "itp_local",
    description: "internalTrafficPolicy Local: SVL for one service, DROP for one with no local pod",
    snapshot: () =>
      build([
        service("near", {
          clusterIPs: ["198.18.128.32"],
          ports: HTTP,
          itp: "Local",
        }),
        slice("near", "near-1", {
          ports: HTTP_EP,
          endpoints: [{ ip: "198.18.1.32", node: "node-a" }, { ip: "198.18.1.33" }],
        }),
        service("far", { clusterIPs: ["198.18.128.33"], ports: HTTP, itp: "Local" }),
        slice("far", "far-1", { ports: HTTP_EP, endpoints: [{ ip: "198.18.1.34" }] }),
      ]),
  },
  {
    name: "nodeport_addresses",
    description: "--nodeport-addresses with loopback, localhost NodePorts off",
    snapshot: () =>
      build([
        service("np", {
          type: "NodePort",
          clusterIPs: ["198.18.128.34", "fd00:80::34"],
          ports: [{ name: "http", protocol: "TCP", port: 80, nodePort: 30034 }],
        }),
        slice("np", "np-4", { ports: HTTP_EP, endpoints: [{ ip: "198.18.1.35" }] }),
        slice("np", "np-6", {
          family: "IPv6",
          ports: HTTP_EP,
          endpoints: [{ ip: "fd00:1::35" }],
        }),
      ], {
        nodePortAddresses: ["198.18.0.0/24", "127.0.0.0/8", "fd00::/64", "::1/128"],
        hostAddresses: ["198.18.0.10", "127.0.0.1", "fd00::10", "::1"],
        localhostNodePorts: false,
      }),
  },
  {
    name: "masquerade_all",
    description: "--masquerade-all, no cluster CIDR, bit 5",
    snapshot: () =>
      build([
        service("m", {
          type: "NodePort",
          clusterIPs: ["198.18.128.35"],
          ports: [{ name: "http", protocol: "TCP", port: 80, nodePort: 30035 }],
          etp: "Local",
        }),
        slice("m", "m-1", {
          ports: HTTP_EP,
          endpoints: [{ ip: "198.18.1.36", node: "node-a" }],
        }),
      ], { masqueradeAll: true, clusterCIDRs: [], masqueradeBit: 5 }),
  },
  {
    name: "protocols_and_probabilities",
    description: "UDP and SCTP ports, five endpoints (1/5 … 1/2), unnamed port",
    snapshot: () =>
      build([
        service("multi", {
          clusterIPs: ["198.18.128.36"],
          ports: [
            { name: "dns", protocol: "UDP", port: 53 },
            { name: "sig", protocol: "SCTP", port: 3868 },
          ],
        }),
        slice("multi", "multi-1", {
          ports: [
            { name: "dns", protocol: "UDP", port: 5353 },
            { name: "sig", protocol: "SCTP", port: 3868 },
          ],
          endpoints: [1, 2, 3, 4, 5].map((i) => ({ ip: `198.18.1.${40 + i}` })),
        }),
        service("plain", { clusterIPs: ["198.18.128.37"], ports: [{ port: 8000 }] }),
        slice("plain", "plain-1", {
          ports: [{ port: 9000 }],
          endpoints: [{ ip: "198.18.1.50" }],
        }),
      ]),
  },
  {
    name: "source_ranges_with_node",
    description: "loadBalancerSourceRanges containing the node IP; affinity; terminating fallback",
    snapshot: () =>
      build([
        service("fw", {
          type: "LoadBalancer",
          clusterIPs: ["198.18.128.38"],
          ports: [{ name: "http", protocol: "TCP", port: 80, nodePort: 30038 }],
          lbIPs: ["198.18.250.38", "198.18.250.39"],
          sourceRanges: ["198.18.0.0/24", "198.19.0.0/24"],
          affinity: 300,
        }),
        slice("fw", "fw-1", {
          ports: HTTP_EP,
          endpoints: [
            { ip: "198.18.1.38", ready: false, serving: true, terminating: true },
            { ip: "198.18.1.39", ready: false, serving: false, terminating: true },
          ],
        }),
      ]),
  },
  {
    name: "ipv6_only",
    description: "an IPv6-only service with external IP",
    snapshot: () =>
      build([
        service("six", {
          clusterIPs: ["fd00:80::40"],
          ports: HTTP,
          externalIPs: ["fd00:200::40"],
        }),
        slice("six", "six-1", {
          family: "IPv6",
          ports: HTTP_EP,
          endpoints: [{ ip: "fd00:1::40" }, { ip: "fd00:1::41", node: "node-a" }],
        }),
      ]),
  },
];
