/**
 * The reconciler: a pure handler `(state, batch of events) → next state + what changed`.
 *
 * The state holds the validated objects and the snapshot built from them. Each batch recomputes
 * only the services its events touch, and its cost follows the change, not the cluster: the
 * objects live in persistent maps (a new version shares all it did not touch), the sorted service
 * port list is patched by binary search (one memcpy), and the snapshot hash combines the ports'
 * hashes with a sum that is updated, not recomputed. Any sync can be replayed from its inputs.
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
import { type MapEditor, PersistentMap } from "./persistent_map.ts";
import type {
  IPFamily,
  LocalDetector,
  LocalMode,
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
  /** `--detect-local-mode` and its interface (absent: ClusterCIDR, as upstream's default). */
  readonly detectLocal?: DetectLocalSettings;
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

/** `--detect-local-mode` with `--pod-bridge-interface` / `--pod-interface-name-prefix`. */
export interface DetectLocalSettings {
  /** The mode. */
  readonly mode: LocalMode;
  /** `--pod-bridge-interface` (BridgeInterface mode). */
  readonly bridgeInterface: string;
  /** `--pod-interface-name-prefix` (InterfaceNamePrefix mode). */
  readonly interfaceNamePrefix: string;
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
  /** `spec.cidrs` of every ServiceCIDR, by name. */
  readonly serviceCIDRs: ReadonlyMap<string, readonly string[]>;
  /** The service port entries of each Service. */
  readonly entries: ReadonlyMap<string, readonly ServicePortSnapshot[]>;
  /** The snapshot built from all of the above. */
  readonly snapshot: ProxySnapshot;
  /** Sum (mod 2^128) of the service ports' hashes: the snapshot hash's part for them. */
  readonly portsDigest: bigint;
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

/** Canonical, sorted CIDRs; a CIDR inside another one adds nothing (nor may it in nft sets). */
function canonicalCIDRs(texts: readonly string[]): string[] {
  const parsed = new Map<string, ParsedCIDR>();
  for (const c of texts) {
    const cidr = parseCIDR(c.trim());
    if (cidr !== null) parsed.set(cidr.text, cidr);
  }
  const all = [...parsed.values()];
  return all.filter((c) => !all.some((o) => o.prefix < c.prefix && cidrContains(o, c.network)))
    .map((c) => c.text).sort();
}

/**
 * Upstream's local detector for the mode: NodeCIDR takes the Node's `spec.podCIDRs` (none until
 * the Node has them: the sync loop waits), the interface modes the interface name.
 */
function localDetectorOf(
  settings: SnapshotSettings,
  clusterCIDRs: readonly string[],
  node: Node | null,
): LocalDetector {
  const d = settings.detectLocal;
  const mode: LocalMode = d?.mode ?? "ClusterCIDR";
  switch (mode) {
    case "ClusterCIDR":
      return { mode, cidrs: clusterCIDRs, interfaceName: null };
    case "NodeCIDR":
      return { mode, cidrs: canonicalCIDRs(node?.spec?.podCIDRs ?? []), interfaceName: null };
    case "BridgeInterface":
      return { mode, cidrs: [], interfaceName: d?.bridgeInterface ?? "" };
    case "InterfaceNamePrefix":
      return { mode, cidrs: [], interfaceName: d?.interfaceNamePrefix ?? "" };
  }
}

/** True while NodeCIDR mode waits for the Node's `spec.podCIDRs` (nothing may be programmed). */
export function awaitingPodCIDRs(snapshot: ProxySnapshot): boolean {
  const d = snapshot.options.localDetector;
  return d.mode === "NodeCIDR" && d.cidrs.length === 0;
}

function optionsOf(settings: SnapshotSettings, node: Node | null): ProxyOptions {
  const cidrs = canonicalCIDRs(settings.clusterCIDRs);
  return {
    clusterCIDRs: cidrs,
    localDetector: localDetectorOf(settings, cidrs, node),
    masqueradeAll: settings.masqueradeAll,
    masqueradeBit: settings.masqueradeBit,
    localhostNodePorts: settings.localhostNodePorts,
  };
}

function compareIds(a: ServicePortSnapshot, b: ServicePortSnapshot): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

const DIGEST_MASK = (1n << 128n) - 1n;

/** A service port's hash as a number, for the snapshot digest. */
function hashValue(e: ServicePortSnapshot): bigint {
  return BigInt(`0x${e.hash}`);
}

/**
 * The service CIDRs of every ServiceCIDR object: canonical, sorted, a CIDR inside another one
 * left out (nftables refuses overlapping intervals in one set).
 */
function serviceCIDRsOf(objects: ReadonlyMap<string, readonly string[]>): string[] {
  return canonicalCIDRs([...objects.values()].flat());
}

function assembleSnapshot(
  node: NodeSnapshot,
  options: ProxyOptions,
  serviceCIDRs: readonly string[],
  servicePorts: readonly ServicePortSnapshot[],
  portsDigest: bigint,
): ProxySnapshot {
  const header = canonicalJSON({ version: 1, node, options, serviceCIDRs });
  // The ports enter as a count and the sum of their (content, id-including) hashes: equal
  // snapshots get equal hashes, and one changed port updates the sum without a pass over all.
  const hash = contentHash(
    `${header}\n${servicePorts.length}\n${portsDigest.toString(16).padStart(32, "0")}`,
  );
  return deepFreeze({
    version: 1 as const,
    hash,
    node: deepFreeze(node),
    options: deepFreeze(options),
    serviceCIDRs: Object.freeze([...serviceCIDRs]),
    servicePorts: Object.freeze(servicePorts),
  });
}

/** The state before any object is known. */
export function initialProxyState(settings: SnapshotSettings): ProxyState {
  const node = nodeSnapshotOf(null, settings);
  return {
    settings,
    services: PersistentMap.empty(),
    slices: PersistentMap.empty(),
    slicesByService: PersistentMap.empty(),
    node: null,
    serviceCIDRs: new Map(),
    entries: PersistentMap.empty(),
    snapshot: assembleSnapshot(node, optionsOf(settings, null), [], [], 0n),
    portsDigest: 0n,
  };
}

/** Index of the first port whose id is not below `id` (binary search). */
function lowerBound(list: readonly ServicePortSnapshot[], id: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((list[mid] as ServicePortSnapshot).id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** `prev` without the ports of `removed` and with `added` (sorted by id), patched in place. */
function patchPorts(
  prev: readonly ServicePortSnapshot[],
  removed: ReadonlySet<string>,
  added: readonly ServicePortSnapshot[],
): ServicePortSnapshot[] {
  // Few changes: one copy of the array, then splices where they go. Many: one merge pass.
  if (removed.size + added.length > 64) {
    const kept = prev.filter((e) => !removed.has(e.id));
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
    return merged;
  }
  const out = prev.slice();
  for (const id of removed) {
    const at = lowerBound(out, id);
    if (out[at]?.id === id) out.splice(at, 1);
  }
  for (const e of added) out.splice(lowerBound(out, e.id), 0, e);
  return out;
}

/** Applies a batch of events and rebuilds what they touched. */
export function reconcile(state: ProxyState, events: readonly ProxyEvent[]): ReconcileResult {
  let servicesBase = state.services as PersistentMap<Service>;
  let slicesBase = state.slices as PersistentMap<EndpointSlice>;
  let byServiceBase = state.slicesByService as PersistentMap<ReadonlySet<string>>;
  let services: MapEditor<Service> | null = null;
  let slices: MapEditor<EndpointSlice> | null = null;
  let slicesByService: MapEditor<ReadonlySet<string>> | null = null;
  let node = state.node;
  let serviceCIDRObjects = state.serviceCIDRs;
  let settings = state.settings;
  const dirty = new Set<string>();
  let everything = false;

  const edit = () => {
    if (services === null) services = servicesBase.edit();
    if (slices === null) slices = slicesBase.edit();
    if (slicesByService === null) slicesByService = byServiceBase.edit();
    return { services, slices, slicesByService };
  };
  const unindexSlice = (key: string, slice: EndpointSlice) => {
    const svc = sliceServiceKey(slice);
    if (svc === null) return;
    dirty.add(svc);
    const m = edit().slicesByService;
    const set = new Set(m.get(svc) ?? []);
    set.delete(key);
    if (set.size === 0) m.delete(svc);
    else m.set(svc, set);
  };
  const indexSlice = (key: string, slice: EndpointSlice) => {
    const svc = sliceServiceKey(slice);
    if (svc === null) return;
    dirty.add(svc);
    const m = edit().slicesByService;
    m.set(svc, new Set([...(m.get(svc) ?? []), key]));
  };
  const upsert = (obj: KubeObject) => {
    if (obj.kind === "Node") {
      if (obj.object.metadata.name === settings.nodeName) node = obj.object;
      return;
    }
    if (obj.kind === "ServiceCIDR") {
      serviceCIDRObjects = new Map(serviceCIDRObjects);
      (serviceCIDRObjects as Map<string, readonly string[]>).set(
        obj.object.metadata.name,
        obj.object.spec?.cidrs ?? [],
      );
      return;
    }
    const e = edit();
    const meta = obj.object.metadata;
    const key = serviceKey(meta.namespace ?? "default", meta.name);
    if (obj.kind === "Service") {
      e.services.set(key, obj.object);
      dirty.add(key);
      return;
    }
    const old = e.slices.get(key);
    if (old !== undefined) unindexSlice(key, old);
    e.slices.set(key, obj.object);
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
        if (event.kind === "ServiceCIDR") {
          if (serviceCIDRObjects.has(event.name)) {
            serviceCIDRObjects = new Map(serviceCIDRObjects);
            (serviceCIDRObjects as Map<string, readonly string[]>).delete(event.name);
          }
          break;
        }
        const e = edit();
        const key = serviceKey(event.namespace ?? "default", event.name);
        if (event.kind === "Service") {
          if (e.services.delete(key)) dirty.add(key);
        } else {
          const old = e.slices.get(key);
          if (old !== undefined) {
            e.slices.delete(key);
            unindexSlice(key, old);
          }
        }
        break;
      }
      case "replace": {
        const e = edit();
        for (const key of e.services.keys()) dirty.add(key);
        for (const key of e.slicesByService.keys()) dirty.add(key);
        servicesBase = PersistentMap.empty();
        slicesBase = PersistentMap.empty();
        byServiceBase = PersistentMap.empty();
        services = servicesBase.edit();
        slices = slicesBase.edit();
        slicesByService = byServiceBase.edit();
        serviceCIDRObjects = new Map();
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

  const finalServices = services === null ? servicesBase : (services as MapEditor<Service>).done();
  const finalSlices = slices === null ? slicesBase : (slices as MapEditor<EndpointSlice>).done();
  const finalByService = slicesByService === null
    ? byServiceBase
    : (slicesByService as MapEditor<ReadonlySet<string>>).done();

  const nodeSnap = nodeSnapshotOf(node, settings);
  const options = optionsOf(settings, node);
  const prev = state.snapshot;
  const serviceCIDRs = serviceCIDRObjects === state.serviceCIDRs
    ? prev.serviceCIDRs
    : serviceCIDRsOf(serviceCIDRObjects);
  const nodeChanged = canonicalJSON(nodeSnap) !== canonicalJSON(prev.node);
  const cidrsChanged = serviceCIDRs.join(",") !== prev.serviceCIDRs.join(",");
  const headerChanged = nodeChanged || cidrsChanged ||
    canonicalJSON(options) !== canonicalJSON(prev.options);
  // Health-only node facts change no rule: no full sync for a drained node. Nor do service
  // CIDRs: the nftables applier sends them as elements (a first one, or the last gone, changes
  // its fixed part, which it notices itself).
  const rulesHeaderChanged = canonicalJSON(options) !== canonicalJSON(prev.options) ||
    canonicalJSON(ruleFacts(nodeSnap)) !== canonicalJSON(ruleFacts(prev.node));
  // Zone or node name changes alter topology and locality of every service.
  if (nodeSnap.zone !== prev.node.zone || settings.nodeName !== state.settings.nodeName) {
    everything = true;
  }
  const ctx: NodeContext = { name: settings.nodeName, zone: nodeSnap.zone };
  const toBuild = everything ? new Set([...finalServices.keys(), ...state.entries.keys()]) : dirty;

  const oldEntries = state.entries as PersistentMap<readonly ServicePortSnapshot[]>;
  const entries = toBuild.size > 0 ? oldEntries.edit() : null;
  const changed: string[] = [];
  const removedIds = new Set<string>();
  const added: ServicePortSnapshot[] = [];
  let digest = state.portsDigest;
  for (const key of toBuild) {
    const svc = finalServices.get(key);
    const before = oldEntries.get(key) ?? [];
    let after: readonly ServicePortSnapshot[] = [];
    if (svc !== undefined) {
      const sliceList: EndpointSlice[] = [];
      for (const sk of finalByService.get(key) ?? []) {
        const s = finalSlices.get(sk);
        if (s !== undefined) sliceList.push(s);
      }
      after = Object.freeze(buildServicePorts(svc, sliceList, ctx));
    }
    if (after.length === 0) entries?.delete(key);
    else entries?.set(key, after);
    const beforeById = new Map(before.map((e) => [e.id, e.hash]));
    const afterIds = new Set(after.map((e) => e.id));
    for (const e of after) if (beforeById.get(e.id) !== e.hash) changed.push(e.id);
    for (const e of before) if (!afterIds.has(e.id)) changed.push(e.id);
    for (const e of before) {
      removedIds.add(e.id);
      digest -= hashValue(e);
    }
    for (const e of after) digest += hashValue(e);
    added.push(...after);
  }
  digest &= DIGEST_MASK;

  let snapshot = prev;
  if (changed.length > 0 || headerChanged) {
    let servicePorts: readonly ServicePortSnapshot[] = prev.servicePorts;
    if (toBuild.size > 0) {
      added.sort(compareIds);
      servicePorts = patchPorts(prev.servicePorts, removedIds, added);
    }
    snapshot = assembleSnapshot(
      headerChanged ? nodeSnap : prev.node,
      headerChanged ? options : prev.options,
      cidrsChanged ? serviceCIDRs : prev.serviceCIDRs,
      servicePorts,
      digest,
    );
  } else digest = state.portsDigest;
  return {
    state: {
      settings,
      services: finalServices,
      slices: finalSlices,
      slicesByService: finalByService,
      node,
      serviceCIDRs: serviceCIDRObjects,
      entries: entries === null ? oldEntries : entries.done(),
      snapshot,
      portsDigest: digest,
    },
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
