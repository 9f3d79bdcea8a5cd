/**
 * The churn run, as its own process (`deno run --v8-flags=--expose-gc`, so memory can be measured
 * after a real garbage collection): the in-process {@link SyncLoop} with the real
 * {@link NftablesApplier} in a throwaway namespace, wrapped in an applier that records any
 * overlapping sync. It programs `--services` services, then makes `--rate` changes a second for
 * `--seconds` seconds (endpoints moving, becoming unready, services deleted and re-created, ports,
 * types, affinity and families changing), waits for the loop to settle and prints one JSON line:
 * sync counts, overlap count, memory before and after, and whether the kernel's ruleset equals a
 * fresh render of a snapshot built from the final objects (loaded into a second namespace and
 * compared listing against listing, normalised).
 *
 * IP plan: ClusterIPs 198.18.128.0/17 (service i → 198.18.(128 + i/256).(i%256)), IPv6
 * ClusterIPs fd00:128::/64, endpoints 198.18.1.0–198.18.127.255 and fd00:1::/64, node
 * 198.18.0.10 / fd00::10. Rules only in namespaces `kp-rel-churn-<pid>-*`.
 *
 * Usage: `_churn_main.ts --services 2000 --rate 100 --seconds 5 [--sync-period-ms 2000]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { Applier, SyncRequest, SyncResult } from "../../src/apply/applier.ts";
import { NftablesApplier } from "../../src/apply/nftables_applier.ts";
import { runTool, runToolResult } from "../../src/apply/run_tool.ts";
import { type KubeObject, parseKubeObject } from "../../src/model/kube_object.ts";
import { renderNftables } from "../../src/render/nftables/nftables_renderer.ts";
import {
  buildSnapshot,
  type ProxyEvent,
  type SnapshotSettings,
} from "../../src/snapshot/proxy_state.ts";
import { SyncLoop } from "../../src/sync/sync_loop.ts";
import { canonicalNftListing } from "./_nft_listing.ts";

/** What the run prints (one JSON line). */
export interface ChurnReport {
  readonly services: number;
  readonly changes: number;
  readonly seconds: number;
  readonly syncs: number;
  readonly fullSyncs: number;
  readonly failedSyncs: number;
  readonly overlaps: number;
  readonly maxConcurrent: number;
  readonly initialSyncMs: number;
  readonly settleMs: number;
  readonly rssBefore: number;
  readonly rssAfter: number;
  readonly heapBefore: number;
  readonly heapAfter: number;
  readonly heapTotalBefore: number;
  readonly heapTotalAfter: number;
  readonly externalBefore: number;
  readonly externalAfter: number;
  readonly snapshotHashMatches: boolean;
  readonly rulesetMatches: boolean;
  readonly rulesetLines: number;
  readonly firstDifference: string | null;
  readonly finalServicePorts: number;
  readonly rssSamplesMB: readonly number[];
  readonly heapTotalSamplesMB: readonly number[];
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    services: { type: "string", default: "2000" },
    rate: { type: "string", default: "100" },
    seconds: { type: "string", default: "5" },
    "sync-period-ms": { type: "string", default: "2000" },
    seed: { type: "string", default: "1" },
  },
});
const SERVICES = Number(values.services);
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const SYNC_PERIOD_MS = Number(values["sync-period-ms"]);

/** A small deterministic PRNG (mulberry32), so a failing run can be repeated with its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(Number(values.seed));
const pick = (n: number) => Math.floor(random() * n);

const SETTINGS: SnapshotSettings = {
  nodeName: "node-a",
  clusterCIDRs: ["198.18.0.0/17", "fd00:1::/64"],
  masqueradeAll: false,
  masqueradeBit: 14,
  localhostNodePorts: true,
  nodePortAddresses: [],
  hostAddresses: [],
};

/** What the churn varies per service. */
interface ServiceState {
  present: boolean;
  ports: 1 | 2;
  type: "ClusterIP" | "NodePort";
  affinity: boolean;
  ipv6: boolean;
  local: boolean;
  endpoints: number[];
  unready: number;
}

function clusterIP(i: number): string {
  return `198.18.${128 + (i >> 8)}.${i & 255}`;
}

