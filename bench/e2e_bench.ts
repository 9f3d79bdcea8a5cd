/**
 * The end-to-end benchmark: a real etcd + kube-apiserver on loopback, a synthetic cluster
 * created through it, and kproxy and upstream kube-proxy each in its own bench namespace (the
 * API server bridged in through a Unix socket, tests/fixtures/_netns_bridge.ts), all watching
 * the same API server. Per phase (nftables, then iptables) the proxies start one after another
 * (full sync: from process start until the kernel holds the ruleset), then run side by side
 * while the bench makes single changes through the API: for each, the time from the API write
 * until the kernel in each proxy's namespace committed it (nf_tables notifications). Then the
 * proxies' memory is read from /proc.
 *
 * @module
 */
import { startTestCluster } from "../tests/fixtures/apiserver.ts";
import type { NetnsBridge } from "../tests/fixtures/apiserver.ts";
import {
  type ApiClients,
  apiClients,
  createCluster,
  createService,
  createSlice,
  type CreationStats,
  deleteService,
  deleteSlice,
  readSlice,
  replaceSliceEndpoints,
} from "./api_cluster.ts";
import { atExit, type BenchNetns, createBenchNetns } from "./netns.ts";
import {
  cpuSecondsOf,
  fullSyncMarker,
  memoryOf,
  type ProxyMode,
  type ProxyProcess,
  type ProxySpec,
  startProxy,
  waitForSync,
} from "./proxy_process.ts";
import { endpointChainName } from "../src/render/iptables/chain_names.ts";
import { ipv4Hex, type KernelSighting, NfEventWatch, nowMs, textHex } from "./rule_watch.ts";
import { summarize, type Summary } from "./stats.ts";
import {
  addedService,
  BENCH_NODE_IPV4,
  BENCH_NODE_IPV6,
  BENCH_SERVICE_RANGE,
  freshEndpointIPv4,
  type RawObject,
  seededRandom,
  type SyntheticCluster,
  syntheticCluster,
} from "./synthetic_cluster.ts";

/** The proxies of each phase. */
export const PHASE_PROXIES: Readonly<Record<ProxyMode, readonly ProxySpec[]>> = {
  nftables: [
    { impl: "kproxy", mode: "nftables", label: "kproxy nftables" },
    { impl: "kube-proxy", mode: "nftables", label: "kube-proxy nftables" },
    {
      impl: "kube-proxy",
      mode: "nftables",
      minSyncPeriod: "0s",
      label: "kube-proxy nftables (min-sync 0)",
    },
  ],
  iptables: [
    { impl: "kproxy", mode: "iptables", label: "kproxy iptables" },
    { impl: "kube-proxy", mode: "iptables", label: "kube-proxy iptables" },
    {
      impl: "kube-proxy",
      mode: "iptables",
      minSyncPeriod: "0s",
      label: "kube-proxy iptables (min-sync 0)",
    },
  ],
};

/** The kinds of single change the series makes. */
export type ChangeKind = "scale-up" | "add-service" | "scale-down" | "delete-service";

/** One change and when each proxy's kernel had it. */
export interface ChangeRecord {
  /** What changed. */
  readonly kind: ChangeKind;
  /** The object written. */
  readonly target: string;
  /** Duration of the API write(s), ms. */
  readonly writeMs: number;
  /** Per proxy label: ms from the start of the write to the kernel commit (null: not seen). */
  readonly liveMs: Readonly<Record<string, number | null>>;
  /** Per proxy label: nf_tables notifications in the transaction that made it live. */
  readonly transactionMessages: Readonly<Record<string, number | null>>;
}

/** One proxy's results at one size. */
export interface ProxyRun {
  /** The proxy. */
  readonly spec: ProxySpec;
  /** Services in the cluster. */
  readonly services: number;
  /** Endpoints per service. */
  readonly endpointsPerService: number;
  /** From process start until its ruleset was in the kernel, ms (null: not reached). */
  readonly fullSyncMs: number | null;
  /** Why it was skipped or failed, if so. */
  readonly note: string | null;
  /** Change→live latency over the series. */
  readonly latency: Summary | null;
  /** Median notifications per change transaction. */
  readonly transactionMessages: number | null;
  /** Peak resident set (VmHWM), bytes. */
  readonly hwm: number | null;
  /** Resident set after the series (VmRSS), bytes. */
  readonly rss: number | null;
  /** CPU time the proxy used from start to the end of the series (user + system), s. */
  readonly cpuSeconds: number | null;
  /** Its log file. */
  readonly logPath: string | null;
}

