/**
 * The event-driven sync loop: kube-proxy's `syncProxyRules` skeleton around the pure reconciler.
 *
 * Events are queued as they arrive; nothing is programmed until every source has synced once;
 * then each change triggers a sync at once, changes that arrive during a sync are coalesced into
 * the next, `minSyncPeriodMs` bounds the rate, `syncPeriodMs` forces a full resync, and a failed
 * sync is retried with backoff as a full sync. Syncs never overlap.
 */
import type { Applier, SyncResult } from "../apply/applier.ts";
import {
  awaitingPodCIDRs,
  initialProxyState,
  type ProxyEvent,
  type ProxyState,
  reconcile,
  type SnapshotSettings,
} from "../snapshot/proxy_state.ts";
import type { ProxySnapshot } from "../snapshot/types.ts";

/** What one sync attempt did. */
export interface SyncRecord {
  /** Wall-clock start (ms since epoch). */
  readonly startedAt: number;
  /** How long it took, in ms. */
  readonly durationMs: number;
  /** True for a full sync. */
  readonly full: boolean;
  /** True when the rules are live. */
  readonly ok: boolean;
  /** Why it failed. */
  readonly error: string | null;
  /** The snapshot it programmed (or tried to). */
  readonly snapshotHash: string;
  /** Service ports in that snapshot. */
  readonly servicePorts: number;
  /** Service ports changed since the previous successful sync. */
  readonly changedServicePorts: number;
  /** Lines sent to the kernel. */
  readonly linesSent: number;
}

/** Callbacks through which the loop reports to health, metrics and logs. */
export interface SyncLoopHooks {
  /** A change was queued and not yet synced (first one since the last sync). */
  onQueued?(now: number, pendingEvents: number): void;
  /** A sync succeeded. */
  onSynced?(record: SyncRecord, snapshot: ProxySnapshot, result: SyncResult): void;
  /** A sync failed; the old rules stay. */
  onSyncFailed?(record: SyncRecord, error: unknown): void;
  /** Seconds from an EndpointSlice change trigger time to its rules being live. */
  onNetworkProgrammed?(latencySeconds: number): void;
  /** What the snapshot knows of the Node changed (before the sync it causes, if any). */
  onNodeChanged?(snapshot: ProxySnapshot): void;
}

/** Options of {@link SyncLoop}. */
export interface SyncLoopOptions {
  /** The backend that makes snapshots live. */
  readonly applier: Applier;
  /** Snapshot settings (node name, CIDRs, ...). */
  readonly settings: SnapshotSettings;
  /** Minimum time between sync starts, ms. */
  readonly minSyncPeriodMs: number;
  /** Full resync interval, ms. */
  readonly syncPeriodMs: number;
  /** First retry delay after a failure, ms (doubles up to `syncPeriodMs`). */
  readonly retryBaseMs?: number;
  /** Reporting callbacks. */
  readonly hooks?: SyncLoopHooks;
  /** Log sink. */
  readonly log?: (line: string) => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs syncs for queued events; one instance per proxied node. */
export class SyncLoop {
  #state: ProxyState;
  #pending: ProxyEvent[] = [];
  #pendingTriggers: number[] = [];
  #unsynced = new Set<string>();
  #needFull = true;
  #sourcesSynced = false;
  #syncing = false;
  #stopped = false;
  #running: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #lastSyncStart = 0;
  #lastFullSync = 0;
  #failures = 0;
  #retryAt = 0;
  #lastSynced: ProxySnapshot | null = null;
  #queuedSince: number | null = null;
  #awaitingPodCIDRs = false;
  readonly #opts: SyncLoopOptions;
  readonly #log: (line: string) => void;

  /** Makes a loop; call {@link start} to run it. */
  constructor(options: SyncLoopOptions) {
    this.#opts = options;
    this.#state = initialProxyState(options.settings);
    this.#log = options.log ?? (() => {});
  }

  /** The reconciler's current state (includes changes not yet synced). */
  get state(): ProxyState {
    return this.#state;
  }

