/**
 * The seeded cluster generator: seed → a cluster (Services and EndpointSlices covering what
 * kube-proxy reads) and a few rounds of random changes to it. Pure: the same seed gives the same
 * cluster everywhere; everything it makes is valid for the API server, which is the judge (the
 * objects go through it).
 *
 * What it covers: ClusterIP, NodePort, LoadBalancer (source ranges, ipMode VIP/Proxy,
 * hostname-only ingress, allocateLoadBalancerNodePorts false), ExternalIPs, headless,
 * ExternalName; TCP/UDP/SCTP; named and numeric target ports; one to three ports; single-stack of
 * either family and dual-stack in either order; eTP/iTP Local and Cluster; ClientIP affinity;
 * zone and node hints and trafficDistribution; ready, not-ready, serving-terminating and
 * terminating endpoints, with and without conditions; endpoints on node A, on node B, without a
 * node; several slices per family, duplicate endpoints across slices, slices of a family the
 * service does not have, slice ports that match no service port or reach a closed pod port.
 *
 * @module
 */
import {
  LAB_CLIENT,
  LAB_CLUSTER_CIDRS,
  LAB_POD_PORTS,
  LAB_PODS,
  type LabFamily,
  NODE_A,
  NODE_B,
  NODE_B_PRIMARY,
  ZONE_A,
  ZONE_B,
} from "../netns/two_node_plan.ts";
import type {
  ClusterModel,
  EndpointModel,
  IngressModel,
  PortModel,
  Protocol,
  ServiceModel,
  ServiceType,
  SliceModel,
  SlicePortModel,
} from "./cluster_model.ts";
import { Rng } from "./rng.ts";

/** What the generator makes of one seed. */
export interface ClusterCase {
  /** The seed. */
  readonly seed: number;
  /** Round 0 is the initial cluster; each further round is the cluster after random changes. */
  readonly rounds: readonly ClusterModel[];
  /** What changed before each round (empty for round 0), in words. */
  readonly changes: readonly (readonly string[])[];
}

/** Options of {@link generateCase}. */
export interface GeneratorOptions {
  /** Rounds of changes after the initial cluster; default 1. */
  readonly changeRounds?: number;
  /** Protocols to use; default TCP, UDP and SCTP. */
  readonly protocols?: readonly Protocol[];
}

/** A pod port nothing listens on: endpoints there answer with a reset. */
export const CLOSED_POD_PORT = 9;

/** Unique resources of one case: node ports, virtual IPs, names. */
class Allocator {
  readonly #used = new Set<string>();
  #services = 0;
  #slices = 0;

  constructor(readonly rng: Rng, readonly seed: number) {}

  #take(kind: string, make: () => string | number): string {
    for (let i = 0; i < 10_000; i++) {
      const value = String(make());
      if (!this.#used.has(`${kind}/${value}`)) {
        this.#used.add(`${kind}/${value}`);
        return value;
      }
    }
    throw new Error(`Cannot allocate a ${kind} for seed ${this.seed}`);
  }

  /** A node port (30000-32767), unique in the cluster; health check node ports included. */
  nodePort(): number {
    return Number(this.#take("nodePort", () => this.rng.int(30000, 32767)));
  }

  /** An address of `family` from the external/LoadBalancer range, unique in the case. */
  externalIP(family: LabFamily): string {
    return this.#take("vip", () => {
      const n = this.rng.int(1, 250);
      return family === "IPv4" ? `198.18.200.${n}` : `fd00:200::${n.toString(16)}`;
    });
  }

  /** The next service index (names and ClusterIPs). */
  serviceIndex(): number {
    return this.#services++;
  }

  /** The next slice name of a service. */
  sliceName(service: string): string {
    return `${service}-${(this.#slices++).toString(36)}`;
  }
}

