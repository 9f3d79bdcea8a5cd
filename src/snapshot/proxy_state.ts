/**
 * The reconciler: a pure handler `(state, batch of events) → next state + what changed`.
 *
 * The state holds the validated objects and the snapshot built from them. Each batch recomputes
 * only the services its events touch (a one-object change costs O(that object) plus a cheap
 * reference merge), so any sync can be replayed from its inputs and nothing is hidden.
 */
import { SERVICE_NAME_LABEL } from "../model/endpoint_slice.ts";
import type { EndpointSlice } from "../model/endpoint_slice.ts";
import { cidrContains, parseCIDR, type ParsedCIDR, parseIP } from "../model/ip.ts";
import type { KubeKind, KubeObject } from "../model/kube_object.ts";
import { type Node, TO_BE_DELETED_TAINT, TOPOLOGY_ZONE_LABEL } from "../model/node.ts";
import type { Service } from "../model/service.ts";
import { deepFreeze } from "./deep_freeze.ts";
import { canonicalJSON, contentHash } from "./hash.ts";
import { buildServicePorts, type NodeContext, serviceKey } from "./service_ports.ts";
import type {
  IPFamily,
  NodePortIPs,
  NodeSnapshot,
  ProxyOptions,
  ProxySnapshot,
  ServicePortSnapshot,
} from "./types.ts";

/** Inputs of the snapshot that come from configuration and the host, not from the API. */
export interface SnapshotSettings {
  /** This node's name. */
  readonly nodeName: string;
  /** `--cluster-cidr` values. */
  readonly clusterCIDRs: readonly string[];
  /** `--masquerade-all`. */
  readonly masqueradeAll: boolean;
  /** `--iptables-masquerade-bit`. */
  readonly masqueradeBit: number;
  /** `--iptables-localhost-nodeports`. */
  readonly localhostNodePorts: boolean;
  /** `--nodeport-addresses`: CIDRs, `primary`, or empty for all local addresses. */
  readonly nodePortAddresses: readonly string[];
  /** Addresses on this host's interfaces (read by the shell), for CIDR node-port addresses. */
  readonly hostAddresses: readonly string[];
}

/** One change from a source. */
export type ProxyEvent =
  | { readonly type: "upsert"; readonly object: KubeObject }
  | {
    readonly type: "delete";
    readonly kind: KubeKind;
    readonly namespace: string | null;
    readonly name: string;
  }
  | { readonly type: "replace"; readonly objects: readonly KubeObject[] }
  | { readonly type: "settings"; readonly settings: SnapshotSettings };

/** Everything the reconciler knows; never mutated, replaced by each batch. */
export interface ProxyState {
  /** Configuration and host inputs. */
  readonly settings: SnapshotSettings;
  /** Services by `namespace/name`. */
  readonly services: ReadonlyMap<string, Service>;
  /** EndpointSlices by `namespace/name` (of the slice). */
  readonly slices: ReadonlyMap<string, EndpointSlice>;
  /** Slice keys by the `namespace/name` of the Service they belong to. */
  readonly slicesByService: ReadonlyMap<string, ReadonlySet<string>>;
  /** This node's Node object, once seen. */
  readonly node: Node | null;
  /** The service port entries of each Service. */
  readonly entries: ReadonlyMap<string, readonly ServicePortSnapshot[]>;
  /** The snapshot built from all of the above. */
  readonly snapshot: ProxySnapshot;
}

/** What one reconcile step produced. */
export interface ReconcileResult {
  /** The next state. */
  readonly state: ProxyState;
  /** Ids of service ports added, removed or changed. */
  readonly changedServicePorts: readonly string[];
  /** True when node or options changed so that every rule may differ. */
  readonly nodeOrOptionsChanged: boolean;
  /**
   * True when anything the snapshot knows of the Node changed, including what changes no rule
   * (being deleted, the autoscaler's taint: health only).
   */
  readonly nodeChanged: boolean;
}

