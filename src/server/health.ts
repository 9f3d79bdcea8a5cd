/**
 * kube-proxy's health semantics (upstream `ProxyHealthServer`), as a small state machine the sync
 * loop drives and pure functions that turn its state into `/healthz`, `/livez` and `/readyz`
 * answers.
 *
 * - The proxy is healthy unless a change was queued and has not been synced for `healthTimeoutMs`
 *   (kube-proxy uses 2 × `--sync-period`). Before the first successful sync it is healthy
 *   ("starting up"), as upstream.
 * - `/healthz` is also 503 while the node is not eligible (being deleted, or tainted
 *   `ToBeDeletedByClusterAutoscaler`), so load balancers drain it; `/livez` ignores the node.
 * - `/readyz` (kproxy's own) is 200 once the first full sync is live.
 */
import type { IPFamily, NodeSnapshot } from "../snapshot/types.ts";

/** Go's zero `time.Time` as JSON, what upstream reports before the first sync. */
export const ZERO_TIME = "0001-01-01T00:00:00Z";

/** A point-in-time view of the proxy's health. */
export interface HealthStatus {
  /** Proxy health: no queued change has waited longer than the timeout (the `/livez` answer). */
  readonly healthy: boolean;
  /** False while the Node is being deleted (makes `/healthz` fail, not `/livez`). */
  readonly nodeEligible: boolean;
  /** True once a full sync has made rules live. */
  readonly ready: boolean;
  /** When rules were last synced successfully (ms since epoch), or null before the first sync. */
  readonly lastUpdated: number | null;
  /** When the oldest unsynced change was queued (ms), or null when nothing is pending. */
  readonly oldestPendingQueued: number | null;
  /** The time this status was computed for (ms). */
  readonly currentTime: number;
  /** The IP families kproxy programs (reported per family, like upstream). */
  readonly ipFamilies: readonly IPFamily[];
}

/** Options of {@link HealthTracker}. */
export interface HealthTrackerOptions {
  /** How long a queued change may wait before the proxy is unhealthy (2 × sync period). */
  readonly healthTimeoutMs: number;
  /** IP families kproxy programs (default IPv4 only). */
  readonly ipFamilies?: readonly IPFamily[];
}

/** Tracks sync progress and node eligibility; the sync loop calls it, the servers read it. */
export class HealthTracker {
  /** The configured timeout, ms. */
  readonly healthTimeoutMs: number;
  readonly #families: readonly IPFamily[];
  #lastUpdated: number | null = null;
  #oldestPendingQueued: number | null = null;
  #nodeEligible = true;
  #ready = false;

  /** Makes a tracker in the "starting up" state (healthy, not ready). */
  constructor(options: HealthTrackerOptions) {
    this.healthTimeoutMs = options.healthTimeoutMs;
    this.#families = Object.freeze([...(options.ipFamilies ?? ["IPv4"])]);
  }

  /** A change that needs a sync was queued at `now` (only the oldest pending one counts). */
  queued(now: number): void {
    if (this.#oldestPendingQueued === null) this.#oldestPendingQueued = now;
  }

  /** A sync made rules live at `now`; a full one also makes the proxy ready. */
  synced(now: number, full: boolean): void {
    this.#oldestPendingQueued = null;
    this.#lastUpdated = now;
    if (full) this.#ready = true;
  }

  /** The Node is (or is no longer) being deleted or drained ({@link nodeEligible} false). */
  nodeDeleting(deleting: boolean): void {
    this.#nodeEligible = !deleting;
  }

  /** The health at `now`. */
  status(now: number): HealthStatus {
    return {
      healthy: proxyHealthy(
        this.#lastUpdated,
        this.#oldestPendingQueued,
        now,
        this.healthTimeoutMs,
      ),
      nodeEligible: this.#nodeEligible,
      ready: this.#ready,
      lastUpdated: this.#lastUpdated,
      oldestPendingQueued: this.#oldestPendingQueued,
      currentTime: now,
      ipFamilies: this.#families,
    };
  }
}

/**
 * Whether load balancers may send to this node (upstream's `NodeEligible`): not while its Node
 * is being deleted or carries the `ToBeDeletedByClusterAutoscaler` taint.
 */
export function nodeEligible(node: NodeSnapshot): boolean {
  return !node.deleting && !node.toBeDeleted;
}

/** Upstream's rule: unhealthy only when synced once and a change has waited ≥ the timeout. */
export function proxyHealthy(
  lastUpdated: number | null,
  oldestPendingQueued: number | null,
  now: number,
  healthTimeoutMs: number,
): boolean {
  if (lastUpdated === null || oldestPendingQueued === null) return true;
  return now - oldestPendingQueued < healthTimeoutMs;
}

/** An HTTP answer computed from a {@link HealthStatus}. */
export interface HealthResponse {
  /** 200 or 503. */
  readonly code: 200 | 503;
  /** The JSON body. */
  readonly body: Record<string, unknown>;
}

function isoTime(ms: number | null): string {
  return ms === null ? ZERO_TIME : new Date(ms).toISOString();
}

function healthBody(status: HealthStatus, withNode: boolean): Record<string, unknown> {
  // As upstream: while healthy, lastUpdated reads as "now" (older clients expect a fresh time).
  const lastUpdated = status.healthy ? status.currentTime : status.lastUpdated;
  const body: Record<string, unknown> = {
    lastUpdated: isoTime(lastUpdated),
    currentTime: isoTime(status.currentTime),
  };
  if (withNode) body.nodeEligible = status.nodeEligible;
  body.healthy = status.healthy;
  if (status.lastUpdated !== null) {
    const perFamily: Record<string, unknown> = {};
    for (const family of status.ipFamilies) {
      perFamily[family] = { lastUpdated: isoTime(status.lastUpdated), healthy: status.healthy };
    }
    body.status = perFamily;
  }
  return body;
}

/** The `/healthz` answer: 200 when the proxy is healthy and the node eligible, else 503. */
export function healthzResponse(status: HealthStatus): HealthResponse {
  const ok = status.healthy && status.nodeEligible;
  return { code: ok ? 200 : 503, body: healthBody(status, true) };
}

/** The `/livez` answer: like `/healthz` but ignoring the node's eligibility. */
export function livezResponse(status: HealthStatus): HealthResponse {
  return { code: status.healthy ? 200 : 503, body: healthBody(status, false) };
}

/** The `/readyz` answer: 200 once the first full sync is live. */
export function readyzResponse(status: HealthStatus): HealthResponse {
  return {
    code: status.ready ? 200 : 503,
    body: {
      ready: status.ready,
      lastUpdated: isoTime(status.lastUpdated),
      currentTime: isoTime(status.currentTime),
    },
  };
}
