/**
 * kproxy's metric set: kube-proxy's own `kubeproxy_*` metrics (same names, help, types, labels and
 * buckets as upstream `pkg/proxy/metrics`, registered per mode like upstream) plus a few
 * `kproxy_*` ones. The sync loop calls the recording methods; `/metrics` calls `render()`.
 */
import type { ConntrackReconcileReport } from "../apply/conntrack.ts";
import type { ProxyMode } from "../config/proxy_config.ts";
import type { IPFamily, ProxySnapshot } from "../snapshot/types.ts";
import {
  INVALID_DROPPED_COUNTER,
  LOCALHOST_NODEPORTS_COUNTER,
} from "../render/iptables/family_context.ts";
import {
  type CollectedCounter,
  type Counter,
  exponentialBuckets,
  type Gauge,
  type Histogram,
  linearBuckets,
  MetricsRegistry,
} from "./registry.ts";

/** Upstream's sync-duration buckets: 1 ms doubling 15 times (1 ms … 16.384 s). */
export const SYNC_DURATION_BUCKETS: readonly number[] = Object.freeze(
  exponentialBuckets(0.001, 2, 15),
);

/** Upstream's network-programming buckets: 0.25 s, 0.5 s, 1–59 s, 60–115 s by 5, 2–5 min by 30 s. */
export const NETWORK_PROGRAMMING_BUCKETS: readonly number[] = Object.freeze([
  ...linearBuckets(0.25, 0.25, 2),
  ...linearBuckets(1, 1, 59),
  ...linearBuckets(60, 5, 12),
  ...linearBuckets(120, 30, 7),
]);

/** Options of {@link ProxyMetrics}. */
export interface ProxyMetricsOptions {
  /** The backend; decides which mode-specific metrics exist, like upstream. */
  readonly mode: ProxyMode;
  /** IP families kproxy programs (each sync counts once per family, like upstream's proxiers). */
  readonly ipFamilies?: readonly IPFamily[];
  /** Registry to register into (default a new one). */
  readonly registry?: MetricsRegistry;
  /**
   * iptables mode: reads kube-proxy's nfacct counters for the two `kubeproxy_iptables_*_packets`
   * metrics (null counter: it does not exist yet). Without it, as upstream without nfacct, those
   * metrics are not registered.
   */
  readonly nfacct?: NfacctReader | null;
}

/** Reads one nfacct counter's packets (null when it does not exist). */
export interface NfacctReader {
  /** The counter's packet count, or null. */
  packets(name: string): number | null;
}

/** Rule counts of one iptables table (`nat`, `filter`, `mangle`). */
export interface TableRuleCounts {
  /** Rules kproxy owns in the table after the sync. */
  readonly rules: number;
  /** Rules written to the table by this sync. */
  readonly lines: number;
}

/** What a finished successful sync reports. */
export interface SyncSucceeded {
  /** Wall time of the whole sync, in seconds. */
  readonly durationSeconds: number;
  /** True for a full resync, false for a partial one. */
  readonly full: boolean;
  /** When the sync finished (ms since the epoch). */
  readonly nowMs: number;
  /** Rules kproxy owns after the sync (`SyncResult.ruleCount`). */
  readonly ruleCount: number;
  /** Lines sent to the kernel (`SyncResult.linesSent`). */
  readonly linesSent: number;
  /** iptables mode: counts per table, for `kubeproxy_sync_proxy_rules_iptables_{total,last}`. */
  readonly tables?: Readonly<Record<string, TableRuleCounts>>;
}

/** What a failed sync reports. */
export interface SyncFailed {
  /** Wall time until the failure, in seconds. */
  readonly durationSeconds: number;
  /** True when a full resync failed, false when a partial one did. */
  readonly full: boolean;
}

/** Pending or seen change counts of the change trackers. */
export interface ChangeCounts {
  /** Service changes. */
  readonly services: number;
  /** EndpointSlice changes. */
  readonly endpoints: number;
}

/** kube-proxy's metrics and kproxy's own, with the methods the sync loop and servers call. */
export class ProxyMetrics {
  /** The registry everything is registered in. */
  readonly registry: MetricsRegistry;
  /** The backend these metrics describe. */
  readonly mode: ProxyMode;
  /** IP families each sync is counted for. */
  readonly ipFamilies: readonly IPFamily[];

