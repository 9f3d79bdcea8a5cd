/**
 * kproxy — a kube-proxy on Deno. The public API: the object model, the pure snapshot builder
 * and reconciler, the diff functions, the appliers and the sync loop.
 *
 * @module
 */
export * from "./src/model/ip.ts";
export {
  type KubeKind,
  type KubeObject,
  type ObjectError,
  objectKey,
  parseKubeObject,
  type ParseResult,
} from "./src/model/kube_object.ts";
export type { Service } from "./src/model/service.ts";
export type { EndpointSlice } from "./src/model/endpoint_slice.ts";
export type { Node } from "./src/model/node.ts";
export type * from "./src/snapshot/types.ts";
export {
  buildSnapshot,
  initialProxyState,
  type ProxyEvent,
  type ProxyState,
  reconcile,
  type ReconcileResult,
  type SnapshotSettings,
} from "./src/snapshot/proxy_state.ts";
export { buildServicePorts, servicePortId } from "./src/snapshot/service_ports.ts";
export { categorizeEndpoints } from "./src/snapshot/categorize_endpoints.ts";
export { describeSnapshotDiff, type SnapshotDiff } from "./src/snapshot/snapshot_diff.ts";
export { unifiedDiff } from "./src/diff/unified_diff.ts";
export { parseManifestText } from "./src/source/manifest_text.ts";
export { loadManifests } from "./src/source/manifest_loader.ts";
export { ManifestSource } from "./src/source/manifest_source.ts";
export { KubernetesSource } from "./src/source/kubernetes_source.ts";
export { NftablesApplier } from "./src/apply/nftables_applier.ts";
export { IptablesApplier } from "./src/apply/iptables_applier.ts";
export { NftablesRenderer } from "./src/render/nftables/nftables_renderer.ts";
export { IptablesRenderer } from "./src/render/iptables/iptables_renderer.ts";
export { cleanupKubeProxyRules } from "./src/apply/kube_proxy_cleanup.ts";
export type { Applier, RuleRenderer, SyncRequest, SyncResult } from "./src/apply/applier.ts";
export { DryRunApplier } from "./src/apply/dry_run_applier.ts";
export { applierFor } from "./src/apply/appliers.ts";
export { rendererFor } from "./src/render/renderers.ts";
export { SyncLoop, type SyncRecord } from "./src/sync/sync_loop.ts";
export {
  DEFAULT_PROXY_CONFIG,
  type ProxyConfig,
  type ProxyMode,
} from "./src/config/proxy_config.ts";
export { parseKubeProxyConfiguration } from "./src/config/kube_proxy_configuration.ts";
export { runCli } from "./src/cli/main.ts";
export { createHealthApp } from "./src/server/health_server.ts";
export { createMetricsApp } from "./src/server/metrics_server.ts";
export { ProxyRuntimeStore } from "./src/server/runtime_store.ts";
export { HealthTracker } from "./src/server/health.ts";
export { ProxyMetrics } from "./src/metrics/proxy_metrics.ts";
