/**
 * The fleet benchmark's phases, for one implementation on a running {@link FleetCluster}:
 *
 * 1. **Start**: every node's proxy is started at once; each node's initial sync ends when the
 *    ruleset is in its kernel (it rejects the "ready" marker, a Service without endpoints,
 *    which it programs in the same transaction as everything else). Per node: time, bytes
 *    received and sent, requests (audit), then the steady state a few seconds later (open
 *    watches, open connections, RSS). The API server's CPU seconds and peak RSS over the start.
 * 2. **Changes**: a series of single EndpointSlice updates, closed by a marker Service every
 *    node must program; bytes and requests per node per change, and the API server's CPU.
 * 3. **Storms**: with probes running on the probe nodes, the API server is restarted
 *    (gracefully), or etcd is compacted and the API server killed and started again (every watch
 *    then resumes at a compacted resourceVersion: 410 Gone); a marker written once it answers
 *    again tells when each node caught up. Per storm: time until the last node caught up,
 *    requests and bytes of the whole fleet, the API server's CPU seconds and peak CPU, failed
 *    probes.
 *
 * @module
 */
import { readSlice, replaceSliceEndpoints } from "../api_cluster.ts";
import { memoryOf, type ProxyImpl } from "../proxy_process.ts";
import { freshEndpointIPv4 } from "../synthetic_cluster.ts";
import { summarize, type Summary } from "../stats.ts";
import { emptyTally, type RequestTally, tallyDelta } from "./audit.ts";
import {
  createFleet,
  type Fleet,
  type FleetCluster,
  type FleetNode,
  PROBE_SERVICE_IP,
  PROBE_SERVICE_PORT,
  startNodeProxy,
  waitForMarkerEverywhere,
  writeMarker,
} from "./lab.ts";
import type { ProcessWindow } from "./process_sampler.ts";
import { type TrafficCount, trafficDelta } from "./traffic_meter.ts";

/** What a storm does to the API server. */
export type StormKind = "restart" | "compact";

/** Options of {@link runFleetPhase}. */
export interface FleetPhaseOptions {
  /** Which proxy. */
  readonly impl: ProxyImpl;
  /** Nodes. */
  readonly nodes: number;
  /** Probe nodes among them. */
  readonly probeNodes: number;
  /** Single changes in the change series. */
  readonly changes: number;
  /** Storms to run, in order. */
  readonly storms: readonly StormKind[];
  /** How long the fleet may take to start, ms. */
  readonly startTimeoutMs: number;
  /** How long a node may take to catch up after a storm, ms. */
  readonly stormTimeoutMs: number;
  /** Folder for logs. */
  readonly logDir: string;
  /** Progress lines. */
  readonly log: (line: string) => void;
}

/** One node's figures. */
export interface NodeFigures {
  /** Node name. */
  readonly name: string;
  /** From the fleet's start until its ruleset was in the kernel, ms (null: never). */
  readonly syncMs: number | null;
  /** Traffic of the start phase (until every node synced, plus the settle time). */
  readonly initialTraffic: TrafficCount;
  /** Requests of the start phase. */
  readonly initialRequests: RequestTally;
  /** Watches open in the steady state. */
  readonly openWatches: number;
  /** TCP connections to the API server open in the steady state. */
  readonly openConnections: number;
  /** Resident set in the steady state, bytes. */
  readonly rss: number | null;
  /** Peak resident set so far (after the change series), bytes. */
  readonly hwm: number | null;
  /** Bytes received per change. */
  readonly bytesPerChange: number;
  /** Requests per change. */
  readonly requestsPerChange: number;
}

/** One storm's figures. */
export interface StormFigures {
  /** What happened. */
  readonly kind: StormKind;
  /** How long the API server was away (stop until ready again), ms. */
  readonly outageMs: number;
  /** Per node: from the API server answering again until the marker was in its kernel, ms. */
  readonly caughtUpMs: readonly (number | null)[];
  /** The slowest node, ms after the API server answered (null: some node never caught up). */
  readonly allCaughtUpMs: number | null;
  /** Requests the whole fleet made during the storm. */
  readonly requests: number;
  /** Requests per verb. */
  readonly byVerb: Readonly<Record<string, number>>;
  /** 410 answers (lists; a watch's 410 is an event the audit log cannot see). */
  readonly gone: number;
  /** 429/5xx answers. */
  readonly failed: number;
  /** Bytes the whole fleet received. */
  readonly bytesDown: number;
  /** TCP connections the fleet opened. */
  readonly connections: number;
  /** The API server while it was away (stop, start, until ready): its own restart. */
  readonly apiServerBoot: ProcessWindow;
  /** The API server from ready until every node caught up: the fleet's reconnection. */
  readonly apiServer: ProcessWindow;
  /** Probes sent on the probe nodes, and how many failed. */
  readonly probes: { readonly sent: number; readonly failed: number };
  /** First failures, for the report. */
  readonly probeFailures: readonly string[];
}