function podIP(k: number, ipv6: boolean): string {
  const n = (k % 30000) + 256;
  return ipv6 ? `fd00:1::${n.toString(16)}` : `198.18.${n >> 8}.${n & 255}`;
}

function rawObjects(i: number, s: ServiceState): unknown[] {
  const name = `svc-${i}`;
  const ports = [{ name: "http", protocol: "TCP", port: 80, nodePort: 20000 + 2 * i }];
  if (s.ports === 2) {
    ports.push({ name: "dns", protocol: "UDP", port: 53, nodePort: 20001 + 2 * i });
  }
  const service = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: "churn" },
    spec: {
      type: s.type,
      clusterIP: clusterIP(i),
      clusterIPs: s.ipv6 ? [clusterIP(i), `fd00:128::${i.toString(16)}`] : [clusterIP(i)],
      ipFamilies: s.ipv6 ? ["IPv4", "IPv6"] : ["IPv4"],
      ports: ports.map((p) => (s.type === "NodePort" ? p : { ...p, nodePort: undefined })),
      ...(s.affinity ? { sessionAffinity: "ClientIP" } : {}),
      ...(s.type === "NodePort" && s.local ? { externalTrafficPolicy: "Local" } : {}),
    },
  };
  const slice = (ipv6: boolean) => ({
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: `${name}-${ipv6 ? "v6" : "v4"}`,
      namespace: "churn",
      labels: { "kubernetes.io/service-name": name },
    },
    addressType: ipv6 ? "IPv6" : "IPv4",
    ports: [{ name: "http", protocol: "TCP", port: 8080 }, {
      name: "dns",
      protocol: "UDP",
      port: 5353,
    }],
    endpoints: s.endpoints.map((k, j) => ({
      addresses: [podIP(k, ipv6)],
      conditions: { ready: j >= s.unready, serving: true, terminating: j < s.unready },
      nodeName: k % 3 === 0 ? "node-a" : "node-b",
    })),
  });
  return [service, slice(false), ...(s.ipv6 ? [slice(true)] : [])];
}

function parsed(raws: readonly unknown[]): KubeObject[] {
  return raws.map((raw) => {
    const r = parseKubeObject(raw);
    if (r.ok !== true) throw new Error(`Cannot parse churn object: ${JSON.stringify(r)}`);
    return r.value;
  });
}

const NODE = {
  apiVersion: "v1",
  kind: "Node",
  metadata: { name: "node-a" },
  status: {
    addresses: [{ type: "InternalIP", address: "198.18.0.10" }, {
      type: "InternalIP",
      address: "fd00::10",
    }],
  },
};

/** An applier wrapper that counts overlapping syncs (there must be none). */
class NoOverlapApplier implements Applier {
  readonly name: string;
  readonly #inner: Applier;
  active = 0;
  maxConcurrent = 0;
  overlaps = 0;
  syncs = 0;
  fullSyncs = 0;
  failed = 0;

  constructor(inner: Applier) {
    this.#inner = inner;
    this.name = inner.name;
  }

  async sync(request: SyncRequest): Promise<SyncResult> {
    this.active++;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.active);
    if (this.active > 1) this.overlaps++;
    try {
      const result = await this.#inner.sync(request);
      this.syncs++;
      if (result.full) this.fullSyncs++;
      return result;
    } catch (e) {
      this.failed++;
      throw e;
    } finally {
      this.active--;
    }
  }

  liveRules(): Promise<string> {
    return this.#inner.liveRules();
  }

  cleanup(): Promise<void> {
    return this.#inner.cleanup();
  }
}

const gc = (globalThis as { gc?: () => void }).gc;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function settledMemory(): Promise<
  { rss: number; heap: number; heapTotal: number; external: number }
> {
  for (let i = 0; i < 4; i++) {
    gc?.();
    await sleep(50);
  }
  const m = Deno.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed, heapTotal: m.heapTotal, external: m.external };
}

function firstDifference(a: string, b: string): string | null {
  if (a === b) return null;
  const la = a.split("\n");
  const lb = b.split("\n");
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) {
      return `line ${i + 1}: live ${JSON.stringify(la[i])} fresh ${JSON.stringify(lb[i])}`;
    }
  }
  return "lengths differ";
}

