/**
 * A small mutable model of a cluster for the fast-path property test: services with the features
 * the nftables renderer distinguishes (NodePort, LoadBalancer with source ranges, ExternalIPs,
 * external and internal traffic policy Local, ClientIP affinity, dual-stack, UDP, two ports, more
 * endpoints than the cascade takes), and the changes a cluster goes through, each returning the
 * reconciler events it makes. Pure apart from the model itself.
 *
 * IP plan: node 198.18.0.10 / fd00::10 (src/render/nftables/_fixtures.ts); ClusterIPs
 * 198.18.128.0/17 and fd00:128::/64; pods 198.18.1.0 – 198.18.127.255 and fd00:1::/64;
 * ExternalIPs 198.18.200.0/24; LoadBalancer IPs 198.18.250.0/24; source ranges 198.19.0.0/24.
 *
 * @module
 */
import { objects, rawService, rawSlice } from "../../src/render/nftables/_fixtures.ts";
import type { ProxyEvent } from "../../src/snapshot/proxy_state.ts";

interface Endpoint {
  ip: string;
  node: string;
  ready: boolean;
}

interface Service {
  readonly i: number;
  type: "ClusterIP" | "NodePort" | "LoadBalancer";
  externalTrafficPolicy: "Cluster" | "Local";
  internalTrafficPolicy: "Cluster" | "Local";
  affinitySeconds: number | null;
  readonly dualStack: boolean;
  readonly protocol: "TCP" | "UDP";
  readonly twoPorts: boolean;
  readonly externalIP: boolean;
  readonly sourceRanges: boolean;
  v4: Endpoint[];
  v6: Endpoint[];
}

/** One change, chosen by the property test's generator. */
export interface Change {
  /** What to do. */
  readonly kind:
    | "scale-up"
    | "scale-down"
    | "replace-endpoint"
    | "toggle-ready"
    | "move-endpoint"
    | "no-endpoints"
    | "many-endpoints"
    | "add-service"
    | "delete-service"
    | "toggle-affinity"
    | "toggle-external-policy"
    | "toggle-internal-policy"
    | "toggle-nodeport";
  /** Which service (modulo the number there are). */
  readonly target: number;
  /** A free number for the change (endpoint index, timeout…). */
  readonly n: number;
}

/** Every change kind, for the generator. */
export const CHANGE_KINDS: readonly Change["kind"][] = [
  "scale-up",
  "scale-down",
  "replace-endpoint",
  "toggle-ready",
  "move-endpoint",
  "no-endpoints",
  "many-endpoints",
  "add-service",
  "delete-service",
  "toggle-affinity",
  "toggle-external-policy",
  "toggle-internal-policy",
  "toggle-nodeport",
];

const HTTP = { name: "http", port: 80 };

/** The model. */
export class FastPathCluster {
  readonly #services = new Map<number, Service>();
  #nextService: number;
  #nextPod = 0;

  /** A cluster of `size` services (deterministic: same size, same cluster). */
  constructor(size: number) {
    for (let i = 0; i < size; i++) this.#services.set(i, this.#newService(i));
    this.#nextService = size;
  }