function sliceServiceKey(slice: EndpointSlice): string | null {
  const svc = slice.metadata.labels?.[SERVICE_NAME_LABEL];
  if (svc === undefined || svc === "") return null;
  return serviceKey(slice.metadata.namespace ?? "default", svc);
}

/**
 * Upstream's `NodePortAddresses` for one family: the family's CIDRs of `--nodeport-addresses`
 * (`primary` is this node's primary IP of the family, as a /32 or /128); none, or a zero-length
 * prefix among them, means every local address of the family (null); else the host's addresses
 * inside them (`primary` names its address directly).
 */
function nodePortIPsOf(
  family: IPFamily,
  primaryIPs: readonly string[],
  settings: SnapshotSettings,
): string[] | null {
  const cidrs: ParsedCIDR[] = [];
  const out = new Set<string>();
  for (const entry of settings.nodePortAddresses) {
    if (entry === "primary") {
      for (const ip of primaryIPs) {
        const parsed = parseIP(ip);
        if (parsed === null || parsed.family !== family || isLoopbackIP(parsed.text)) continue;
        cidrs.push(parseCIDR(`${parsed.text}/${family === "IPv4" ? 32 : 128}`) as ParsedCIDR);
        out.add(parsed.text);
      }
      continue;
    }
    const cidr = parseCIDR(entry.trim());
    if (cidr !== null && cidr.family === family) cidrs.push(cidr);
  }
  if (cidrs.length === 0 || cidrs.some((c) => c.prefix === 0)) return null;
  for (const host of settings.hostAddresses) {
    const ip = parseIP(host);
    if (ip !== null && cidrs.some((c) => cidrContains(c, ip))) out.add(ip.text);
  }
  return [...out].sort();
}

function isLoopbackIP(ip: string): boolean {
  return ip === "::1" || ip.startsWith("127.");
}

function nodeSnapshotOf(node: Node | null, settings: SnapshotSettings): NodeSnapshot {
  const primaryIPs: string[] = [];
  for (const type of ["InternalIP", "ExternalIP"]) {
    for (const addr of node?.status?.addresses ?? []) {
      if (addr.type !== type) continue;
      const ip = parseIP(addr.address);
      if (ip === null) continue;
      if (primaryIPs.some((p) => parseIP(p)?.family === ip.family)) continue;
      primaryIPs.push(ip.text);
    }
  }
  primaryIPs.sort((a, b) => (a.includes(":") ? 1 : 0) - (b.includes(":") ? 1 : 0));
  const nodePortIPs: NodePortIPs = {
    IPv4: nodePortIPsOf("IPv4", primaryIPs, settings),
    IPv6: nodePortIPsOf("IPv6", primaryIPs, settings),
  };
  const zone = node?.metadata.labels?.[TOPOLOGY_ZONE_LABEL] ?? null;
  return {
    name: settings.nodeName,
    zone: zone === "" ? null : zone,
    primaryIPs,
    nodePortIPs,
    deleting: Boolean(node?.metadata.deletionTimestamp),
    toBeDeleted: (node?.spec?.taints ?? []).some((t) => t.key === TO_BE_DELETED_TAINT),
    known: node !== null,
  };
}

/** What of the node the rules depend on (not its health-only facts). */
function ruleFacts(node: NodeSnapshot): Omit<NodeSnapshot, "deleting" | "toBeDeleted" | "known"> {
  const { deleting: _d, toBeDeleted: _t, known: _k, ...facts } = node;
  return facts;
}

function optionsOf(settings: SnapshotSettings): ProxyOptions {
  const parsed = new Map<string, ParsedCIDR>();
  for (const c of settings.clusterCIDRs) {
    const cidr = parseCIDR(c.trim());
    if (cidr !== null) parsed.set(cidr.text, cidr);
  }
  // A CIDR inside another one adds nothing (and nftables rejects overlapping set intervals).
  const all = [...parsed.values()];
  const cidrs = all.filter((c) =>
    !all.some((o) => o.prefix < c.prefix && cidrContains(o, c.network))
  ).map((c) => c.text);
  return {
    clusterCIDRs: cidrs.sort(),
    masqueradeAll: settings.masqueradeAll,
    masqueradeBit: settings.masqueradeBit,
    localhostNodePorts: settings.localhostNodePorts,
  };
}