/** ClusterIP of service `index` in `family`: fixed, so a packet is named the same every run. */
export function clusterIPFor(index: number, family: LabFamily): string {
  return family === "IPv4"
    ? `198.18.${130 + Math.floor(index / 200)}.${10 + (index % 200)}`
    : `fd00:128::${(0x100 + index).toString(16)}`;
}

const PORT_NAMES = ["http", "dns", "grpc", "metrics", "admin", "p-x"];
const SERVICE_PORTS = [80, 53, 443, 8080, 9000, 5353, 1234, 7000];

/** Source ranges to pick from: each matches some of the lab's sources, or none. */
const SOURCE_RANGES = [
  `${LAB_CLIENT.IPv4}/32`,
  "198.19.0.0/24",
  LAB_CLUSTER_CIDRS[0]!,
  `${NODE_B_PRIMARY.IPv4}/32`,
  "198.18.2.0/24",
  "203.0.113.0/24",
  `${LAB_CLIENT.IPv6}/128`,
  LAB_CLUSTER_CIDRS[1]!,
  "fd00:19:1::/64",
  "2001:db8::/64",
];

function families(rng: Rng): Pick<ServiceModel, "ipFamilies" | "ipFamilyPolicy"> {
  const shape = rng.weighted({ v4: 35, v6: 20, dual46: 30, dual64: 15 });
  if (shape === "v4") return { ipFamilies: ["IPv4"], ipFamilyPolicy: "SingleStack" };
  if (shape === "v6") return { ipFamilies: ["IPv6"], ipFamilyPolicy: "SingleStack" };
  const policy = rng.chance(0.5) ? "PreferDualStack" : "RequireDualStack";
  return {
    ipFamilies: shape === "dual46" ? ["IPv4", "IPv6"] : ["IPv6", "IPv4"],
    ipFamilyPolicy: policy,
  };
}

function protocolOf(rng: Rng, protocols: readonly Protocol[]): Protocol {
  const weights: Record<string, number> = { TCP: 55, UDP: 30, SCTP: 15 };
  const allowed = Object.fromEntries(protocols.map((p) => [p, weights[p] ?? 10]));
  return rng.weighted(allowed) as Protocol;
}

function ports(
  rng: Rng,
  alloc: Allocator,
  type: ServiceType,
  withNodePorts: boolean,
  protocols: readonly Protocol[],
): PortModel[] {
  const count = rng.weighted({ 1: 55, 2: 35, 3: 10 });
  const names = rng.sample(PORT_NAMES, Number(count));
  const out: PortModel[] = [];
  const taken = new Set<string>();
  for (let i = 0; i < Number(count); i++) {
    const protocol = protocolOf(rng, protocols);
    let port = rng.pick(SERVICE_PORTS);
    while (taken.has(`${protocol}/${port}`)) port = rng.int(1000, 9999);
    taken.add(`${protocol}/${port}`);
    const name = Number(count) === 1 && rng.chance(0.4) ? "" : names[i]!;
    const targetPort = rng.chance(0.5) ? (name === "" ? rng.pick(LAB_POD_PORTS) : name) : rng.pick(
      LAB_POD_PORTS,
    );
    const nodePort = withNodePorts && (type === "NodePort" || type === "LoadBalancer")
      ? alloc.nodePort()
      : null;
    out.push({ name, protocol, port, nodePort, targetPort });
  }
  return out;
}

interface EndpointCondition {
  readonly ready: boolean | null;
  readonly serving: boolean | null;
  readonly terminating: boolean | null;
}

function condition(rng: Rng): EndpointCondition {
  switch (
    rng.weighted({
      ready: 55,
      notReady: 10,
      servingTerminating: 15,
      terminating: 8,
      empty: 6,
      odd: 6,
    })
  ) {
    case "ready":
      return { ready: true, serving: true, terminating: false };
    case "notReady":
      return { ready: false, serving: false, terminating: false };
    case "servingTerminating":
      return { ready: false, serving: true, terminating: true };
    case "terminating":
      return { ready: false, serving: false, terminating: true };
    case "empty":
      return { ready: null, serving: null, terminating: null };
    default:
      return {
        ready: rng.pick([true, false, null]),
        serving: rng.pick([true, false, null]),
        terminating: rng.pick([true, false, null]),
      };
  }
}

