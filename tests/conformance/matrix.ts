/**
 * The packet matrix: a cluster → every probe worth sending. For every service port × address
 * kind (ClusterIP, a ClusterIP's unused port, NodePort on each of node A's addresses and on
 * localhost, ExternalIP, LoadBalancer IP) × source (pod on A, pod on B, node A itself, the
 * external client) × family, one cell; plus the health answers (`/healthz`, `/livez`, every
 * healthCheckNodePort). Pure.
 *
 * @module
 */
import {
  type LabFamily,
  LOCALHOST,
  NODE_A_INTERNAL,
  NODE_A_PRIMARY,
  NODE_A_SECONDARY,
  SOURCE_POD_A,
  SOURCE_POD_B,
  UNALLOCATED_CLUSTER_IP,
} from "../netns/two_node_plan.ts";
import { CLOSED_POD_PORT } from "./generator.ts";
import {
  clusterIPOf,
  type ClusterModel,
  familyOf,
  isProxied,
  type PortModel,
  type Protocol,
  type ServiceModel,
} from "./cluster_model.ts";

/** Where a probe is sent to, in kube-proxy's words. */
export type AddressKind =
  | "ClusterIP"
  | "ClusterIP unused port"
  | "unallocated ClusterIP"
  | "NodePort primary"
  | "NodePort secondary"
  | "NodePort internal"
  | "NodePort localhost"
  | "ExternalIP"
  | "LoadBalancer IP";

/** Where a probe is sent from. */
export type Source = "pod on A" | "pod on B" | "node A" | "client";

/** Every source, in matrix order. */
export const SOURCES: readonly Source[] = ["pod on A", "pod on B", "node A", "client"];

/** The lab role (namespace) of a source. */
export function sourceRole(source: Source): string {
  switch (source) {
    case "pod on A":
      return SOURCE_POD_A;
    case "pod on B":
      return SOURCE_POD_B;
    case "node A":
      return "nodeA";
    case "client":
      return "client";
  }
}

/** One cell: a packet (repeated `count` times) whose outcome both proxies must agree on. */
export interface Cell {
  /** Stable key: service, port, family, address kind, address, source. */
  readonly id: string;
  /** Service name. */
  readonly service: string;
  /** Service port name ("" for an unnamed port). */
  readonly portName: string;
  /** Protocol. */
  readonly protocol: Protocol;
  /** Family of the destination. */
  readonly family: LabFamily;
  /** What the destination is. */
  readonly kind: AddressKind;
  /** Destination address. */
  readonly ip: string;
  /** Destination port. */
  readonly port: number;
  /** Where it is sent from. */
  readonly source: Source;
  /** Probes to send: enough to see every endpoint of a spread. */
  readonly count: number;
  /** The service has ClientIP affinity: one endpoint answers everything, which one is luck. */
  readonly affinity: boolean;
  /**
   * With affinity, some endpoints of the port refuse (their pod port is closed) while others
   * answer: whether the lucky one answers is luck too.
   */
  readonly luckyReachability?: boolean;
}

/** One health question. */
export interface HealthCheck {
  /** Stable key. */
  readonly id: string;
  /** `/healthz`, `/livez`, or a service's healthCheckNodePort. */
  readonly kind: "healthz" | "livez" | "healthCheckNodePort";
  /** The service, for healthCheckNodePort. */
  readonly service: string | null;
  /** Address to ask. */
  readonly ip: string;
  /** Port to ask. */
  readonly port: number;
  /** Path. */
  readonly path: string;
  /** Where it is asked from. */
  readonly source: Source;
}

/** Everything to probe in one round. */
export interface Matrix {
  /** Packet cells. */
  readonly cells: readonly Cell[];
  /** Health questions. */
  readonly health: readonly HealthCheck[];
}

/** The healthz port both proxies serve on node A. */
export const HEALTHZ_PORT = 10256;
/** A port no generated service uses: the "ClusterIP, unused port" cells. */
export const UNUSED_SERVICE_PORT = 1;

/**
 * Distinct endpoints (pod and target port) the slices of `family` give `port`: an upper bound of
 * the answers a cell can see. A pod counts once per target port: slices may send one service
 * port to several ports of the same pod (`a1:8081`, `a1:8082`), and each must be seen.
 */
function endpointsOf(svc: ServiceModel, family: LabFamily, port: PortModel): number {
  const endpoints = new Set<string>();
  for (const slice of svc.slices) {
    if (slice.family !== family) continue;
    for (const p of slice.ports) {
      if (p.name !== port.name || p.protocol !== port.protocol) continue;
      for (const ep of slice.endpoints) endpoints.add(`${ep.pod}:${p.port}`);
    }
  }
  return endpoints.size;
}

/**
 * Probes per cell: with n possible endpoints, 3n + 3, so a missed one has odds below 1 in 30
 * ((1 - 1/n)^(3n+3)) up to the cap of 24 (n = 7); a recheck sends three times as many.
 */
export function probeCount(endpoints: number, affinity: boolean): number {
  if (affinity) return 4;
  return Math.min(24, Math.max(4, 3 * endpoints + 3));
}

/** True when some slice sends this port of `family` to a closed pod port. */
function closedEndpoints(svc: ServiceModel, family: LabFamily, port: PortModel): boolean {
  return svc.slices.some((slice) =>
    slice.family === family && slice.endpoints.length > 0 &&
    slice.ports.some((p) =>
      p.name === port.name && p.protocol === port.protocol && p.port === CLOSED_POD_PORT
    )
  );
}

