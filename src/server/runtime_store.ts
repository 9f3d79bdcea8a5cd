/**
 * The {@link ProxyRuntime} of a running process: keeps the last few dozen live snapshots and sync
 * records, and turns the sync loop's hooks into health, metrics and history updates.
 */
import type { RuleRenderer } from "../apply/applier.ts";
import type { ProxyConfig } from "../config/proxy_config.ts";
import { unifiedDiff } from "../diff/unified_diff.ts";
import type { ProxyMetrics } from "../metrics/proxy_metrics.ts";
import { describeSnapshotDiff } from "../snapshot/snapshot_diff.ts";
import type { ProxySnapshot } from "../snapshot/types.ts";
import type { SyncLoopHooks, SyncRecord } from "../sync/sync_loop.ts";
import { type HealthStatus, type HealthTracker, nodeEligible } from "./health.ts";
import type { HealthCheckNodePortServers } from "./health_check_node_ports.ts";
import type { ProxyRuntime, RuntimeDiff } from "./runtime.ts";

/** Options of {@link ProxyRuntimeStore}. */
export interface ProxyRuntimeStoreOptions {
  /** The effective configuration (served by `/configz`). */
  readonly config: ProxyConfig;
  /** The metric set the hooks record into. */
  readonly metrics: ProxyMetrics;
  /** The health tracker the hooks drive. */
  readonly health: HealthTracker;
  /** Reads the live rules (`Applier.liveRules`). */
  readonly liveRules: () => Promise<string>;
  /** Renders snapshots to rule text, for `/diff` and `/rules?hash=` (none: no rule diffs). */
  readonly renderer?: RuleRenderer | null;
  /** Live snapshots kept for `/diff` (default 32). */
  readonly keepSnapshots?: number;
  /** Sync records kept (default 50). */
  readonly keepSyncs?: number;
  /** Health-check node port servers to update after every successful sync (optional). */
  readonly healthCheckNodePorts?: HealthCheckNodePortServers | null;
  /** Log sink (health-check node port problems). */
  readonly log?: (line: string) => void;
  /** Clock (default `Date.now`). */
  readonly now?: () => number;
  /** This node's addresses, for `/explain` (default: none beyond what the snapshot knows). */
  readonly nodeAddresses?: readonly string[];
}

const RENDER_CACHE_SIZE = 4;

/** The runtime the servers read, fed by the sync loop through {@link syncLoopHooks}. */
export class ProxyRuntimeStore implements ProxyRuntime {
  readonly #opts: ProxyRuntimeStoreOptions;
  readonly #now: () => number;
  readonly #snapshots = new Map<string, ProxySnapshot>();
  readonly #rendered = new Map<string, string>();
  #current: ProxySnapshot | null = null;
  #syncs: SyncRecord[] = [];

  /** Makes an empty store. */
  constructor(options: ProxyRuntimeStoreOptions) {
    this.#opts = options;
    this.#now = options.now ?? Date.now;
  }

  /** The effective configuration. */
  config(): ProxyConfig {
    return this.#opts.config;
  }

  /** The metric set. */
  metrics(): ProxyMetrics {
    return this.#opts.metrics;
  }

  /** Health now. */
  health(): HealthStatus {
    return this.#opts.health.status(this.#now());
  }

  /** The live snapshot. */
  currentSnapshot(): ProxySnapshot | null {
    return this.#current;
  }

  /** A kept snapshot by hash. */
  snapshotByHash(hash: string): ProxySnapshot | null {
    return this.#snapshots.get(hash) ?? null;
  }

  /** The diff between two kept snapshots (`toHash` defaults to the current one). */
  diffFrom(fromHash: string, toHash?: string): RuntimeDiff | null {
    const from = this.snapshotByHash(fromHash);
    const to = toHash === undefined ? this.#current : this.snapshotByHash(toHash);
    if (from === null || to === null) return null;
    const renderer = this.#opts.renderer ?? null;
    let rules: string | null = null;
    if (renderer !== null) {
      rules = unifiedDiff(this.renderRules(from) ?? "", this.renderRules(to) ?? "", {
        fromLabel: `${renderer.mode} ${from.hash}`,
        toLabel: `${renderer.mode} ${to.hash}`,
      });
    }
    return { snapshot: describeSnapshotDiff(from, to), rules };
  }