type HintStyle = "none" | "own" | "zoneA" | "zoneB" | "both" | "partial";

function endpoint(rng: Rng, pod: string, hints: HintStyle, nodeHints: boolean): EndpointModel {
  const labPod = LAB_PODS.find((p) => p.name === pod)!;
  const zone = labPod.node === "A" ? ZONE_A : ZONE_B;
  const c = condition(rng);
  let hintZones: string[] | null = null;
  switch (hints) {
    case "own":
      hintZones = [zone];
      break;
    case "zoneA":
      hintZones = [ZONE_A];
      break;
    case "zoneB":
      hintZones = [ZONE_B];
      break;
    case "both":
      hintZones = [ZONE_A, ZONE_B];
      break;
    case "partial":
      hintZones = rng.chance(0.5) ? [zone] : null;
      break;
    default:
      hintZones = null;
  }
  const hintNodes = nodeHints
    ? (rng.chance(0.85) ? [labPod.node === "A" ? NODE_A : NODE_B] : null)
    : null;
  return {
    pod,
    ...c,
    nodeName: rng.chance(0.9),
    zone: rng.chance(0.8) ? zone : null,
    hintZones,
    hintNodes,
  };
}

function slicePorts(rng: Rng, svc: Pick<ServiceModel, "ports">): SlicePortModel[] {
  const out: SlicePortModel[] = [];
  for (const p of svc.ports) {
    if (svc.ports.length > 1 && rng.chance(0.08)) continue; // a port this slice does not serve
    const name = rng.chance(0.04) ? "other" : p.name;
    if (out.some((o) => o.name === name)) continue;
    const port = rng.chance(0.06) ? CLOSED_POD_PORT : rng.pick(LAB_POD_PORTS);
    const protocol = rng.chance(0.03) ? (p.protocol === "TCP" ? "UDP" : "TCP") : p.protocol;
    out.push({ name, protocol, port });
  }
  return out;
}

function slices(
  rng: Rng,
  alloc: Allocator,
  svc: Omit<ServiceModel, "slices">,
): SliceModel[] {
  const out: SliceModel[] = [];
  const hintStyle: HintStyle = svc.trafficDistribution !== null || rng.chance(0.2)
    ? rng.weighted({ none: 15, own: 45, zoneA: 10, zoneB: 10, both: 10, partial: 10 })
    : "none";
  const nodeHints = svc.trafficDistribution === "PreferSameNode"
    ? rng.chance(0.8)
    : rng.chance(0.05);
  const fams: LabFamily[] = [...svc.ipFamilies];
  if (rng.chance(0.08)) fams.push(svc.ipFamilies.includes("IPv4") ? "IPv6" : "IPv4");
  for (const family of fams) {
    const count = rng.weighted({ 0: 8, 1: 62, 2: 24, 3: 6 });
    const used = new Map<string, EndpointModel>();
    for (let i = 0; i < Number(count); i++) {
      const ports = slicePorts(rng, svc);
      const size = rng.weighted({ 0: 6, 1: 30, 2: 30, 3: 22, 4: 12 });
      let pods = rng.sample(LAB_PODS.map((p) => p.name), Number(size));
      // Duplicates across slices of a family: an endpoint another slice also has, mostly the
      // same copy (as when a controller moves it between slices), sometimes a conflicting one.
      let copy: EndpointModel | null = null;
      if (used.size > 0 && rng.chance(0.3)) {
        const pod = rng.pick([...used.keys()]);
        pods = [pod, ...pods.filter((p) => p !== pod)];
        if (rng.chance(0.75)) copy = used.get(pod)!;
      }
      const endpoints = pods.map((pod, j) =>
        j === 0 && copy !== null ? copy : endpoint(rng, pod, hintStyle, nodeHints)
      );
      for (const ep of endpoints) if (!used.has(ep.pod)) used.set(ep.pod, ep);
      out.push({ name: alloc.sliceName(svc.name), family, ports, endpoints });
    }
  }
  return out;
}