  /** The last snapshot that is live in the kernel, if any. */
  get lastSyncedSnapshot(): ProxySnapshot | null {
    return this.#lastSynced;
  }

  /** True once a sync succeeded. */
  get hasSynced(): boolean {
    return this.#lastSynced !== null;
  }

  /** When the oldest unsynced change was queued (ms), or null. */
  get queuedSince(): number | null {
    return this.#queuedSince;
  }

  /**
   * True while `--detect-local-mode=NodeCIDR` waits for the Node's `spec.podCIDRs`: as upstream,
   * nothing is programmed until the Node has them.
   */
  get awaitingPodCIDRs(): boolean {
    return this.#awaitingPodCIDRs;
  }

  /** Consecutive failed syncs. */
  get consecutiveFailures(): number {
    return this.#failures;
  }

  /** Queues events; `triggerTimes` are EndpointSlice change times (ms) for latency metrics. */
  enqueue(events: readonly ProxyEvent[], triggerTimes: readonly number[] = []): void {
    if (events.length === 0) return;
    this.#pending.push(...events);
    this.#pendingTriggers.push(...triggerTimes);
    if (this.#queuedSince === null) {
      this.#queuedSince = Date.now();
      this.#opts.hooks?.onQueued?.(this.#queuedSince, this.#pending.length);
    }
    this.#kick();
  }

  /** Every source has listed once: syncing may begin. */
  markSourcesSynced(): void {
    this.#sourcesSynced = true;
    this.#kick();
  }

  /** Asks for a full sync at the next opportunity. */
  requestFullSync(): void {
    this.#needFull = true;
    this.#kick();
  }