  #pod(v6: boolean): Endpoint {
    const k = this.#nextPod++;
    const n = (k % 32000) + 256;
    const ip = v6 ? `fd00:1::${(k + 1).toString(16)}` : `198.18.${n >> 8}.${n & 255}`;
    return { ip, node: k % 3 === 0 ? "node-a" : "node-b", ready: true };
  }

  #newService(i: number): Service {
    const dualStack = i % 20 === 3;
    const count = 1 + (i % 4);
    return {
      i,
      type: i % 50 === 2 ? "LoadBalancer" : i % 10 === 1 ? "NodePort" : "ClusterIP",
      externalTrafficPolicy: i % 100 === 2 ? "Local" : "Cluster",
      internalTrafficPolicy: i % 97 === 5 ? "Local" : "Cluster",
      affinitySeconds: i % 25 === 0 ? 600 : null,
      dualStack,
      protocol: i % 7 === 4 ? "UDP" : "TCP",
      twoPorts: i % 13 === 6,
      externalIP: i % 40 === 7,
      sourceRanges: i % 100 === 52,
      v4: Array.from({ length: count }, () => this.#pod(false)),
      v6: dualStack ? Array.from({ length: count }, () => this.#pod(true)) : [],
    };
  }

  /** Every object of the cluster, for a `replace` event. */
  allObjects(): ProxyEvent {
    const raws: unknown[] = [];
    for (const s of this.#services.values()) raws.push(...raw(s));
    return { type: "replace", objects: objects(raws) };
  }

  /** Applies `change`; returns the events that tell the reconciler. */
  apply(change: Change): ProxyEvent[] {
    const keys = [...this.#services.keys()];
    const s = this.#services.get(keys[change.target % keys.length] as number);
    if (s === undefined || change.kind === "add-service") {
      const i = this.#nextService++;
      const added = this.#newService(i);
      this.#services.set(i, added);
      return upserts(added);
    }
    const pick = <T>(list: T[]) => list[change.n % Math.max(1, list.length)];
    switch (change.kind) {
      case "scale-up":
        s.v4.push(this.#pod(false));
        if (s.dualStack) s.v6.push(this.#pod(true));
        break;
      case "scale-down":
        s.v4.splice(change.n % Math.max(1, s.v4.length), 1);
        if (s.dualStack) s.v6.splice(change.n % Math.max(1, s.v6.length), 1);
        break;
      case "replace-endpoint": {
        const at = change.n % Math.max(1, s.v4.length);
        if (s.v4.length > 0) s.v4[at] = this.#pod(false);
        break;
      }
      case "toggle-ready": {
        const ep = pick(s.v4);
        if (ep !== undefined) ep.ready = !ep.ready;
        break;
      }
      case "move-endpoint": {
        const ep = pick(s.v4);
        if (ep !== undefined) ep.node = ep.node === "node-a" ? "node-b" : "node-a";
        break;
      }
      case "no-endpoints":
        s.v4 = [];
        s.v6 = [];
        break;
      case "many-endpoints":
        s.v4 = Array.from({ length: 17 + (change.n % 6) }, () => this.#pod(false));
        break;
      case "delete-service": {
        this.#services.delete(s.i);
        const name = `svc-${s.i}`;
        const del = (kind: "Service" | "EndpointSlice", n: string): ProxyEvent => ({
          type: "delete",
          kind,
          namespace: "default",
          name: n,
        });
        return [
          del("Service", name),
          del("EndpointSlice", `${name}-a`),
          del("EndpointSlice", `${name}-b`),
        ];
      }
      case "toggle-affinity":
        s.affinitySeconds = s.affinitySeconds === null ? 60 + (change.n % 3) * 300 : null;
        break;
      case "toggle-external-policy":
        s.externalTrafficPolicy = s.externalTrafficPolicy === "Local" ? "Cluster" : "Local";
        if (s.type === "ClusterIP") s.type = "NodePort";
        break;
      case "toggle-internal-policy":
        s.internalTrafficPolicy = s.internalTrafficPolicy === "Local" ? "Cluster" : "Local";
        break;
      case "toggle-nodeport":
        s.type = s.type === "ClusterIP" ? "NodePort" : "ClusterIP";
        if (s.type === "ClusterIP") s.externalTrafficPolicy = "Cluster";
        break;
    }
    return upserts(s);
  }
}

function upserts(s: Service): ProxyEvent[] {
  const events: ProxyEvent[] = objects(raw(s)).map((object) => ({ type: "upsert", object }));
  // A slice that is not in raw() any more (a family with no endpoints) is deleted.
  if (s.dualStack && s.v6.length === 0) {
    events.push({
      type: "delete",
      kind: "EndpointSlice",
      namespace: "default",
      name: `svc-${s.i}-b`,
    });
  }
  if (s.v4.length === 0) {
    events.push({
      type: "delete",
      kind: "EndpointSlice",
      namespace: "default",
      name: `svc-${s.i}-a`,
    });
  }
  return events;
}

function raw(s: Service): unknown[] {
  const name = `svc-${s.i}`;
  const v4 = `198.18.${128 + (s.i >> 8)}.${s.i & 255}`;
  const ports = [{ ...HTTP, protocol: s.protocol }];
  if (s.twoPorts) ports.push({ name: "metrics", port: 9090, protocol: "TCP" });
  const external = s.type !== "ClusterIP";
  const spec: Record<string, unknown> = {
    type: s.type,
    clusterIPs: s.dualStack ? [v4, `fd00:128::${s.i.toString(16)}`] : [v4],
    ...(s.dualStack ? { ipFamilies: ["IPv4", "IPv6"], ipFamilyPolicy: "PreferDualStack" } : {}),
    ports: ports.map((p, k) => external ? { ...p, nodePort: 30000 + s.i * 2 + k } : p),
    internalTrafficPolicy: s.internalTrafficPolicy,
    ...(external ? { externalTrafficPolicy: s.externalTrafficPolicy } : {}),
    ...(s.externalIP ? { externalIPs: [`198.18.200.${(s.i / 40) | 0}`] } : {}),
    ...(s.type === "LoadBalancer" && s.sourceRanges
      ? { loadBalancerSourceRanges: ["198.19.0.0/24"] }
      : {}),
    ...(s.affinitySeconds !== null
      ? {
        sessionAffinity: "ClientIP",
        sessionAffinityConfig: { clientIP: { timeoutSeconds: s.affinitySeconds } },
      }
      : {}),
  };
  const lb = s.type === "LoadBalancer" ? [`198.18.250.${(s.i / 50) | 0}`] : [];
  const out: unknown[] = [rawService(name, spec, lb)];
  const endpoints = (eps: Endpoint[]) =>
    eps.map((e) => ({ ip: e.ip, node: e.node, ready: e.ready, serving: e.ready }));
  for (const port of ports) {
    const target = { name: port.name, protocol: port.protocol, port: port.port + 8000 };
    if (port.name !== "http") continue; // one slice per family, holding the http port
    if (s.v4.length > 0) out.push(rawSlice(name, target, endpoints(s.v4), "a"));
    if (s.v6.length > 0) out.push(rawSlice(name, target, endpoints(s.v6), "b"));
  }
  return out;
}