function newService(rng: Rng, alloc: Allocator, protocols: readonly Protocol[]): ServiceModel {
  const index = alloc.serviceIndex();
  const name = `s${alloc.seed.toString(36)}-${index}`;
  const kind = rng.weighted({
    ClusterIP: 28,
    NodePort: 24,
    LoadBalancer: 34,
    headless: 7,
    ExternalName: 7,
  });
  const type: ServiceType = kind === "headless" ? "ClusterIP" : kind;
  const headless = kind === "headless";
  const fam = families(rng);
  const allocateNodePorts = type === "LoadBalancer" && rng.chance(0.15)
    ? false
    : type === "LoadBalancer" && rng.chance(0.2)
    ? true
    : null;
  const svcPorts = ports(rng, alloc, type, allocateNodePorts !== false, protocols);
  const proxied = !headless && type !== "ExternalName";
  const externalIPs = proxied && rng.chance(0.25)
    ? rng.sample(fam.ipFamilies, rng.int(1, fam.ipFamilies.length)).map((f) => alloc.externalIP(f))
    : [];
  const ingress: IngressModel[] = [];
  let sourceRanges: string[] = [];
  if (type === "LoadBalancer") {
    for (const family of fam.ipFamilies) {
      if (rng.chance(0.15)) continue;
      ingress.push({
        ip: alloc.externalIP(family),
        hostname: null,
        ipMode: rng.weighted({ none: 60, VIP: 25, Proxy: 15 }) === "none"
          ? null
          : rng.chance(0.6)
          ? "VIP"
          : "Proxy",
      });
    }
    if (rng.chance(0.08)) ingress.push({ ip: null, hostname: `${name}.lb.example`, ipMode: null });
    if (rng.chance(0.35)) sourceRanges = rng.sample(SOURCE_RANGES, rng.int(1, 3));
  }
  const external = type === "NodePort" || type === "LoadBalancer" || externalIPs.length > 0;
  const externalTrafficPolicy = external && proxied
    ? rng.weighted({ none: 30, Cluster: 25, Local: 45 }) as "none" | "Cluster" | "Local"
    : "none";
  const eTP = externalTrafficPolicy === "none" ? null : externalTrafficPolicy;
  const iTP = type === "ExternalName"
    ? null
    : (rng.weighted({ none: 50, Cluster: 20, Local: 30 }) as "none" | "Cluster" | "Local");
  const base: Omit<ServiceModel, "slices"> = {
    name,
    type,
    headless,
    ipFamilyPolicy: fam.ipFamilyPolicy,
    ipFamilies: type === "ExternalName" ? [] : fam.ipFamilies,
    clusterIPs: proxied ? fam.ipFamilies.map((f) => clusterIPFor(index, f)) : [],
    ports: svcPorts,
    externalIPs,
    ingress,
    sourceRanges,
    allocateNodePorts,
    externalTrafficPolicy: eTP,
    internalTrafficPolicy: iTP === "none" || iTP === null ? null : iTP,
    affinitySeconds: type !== "ExternalName" && rng.chance(0.2) ? rng.pick([10, 60, 10800]) : null,
    healthCheckNodePort: type === "LoadBalancer" && eTP === "Local" ? alloc.nodePort() : null,
    trafficDistribution: type !== "ExternalName" && rng.chance(0.3)
      ? rng.pick(["PreferClose", "PreferSameZone", "PreferSameNode"])
      : null,
  };
  return { ...base, slices: slices(rng, alloc, base) };
}

