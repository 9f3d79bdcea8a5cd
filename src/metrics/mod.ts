/**
 * Prometheus metrics: a small text-format registry and kproxy's metric set (kube-proxy's
 * `kubeproxy_*` names plus `kproxy_*`).
 *
 * @module
 */
export * from "./registry.ts";
export * from "./proxy_metrics.ts";