async function listTables(ns: string): Promise<string> {
  let out = "";
  for (const family of ["ip", "ip6"]) {
    out += await runTool("nft", ["list", "table", family, "kproxy"], { netns: ns });
  }
  return out;
}

/** Builds a fresh snapshot of the final objects, loads its render into `freshNs`, compares. */
async function compareWithFreshRender(
  states: readonly ServiceState[],
  loop: SyncLoop,
  ns: string,
  freshNs: string,
) {
  const finalObjects = parsed([
    NODE,
    ...states.flatMap((s, i) => (s.present ? rawObjects(i, s) : [])),
  ]);
  const fresh = buildSnapshot(finalObjects, SETTINGS);
  await runTool("nft", ["-f", "-"], { netns: freshNs, stdin: renderNftables(fresh) });
  const live = canonicalNftListing(await listTables(ns));
  const expected = canonicalNftListing(await listTables(freshNs));
  return {
    snapshotHashMatches: loop.lastSyncedSnapshot?.hash === fresh.hash,
    rulesetMatches: live === expected,
    rulesetLines: expected.split("\n").length,
    firstDifference: firstDifference(live, expected),
    finalServicePorts: fresh.servicePorts.length,
  };
}

/** Waits until nothing is pending and no sync runs. */
async function settle(loop: SyncLoop, applier: NoOverlapApplier): Promise<void> {
  await loop.settled(300_000);
  // settled() says nothing is pending; a sync may still be running.
  while (applier.active > 0) await sleep(5);
}

async function main(): Promise<ChurnReport> {
  const ns = `kp-rel-churn-${Deno.pid}`;
  const freshNs = `${ns}-f`;
  await runTool("ip", ["netns", "add", ns]);
  await runTool("ip", ["netns", "add", freshNs]);
  try {
    const states: ServiceState[] = [];
    for (let i = 0; i < SERVICES; i++) {
      states.push({
        present: true,
        ports: i % 4 === 0 ? 2 : 1,
        type: i % 5 === 0 ? "NodePort" : "ClusterIP",
        affinity: i % 7 === 0,
        ipv6: i % 10 === 0,
        local: i % 15 === 0,
        endpoints: [i * 3, i * 3 + 1, i * 3 + 2],
        unready: 0,
      });
    }
    const initialStates = structuredClone(states);
    const applier = new NoOverlapApplier(
      new NftablesApplier({
        netns: ns,
        conntrackCleanup: Deno.env.get("KPROXY_CHURN_NO_CONNTRACK") === undefined,
      }),
    );
    const loop = new SyncLoop({
      applier,
      settings: SETTINGS,
      minSyncPeriodMs: 10,
      syncPeriodMs: SYNC_PERIOD_MS,
      ...(Deno.env.get("KPROXY_CHURN_LOG") ? { log: (l: string) => console.error(l) } : {}),
    });
    loop.start();
    const initial: ProxyEvent[] = parsed([
      NODE,
      ...states.flatMap((s, i) => rawObjects(i, s)),
    ]).map((object) => ({ type: "upsert", object }));
    let t = performance.now();
    loop.enqueue(initial);
    loop.markSourcesSynced();
    await loop.settled(300_000);
    const initialSyncMs = performance.now() - t;
    const before = await settledMemory();

    // Churn: RATE changes a second, each one event batch, as a source would deliver them.
    let changes = 0;
    const rssSamples: number[] = [];
    const heapSamples: number[] = [];
    let nextSample = 0;
    const start = performance.now();
    const total = Math.round(RATE * SECONDS);
    while (changes < total) {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * RATE));
      for (; changes < due; changes++) loop.enqueue(change(states));
      if (performance.now() - start >= nextSample) {
        gc?.();
        const m = Deno.memoryUsage();
        rssSamples.push(Math.round(m.rss / 1e6));
        heapSamples.push(Math.round(m.heapTotal / 1e6));
        nextSample += 5000;
      }
      await sleep(5);
    }
    t = performance.now();
    await settle(loop, applier);
    const settleMs = performance.now() - t;

    // The kernel holds exactly what a fresh render of the final objects holds.
    const check = await compareWithFreshRender(states, loop, ns, freshNs);

    // Back to the starting objects: the same state must take the same memory as before.
    const reset: ProxyEvent[] = [];
    states.forEach((s, i) => {
      const start = initialStates[i] as ServiceState;
      if (JSON.stringify(s) === JSON.stringify(start)) return;
      if (s.present && s.ipv6 && !start.ipv6) {
        reset.push({
          type: "delete",
          kind: "EndpointSlice",
          namespace: "churn",
          name: `svc-${i}-v6`,
        });
      }
      states[i] = structuredClone(start);
      reset.push(...upserts(i, start));
    });
    loop.enqueue(reset);
    await settle(loop, applier);
    const after = await settledMemory();
    await loop.stop();
    return {
      services: SERVICES,
      changes,
      seconds: SECONDS,
      syncs: applier.syncs,
      fullSyncs: applier.fullSyncs,
      failedSyncs: applier.failed,
      overlaps: applier.overlaps,
      maxConcurrent: applier.maxConcurrent,
      initialSyncMs: Math.round(initialSyncMs),
      settleMs: Math.round(settleMs),
      rssBefore: before.rss,
      rssAfter: after.rss,
      heapBefore: before.heap,
      heapAfter: after.heap,
      heapTotalBefore: before.heapTotal,
      heapTotalAfter: after.heapTotal,
      externalBefore: before.external,
      externalAfter: after.external,
      ...check,
      rssSamplesMB: rssSamples,
      heapTotalSamplesMB: heapSamples,
    };
  } finally {
    await runToolResult("ip", ["netns", "del", ns]);
    await runToolResult("ip", ["netns", "del", freshNs]);
  }
}

