/**
 * kproxy's HTTP side: the health server (`/healthz`, `/livez`, `/readyz`), the metrics server
 * (`/metrics`, `/snapshot`, `/diff`, `/rules`, `/configz`, the status page), the runtime they
 * read, and the service health-check node ports.
 *
 * @module
 */
export {
  type HealthResponse,
  type HealthStatus,
  HealthTracker,
  type HealthTrackerOptions,
  healthzResponse,
  livezResponse,
  proxyHealthy,
  readyzResponse,
  ZERO_TIME,
} from "./health.ts";
export { createHealthApp } from "./health_server.ts";
export { createMetricsApp, diffJSON } from "./metrics_server.ts";
export type { ProxyRuntime, RuntimeDiff } from "./runtime.ts";
export { ProxyRuntimeStore, type ProxyRuntimeStoreOptions } from "./runtime_store.ts";
export {
  type BindAddress,
  type FetchApp,
  parseBindAddress,
  serveApp,
  type ServedApp,
} from "./serve.ts";
export { renderStatusPage, type StatusPageView } from "./status_page.ts";
export {
  desiredHealthCheckNodePorts,
  type HealthCheckAnswer,
  healthCheckAnswer,
  HealthCheckNodePortServers,
  type HealthCheckNodePortServersOptions,
  type HealthCheckPlan,
  type HealthCheckService,
  type HealthCheckUpdate,
  planHealthCheckNodePorts,
} from "./health_check_node_ports.ts";
