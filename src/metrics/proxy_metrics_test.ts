import assert from "node:assert/strict";
import { parseManifestText } from "../source/manifest_text.ts";
import { buildSnapshot } from "../snapshot/proxy_state.ts";
import {
  NETWORK_PROGRAMMING_BUCKETS,
  ProxyMetrics,
  SYNC_DURATION_BUCKETS,
} from "./proxy_metrics.ts";

// IP plan: pods 198.18.1.0/24, services 198.18.128.0/17.

Deno.test("upstream bucket layouts", () => {
  assert.equal(SYNC_DURATION_BUCKETS.length, 15);
  assert.equal(SYNC_DURATION_BUCKETS[0], 0.001);
  assert.equal(SYNC_DURATION_BUCKETS[14], 16.384);
  assert.equal(NETWORK_PROGRAMMING_BUCKETS.length, 2 + 59 + 12 + 7);
  assert.deepEqual(NETWORK_PROGRAMMING_BUCKETS.slice(0, 4), [0.25, 0.5, 1, 2]);
  assert.equal(NETWORK_PROGRAMMING_BUCKETS.at(-1), 300);
});

Deno.test("mode decides the backend-specific metrics, like upstream", () => {
  const nft = new ProxyMetrics({ mode: "nftables" }).registry.names();
  const ipt = new ProxyMetrics({ mode: "iptables" }).registry.names();
  assert.ok(nft.includes("kubeproxy_sync_proxy_rules_nftables_sync_failures_total"));
  assert.ok(nft.includes("kubeproxy_sync_proxy_rules_nftables_cleanup_failures_total"));
  assert.ok(!nft.includes("kubeproxy_sync_proxy_rules_iptables_total"));
  assert.ok(ipt.includes("kubeproxy_sync_proxy_rules_iptables_total"));
  assert.ok(ipt.includes("kubeproxy_sync_proxy_rules_iptables_last"));
  assert.ok(ipt.includes("kubeproxy_sync_proxy_rules_iptables_restore_failures_total"));
  assert.ok(ipt.includes("kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total"));
  assert.ok(!ipt.includes("kubeproxy_sync_proxy_rules_nftables_sync_failures_total"));
  for (
    const name of [
      "kubeproxy_sync_proxy_rules_duration_seconds",
      "kubeproxy_sync_full_proxy_rules_duration_seconds",
      "kubeproxy_sync_partial_proxy_rules_duration_seconds",
      "kubeproxy_network_programming_duration_seconds",
      "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
      "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
      "kubeproxy_sync_proxy_rules_endpoint_changes_pending",
      "kubeproxy_sync_proxy_rules_endpoint_changes_total",
      "kubeproxy_sync_proxy_rules_service_changes_pending",
      "kubeproxy_sync_proxy_rules_service_changes_total",
      "kubeproxy_sync_proxy_rules_no_local_endpoints_total",
      "kubeproxy_proxy_healthz_total",
      "kubeproxy_proxy_livez_total",
      "kproxy_skipped_objects_total",
      "kproxy_snapshot_service_ports",
      "kproxy_snapshot_endpoints",
    ]
  ) {
    assert.ok(nft.includes(name), name);
    assert.ok(ipt.includes(name), name);
  }
});

Deno.test("a successful sync records durations per family and timestamps", () => {
  const m = new ProxyMetrics({ mode: "iptables", ipFamilies: ["IPv4", "IPv6"] });
  m.syncQueued(1_700_000_000_000);
  m.syncSucceeded({
    durationSeconds: 0.003,
    full: true,
    nowMs: 1_700_000_000_500,
    ruleCount: 40,
    linesSent: 40,
    tables: { nat: { rules: 30, lines: 30 }, filter: { rules: 10, lines: 10 } },
  });
  m.syncSucceeded({
    durationSeconds: 0.0005,
    full: false,
    nowMs: 1_700_000_001_000,
    ruleCount: 40,
    linesSent: 3,
  });
  const text = m.render();
  assert.match(text, /^kubeproxy_sync_proxy_rules_duration_seconds_count\{ip_family="IPv6"\} 2$/m);
  assert.match(
    text,
    /^kubeproxy_sync_full_proxy_rules_duration_seconds_bucket\{ip_family="IPv4",le="0.004"\} 1$/m,
  );
  assert.match(
    text,
    /^kubeproxy_sync_partial_proxy_rules_duration_seconds_bucket\{ip_family="IPv4",le="0.001"\} 1$/m,
  );
  assert.match(
    text,
    /^kubeproxy_sync_proxy_rules_last_timestamp_seconds\{ip_family="IPv4"\} 1700000001$/m,
  );
  assert.match(
    text,
    /^kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds\{ip_family="IPv4"\} 1700000000$/m,
  );
  assert.match(
    text,
    /^kubeproxy_sync_proxy_rules_iptables_total\{ip_family="IPv4",table="nat"\} 30$/m,
  );
  assert.match(text, /^kproxy_sync_proxy_rules_last 3$/m);
});

