/**
 * Drives the real pipeline the way `kproxy` runs it — KubernetesSource → SyncLoop → Applier —
 * with a recording applier, so integration tests can assert on the snapshots that were synced.
 *
 * @module
 */
import type { Applier, SyncRequest, SyncResult } from "../../src/apply/applier.ts";
import { DEFAULT_PROXY_CONFIG } from "../../src/config/proxy_config.ts";
import type { ObjectError } from "../../src/model/kube_object.ts";
import type { SnapshotSettings } from "../../src/snapshot/proxy_state.ts";
import type { ProxySnapshot, ServicePortSnapshot } from "../../src/snapshot/types.ts";
import {
  KubernetesSource,
  type KubernetesSourceOptions,
} from "../../src/source/kubernetes_source.ts";
import { SyncLoop } from "../../src/sync/sync_loop.ts";

/** One sync the recording applier saw. */
export interface RecordedSync {
  /** When the applier was called (ms since epoch). */
  readonly at: number;
  /** What it was asked to program. */
  readonly request: SyncRequest;
}

/** An applier that programs nothing and remembers every sync. */
export class RecordingApplier implements Applier {
  /** Always `recording`. */
  readonly name = "recording";
  /** Every sync, oldest first. */
  readonly syncs: RecordedSync[] = [];

  /** Records the request. */
  sync(request: SyncRequest): Promise<SyncResult> {
    this.syncs.push({ at: Date.now(), request });
    return Promise.resolve({ full: request.full, linesSent: 0, ruleCount: 0, conntrackCleared: 0 });
  }

  /** Nothing is programmed. */
  liveRules(): Promise<string> {
    return Promise.resolve("");
  }

  /** Nothing to remove. */
  cleanup(): Promise<void> {
    return Promise.resolve();
  }

  /** The last synced snapshot. */
  get last(): ProxySnapshot | null {
    return this.syncs.at(-1)?.request.snapshot ?? null;
  }
}

/** The pipeline under test. */
export interface SourceHarness {
  /** The source. */
  readonly source: KubernetesSource;
  /** The sync loop. */
  readonly loop: SyncLoop;
  /** The recording applier. */
  readonly applier: RecordingApplier;
  /** Objects the source skipped as invalid. */
  readonly errors: ObjectError[];
  /** Network programming latencies the sync loop reported, seconds. */
  readonly programmed: number[];
  /** Log lines of the source and loop. */
  readonly logs: string[];
  /**
   * Waits until a synced snapshot satisfies `check` (a sync at or after `since`, ms) and returns
   * the time of that sync.
   */
  waitFor(
    what: string,
    check: (snapshot: ProxySnapshot) => boolean,
    options?: { since?: number; timeoutMs?: number },
  ): Promise<number>;
  /** Stops the source and the loop. */
  stop(): Promise<void>;
}

/** Snapshot settings of test node `nodeName`. */
export function testSettings(nodeName: string): SnapshotSettings {
  return {
    nodeName,
    clusterCIDRs: ["198.18.1.0/24"],
    masqueradeAll: false,
    masqueradeBit: DEFAULT_PROXY_CONFIG.masqueradeBit,
    localhostNodePorts: true,
    nodePortAddresses: [],
    hostAddresses: [],
  };
}

/** Starts source and loop; `source` options override the defaults (qps 50, short backoff). */
export async function startSourceHarness(
  source: Omit<KubernetesSourceOptions, "onEvents" | "onSynced" | "qps" | "burst" | "nodeName"> & {
    readonly nodeName?: string;
    readonly qps?: number;
    readonly burst?: number;
  },
  verbose = Deno.env.get("KPROXY_TEST_VERBOSE") === "1",
): Promise<SourceHarness> {
  const nodeName = source.nodeName ?? "node-a";
  const applier = new RecordingApplier();
  const errors: ObjectError[] = [];
  const programmed: number[] = [];
  const logs: string[] = [];
  const log = (line: string) => {
    logs.push(line);
    if (verbose) console.error(`  [kproxy] ${line}`);
  };
  const loop = new SyncLoop({
    applier,
    settings: testSettings(nodeName),
    minSyncPeriodMs: DEFAULT_PROXY_CONFIG.minSyncPeriodMs,
    syncPeriodMs: 60_000,
    hooks: { onNetworkProgrammed: (s) => programmed.push(s) },
    log,
  });
  const kubeSource = new KubernetesSource({
    qps: 50,
    burst: 100,
    backoff: { initialMs: 100, maxMs: 1_000, jitter: 0.2 },
    ...source,
    nodeName,
    onEvents: (events, errs, triggers) => {
      errors.push(...errs);
      for (const e of errs) log(`skipped bad object: ${e.message}`);
      loop.enqueue(events, triggers);
    },
    onSynced: () => loop.markSourcesSynced(),
    log,
  });
  loop.start();
  await kubeSource.start();
  return {
    source: kubeSource,
    loop,
    applier,
    errors,
    programmed,
    logs,
    async waitFor(what, check, options = {}) {
      const since = options.since ?? 0;
      const deadline = Date.now() + (options.timeoutMs ?? 20_000);
      let seen = 0;
      while (true) {
        const syncs = applier.syncs;
        for (; seen < syncs.length; seen++) {
          const s = syncs[seen];
          if (s !== undefined && s.at >= since && check(s.request.snapshot)) return s.at;
        }
        if (Date.now() > deadline) {
          throw new Error(
            `Timed out waiting for ${what}; last snapshot: ${
              JSON.stringify(summarize(applier.last))
            }\nlog tail:\n${logs.slice(-15).join("\n")}`,
          );
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    async stop() {
      await kubeSource.stop();
      await loop.stop();
    },
  };
}

/** The service port `id` of a snapshot. */
export function servicePort(
  snapshot: ProxySnapshot,
  id: string,
): ServicePortSnapshot | undefined {
  return snapshot.servicePorts.find((p) => p.id === id);
}

/** `ip:port` of the IPv4 endpoints of service port `id` (ready or not), or null without it. */
export function endpointsOf(snapshot: ProxySnapshot, id: string): string[] | null {
  const port = servicePort(snapshot, id);
  if (port === undefined) return null;
  const family = port.families.find((f) => f.family === "IPv4");
  return (family?.endpoints ?? []).map((e) => `${e.ip}:${e.port}${e.ready ? "" : " (not ready)"}`);
}

/** A compact view of a snapshot for failure messages. */
export function summarize(snapshot: ProxySnapshot | null): unknown {
  if (snapshot === null) return null;
  return {
    zone: snapshot.node.zone,
    ports: Object.fromEntries(
      snapshot.servicePorts.map((p) => [p.id, endpointsOf(snapshot, p.id)]),
    ),
  };
}
