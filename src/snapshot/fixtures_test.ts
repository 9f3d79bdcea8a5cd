/**
 * Test fixtures shared by the core tests: raw Kubernetes objects as a manifest would hold them,
 * validated through `parseKubeObject` like real input. No tests here.
 *
 * IP plan: nodes 198.18.0.0/24, pods 198.18.1.0/24 and fd00::1:0/112, services 198.18.128.0/17
 * and fd00::80:0/112, external IPs 198.18.200.0/24 and fd00::c8:0/112, LoadBalancer ingress
 * 198.18.250.0/24 and fd00::fa:0/112, clients 198.19.0.0/24.
 */
import { type KubeObject, parseKubeObject } from "../model/kube_object.ts";
import { buildSnapshot, type SnapshotSettings } from "./proxy_state.ts";
import type { IPFamily, ProxySnapshot, ServicePortFamily, ServicePortSnapshot } from "./types.ts";

/** A raw object: what YAML or JSON parsing gives. */
export type Raw = Record<string, unknown>;

/** Settings for node `node-a` with nothing else configured. */
export const SETTINGS: SnapshotSettings = Object.freeze({
  nodeName: "node-a",
  clusterCIDRs: [],
  masqueradeAll: false,
  masqueradeBit: 14,
  localhostNodePorts: true,
  nodePortAddresses: [],
  hostAddresses: [],
});

/** Options of {@link svc}. */
export interface SvcOptions {
  /** Namespace (default `default`). */
  readonly ns?: string;
  /** Labels. */
  readonly labels?: Record<string, string>;
  /** `status`. */
  readonly status?: Raw;
}

/** A raw v1 Service; `spec` is used as given. */
export function svc(name: string, spec: Raw, opts: SvcOptions = {}): Raw {
  const metadata: Raw = { name, namespace: opts.ns ?? "default" };
  if (opts.labels) metadata["labels"] = opts.labels;
  const out: Raw = { apiVersion: "v1", kind: "Service", metadata, spec };
  if (opts.status) out["status"] = opts.status;
  return out;
}

/** A ClusterIP service `name` with one TCP port `http` 80 on 198.18.128.10 (override via spec). */
export function webSvc(spec: Raw = {}, opts: SvcOptions = {}): Raw {
  return svc("web", {
    clusterIP: "198.18.128.10",
    ports: [{ name: "http", protocol: "TCP", port: 80 }],
    ...spec,
  }, opts);
}

/** Options of {@link ep}. */
export interface EpOptions {
  /** `conditions.ready`; omitted when undefined. */
  readonly ready?: boolean;
  /** `conditions.serving`; omitted when undefined. */
  readonly serving?: boolean;
  /** `conditions.terminating`; omitted when undefined. */
  readonly terminating?: boolean;
  /** `nodeName`. */
  readonly node?: string;
  /** `zone`. */
  readonly zone?: string;
  /** `hints.forZones` names. */
  readonly hints?: readonly string[];
}

/** A raw endpoint of a slice. */
export function ep(address: string, opts: EpOptions = {}): Raw {
  const out: Raw = { addresses: [address] };
  const conditions: Raw = {};
  if (opts.ready !== undefined) conditions["ready"] = opts.ready;
  if (opts.serving !== undefined) conditions["serving"] = opts.serving;
  if (opts.terminating !== undefined) conditions["terminating"] = opts.terminating;
  if (Object.keys(conditions).length > 0) out["conditions"] = conditions;
  if (opts.node !== undefined) out["nodeName"] = opts.node;
  if (opts.zone !== undefined) out["zone"] = opts.zone;
  if (opts.hints !== undefined) out["hints"] = { forZones: opts.hints.map((n) => ({ name: n })) };
  return out;
}

/** A terminating endpoint that still serves. */
export const TERMINATING: EpOptions = { ready: false, serving: true, terminating: true };

/** A raw EndpointSlice of `service`. */
export function slice(
  name: string,
  service: string,
  endpoints: readonly Raw[],
  opts: {
    readonly ns?: string;
    readonly addressType?: IPFamily | "FQDN";
    readonly ports?: readonly Raw[];
  } = {},
): Raw {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name,
      namespace: opts.ns ?? "default",
      labels: { "kubernetes.io/service-name": service },
    },
    addressType: opts.addressType ?? "IPv4",
    ports: opts.ports ?? [{ name: "http", protocol: "TCP", port: 8080 }],
    endpoints,
  };
}

/** A raw Node with a zone label and an InternalIP. */
export function node(name: string, zone: string | null, ips: readonly string[] = []): Raw {
  const metadata: Raw = { name };
  if (zone !== null) metadata["labels"] = { "topology.kubernetes.io/zone": zone };
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata,
    status: { addresses: ips.map((address) => ({ type: "InternalIP", address })) },
  };
}

/** Validates a raw object; throws with the error line when it is rejected or ignored. */
export function obj(raw: Raw): KubeObject {
  const r = parseKubeObject(raw, "test");
  if (r.ok === true) return r.value;
  throw new Error(r.ok === false ? r.error.message : `ignored kind ${r.kind}`);
}

/** Builds a snapshot from raw objects. */
export function build(raws: readonly Raw[], settings: SnapshotSettings = SETTINGS): ProxySnapshot {
  return buildSnapshot(raws.map(obj), settings);
}

/** The service port `id` of a snapshot; throws when absent. */
export function portOf(snapshot: ProxySnapshot, id: string): ServicePortSnapshot {
  const sp = snapshot.servicePorts.find((p) => p.id === id);
  if (sp === undefined) {
    throw new Error(`no service port ${id} in [${snapshot.servicePorts.map((p) => p.id)}]`);
  }
  return sp;
}

/** The family part of a service port; throws when absent. */
export function famOf(sp: ServicePortSnapshot, family: IPFamily = "IPv4"): ServicePortFamily {
  const f = sp.families.find((x) => x.family === family);
  if (f === undefined) throw new Error(`${sp.id} has no ${family} family`);
  return f;
}

/** `ip:port` of the endpoints in a list, for compact assertions. */
export function addrs(eps: readonly { ip: string; port: number }[]): string[] {
  return eps.map((e) => (e.ip.includes(":") ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`));
}

/** A small deterministic PRNG (mulberry32), for property tests without dependencies. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A shuffled copy of `items` using `rand`. */
export function shuffle<T>(items: readonly T[], rand: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