/** Everything measured at one size. */
export interface E2ESizeResult {
  /** Services. */
  readonly services: number;
  /** Endpoints per service. */
  readonly endpointsPerService: number;
  /** How creating the cluster through the API went. */
  readonly creation: CreationStats;
  /** Per proxy. */
  readonly proxies: readonly ProxyRun[];
  /** Every change, per phase. */
  readonly changes: Readonly<Record<string, readonly ChangeRecord[]>>;
}

/** Options of {@link runE2E}. */
export interface E2EOptions {
  /** Cluster sizes (services). */
  readonly sizes: readonly number[];
  /** Endpoints per service. */
  readonly endpointsPerService: number;
  /** Changes per phase and size. */
  readonly changes: number;
  /** Phases to run. */
  readonly phases: readonly ProxyMode[];
  /** Skip a proxy whose estimated full sync exceeds this, ms. */
  readonly fullSyncCapMs: number;
  /** Stop a phase's change series after this long (but not before 8 changes), ms. */
  readonly phaseBudgetMs: number;
  /** Folder for the proxies' logs. */
  readonly logDir: string;
  /** Progress sink. */
  readonly log: (line: string) => void;
  /** Receives the results so far after each phase (to keep them if a later phase fails). */
  readonly checkpoint?: (partial: readonly E2ESizeResult[]) => Promise<void>;
}

interface Running {
  readonly spec: ProxySpec;
  readonly ns: BenchNetns;
  readonly bridge: NetnsBridge;
  readonly watch: NfEventWatch;
  proxy: ProxyProcess | null;
  fullSyncMs: number | null;
  note: string | null;
}