  /** Rendered rule text (a few recent renders are cached by hash). */
  renderRules(snapshot: ProxySnapshot): string | null {
    const renderer = this.#opts.renderer ?? null;
    if (renderer === null) return null;
    const cached = this.#rendered.get(snapshot.hash);
    if (cached !== undefined) return cached;
    const text = renderer.render(snapshot);
    this.#rendered.set(snapshot.hash, text);
    while (this.#rendered.size > RENDER_CACHE_SIZE) {
      this.#rendered.delete(this.#rendered.keys().next().value as string);
    }
    return text;
  }

  /** The kernel's current rules. */
  liveRules(): Promise<string> {
    return this.#opts.liveRules();
  }

  /** Recent sync attempts, newest first. */
  recentSyncs(): readonly SyncRecord[] {
    return this.#syncs;
  }

  /** This node's addresses. */
  nodeAddresses(): readonly string[] {
    return this.#opts.nodeAddresses ?? [];
  }

  /** Records a sync attempt; a successful one makes `snapshot` current and keeps it. */
  recordSync(record: SyncRecord, snapshot: ProxySnapshot | null): void {
    this.#syncs = [record, ...this.#syncs].slice(0, this.#opts.keepSyncs ?? 50);
    if (!record.ok || snapshot === null) return;
    this.#current = snapshot;
    this.#snapshots.delete(snapshot.hash); // re-insert as newest
    this.#snapshots.set(snapshot.hash, snapshot);
    const keep = Math.max(1, this.#opts.keepSnapshots ?? 32);
    while (this.#snapshots.size > keep) {
      this.#snapshots.delete(this.#snapshots.keys().next().value as string);
    }
  }

  #hcnpUpdate: Promise<void> = Promise.resolve();

  /** Resolves once the health-check node ports match the last synced snapshot. */
  healthCheckNodePortsSettled(): Promise<void> {
    return this.#hcnpUpdate;
  }

  #updateHealthCheckNodePorts(snapshot: ProxySnapshot): void {
    const servers = this.#opts.healthCheckNodePorts ?? null;
    if (servers === null) return;
    const log = this.#opts.log ?? (() => {});
    // Serialised: each update starts after the previous one finished opening and closing.
    this.#hcnpUpdate = this.#hcnpUpdate.then(async () => {
      try {
        const result = await servers.update(snapshot, () => this.health().healthy);
        for (const f of result.failed) {
          log(`cannot open health check node port ${f.port} of ${f.service}: ${f.error}`);
        }
      } catch (e) {
        log(`cannot update health check node ports: ${e instanceof Error ? e.message : e}`);
      }
    });
  }

  /** Hooks for `SyncLoop`: health, metrics and history follow every sync. */
  syncLoopHooks(): SyncLoopHooks {
    const { health, metrics } = this.#opts;
    return {
      onQueued: (now) => {
        health.queued(now);
        metrics.syncQueued(now);
      },
      onSynced: (record, snapshot, result) => {
        const now = record.startedAt + record.durationMs;
        health.synced(now, record.full);
        health.nodeDeleting(!nodeEligible(snapshot.node));
        metrics.syncSucceeded({
          durationSeconds: record.durationMs / 1000,
          full: record.full,
          nowMs: now,
          ruleCount: result.ruleCount,
          linesSent: result.linesSent,
        });
        metrics.conntrackReconciled(result.conntrack ?? []);
        metrics.snapshotApplied(snapshot);
        this.recordSync(record, snapshot);
        this.#updateHealthCheckNodePorts(snapshot);
      },
      onSyncFailed: (record) => {
        metrics.syncFailed({ durationSeconds: record.durationMs / 1000, full: record.full });
        this.recordSync(record, null);
      },
      onNetworkProgrammed: (latencySeconds) => metrics.networkProgrammed([latencySeconds]),
      onNodeChanged: (snapshot) => health.nodeDeleting(!nodeEligible(snapshot.node)),
    };
  }
}