/** One random change to one service; returns its events. */
function change(states: ServiceState[]): ProxyEvent[] {
  const i = pick(states.length);
  const s = states[i] as ServiceState;
  const name = `svc-${i}`;
  if (!s.present) {
    s.present = true;
    return upserts(i, s);
  }
  const r = random();
  if (r < 0.08) {
    // Delete the service and its slices.
    s.present = false;
    const events: ProxyEvent[] = [
      { type: "delete", kind: "Service", namespace: "churn", name },
      { type: "delete", kind: "EndpointSlice", namespace: "churn", name: `${name}-v4` },
    ];
    if (s.ipv6) {
      events.push({
        type: "delete",
        kind: "EndpointSlice",
        namespace: "churn",
        name: `${name}-v6`,
      });
    }
    return events;
  }
  if (r < 0.5) {
    // An endpoint moves (a pod replaced), the most common change.
    const j = pick(s.endpoints.length || 1);
    if (s.endpoints.length === 0) s.endpoints.push(40000 + pick(20000));
    else s.endpoints[j] = 40000 + pick(20000);
    return sliceUpserts(i, s);
  }
  if (r < 0.65) {
    s.unready = pick(s.endpoints.length + 1);
    return sliceUpserts(i, s);
  }
  if (r < 0.75) {
    // Scale up or down (possibly to zero endpoints).
    if (s.endpoints.length > 0 && random() < 0.5) s.endpoints.pop();
    else s.endpoints.push(40000 + pick(20000));
    s.unready = Math.min(s.unready, s.endpoints.length);
    return sliceUpserts(i, s);
  }
  if (r < 0.82) s.ports = s.ports === 1 ? 2 : 1;
  else if (r < 0.88) s.type = s.type === "ClusterIP" ? "NodePort" : "ClusterIP";
  else if (r < 0.93) s.affinity = !s.affinity;
  else if (r < 0.97) s.local = !s.local;
  else {
    // A family is added or removed: the IPv6 slice comes or goes with it.
    s.ipv6 = !s.ipv6;
    const events = upserts(i, s);
    if (!s.ipv6) {
      events.push({
        type: "delete",
        kind: "EndpointSlice",
        namespace: "churn",
        name: `${name}-v6`,
      });
    }
    return events;
  }
  return upserts(i, s);
}

function upserts(i: number, s: ServiceState): ProxyEvent[] {
  return parsed(rawObjects(i, s)).map((object) => ({ type: "upsert", object }));
}

function sliceUpserts(i: number, s: ServiceState): ProxyEvent[] {
  return parsed(rawObjects(i, s).slice(1)).map((object) => ({ type: "upsert", object }));
}

if (import.meta.main) {
  console.log(JSON.stringify(await main()));
}