/** A few random changes to one service; returns the new service (or null: deleted) and words. */
function mutateService(
  rng: Rng,
  alloc: Allocator,
  svc: ServiceModel,
  protocols: readonly Protocol[],
): { service: ServiceModel | null; what: string } {
  const proxied = !svc.headless && svc.type !== "ExternalName";
  const choice = rng.weighted({
    endpoints: 40,
    slices: 15,
    etp: proxied && svc.type !== "ClusterIP" ? 8 : 0,
    itp: proxied ? 6 : 0,
    affinity: proxied ? 5 : 0,
    ingress: svc.type === "LoadBalancer" ? 8 : 0,
    ranges: svc.type === "LoadBalancer" ? 5 : 0,
    externalIPs: proxied ? 4 : 0,
    distribution: proxied ? 4 : 0,
    delete: 5,
  });
  switch (choice) {
    case "endpoints": {
      const slice = svc.slices.length > 0 ? rng.pick(svc.slices) : null;
      if (slice === null) break;
      const action = rng.weighted({ flip: 50, add: 25, remove: 25 });
      let endpoints = [...slice.endpoints];
      if (action === "flip" && endpoints.length > 0) {
        const i = rng.int(0, endpoints.length - 1);
        endpoints[i] = { ...endpoints[i]!, ...condition(rng) };
      } else if (action === "add") {
        const free = LAB_PODS.map((p) => p.name).filter((p) => !endpoints.some((e) => e.pod === p));
        if (free.length > 0) {
          const template = endpoints[0];
          const pod = rng.pick(free);
          endpoints.push(endpoint(rng, pod, "none", false));
          if (template?.hintZones) {
            const labPod = LAB_PODS.find((p) => p.name === pod)!;
            endpoints[endpoints.length - 1] = {
              ...endpoints[endpoints.length - 1]!,
              hintZones: [labPod.node === "A" ? ZONE_A : ZONE_B],
            };
          }
        }
      } else if (endpoints.length > 0) {
        endpoints = endpoints.filter((_, i) => i !== rng.int(0, endpoints.length - 1));
      }
      const slices = svc.slices.map((s) => s === slice ? { ...s, endpoints } : s);
      return {
        service: { ...svc, slices },
        what: `${svc.name}: endpoints of ${slice.name} (${action})`,
      };
    }
    case "slices": {
      if (svc.slices.length > 0 && rng.chance(0.5)) {
        const gone = rng.pick(svc.slices);
        return {
          service: { ...svc, slices: svc.slices.filter((s) => s !== gone) },
          what: `${svc.name}: slice ${gone.name} deleted`,
        };
      }
      const family = svc.ipFamilies.length > 0 ? rng.pick(svc.ipFamilies) : "IPv4";
      const pods = rng.sample(LAB_PODS.map((p) => p.name), rng.int(1, 3));
      const slice: SliceModel = {
        name: alloc.sliceName(svc.name),
        family,
        ports: slicePorts(rng, svc),
        endpoints: pods.map((pod) => endpoint(rng, pod, "none", false)),
      };
      return {
        service: { ...svc, slices: [...svc.slices, slice] },
        what: `${svc.name}: slice ${slice.name} added`,
      };
    }
    case "etp": {
      const eTP = svc.externalTrafficPolicy === "Local" ? "Cluster" : "Local";
      return {
        service: {
          ...svc,
          externalTrafficPolicy: eTP,
          healthCheckNodePort: svc.type === "LoadBalancer" && eTP === "Local"
            ? alloc.nodePort()
            : null,
        },
        what: `${svc.name}: externalTrafficPolicy ${eTP}`,
      };
    }
    case "itp": {
      const iTP = svc.internalTrafficPolicy === "Local" ? "Cluster" : "Local";
      return {
        service: { ...svc, internalTrafficPolicy: iTP },
        what: `${svc.name}: internalTrafficPolicy ${iTP}`,
      };
    }
    case "affinity": {
      const affinitySeconds = svc.affinitySeconds === null ? rng.pick([10, 60, 10800]) : null;
      return {
        service: { ...svc, affinitySeconds },
        what: `${svc.name}: session affinity ${affinitySeconds === null ? "None" : "ClientIP"}`,
      };
    }
    case "ingress": {
      const ingress: IngressModel[] = svc.ingress.length > 0 && rng.chance(0.5)
        // ipMode only with an ip: the API refuses it on a hostname-only entry (seed 82).
        ? svc.ingress.map((i) =>
          i.ip === null ? i : { ...i, ipMode: i.ipMode === "Proxy" ? "VIP" : "Proxy" }
        )
        : svc.ingress.length > 0 && rng.chance(0.5)
        ? []
        : svc.ipFamilies.map((f) => ({ ip: alloc.externalIP(f), hostname: null, ipMode: null }));
      return { service: { ...svc, ingress }, what: `${svc.name}: LoadBalancer ingress changed` };
    }
    case "ranges": {
      const sourceRanges = svc.sourceRanges.length > 0 ? [] : rng.sample(SOURCE_RANGES, 2);
      return { service: { ...svc, sourceRanges }, what: `${svc.name}: source ranges changed` };
    }
    case "externalIPs": {
      const externalIPs = svc.externalIPs.length > 0
        ? []
        : [alloc.externalIP(rng.pick(svc.ipFamilies))];
      const external = svc.type !== "ClusterIP" || externalIPs.length > 0;
      return {
        service: {
          ...svc,
          externalIPs,
          externalTrafficPolicy: external ? svc.externalTrafficPolicy : null,
          healthCheckNodePort: external ? svc.healthCheckNodePort : null,
        },
        what: `${svc.name}: externalIPs ${externalIPs.length > 0 ? "added" : "removed"}`,
      };
    }
    case "distribution": {
      const trafficDistribution = svc.trafficDistribution === null
        ? rng.pick(["PreferClose", "PreferSameZone", "PreferSameNode"])
        : null;
      return {
        service: { ...svc, trafficDistribution },
        what: `${svc.name}: trafficDistribution ${trafficDistribution ?? "unset"}`,
      };
    }
    case "delete":
      return { service: null, what: `${svc.name}: deleted` };
  }
  void protocols;
  return { service: svc, what: `${svc.name}: unchanged` };
}