  /** Starts the loop. */
  start(): void {
    if (this.#running !== null) return;
    this.#stopped = false;
    this.#running = this.#run();
  }

  /** Stops the loop after the sync in progress (rules stay in place). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#kick();
    await this.#running;
    this.#running = null;
  }

  /** Resolves once nothing is pending and the last attempt succeeded (for tests and tools). */
  async settled(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (
      this.#pending.length > 0 || this.#needFull || this.#failures > 0 || !this.#sourcesSynced ||
      this.#syncing
    ) {
      if (Date.now() > deadline) throw new Error("Sync loop did not settle in time");
      await sleep(5);
    }
  }

  #kick(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  #hasWork(now: number): boolean {
    if (!this.#sourcesSynced) return false;
    if (this.#awaitingPodCIDRs) return this.#pending.length > 0;
    if (this.#failures > 0) return now >= this.#retryAt;
    if (this.#needFull || this.#pending.length > 0) return true;
    return now - this.#lastFullSync >= this.#opts.syncPeriodMs;
  }

  #nextTimer(now: number): number {
    if (!this.#sourcesSynced || this.#awaitingPodCIDRs) return 1_000;
    if (this.#failures > 0) return Math.max(0, this.#retryAt - now);
    return Math.max(0, this.#lastFullSync + this.#opts.syncPeriodMs - now);
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const now = Date.now();
      if (!this.#hasWork(now)) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            this.#wake = null;
            resolve();
          }, Math.min(this.#nextTimer(now), 2_147_483_647));
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        continue;
      }
      const wait = this.#lastSyncStart + this.#opts.minSyncPeriodMs - Date.now();
      if (wait > 0) await sleep(wait);
      if (this.#stopped) break;
      await this.#syncOnce();
    }
  }

  async #syncOnce(): Promise<void> {
    this.#syncing = true;
    try {
      await this.#syncAttempt();
    } finally {
      this.#syncing = false;
    }
  }

  async #syncAttempt(): Promise<void> {
    const events = this.#pending;
    const triggers = this.#pendingTriggers;
    this.#pending = [];
    this.#pendingTriggers = [];
    if (events.length > 0) {
      const result = reconcile(this.#state, events);
      this.#state = result.state;
      for (const id of result.changedServicePorts) this.#unsynced.add(id);
      if (result.nodeOrOptionsChanged) this.#needFull = true;
      if (result.nodeChanged) this.#opts.hooks?.onNodeChanged?.(result.state.snapshot);
    }
    const snapshot = this.#state.snapshot;
    const waiting = awaitingPodCIDRs(snapshot);
    if (waiting !== this.#awaitingPodCIDRs) {
      this.#log(
        waiting
          ? `detect-local-mode NodeCIDR: waiting for Node ${snapshot.node.name}'s ` +
            "spec.podCIDRs before programming any rule"
          : `detect-local-mode NodeCIDR: pod CIDRs ${
            snapshot.options.localDetector.cidrs.join(", ")
          }`,
      );
      this.#awaitingPodCIDRs = waiting;
    }
    if (waiting) {
      // Nothing is programmed yet; the changes stay for the first sync (a full one).
      this.#pendingTriggers.unshift(...triggers);
      this.#needFull = true;
      return;
    }
    const start = Date.now();
    const changed = [...this.#unsynced].sort();
    const sinceFull = start - this.#lastFullSync;
    // A periodic resync that falls due while changes wait runs right after their partial sync,
    // so the changes are not held up by a rewrite of everything (seconds at 10k services); under
    // constant churn it is never put off by more than one more period.
    const periodic = sinceFull >= this.#opts.syncPeriodMs &&
      (changed.length === 0 || sinceFull >= 2 * this.#opts.syncPeriodMs);
    const full = this.#needFull || periodic;
    this.#lastSyncStart = start;
    const queuedSince = this.#queuedSince;
    this.#queuedSince = null;
    try {
      const t0 = performance.now();
      const result = await this.#opts.applier.sync({
        snapshot,
        changedServicePorts: changed,
        full,
        resync: periodic && !this.#needFull,
      });
      const durationMs = performance.now() - t0;
      const record: SyncRecord = {
        startedAt: start,
        durationMs,
        // What happened: a resync finds nothing to repair when nobody touched the rules.
        full: result.full,
        ok: true,
        error: null,
        snapshotHash: snapshot.hash,
        servicePorts: snapshot.servicePorts.length,
        changedServicePorts: changed.length,
        linesSent: result.linesSent,
      };
      this.#unsynced.clear();
      this.#needFull = false;
      this.#failures = 0;
      if (full) this.#lastFullSync = start;
      this.#lastSynced = snapshot;
      const kind = result.full ? "full" : full ? "partial (resync: rules untouched)" : "partial";
      this.#log(
        `sync ok: ${kind}, ${snapshot.servicePorts.length} service ports, ` +
          `${changed.length} changed, ${result.linesSent} lines, ${durationMs.toFixed(1)} ms, ` +
          `snapshot ${snapshot.hash}`,
      );
      this.#opts.hooks?.onSynced?.(record, snapshot, result);
      const now = Date.now();
      for (const t of triggers) this.#opts.hooks?.onNetworkProgrammed?.((now - t) / 1000);
    } catch (error) {
      const durationMs = Date.now() - start;
      this.#failures++;
      this.#needFull = true;
      const base = this.#opts.retryBaseMs ?? 250;
      const backoff = Math.min(base * 2 ** (this.#failures - 1), this.#opts.syncPeriodMs);
      this.#retryAt = Date.now() + backoff;
      // Keep the changes and trigger times for the retry.
      this.#pendingTriggers.unshift(...triggers);
      if (this.#queuedSince === null) this.#queuedSince = queuedSince ?? start;
      const message = error instanceof Error ? error.message : String(error);
      const record: SyncRecord = {
        startedAt: start,
        durationMs,
        full,
        ok: false,
        error: message,
        snapshotHash: snapshot.hash,
        servicePorts: snapshot.servicePorts.length,
        changedServicePorts: changed.length,
        linesSent: 0,
      };
      this.#log(
        `sync failed (attempt ${this.#failures}, retry in ${backoff} ms, old rules kept): ${message}`,
      );
      this.#opts.hooks?.onSyncFailed?.(record, error);
    }
  }
}