function compareIds(a: ServicePortSnapshot, b: ServicePortSnapshot): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function assembleSnapshot(
  node: NodeSnapshot,
  options: ProxyOptions,
  servicePorts: readonly ServicePortSnapshot[],
): ProxySnapshot {
  const header = canonicalJSON({ version: 1, node, options });
  const hash = contentHash(header + "\n" + servicePorts.map((e) => e.hash).join("\n"));
  return deepFreeze({
    version: 1 as const,
    hash,
    node: deepFreeze(node),
    options: deepFreeze(options),
    servicePorts: Object.freeze(servicePorts),
  });
}

/** The state before any object is known. */
export function initialProxyState(settings: SnapshotSettings): ProxyState {
  const node = nodeSnapshotOf(null, settings);
  return {
    settings,
    services: new Map(),
    slices: new Map(),
    slicesByService: new Map(),
    node: null,
    entries: new Map(),
    snapshot: assembleSnapshot(node, optionsOf(settings), []),
  };
}

/** Applies a batch of events and rebuilds what they touched. */
export function reconcile(state: ProxyState, events: readonly ProxyEvent[]): ReconcileResult {
  let services = state.services as Map<string, Service>;
  let slices = state.slices as Map<string, EndpointSlice>;
  let slicesByService = state.slicesByService as Map<string, ReadonlySet<string>>;
  let node = state.node;
  let settings = state.settings;
  let copied = false;
  const dirty = new Set<string>();
  let everything = false;

  const copy = () => {
    if (copied) return;
    services = new Map(services);
    slices = new Map(slices);
    slicesByService = new Map(slicesByService);
    copied = true;
  };
  const unindexSlice = (key: string, slice: EndpointSlice) => {
    const svc = sliceServiceKey(slice);
    if (svc === null) return;
    dirty.add(svc);
    const set = new Set(slicesByService.get(svc) ?? []);
    set.delete(key);
    if (set.size === 0) slicesByService.delete(svc);
    else slicesByService.set(svc, set);
  };
  const indexSlice = (key: string, slice: EndpointSlice) => {
    const svc = sliceServiceKey(slice);
    if (svc === null) return;
    dirty.add(svc);
    slicesByService.set(svc, new Set([...(slicesByService.get(svc) ?? []), key]));
  };
  const upsert = (obj: KubeObject) => {
    if (obj.kind === "Node") {
      if (obj.object.metadata.name === settings.nodeName) node = obj.object;
      return;
    }
    copy();
    const meta = obj.object.metadata;
    const key = serviceKey(meta.namespace ?? "default", meta.name);
    if (obj.kind === "Service") {
      services.set(key, obj.object);
      dirty.add(key);
      return;
    }
    const old = slices.get(key);
    if (old !== undefined) unindexSlice(key, old);
    slices.set(key, obj.object);
    indexSlice(key, obj.object);
  };

  for (const event of events) {
    switch (event.type) {
      case "upsert":
        upsert(event.object);
        break;
      case "delete": {
        // This node's Node deleted (the last step of a drain, before the machine goes away):
        // keep what it said — its addresses still carry NodePorts and health checks until the
        // node is switched off, as upstream, whose NodeManager keeps the last Node it saw.
        if (event.kind === "Node") break;
        copy();
        const key = serviceKey(event.namespace ?? "default", event.name);
        if (event.kind === "Service") {
          if (services.delete(key)) dirty.add(key);
        } else {
          const old = slices.get(key);
          if (old !== undefined) {
            slices.delete(key);
            unindexSlice(key, old);
          }
        }
        break;
      }
      case "replace": {
        for (const key of services.keys()) dirty.add(key);
        for (const key of slicesByService.keys()) dirty.add(key);
        services = new Map();
        slices = new Map();
        slicesByService = new Map();
        copied = true;
        let sawNode = false;
        for (const obj of event.objects) {
          if (obj.kind === "Node" && obj.object.metadata.name === settings.nodeName) sawNode = true;
          upsert(obj);
        }
        if (!sawNode) node = null;
        break;
      }
      case "settings":
        // Another node name: the Node object kept so far describes another node.
        if (event.settings.nodeName !== settings.nodeName) node = null;
        settings = event.settings;
        break;
    }
  }

  const nodeSnap = nodeSnapshotOf(node, settings);
  const options = optionsOf(settings);
  const prev = state.snapshot;
  const nodeChanged = canonicalJSON(nodeSnap) !== canonicalJSON(prev.node);
  const headerChanged = nodeChanged || canonicalJSON(options) !== canonicalJSON(prev.options);
  // Health-only node facts change no rule: no full sync for a drained node.
  const rulesHeaderChanged = canonicalJSON(options) !== canonicalJSON(prev.options) ||
    canonicalJSON(ruleFacts(nodeSnap)) !== canonicalJSON(ruleFacts(prev.node));
  // Zone or node name changes alter topology and locality of every service.
  if (nodeSnap.zone !== prev.node.zone || settings.nodeName !== state.settings.nodeName) {
    everything = true;
  }
  const ctx: NodeContext = { name: settings.nodeName, zone: nodeSnap.zone };
  const toBuild = everything ? new Set([...services.keys(), ...state.entries.keys()]) : dirty;

  const entries = toBuild.size > 0
    ? new Map(state.entries)
    : state.entries as Map<string, readonly ServicePortSnapshot[]>;
  const changed: string[] = [];
  const removedIds = new Set<string>();
  const added: ServicePortSnapshot[] = [];
  for (const key of toBuild) {
    const svc = services.get(key);
    const before = state.entries.get(key) ?? [];
    let after: readonly ServicePortSnapshot[] = [];
    if (svc !== undefined) {
      const sliceList: EndpointSlice[] = [];
      for (const sk of slicesByService.get(key) ?? []) {
        const s = slices.get(sk);
        if (s !== undefined) sliceList.push(s);
      }
      after = Object.freeze(buildServicePorts(svc, sliceList, ctx));
    }
    if (after.length === 0) entries.delete(key);
    else entries.set(key, after);
    const beforeById = new Map(before.map((e) => [e.id, e.hash]));
    const afterIds = new Set(after.map((e) => e.id));
    for (const e of after) if (beforeById.get(e.id) !== e.hash) changed.push(e.id);
    for (const e of before) if (!afterIds.has(e.id)) changed.push(e.id);
    for (const e of before) removedIds.add(e.id);
    added.push(...after);
  }

  let snapshot = prev;
  if (changed.length > 0 || headerChanged) {
    let servicePorts: readonly ServicePortSnapshot[] = prev.servicePorts;
    if (toBuild.size > 0) {
      const kept = prev.servicePorts.filter((e) => !removedIds.has(e.id));
      added.sort(compareIds);
      const merged: ServicePortSnapshot[] = [];
      let i = 0;
      let j = 0;
      while (i < kept.length || j < added.length) {
        const a = kept[i];
        const b = added[j];
        if (b === undefined || (a !== undefined && compareIds(a, b) < 0)) {
          merged.push(a as ServicePortSnapshot);
          i++;
        } else {
          merged.push(b);
          j++;
        }
      }
      servicePorts = merged;
    }
    snapshot = assembleSnapshot(
      headerChanged ? nodeSnap : prev.node,
      headerChanged ? options : prev.options,
      servicePorts,
    );
  }
  return {
    state: { settings, services, slices, slicesByService, node, entries, snapshot },
    changedServicePorts: changed.sort(),
    nodeOrOptionsChanged: rulesHeaderChanged,
    nodeChanged,
  };
}

/** Builds a snapshot from a complete set of objects in one step. */
export function buildSnapshot(
  objects: readonly KubeObject[],
  settings: SnapshotSettings,
): ProxySnapshot {
  return reconcile(initialProxyState(settings), [{ type: "replace", objects }]).state.snapshot;
}