/** Everything one implementation's phase measured. */
export interface FleetPhaseResult {
  /** Which proxy. */
  readonly impl: ProxyImpl;
  /** Nodes. */
  readonly nodes: number;
  /** Nodes whose proxy synced. */
  readonly synced: number;
  /** Why the phase stopped early, if it did. */
  readonly note: string | null;
  /** Until the last node synced, ms. */
  readonly allSyncedMs: number | null;
  /** Per node. */
  readonly perNode: readonly NodeFigures[];
  /** The API server over the start. */
  readonly startApiServer: ProcessWindow;
  /** The API server over the change series. */
  readonly changesApiServer: ProcessWindow | null;
  /** Writes in the change series (changes + the marker's two). */
  readonly changeWrites: number;
  /** Storms. */
  readonly storms: readonly StormFigures[];
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Bytes as text: `812 B`, `12.3 KiB`, `4.56 MiB`, `1.2 GiB`. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return "—";
  if (bytes < 1024) return `${bytes.toFixed(0)} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(2)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

interface Counters {
  readonly traffic: TrafficCount[];
  readonly requests: RequestTally[];
}

async function counters(fc: FleetCluster, fleet: Fleet): Promise<Counters> {
  await fc.audit.catchUp();
  return {
    traffic: fleet.nodes.map((n) => n.meter.count()),
    requests: fleet.nodes.map((n) => fc.audit.tallies.of(n.user)),
  };
}

/** Waits until the audit log stops growing for the fleet (batch writes lag by up to 1 s). */
async function auditSettled(): Promise<void> {
  await sleep(2_500);
}

/**
 * The API server's own cost of a graceful restart with no fleet connected, from the stop until
 * it is ready and 3 s more: what a storm's CPU is compared with.
 */
export async function baselineRestart(fc: FleetCluster): Promise<ProcessWindow> {
  await fc.apiServer.cut();
  await fc.cluster.restartApiServer();
  await sleep(3_000);
  return await fc.apiServer.cut();
}

/**
 * The API server with no fleet connected, over `ms` (after the objects were created and it
 * settled): the idle CPU rate a fleet's start is measured above.
 */
export async function idleWindow(fc: FleetCluster, ms = 20_000): Promise<ProcessWindow> {
  await sleep(5_000);
  await fc.apiServer.cut();
  await sleep(ms);
  return await fc.apiServer.cut();
}

/** Runs one implementation's phase on a fresh fleet; always removes the fleet. */
export async function runFleetPhase(
  fc: FleetCluster,
  options: FleetPhaseOptions,
): Promise<FleetPhaseResult> {
  const log = options.log;
  log(`${options.impl}: building ${options.nodes} nodes (${options.probeNodes} probe nodes)`);
  const fleet = await createFleet(fc, {
    impl: options.impl,
    nodes: options.nodes,
    probeNodes: options.probeNodes,
    logDir: options.logDir,
  });
  try {
    return await runPhase(fc, fleet, options);
  } finally {
    log(`${options.impl}: removing the fleet`);
    await fleet.stop();
  }
}

async function runPhase(
  fc: FleetCluster,
  fleet: Fleet,
  options: FleetPhaseOptions,
): Promise<FleetPhaseResult> {
  const log = options.log;
  // --- 1. start ---------------------------------------------------------------------------
  await fc.apiServer.cut();
  const t0 = Date.now();
  await Promise.all(fleet.nodes.map((n) => startNodeProxy(fleet, n)));
  log(`${options.impl}: ${fleet.nodes.length} proxies started; waiting for their rulesets`);
  const seen = await waitForMarkerEverywhere(fleet, fc.ready, {
    timeoutMs: options.startTimeoutMs,
    intervalMs: 500,
  });
  const syncMs = seen.map((s) => (s === null ? null : s - t0));
  const synced = syncMs.filter((s) => s !== null).length;
  const allSyncedMs = synced === fleet.nodes.length ? Math.max(...(syncMs as number[])) : null;
  log(
    `${options.impl}: ${synced}/${fleet.nodes.length} synced` +
      (allSyncedMs === null ? "" : `, the last after ${(allSyncedMs / 1000).toFixed(1)} s`),
  );
  await auditSettled();
  const startApiServer = await fc.apiServer.cut();
  const initial = await counters(fc, fleet);
  const steadyMemory = await Promise.all(
    fleet.nodes.map((n) => (n.proxy === null ? null : memoryOf(n.proxy.pid))),
  );
  const note = synced < fleet.nodes.length
    ? `${fleet.nodes.length - synced} of ${fleet.nodes.length} nodes did not sync within ` +
      `${options.startTimeoutMs / 1000} s`
    : null;

  // --- 2. changes -------------------------------------------------------------------------
  let changesApiServer: ProcessWindow | null = null;
  let afterChanges = initial;
  const changeWrites = options.changes + 2;
  if (note === null && options.changes > 0) {
    // The change adds an IPv4 endpoint: only IPv4 slices take one (dual-stack services have
    // an IPv6 slice too).
    const v4Slices = fc.synthetic.slices.filter((s) => s["addressType"] === "IPv4");
    await fc.apiServer.cut();
    for (let k = 0; k < options.changes; k++) {
      const slice = v4Slices[(k * 97) % v4Slices.length];
      if (slice === undefined) break;
      const current = await readSlice(fc.clients, slice);
      const endpoints = [...(current.endpoints ?? []), {
        addresses: [freshEndpointIPv4(512 + (fc.nextMarker * 7 + k) % 1000)],
        conditions: { ready: true, serving: true, terminating: false },
        nodeName: "node-049",
      }];
      await replaceSliceEndpoints(fc.clients, current, endpoints);
      await sleep(100);
    }
    const marker = await writeMarker(fc);
    const landed = await waitForMarkerEverywhere(fleet, marker, {
      timeoutMs: options.stormTimeoutMs,
    });
    log(
      `${options.impl}: ${options.changes} changes; ` +
        `${landed.filter((x) => x !== null).length}/${fleet.nodes.length} nodes have the marker`,
    );
    await auditSettled();
    changesApiServer = await fc.apiServer.cut();
    afterChanges = await counters(fc, fleet);
  }
  const hwm = await Promise.all(
    fleet.nodes.map((n) => (n.proxy === null ? null : memoryOf(n.proxy.pid))),
  );

  const perNode: NodeFigures[] = fleet.nodes.map((n, i) => {
    const tally = initial.requests[i] ?? emptyTally();
    const traffic = initial.traffic[i] as TrafficCount;
    const delta = trafficDelta(traffic, afterChanges.traffic[i] as TrafficCount);
    const reqDelta = tallyDelta(tally, afterChanges.requests[i] ?? emptyTally());
    return {
      name: n.name,
      syncMs: syncMs[i] ?? null,
      initialTraffic: traffic,
      initialRequests: tally,
      openWatches: tally.openWatches,
      openConnections: traffic.open,
      rss: steadyMemory[i]?.rss ?? null,
      hwm: hwm[i]?.hwm ?? null,
      bytesPerChange: changesApiServer === null ? NaN : delta.down / changeWrites,
      requestsPerChange: changesApiServer === null ? NaN : reqDelta.requests / changeWrites,
    };
  });

  // --- 3. storms --------------------------------------------------------------------------
  const storms: StormFigures[] = [];
  let stormNote: string | null = null;
  if (note === null) {
    for (const kind of options.storms) {
      try {
        storms.push(await runStorm(fc, fleet, kind, options));
      } catch (e) {
        stormNote = `the ${kind} storm failed: ${
          e instanceof Error ? e.message.split("\n")[0] : e
        }`;
        log(`${options.impl}: ${stormNote}`);
        // The next phase needs an API server.
        if (!fc.cluster.apiServerRunning()) await fc.cluster.startApiServer().catch(() => {});
        break;
      }
    }
  }
  return {
    impl: options.impl,
    nodes: fleet.nodes.length,
    synced,
    note: note ?? stormNote,
    allSyncedMs,
    perNode,
    startApiServer,
    changesApiServer,
    changeWrites,
    storms,
  };
}

interface ProbeRecord {
  readonly node: string;
  readonly at: number;
  readonly ok: boolean;
  readonly what: string;
}

function startProbes(fleet: Fleet): { stop(): Promise<ProbeRecord[]> } {
  const records: ProbeRecord[] = [];
  let stopped = false;
  const loops = fleet.nodes.filter((n) => n.topology !== null).map(async (n: FleetNode) => {
    const topology = n.topology!;
    while (!stopped) {
      const at = Date.now();
      const r = await topology.probe("client", {
        protocol: "TCP",
        ip: PROBE_SERVICE_IP,
        port: PROBE_SERVICE_PORT,
      }, { timeoutMs: 1000 });
      records.push({
        node: n.name,
        at,
        ok: r.kind === "answer",
        what: r.kind === "answer" ? `answer from ${r.pod}` : r.kind,
      });
      await sleep(50);
    }
  });
  return {
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
      return records;
    },
  };
}

async function runStorm(
  fc: FleetCluster,
  fleet: Fleet,
  kind: StormKind,
  options: FleetPhaseOptions,
): Promise<StormFigures> {
  const probes = startProbes(fleet);
  try {
    return await stormWithProbes(fc, fleet, kind, options, probes);
  } finally {
    await probes.stop();
  }
}

async function stormWithProbes(
  fc: FleetCluster,
  fleet: Fleet,
  kind: StormKind,
  options: FleetPhaseOptions,
  probes: { stop(): Promise<ProbeRecord[]> },
): Promise<StormFigures> {
  const log = options.log;
  await sleep(2_000);
  if (kind === "compact") {
    // Move etcd's revision past every watch's resourceVersion, then compact it away.
    await writeMarker(fc);
    await sleep(1_000);
  }
  const before = await counters(fc, fleet);
  await fc.apiServer.cut();
  const tStop = Date.now();
  if (kind === "compact") {
    const revision = await fc.cluster.compactEtcd();
    log(`${options.impl}: etcd compacted at revision ${revision}; killing the API server`);
    await fc.cluster.restartApiServer({ crash: true });
  } else {
    log(`${options.impl}: restarting the API server`);
    await fc.cluster.restartApiServer();
  }
  const tReady = Date.now();
  const apiServerBoot = await fc.apiServer.cut();
  const marker = await writeMarker(fc);
  const seen = await waitForMarkerEverywhere(fleet, marker, {
    timeoutMs: options.stormTimeoutMs,
    intervalMs: 200,
  });
  const caughtUpMs = seen.map((s) => (s === null ? null : Math.max(0, s - tReady)));
  const allCaughtUpMs = caughtUpMs.every((c) => c !== null)
    ? Math.max(...(caughtUpMs as number[]))
    : null;
  const apiServer = await fc.apiServer.cut();
  await sleep(2_000);
  const records = await probes.stop();
  await auditSettled();
  const after = await counters(fc, fleet);
  const byVerb: Record<string, number> = {};
  let requests = 0, gone = 0, failed = 0, bytesDown = 0, connections = 0;
  fleet.nodes.forEach((_, i) => {
    const d = tallyDelta(before.requests[i] ?? emptyTally(), after.requests[i] ?? emptyTally());
    requests += d.requests;
    gone += d.gone;
    failed += d.failed;
    for (const [verb, n] of Object.entries(d.byVerb)) byVerb[verb] = (byVerb[verb] ?? 0) + n;
    const t = trafficDelta(before.traffic[i] as TrafficCount, after.traffic[i] as TrafficCount);
    bytesDown += t.down;
    connections += t.connections;
  });
  const failures = records.filter((r) => !r.ok);
  log(
    `${options.impl}: ${kind} storm: API server away ${((tReady - tStop) / 1000).toFixed(1)} s; ` +
      (allCaughtUpMs === null
        ? `${caughtUpMs.filter((c) => c === null).length} nodes never caught up`
        : `every node caught up ${(allCaughtUpMs / 1000).toFixed(1)} s after it answered`) +
      `; ${requests} requests; ${failures.length}/${records.length} probes failed`,
  );
  return {
    kind,
    outageMs: tReady - tStop,
    caughtUpMs,
    allCaughtUpMs,
    requests,
    byVerb,
    gone,
    failed,
    bytesDown,
    connections,
    apiServerBoot,
    apiServer,
    probes: { sent: records.length, failed: failures.length },
    probeFailures: failures.slice(0, 10).map((f) =>
      `${new Date(f.at).toISOString()} ${f.node}: ${f.what}`
    ),
  };
}

/** Summary of per-node values (nulls left out). */
export function perNodeSummary(values: readonly (number | null)[]): Summary {
  return summarize(values.filter((v): v is number => v !== null && Number.isFinite(v)));
}