interface Destination {
  readonly kind: AddressKind;
  readonly ip: string;
  readonly port: number;
  readonly sources: readonly Source[];
}

function destinations(svc: ServiceModel, port: PortModel, family: LabFamily): Destination[] {
  const out: Destination[] = [];
  const clusterIP = clusterIPOf(svc, family);
  if (clusterIP === null) return out;
  // Traffic from a pod on B to a ClusterIP reaches node A only in this lab (B has no proxy);
  // with affinity, whether its one endpoint answers back is luck: leave those cells out.
  const all = svc.affinitySeconds === null ? SOURCES : SOURCES.filter((s) => s !== "pod on B");
  out.push({ kind: "ClusterIP", ip: clusterIP, port: port.port, sources: all });
  if (port.nodePort !== null && (svc.type === "NodePort" || svc.type === "LoadBalancer")) {
    out.push(
      { kind: "NodePort primary", ip: NODE_A_PRIMARY[family], port: port.nodePort, sources: all },
      {
        kind: "NodePort secondary",
        ip: NODE_A_SECONDARY[family],
        port: port.nodePort,
        sources: all,
      },
      { kind: "NodePort internal", ip: NODE_A_INTERNAL[family], port: port.nodePort, sources: all },
      {
        kind: "NodePort localhost",
        ip: LOCALHOST[family],
        port: port.nodePort,
        sources: ["node A"],
      },
    );
  }
  for (const ip of svc.externalIPs) {
    if (familyOf(ip) === family) {
      out.push({ kind: "ExternalIP", ip, port: port.port, sources: all });
    }
  }
  if (svc.type === "LoadBalancer") {
    for (const ingress of svc.ingress) {
      if (ingress.ip !== null && familyOf(ingress.ip) === family) {
        out.push({ kind: "LoadBalancer IP", ip: ingress.ip, port: port.port, sources: all });
      }
    }
  }
  return out;
}

function cellId(
  svc: ServiceModel,
  portName: string,
  protocol: Protocol,
  d: { kind: AddressKind; ip: string; port: number },
  source: Source,
): string {
  const addr = d.ip.includes(":") ? `[${d.ip}]` : d.ip;
  return `${svc.name}:${portName || "-"}/${protocol} ${d.kind} ${addr}:${d.port} from ${source}`;
}

/** The cells and health questions of one cluster. */
export function buildMatrix(cluster: ClusterModel): Matrix {
  const cells: Cell[] = [];
  const health: HealthCheck[] = [];
  for (const svc of cluster.services) {
    if (!isProxied(svc)) continue;
    const affinity = svc.affinitySeconds !== null;
    for (const family of svc.ipFamilies) {
      for (const port of svc.ports) {
        const count = probeCount(endpointsOf(svc, family, port), affinity);
        for (const d of destinations(svc, port, family)) {
          for (const source of d.sources) {
            cells.push({
              ...(affinity && closedEndpoints(svc, family, port)
                ? { luckyReachability: true }
                : {}),
              id: cellId(svc, port.name, port.protocol, d, source),
              service: svc.name,
              portName: port.name,
              protocol: port.protocol,
              family,
              kind: d.kind,
              ip: d.ip,
              port: d.port,
              source,
              count,
              affinity,
            });
          }
        }
      }
      // A port of the ClusterIP that the service does not have.
      const clusterIP = clusterIPOf(svc, family);
      if (clusterIP !== null && !svc.ports.some((p) => p.port === UNUSED_SERVICE_PORT)) {
        const d = {
          kind: "ClusterIP unused port" as const,
          ip: clusterIP,
          port: UNUSED_SERVICE_PORT,
        };
        for (const source of ["pod on A", "node A"] as const) {
          cells.push({
            id: cellId(svc, "", "TCP", d, source),
            service: svc.name,
            portName: "",
            protocol: "TCP",
            family,
            ...d,
            source,
            count: 2,
            affinity: false,
          });
        }
      }
    }
    if (svc.healthCheckNodePort !== null) {
      for (const ip of [NODE_A_PRIMARY.IPv4, NODE_A_PRIMARY.IPv6, NODE_A_SECONDARY.IPv4]) {
        health.push({
          id: `${svc.name} healthCheckNodePort ${
            ip.includes(":") ? `[${ip}]` : ip
          }:${svc.healthCheckNodePort}`,
          kind: "healthCheckNodePort",
          service: svc.name,
          ip,
          port: svc.healthCheckNodePort,
          path: "/",
          source: "client",
        });
      }
    }
  }
  // An address of a service CIDR that no Service holds. From the node and over UDP, a drop in
  // the OUTPUT hook is seen at once (EPERM), unlike a route to nowhere (TCP would retry).
  for (const family of ["IPv4", "IPv6"] as const) {
    const d = {
      kind: "unallocated ClusterIP" as const,
      ip: UNALLOCATED_CLUSTER_IP[family],
      port: 80,
    };
    cells.push({
      id: `${d.kind} ${family === "IPv6" ? `[${d.ip}]` : d.ip}:${d.port} from node A`,
      service: "",
      portName: "",
      protocol: "UDP",
      family,
      ...d,
      source: "node A",
      count: 2,
      affinity: false,
    });
  }
  for (const kind of ["healthz", "livez"] as const) {
    health.push({
      id: `/${kind}`,
      kind,
      service: null,
      ip: LOCALHOST.IPv4,
      port: HEALTHZ_PORT,
      path: `/${kind}`,
      source: "node A",
    });
  }
  return { cells, health };
}