  /** `kubeproxy_sync_proxy_rules_duration_seconds`. */
  readonly syncProxyRulesLatency: Histogram;
  /** `kubeproxy_sync_full_proxy_rules_duration_seconds`. */
  readonly syncFullProxyRulesLatency: Histogram;
  /** `kubeproxy_sync_partial_proxy_rules_duration_seconds`. */
  readonly syncPartialProxyRulesLatency: Histogram;
  /** `kubeproxy_network_programming_duration_seconds`. */
  readonly networkProgrammingLatency: Histogram;
  /** `kubeproxy_sync_proxy_rules_last_timestamp_seconds`. */
  readonly syncProxyRulesLastTimestamp: Gauge;
  /** `kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds`. */
  readonly syncProxyRulesLastQueuedTimestamp: Gauge;
  /** `kubeproxy_sync_proxy_rules_endpoint_changes_pending`. */
  readonly endpointChangesPending: Gauge;
  /** `kubeproxy_sync_proxy_rules_endpoint_changes_total`. */
  readonly endpointChangesTotal: Counter;
  /** `kubeproxy_sync_proxy_rules_service_changes_pending`. */
  readonly serviceChangesPending: Gauge;
  /** `kubeproxy_sync_proxy_rules_service_changes_total`. */
  readonly serviceChangesTotal: Counter;
  /** `kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy}`. */
  readonly noLocalEndpointsTotal: Gauge;
  /** `kubeproxy_proxy_healthz_total{code}`. */
  readonly proxyHealthzTotal: Counter;
  /** `kubeproxy_proxy_livez_total{code}`. */
  readonly proxyLivezTotal: Counter;
  /** iptables: `kubeproxy_sync_proxy_rules_iptables_restore_failures_total`. */
  readonly iptablesRestoreFailuresTotal: Counter | null;
  /** iptables: `kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total`. */
  readonly iptablesPartialRestoreFailuresTotal: Counter | null;
  /** iptables: `kubeproxy_sync_proxy_rules_iptables_total{table}`. */
  readonly iptablesRulesTotal: Gauge | null;
  /** iptables: `kubeproxy_sync_proxy_rules_iptables_last{table}`. */
  readonly iptablesRulesLastSync: Gauge | null;
  /** nftables: `kubeproxy_sync_proxy_rules_nftables_sync_failures_total`. */
  readonly nftablesSyncFailuresTotal: Counter | null;
  /** nftables: `kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total`. */
  readonly nftablesCleanupFailuresTotal: Counter | null;
  /** `kubeproxy_conntrack_reconciler_sync_duration_seconds{ip_family}`. */
  readonly conntrackReconcilerLatency: Histogram;
  /** `kubeproxy_conntrack_reconciler_deleted_entries_total{ip_family}`. */
  readonly conntrackReconcilerDeletedEntries: Counter;
  /** iptables with nfacct: `kubeproxy_iptables_ct_state_invalid_dropped_packets_total`. */
  readonly iptablesCTStateInvalidDroppedPackets: CollectedCounter | null;
  /** iptables with nfacct: `kubeproxy_iptables_localhost_nodeports_accepted_packets_total`. */
  readonly iptablesLocalhostNodePortsAcceptedPackets: CollectedCounter | null;
  /** `kproxy_sync_proxy_rules_total`: rules kproxy owns after the last sync (every mode). */
  readonly rulesTotal: Gauge;
  /** `kproxy_sync_proxy_rules_last`: lines the last sync sent (every mode). */
  readonly rulesLastSync: Gauge;
  /** `kproxy_skipped_objects_total{kind}`. */
  readonly skippedObjectsTotal: Counter;
  /** `kproxy_snapshot_service_ports`. */
  readonly snapshotServicePorts: Gauge;
  /** `kproxy_snapshot_endpoints`. */
  readonly snapshotEndpoints: Gauge;

