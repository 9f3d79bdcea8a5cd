/** The pluggable applier: what every backend (nftables, iptables, dry-run) offers the sync loop. */
import type { ProxySnapshot } from "../snapshot/types.ts";
import type { ConntrackReconcileReport } from "./conntrack.ts";

/** One sync the loop asks an applier to make live. */
export interface SyncRequest {
  /** The snapshot to program. */
  readonly snapshot: ProxySnapshot;
  /** Ids of service ports changed since the last successful sync (ignored on a full sync). */
  readonly changedServicePorts: readonly string[];
  /** Rewrite everything kproxy owns (first sync, periodic resync, after a failure). */
  readonly full: boolean;
  /**
   * `full` only because `--sync-period` has elapsed (not after a failure or a node or option
   * change): an applier that can tell nobody has touched the rules since its last sync may send
   * just the changes.
   */
  readonly resync?: boolean;
}

/** What a successful sync did. */
export interface SyncResult {
  /** True when everything was rewritten. */
  readonly full: boolean;
  /** Lines of rule text (or transaction commands) sent to the kernel. */
  readonly linesSent: number;
  /** Rules kproxy now owns, when the backend counts them (for metrics). */
  readonly ruleCount: number;
  /** Stale UDP conntrack entries deleted after the sync. */
  readonly conntrackCleared: number;
  /** Per family, what the conntrack reconciler did, when it ran (it runs after UDP changes). */
  readonly conntrack?: readonly ConntrackReconcileReport[];
}

/** A backend that makes snapshots live. A failed sync throws and leaves the old rules. */
export interface Applier {
  /** `nftables`, `iptables` or `dry-run`. */
  readonly name: string;
  /** Makes `request.snapshot` live; throws (rules unchanged) on failure. */
  sync(request: SyncRequest): Promise<SyncResult>;
  /** The rule text kproxy owns now, as the kernel reports it (or would render, for dry-run). */
  liveRules(): Promise<string>;
  /** Removes everything kproxy owns and nothing else. */
  cleanup(): Promise<void>;
}

/** Renders a snapshot to its full rule text, for `kproxy render`, diffs and the API. */
export interface RuleRenderer {
  /** `nftables` or `iptables`. */
  readonly mode: string;
  /** The complete rule script for a snapshot (deterministic). */
  render(snapshot: ProxySnapshot): string;
}