async function addNodeAddresses(netns: string): Promise<void> {
  for (
    const args of [
      ["-n", netns, "addr", "add", `${BENCH_NODE_IPV4}/32`, "dev", "lo"],
      ["-n", netns, "-6", "addr", "add", `${BENCH_NODE_IPV6}/128`, "dev", "lo"],
    ]
  ) {
    const out = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
    if (!out.success) {
      throw new Error(`Cannot run ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Services the series may touch: ClusterIP, single-stack, one TCP port, spread evenly. */
function changeTargets(cluster: SyntheticCluster, count: number): RawObject[] {
  const ok = cluster.services.filter((s) => {
    const spec = s["spec"] as { type: string; ports: unknown[]; ipFamilies: string[] };
    return spec.type === "ClusterIP" && spec.ports.length === 1 && spec.ipFamilies.length === 1 &&
      (spec.ports[0] as { protocol: string }).protocol === "TCP";
  });
  const out: RawObject[] = [];
  const step = ok.length / Math.max(1, count);
  for (let k = 0; k < count && k < ok.length; k++) out.push(ok[Math.floor(k * step)] as RawObject);
  return out;
}

function sliceOf(cluster: SyntheticCluster, svc: RawObject): RawObject {
  const name = `${svc.metadata.name}-v4`;
  const s = cluster.slices.find((x) =>
    x.metadata.name === name && x.metadata.namespace === svc.metadata.namespace
  );
  if (s === undefined) throw new Error(`Cannot find the slice of ${svc.metadata.name}`);
  return s;
}

/** State shared by the change series of all phases at one size. */
class ChangeMaker {
  #freshEp = 0;
  #freshSvc = 0;
  #targets: RawObject[];
  #next = 0;
  readonly #scaled: { slice: RawObject; ip: string }[] = [];
  readonly #clients: ApiClients;
  readonly #cluster: SyntheticCluster;

  constructor(clients: ApiClients, cluster: SyntheticCluster, maxChanges: number) {
    this.#clients = clients;
    this.#cluster = cluster;
    this.#targets = changeTargets(cluster, maxChanges);
  }

  #target(): RawObject {
    const t = this.#targets[this.#next++ % this.#targets.length];
    if (t === undefined) throw new Error("Cannot pick a change target: the cluster has none");
    return t;
  }

  /**
   * Prepares change `kind`: what to watch for, and the write to time (reads that only fetch a
   * resourceVersion happen here, untimed).
   */
  async prepare(kind: ChangeKind): Promise<{
    target: string;
    direction: "appear" | "disappear";
    hex: string;
    write: () => Promise<void>;
  }> {
    const c = this.#clients;
    switch (kind) {
      case "scale-up": {
        const svc = this.#target();
        const slice = sliceOf(this.#cluster, svc);
        const ip = freshEndpointIPv4(this.#freshEp++);
        const current = await readSlice(c, slice);
        const endpoints = [...(current.endpoints ?? []), {
          addresses: [ip],
          conditions: { ready: true, serving: true, terminating: false },
          nodeName: "node-049",
          zone: "zone-b",
        }];
        this.#scaled.push({ slice, ip });
        return {
          target: `${slice.metadata.namespace}/${slice.metadata.name} +${ip}`,
          direction: "appear",
          hex: ipv4Hex(ip),
          write: async () => void await replaceSliceEndpoints(c, current, endpoints),
        };
      }
      case "scale-down": {
        const scaled = this.#scaled.shift();
        if (scaled === undefined) return await this.prepare("scale-up");
        const current = await readSlice(c, scaled.slice);
        const endpoints = (current.endpoints ?? []).filter((e) => !e.addresses.includes(scaled.ip));
        // iptables mode: the endpoint is gone once its service chain stops jumping to its
        // KUBE-SEP chain (upstream deletes stale chains only now and then in large clusters).
        const labels = scaled.slice.metadata["labels"] as Record<string, string> | undefined;
        const svcName = labels?.["kubernetes.io/service-name"] ?? "";
        const sep = endpointChainName(
          `${scaled.slice.metadata.namespace}/${svcName}:http`,
          "TCP",
          `${scaled.ip}:8080`,
        );
        return {
          target: `${scaled.slice.metadata.namespace}/${scaled.slice.metadata.name} -${scaled.ip}`,
          direction: "disappear",
          hex: `${ipv4Hex(scaled.ip)},${textHex(sep)}`,
          write: async () => void await replaceSliceEndpoints(c, current, endpoints),
        };
      }
      case "add-service": {
        const first = this.#freshEp;
        this.#freshEp += 3;
        const { service, slice } = addedService(this.#freshSvc++, 3, first);
        return {
          target: `${service.metadata.namespace}/${service.metadata.name} (+3 endpoints)`,
          direction: "appear",
          hex: ipv4Hex(freshEndpointIPv4(first)),
          write: async () => {
            await createService(c, service);
            await createSlice(c, slice);
          },
        };
      }
      case "delete-service": {
        const svc = this.#target();
        const ip = (svc["spec"] as { clusterIP: string }).clusterIP;
        return {
          target: `${svc.metadata.namespace}/${svc.metadata.name} (${ip})`,
          direction: "disappear",
          hex: ipv4Hex(ip),
          write: async () => {
            await deleteService(c, svc);
            await deleteSlice(c, sliceOf(this.#cluster, svc)).catch(() => {});
          },
        };
      }
    }
  }
}

const CHANGE_CYCLE: readonly ChangeKind[] = [
  "scale-up",
  "add-service",
  "scale-down",
  "delete-service",
];

const MIN_CHANGES = 8;

async function runSeries(
  running: readonly Running[],
  maker: ChangeMaker,
  count: number,
  timeoutMs: number,
  budgetMs: number,
  seed: number,
  log: (line: string) => void,
): Promise<ChangeRecord[]> {
  const live = running.filter((r) =>
    r.proxy !== null && r.proxy.exited() === null && r.fullSyncMs !== null
  );
  const rand = seededRandom(seed);
  const records: ChangeRecord[] = [];
  const start = nowMs();
  for (let i = 0; i < count; i++) {
    if (i >= MIN_CHANGES && nowMs() - start > budgetMs) {
      log(`    stopping after ${i} changes: the phase's time budget (${fmt(budgetMs)}) is spent`);
      break;
    }
    const kind = CHANGE_CYCLE[i % CHANGE_CYCLE.length] as ChangeKind;
    const change = await maker.prepare(kind);
    const sightings: Promise<KernelSighting | null>[] = [];
    for (const r of live) {
      sightings.push(
        (await r.watch.arm(change.direction, change.hex.split(","), timeoutMs)).sighting,
      );
    }
    const t0 = nowMs();
    await change.write();
    const writeMs = nowMs() - t0;
    const seen = await Promise.all(sightings);
    const liveMs: Record<string, number | null> = {};
    const tx: Record<string, number | null> = {};
    live.forEach((r, j) => {
      const s = seen[j] ?? null;
      liveMs[r.spec.label] = s === null ? null : s.at - t0;
      tx[r.spec.label] = s === null ? null : s.transactionMessages;
    });
    records.push({ kind, target: change.target, writeMs, liveMs, transactionMessages: tx });
    log(
      `    change ${i + 1}/${count} ${kind} ${change.target}: ` +
        live.map((r) => `${r.spec.label} ${fmt(liveMs[r.spec.label] ?? null)}`).join(", "),
    );
    // Spread the changes out (1–2 s apart) so each is a single change for every proxy.
    await sleep(1000 + rand() * 1000);
  }
  return records;
}

function fmt(ms: number | null): string {
  return ms === null
    ? "not seen"
    : ms < 1000
    ? `${ms.toFixed(0)} ms`
    : `${(ms / 1000).toFixed(2)} s`;
}

function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m] as number : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Runs every phase at every size; results per size. */
export async function runE2E(options: E2EOptions): Promise<E2ESizeResult[]> {
  const { log } = options;
  const results: E2ESizeResult[] = [];
  const previous = new Map<string, { services: number; fullSyncMs: number }>();
  await Deno.mkdir(options.logDir, { recursive: true });
  for (const size of options.sizes) {
    log(
      `e2e ${size} services × ${options.endpointsPerService} endpoints: starting etcd + kube-apiserver`,
    );
    const cluster = await startTestCluster({
      serviceClusterIpRange: BENCH_SERVICE_RANGE,
      advertiseAddress: BENCH_NODE_IPV4,
    });
    // On SIGINT/SIGTERM the fixture's processes are killed at unload; remove its folder too.
    const forget = atExit(() => Deno.removeSync(cluster.dir, { recursive: true }));
    const proxies: ProxyRun[] = [];
    const changes: Record<string, ChangeRecord[]> = {};
    let creation: CreationStats;
    try {
      const clients = apiClients(cluster.kubeconfigPath);
      const synthetic = syntheticCluster({
        services: size,
        endpointsPerService: options.endpointsPerService,
      });
      log(
        `  creating ${synthetic.services.length} services and ${synthetic.slices.length} slices through the API (client-node)`,
      );
      creation = await createCluster(clients, synthetic, { concurrency: 32, log });
      log(
        `  created ${creation.objects} objects in ${(creation.ms / 1000).toFixed(1)} s ` +
          `(${creation.perSecond.toFixed(0)}/s, ${creation.concurrency} in flight)`,
      );
      const maker = new ChangeMaker(clients, synthetic, options.changes * options.phases.length);
      const last = [...synthetic.services].reverse().find((s) =>
        ((s["spec"] as { ports: { name: string }[] }).ports[0]?.name) === "http"
      ) as RawObject;
      for (const phase of options.phases) {
        log(`  phase ${phase}: ${PHASE_PROXIES[phase].map((p) => p.label).join(", ")}`);
        const running: Running[] = [];
        try {
          for (const spec of PHASE_PROXIES[phase]) {
            const tag = `${spec.impl === "kproxy" ? "kp" : "up"}${
              spec.mode === "nftables" ? "n" : "i"
            }${spec.minSyncPeriod ? "0" : ""}`;
            const ns = await createBenchNetns(tag);
            try {
              // The node's InternalIPs, so NodePort and health-check servers find their address.
              await addNodeAddresses(ns.name);
              const bridge = await cluster.exposeInNetns(ns.name);
              const watch = await NfEventWatch.start(ns.name);
              running.push({ spec, ns, bridge, watch, proxy: null, fullSyncMs: null, note: null });
            } catch (e) {
              await ns.remove();
              throw e;
            }
          }
          const lastPort = {
            namespace: last.metadata.namespace ?? "default",
            name: last.metadata.name,
            port: "http",
            clusterIP: (last["spec"] as { clusterIP: string }).clusterIP,
          };
          const failedFullSync = new Set<string>();
          for (const r of running) {
            const key = r.spec.label;
            const family = `${r.spec.impl} ${r.spec.mode}`;
            if (failedFullSync.has(family)) {
              r.note = `skipped (${family} with default flags did not finish its first sync)`;
              log(`    ${key}: ${r.note}`);
              continue;
            }
            const before = previous.get(key);
            if (before !== undefined) {
              const estimate = before.fullSyncMs * (size / before.services) ** 1.3;
              if (estimate > options.fullSyncCapMs) {
                r.note = `skipped (too slow: estimated ${fmt(estimate)} full sync from ${
                  fmt(before.fullSyncMs)
                } at ${before.services})`;
                log(`    ${key}: ${r.note}`);
                continue;
              }
            }
            const logPath = `${options.logDir}/${size}-${key.replace(/[^a-z0-9]+/gi, "_")}.log`;
            r.proxy = await startProxy(r.spec, r.ns.name, cluster.kubeProxyKubeconfigPath, logPath);
            const seenAt = await waitForSync(r.proxy, fullSyncMarker(r.spec, lastPort), {
              intervalMs: Math.min(1000, Math.max(200, size / 10)),
              timeoutMs: options.fullSyncCapMs * 2,
            });
            if (seenAt === null) {
              r.note = r.proxy.exited() !== null
                ? `exited (${r.proxy.exited()?.code}); see ${logPath}`
                : `no full sync within ${fmt(options.fullSyncCapMs * 2)}; stopped`;
              log(`    ${key}: ${r.note}`);
              failedFullSync.add(family);
              // It would only slow the others down and hold every change until its timeout.
              await r.proxy.stop();
              continue;
            }
            r.fullSyncMs = seenAt - r.proxy.startedAt;
            previous.set(key, { services: size, fullSyncMs: r.fullSyncMs });
            log(`    ${key}: full sync live after ${fmt(r.fullSyncMs)}`);
          }
          // Let post-start work settle (upstream syncs again once after its first sync).
          await sleep(5_000);
          const timeoutMs = Math.max(60_000, Math.min(options.fullSyncCapMs, 300_000));
          changes[phase] = await runSeries(
            running,
            maker,
            options.changes,
            timeoutMs,
            options.phaseBudgetMs,
            size,
            log,
          );
          for (const r of running) {
            const mem = r.proxy === null ? null : await memoryOf(r.proxy.pid);
            const cpu = r.proxy === null ? null : await cpuSecondsOf(r.proxy.pid);
            const samples = changes[phase]
              .map((c) => c.liveMs[r.spec.label])
              .filter((x): x is number => typeof x === "number");
            const txs = changes[phase]
              .map((c) => c.transactionMessages[r.spec.label])
              .filter((x): x is number => typeof x === "number");
            const missed = r.proxy === null ? 0 : changes[phase].length - samples.length;
            const watchTrouble = [
              ...(r.watch.closed ? ["the kernel-event listener died"] : []),
              ...(r.watch.lost > 0 ? [`${r.watch.lost} listener buffer overruns`] : []),
            ];
            proxies.push({
              spec: r.spec,
              services: size,
              endpointsPerService: options.endpointsPerService,
              fullSyncMs: r.fullSyncMs,
              note: r.note ??
                ([...(missed > 0 ? [`${missed} changes not seen in time`] : []), ...watchTrouble]
                  .join("; ") || null),
              latency: samples.length > 0 ? summarize(samples) : null,
              transactionMessages: median(txs),
              hwm: mem?.hwm ?? null,
              rss: mem?.rss ?? null,
              cpuSeconds: cpu,
              logPath: r.proxy?.logPath ?? null,
            });
          }
        } finally {
          for (const r of running) await r.proxy?.stop();
          for (const r of running) {
            await r.watch.stop();
            await r.bridge.close();
            await r.ns.remove();
          }
        }
        await options.checkpoint?.([...results, {
          services: size,
          endpointsPerService: options.endpointsPerService,
          creation,
          proxies,
          changes,
        }]);
      }
    } finally {
      await cluster.stop();
      forget();
    }
    results.push({
      services: size,
      endpointsPerService: options.endpointsPerService,
      creation,
      proxies,
      changes,
    });
  }
  return results;
}