  constructor(options: ProxyMetricsOptions) {
    const reg = options.registry ?? new MetricsRegistry();
    this.registry = reg;
    this.mode = options.mode;
    this.ipFamilies = Object.freeze([...(options.ipFamilies ?? ["IPv4"])]);
    const fam = ["ip_family"];

    this.syncProxyRulesLatency = reg.histogram({
      name: "kubeproxy_sync_proxy_rules_duration_seconds",
      help: "SyncProxyRules latency in seconds",
      buckets: SYNC_DURATION_BUCKETS,
      labelNames: fam,
    });
    // The full/partial split: upstream registers it for iptables and nftables alike.
    this.syncFullProxyRulesLatency = reg.histogram({
      name: "kubeproxy_sync_full_proxy_rules_duration_seconds",
      help: "SyncProxyRules latency in seconds for full resyncs",
      buckets: SYNC_DURATION_BUCKETS,
      labelNames: fam,
    });
    this.syncPartialProxyRulesLatency = reg.histogram({
      name: "kubeproxy_sync_partial_proxy_rules_duration_seconds",
      help: "SyncProxyRules latency in seconds for partial resyncs",
      buckets: SYNC_DURATION_BUCKETS,
      labelNames: fam,
    });
    this.networkProgrammingLatency = reg.histogram({
      name: "kubeproxy_network_programming_duration_seconds",
      help: "In Cluster Network Programming Latency in seconds",
      buckets: NETWORK_PROGRAMMING_BUCKETS,
      labelNames: fam,
    });
    this.syncProxyRulesLastTimestamp = reg.gauge({
      name: "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
      help: "The last time proxy rules were successfully synced",
      labelNames: fam,
    });
    this.syncProxyRulesLastQueuedTimestamp = reg.gauge({
      name: "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
      help: "The last time a sync of proxy rules was queued",
      labelNames: fam,
    });
    this.endpointChangesPending = reg.gauge({
      name: "kubeproxy_sync_proxy_rules_endpoint_changes_pending",
      help: "Pending proxy rules Endpoint changes",
    });
    this.endpointChangesTotal = reg.counter({
      name: "kubeproxy_sync_proxy_rules_endpoint_changes_total",
      help: "Cumulative proxy rules Endpoint changes",
    });
    this.serviceChangesPending = reg.gauge({
      name: "kubeproxy_sync_proxy_rules_service_changes_pending",
      help: "Pending proxy rules Service changes",
    });
    this.serviceChangesTotal = reg.counter({
      name: "kubeproxy_sync_proxy_rules_service_changes_total",
      help: "Cumulative proxy rules Service changes",
    });
    this.noLocalEndpointsTotal = reg.gauge({
      name: "kubeproxy_sync_proxy_rules_no_local_endpoints_total",
      help: "Number of services with a Local traffic policy and no endpoints",
      labelNames: ["ip_family", "traffic_policy"],
    });
    this.proxyHealthzTotal = reg.counter({
      name: "kubeproxy_proxy_healthz_total",
      help: "Cumulative proxy healthz HTTP status",
      labelNames: ["code"],
    });
    this.proxyLivezTotal = reg.counter({
      name: "kubeproxy_proxy_livez_total",
      help: "Cumulative proxy livez HTTP status",
      labelNames: ["code"],
    });

    const iptables = options.mode === "iptables";
    this.iptablesRestoreFailuresTotal = iptables
      ? reg.counter({
        name: "kubeproxy_sync_proxy_rules_iptables_restore_failures_total",
        help: "Cumulative proxy iptables restore failures",
        labelNames: fam,
      })
      : null;
    this.iptablesPartialRestoreFailuresTotal = iptables
      ? reg.counter({
        name: "kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total",
        help: "Cumulative proxy iptables partial restore failures",
        labelNames: fam,
      })
      : null;
    this.iptablesRulesTotal = iptables
      ? reg.gauge({
        name: "kubeproxy_sync_proxy_rules_iptables_total",
        help: "Total number of iptables rules owned by kube-proxy",
        labelNames: ["ip_family", "table"],
      })
      : null;
    this.iptablesRulesLastSync = iptables
      ? reg.gauge({
        name: "kubeproxy_sync_proxy_rules_iptables_last",
        help: "Number of iptables rules written by kube-proxy in last sync",
        labelNames: ["ip_family", "table"],
      })
      : null;
    const nfacct = iptables ? options.nfacct ?? null : null;
    this.iptablesCTStateInvalidDroppedPackets = nfacct === null ? null : reg.collectedCounter({
      name: "kubeproxy_iptables_ct_state_invalid_dropped_packets_total",
      help: "packets dropped by iptables to work around conntrack problems",
      collect: () => nfacct.packets(INVALID_DROPPED_COUNTER),
    });
    this.iptablesLocalhostNodePortsAcceptedPackets = nfacct === null ? null : reg.collectedCounter({
      name: "kubeproxy_iptables_localhost_nodeports_accepted_packets_total",
      help: "Number of packets accepted on nodeports of loopback interface",
      collect: () => nfacct.packets(LOCALHOST_NODEPORTS_COUNTER),
    });
    const nftables = options.mode === "nftables";
    this.nftablesSyncFailuresTotal = nftables
      ? reg.counter({
        name: "kubeproxy_sync_proxy_rules_nftables_sync_failures_total",
        help: "Cumulative proxy nftables sync failures",
        labelNames: fam,
      })
      : null;
    this.nftablesCleanupFailuresTotal = nftables
      ? reg.counter({
        name: "kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total",
        help: "Cumulative proxy nftables cleanup failures",
        labelNames: fam,
      })
      : null;

    // Registered in both modes, as upstream registers them for iptables and nftables.
    this.conntrackReconcilerLatency = reg.histogram({
      name: "kubeproxy_conntrack_reconciler_sync_duration_seconds",
      help: "ReconcileConntrackFlowsLatency latency in seconds",
      buckets: SYNC_DURATION_BUCKETS,
      labelNames: fam,
    });
    this.conntrackReconcilerDeletedEntries = reg.counter({
      name: "kubeproxy_conntrack_reconciler_deleted_entries_total",
      help: "Cumulative conntrack flows deleted by conntrack reconciler",
      labelNames: fam,
    });

    this.rulesTotal = reg.gauge({
      name: "kproxy_sync_proxy_rules_total",
      help: "Rules (or nftables objects) kproxy owns after the last successful sync",
    });
    this.rulesLastSync = reg.gauge({
      name: "kproxy_sync_proxy_rules_last",
      help: "Lines of rule text the last successful sync sent to the kernel",
    });
    this.skippedObjectsTotal = reg.counter({
      name: "kproxy_skipped_objects_total",
      help: "Objects kproxy could not read and skipped, by kind",
      labelNames: ["kind"],
    });
    this.snapshotServicePorts = reg.gauge({
      name: "kproxy_snapshot_service_ports",
      help: "Service ports in the current snapshot",
    });
    this.snapshotEndpoints = reg.gauge({
      name: "kproxy_snapshot_endpoints",
      help: "Endpoints (per service port and family) in the current snapshot",
    });

    // Per-family series exist from the start, so rates and alerts work before the first event.
    const perFamily = [
      this.syncProxyRulesLatency,
      this.syncFullProxyRulesLatency,
      this.syncPartialProxyRulesLatency,
      this.networkProgrammingLatency,
      this.iptablesRestoreFailuresTotal,
      this.iptablesPartialRestoreFailuresTotal,
      this.nftablesSyncFailuresTotal,
      this.nftablesCleanupFailuresTotal,
    ];
    for (const metric of perFamily) this.#perFamily((l) => metric?.initSeries(l));
  }