function changeRound(
  rng: Rng,
  alloc: Allocator,
  cluster: ClusterModel,
  protocols: readonly Protocol[],
): { cluster: ClusterModel; what: string[] } {
  let services = [...cluster.services];
  const what: string[] = [];
  const count = rng.int(2, 4);
  for (let i = 0; i < count; i++) {
    if (services.length === 0 || rng.chance(0.12)) {
      const svc = newService(rng, alloc, protocols);
      services.push(svc);
      what.push(`${svc.name}: created (${svc.headless ? "headless" : svc.type})`);
      continue;
    }
    const target = rng.pick(services);
    const { service, what: words } = mutateService(rng, alloc, target, protocols);
    services = service === null
      ? services.filter((s) => s !== target)
      : services.map((s) => s === target ? service : s);
    what.push(words);
  }
  return { cluster: { services }, what };
}

/** The cluster of `seed` and its rounds of changes. */
export function generateCase(seed: number, options: GeneratorOptions = {}): ClusterCase {
  const rng = new Rng(seed);
  const protocols = options.protocols ?? ["TCP", "UDP", "SCTP"];
  const alloc = new Allocator(rng, seed);
  const count = rng.int(3, 7);
  const services: ServiceModel[] = [];
  for (let i = 0; i < count; i++) services.push(newService(rng, alloc, protocols));
  const rounds: ClusterModel[] = [{ services }];
  const changes: string[][] = [[]];
  for (let r = 0; r < (options.changeRounds ?? 1); r++) {
    const next = changeRound(rng, alloc, rounds[rounds.length - 1]!, protocols);
    rounds.push(next.cluster);
    changes.push(next.what);
  }
  return { seed, rounds, changes };
}
