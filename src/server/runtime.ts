/**
 * What the HTTP servers read from a running kproxy. The servers only ever read through this
 * interface, so tests back it with fixed data and the process backs it with
 * {@link ProxyRuntimeStore} fed by the sync loop.
 */
import type { ProxyConfig } from "../config/proxy_config.ts";
import type { ProxyMetrics } from "../metrics/proxy_metrics.ts";
import type { SnapshotDiff } from "../snapshot/snapshot_diff.ts";
import type { ProxySnapshot } from "../snapshot/types.ts";
import type { SyncRecord } from "../sync/sync_loop.ts";
import type { HealthStatus } from "./health.ts";

export type { HealthStatus, SnapshotDiff, SyncRecord };

/** The difference between a kept snapshot and another one, as `/diff` reports it. */
export interface RuntimeDiff {
  /** What changed, service port by service port (`describeSnapshotDiff`). */
  readonly snapshot: SnapshotDiff;
  /** Unified diff of the backend's rendered rules (empty when equal), or null without renderer. */
  readonly rules: string | null;
}

/** The read-only view of a running kproxy that the health and metrics servers serve. */
export interface ProxyRuntime {
  /** The effective configuration. */
  config(): ProxyConfig;
  /** The metric set (rendered by `/metrics`; the health server counts its answers in it). */
  metrics(): ProxyMetrics;
  /** Health right now (kube-proxy semantics, see `health.ts`). */
  health(): HealthStatus;
  /** The snapshot whose rules are live, or null before the first successful sync. */
  currentSnapshot(): ProxySnapshot | null;
  /** A recently live snapshot by hash (the last few dozen are kept), or null. */
  snapshotByHash(hash: string): ProxySnapshot | null;
  /** The diff from a kept snapshot to another kept one (default: the current), or null if either is unknown. */
  diffFrom(fromHash: string, toHash?: string): RuntimeDiff | null;
  /** The backend's rule text for a snapshot, or null when no renderer is configured. */
  renderRules(snapshot: ProxySnapshot): string | null;
  /** The rule text kproxy owns as the kernel reports it now (throws when it cannot be read). */
  liveRules(): Promise<string>;
  /** The most recent sync attempts, newest first. */
  recentSyncs(): readonly SyncRecord[];
  /** This node's own addresses (what `kproxy explain` treats as local), as read at start. */
  nodeAddresses(): readonly string[];
}