  #perFamily(fn: (labels: { ip_family: IPFamily }) => void): void {
    for (const family of this.ipFamilies) fn({ ip_family: family });
  }

  /** A change was queued for the next sync (sets the last-queued timestamp). */
  syncQueued(nowMs: number): void {
    this.#perFamily((l) => this.syncProxyRulesLastQueuedTimestamp.set(nowMs / 1000, l));
  }

  /** The change trackers now hold this many unsynced changes. */
  changesPending(counts: ChangeCounts): void {
    this.serviceChangesPending.set(counts.services);
    this.endpointChangesPending.set(counts.endpoints);
  }

  /** The sources delivered this many more changes. */
  changesSeen(counts: ChangeCounts): void {
    this.serviceChangesTotal.inc({}, counts.services);
    this.endpointChangesTotal.inc({}, counts.endpoints);
  }

  #observeDuration(durationSeconds: number, full: boolean): void {
    this.#perFamily((l) => {
      this.syncProxyRulesLatency.observe(durationSeconds, l);
      (full ? this.syncFullProxyRulesLatency : this.syncPartialProxyRulesLatency)
        .observe(durationSeconds, l);
    });
  }

  /** A sync made its snapshot live. */
  syncSucceeded(sync: SyncSucceeded): void {
    this.#observeDuration(sync.durationSeconds, sync.full);
    this.#perFamily((l) => this.syncProxyRulesLastTimestamp.set(sync.nowMs / 1000, l));
    this.rulesTotal.set(sync.ruleCount);
    this.rulesLastSync.set(sync.linesSent);
    if (sync.tables !== undefined) {
      for (const [table, counts] of Object.entries(sync.tables)) {
        this.#perFamily((l) => {
          this.iptablesRulesTotal?.set(counts.rules, { ...l, table });
          this.iptablesRulesLastSync?.set(counts.lines, { ...l, table });
        });
      }
    }
  }

  /** A sync failed; the old rules stay. Counts the mode's failure counter(s), like upstream. */
  syncFailed(sync: SyncFailed): void {
    this.#observeDuration(sync.durationSeconds, sync.full);
    this.#perFamily((l) => {
      this.nftablesSyncFailuresTotal?.inc(l);
      if (sync.full) this.iptablesRestoreFailuresTotal?.inc(l);
      else this.iptablesPartialRestoreFailuresTotal?.inc(l);
    });
  }

  /** The conntrack reconciler ran after a sync: per family, its duration and deletions. */
  conntrackReconciled(reports: readonly ConntrackReconcileReport[]): void {
    for (const r of reports) {
      const l = { ip_family: r.family };
      this.conntrackReconcilerLatency.observe(r.durationSeconds, l);
      this.conntrackReconcilerDeletedEntries.inc(l, r.deleted);
    }
  }

  /** Removing stale chains failed (nftables). */
  cleanupFailed(): void {
    this.#perFamily((l) => this.nftablesCleanupFailuresTotal?.inc(l));
  }

  /** Network programming latencies (trigger time → rules live), in seconds. */
  networkProgrammed(latenciesSeconds: readonly number[]): void {
    for (const latency of latenciesSeconds) {
      if (latency < 0) continue;
      this.#perFamily((l) => this.networkProgrammingLatency.observe(latency, l));
    }
  }

  /** An object of `kind` was skipped (invalid, unreadable). */
  objectSkipped(kind: string, count = 1): void {
    this.skippedObjectsTotal.inc({ kind }, count);
  }

  /** The snapshot now live: snapshot sizes and services with a Local policy and no endpoints. */
  snapshotApplied(snapshot: ProxySnapshot): void {
    let endpoints = 0;
    const noLocal = new Map<IPFamily, { internal: number; external: number }>();
    for (const family of this.ipFamilies) noLocal.set(family, { internal: 0, external: 0 });
    for (const port of snapshot.servicePorts) {
      for (const fam of port.families) {
        endpoints += fam.endpoints.length;
        const counts = noLocal.get(fam.family);
        if (counts === undefined) continue;
        // As upstream: ports with usable endpoints somewhere in the cluster but none on this node.
        if (!fam.hasAnyEndpoints || fam.localEndpoints.length > 0) continue;
        if (port.internalTrafficPolicy === "Local") counts.internal++;
        if (port.externalTrafficPolicy === "Local") counts.external++;
      }
    }
    this.snapshotServicePorts.set(snapshot.servicePorts.length);
    this.snapshotEndpoints.set(endpoints);
    for (const [family, counts] of noLocal) {
      this.noLocalEndpointsTotal.set(counts.internal, {
        ip_family: family,
        traffic_policy: "internal",
      });
      this.noLocalEndpointsTotal.set(counts.external, {
        ip_family: family,
        traffic_policy: "external",
      });
    }
  }

  /** The health server answered `/healthz` with `code`. */
  healthzServed(code: number): void {
    this.proxyHealthzTotal.inc({ code: String(code) });
  }

  /** The health server answered `/livez` with `code`. */
  livezServed(code: number): void {
    this.proxyLivezTotal.inc({ code: String(code) });
  }

  /** Every metric in the Prometheus text format. */
  render(): string {
    return this.registry.render();
  }
}