Deno.test("failures count in the mode's counters", () => {
  const nft = new ProxyMetrics({ mode: "nftables" });
  nft.syncFailed({ durationSeconds: 0.01, full: true });
  nft.cleanupFailed();
  assert.equal(nft.nftablesSyncFailuresTotal?.get({ ip_family: "IPv4" }), 1);
  assert.equal(nft.nftablesCleanupFailuresTotal?.get({ ip_family: "IPv4" }), 1);
  assert.equal(nft.syncProxyRulesLatency.get({ ip_family: "IPv4" }).count, 1);
  const ipt = new ProxyMetrics({ mode: "iptables" });
  ipt.syncFailed({ durationSeconds: 0.01, full: false });
  ipt.syncFailed({ durationSeconds: 0.01, full: true });
  assert.equal(ipt.iptablesPartialRestoreFailuresTotal?.get({ ip_family: "IPv4" }), 1);
  assert.equal(ipt.iptablesRestoreFailuresTotal?.get({ ip_family: "IPv4" }), 1);
});

Deno.test("changes, skipped objects, network programming and health answers", () => {
  const m = new ProxyMetrics({ mode: "nftables" });
  m.changesSeen({ services: 2, endpoints: 5 });
  m.changesSeen({ services: 1, endpoints: 0 });
  m.changesPending({ services: 1, endpoints: 4 });
  m.objectSkipped("EndpointSlice");
  m.networkProgrammed([0.3, 1.5, -1]);
  m.healthzServed(200);
  m.healthzServed(503);
  m.livezServed(200);
  const text = m.render();
  assert.match(text, /^kubeproxy_sync_proxy_rules_service_changes_total 3$/m);
  assert.match(text, /^kubeproxy_sync_proxy_rules_endpoint_changes_total 5$/m);
  assert.match(text, /^kubeproxy_sync_proxy_rules_endpoint_changes_pending 4$/m);
  assert.match(text, /^kproxy_skipped_objects_total\{kind="EndpointSlice"\} 1$/m);
  assert.match(
    text,
    /^kubeproxy_network_programming_duration_seconds_count\{ip_family="IPv4"\} 2$/m,
  );
  assert.match(text, /^kubeproxy_proxy_healthz_total\{code="503"\} 1$/m);
  assert.match(text, /^kubeproxy_proxy_livez_total\{code="200"\} 1$/m);
  assert.match(text, /^# TYPE kubeproxy_proxy_healthz_total counter$/m);
  assert.match(
    text,
    /^# HELP kubeproxy_proxy_healthz_total Cumulative proxy healthz HTTP status$/m,
  );
});

Deno.test("snapshotApplied counts ports, endpoints and Local services without local endpoints", () => {
  const { objects, errors } = parseManifestText(
    `
apiVersion: v1
kind: Service
metadata: { name: lb, namespace: default }
spec:
  type: LoadBalancer
  clusterIPs: [198.18.128.30]
  externalTrafficPolicy: Local
  healthCheckNodePort: 32001
  ports: [{ port: 80, nodePort: 30081 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: lb-1, namespace: default, labels: { kubernetes.io/service-name: lb } }
addressType: IPv4
ports: [{ port: 8080 }]
endpoints: [{ addresses: [198.18.1.5], nodeName: node-b }]
---
apiVersion: v1
kind: Service
metadata: { name: itp, namespace: default }
spec:
  clusterIPs: [198.18.128.31]
  internalTrafficPolicy: Local
  ports: [{ port: 80 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: itp-1, namespace: default, labels: { kubernetes.io/service-name: itp } }
addressType: IPv4
ports: [{ port: 8080 }]
endpoints: [{ addresses: [198.18.1.6], nodeName: node-b }]
`,
    "t.yaml",
  );
  assert.deepEqual(errors, []);
  const snap = buildSnapshot(objects, {
    nodeName: "node-a",
    clusterCIDRs: [],
    masqueradeAll: false,
    masqueradeBit: 14,
    localhostNodePorts: true,
    nodePortAddresses: [],
    hostAddresses: [],
  });
  const m = new ProxyMetrics({ mode: "nftables" });
  m.snapshotApplied(snap);
  assert.equal(m.snapshotServicePorts.get(), 2);
  assert.equal(m.snapshotEndpoints.get(), 2);
  assert.equal(m.noLocalEndpointsTotal.get({ ip_family: "IPv4", traffic_policy: "external" }), 1);
  assert.equal(m.noLocalEndpointsTotal.get({ ip_family: "IPv4", traffic_policy: "internal" }), 1);
});

Deno.test("per-family series render from the start", () => {
  const text = new ProxyMetrics({ mode: "nftables", ipFamilies: ["IPv4", "IPv6"] }).render();
  assert.match(text, /^kubeproxy_sync_proxy_rules_duration_seconds_count\{ip_family="IPv6"\} 0$/m);
  assert.match(
    text,
    /^kubeproxy_sync_proxy_rules_nftables_sync_failures_total\{ip_family="IPv4"\} 0$/m,
  );
});

Deno.test("the conntrack reconciler's metrics, in both modes, per family", () => {
  for (const mode of ["nftables", "iptables"] as const) {
    const m = new ProxyMetrics({ mode, ipFamilies: ["IPv4", "IPv6"] });
    m.conntrackReconciled([
      { family: "IPv4", deleted: 3, durationSeconds: 0.0015 },
      { family: "IPv6", deleted: 0, durationSeconds: 0.0002 },
    ]);
    m.conntrackReconciled([{ family: "IPv4", deleted: 2, durationSeconds: 0.0005 }]);
    const text = m.render();
    assert.match(
      text,
      /^# HELP kubeproxy_conntrack_reconciler_sync_duration_seconds ReconcileConntrackFlowsLatency latency in seconds$/m,
    );
    assert.match(
      text,
      /^kubeproxy_conntrack_reconciler_sync_duration_seconds_count\{ip_family="IPv4"\} 2$/m,
    );
    assert.match(
      text,
      /^kubeproxy_conntrack_reconciler_sync_duration_seconds_bucket\{ip_family="IPv4",le="0.001"\} 1$/m,
    );
    assert.match(text, /^# TYPE kubeproxy_conntrack_reconciler_deleted_entries_total counter$/m);
    assert.match(
      text,
      /^kubeproxy_conntrack_reconciler_deleted_entries_total\{ip_family="IPv4"\} 5$/m,
    );
    assert.match(
      text,
      /^kubeproxy_conntrack_reconciler_deleted_entries_total\{ip_family="IPv6"\} 0$/m,
    );
  }
});

Deno.test("iptables with nfacct: the two packet counters, read at each render", () => {
  const counters = new Map<string, number>([["ct_state_invalid_dropped_pkts", 4]]);
  const nfacct = { packets: (name: string) => counters.get(name) ?? null };
  const m = new ProxyMetrics({ mode: "iptables", nfacct });
  let text = m.render();
  assert.match(
    text,
    /^# HELP kubeproxy_iptables_ct_state_invalid_dropped_packets_total packets dropped by iptables to work around conntrack problems\n# TYPE kubeproxy_iptables_ct_state_invalid_dropped_packets_total counter\nkubeproxy_iptables_ct_state_invalid_dropped_packets_total 4$/m,
  );
  // A counter that does not exist (yet) renders no sample, as upstream's collector.
  assert.doesNotMatch(text, /kubeproxy_iptables_localhost_nodeports_accepted_packets_total/);
  counters.set("localhost_nps_accepted_pkts", 7);
  counters.set("ct_state_invalid_dropped_pkts", 5);
  text = m.render();
  assert.match(text, /^kubeproxy_iptables_localhost_nodeports_accepted_packets_total 7$/m);
  assert.match(text, /^kubeproxy_iptables_ct_state_invalid_dropped_packets_total 5$/m);
  // Without nfacct, or in nftables mode, they are not registered.
  for (
    const other of [
      new ProxyMetrics({ mode: "iptables" }),
      new ProxyMetrics({ mode: "nftables", nfacct }),
    ]
  ) {
    assert.ok(!other.registry.names().some((n) => n.startsWith("kubeproxy_iptables_")));
  }
});
