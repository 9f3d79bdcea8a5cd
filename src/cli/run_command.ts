/** `kproxy [flags]`: the long-running proxy — source → sync loop → applier, plus the servers. */
import { applierFor } from "../apply/appliers.ts";
import { setupConntrack } from "../apply/conntrack_sysctls.ts";
import type { ProxyConfig } from "../config/proxy_config.ts";
import { type ChangeCounts, type NfacctReader, ProxyMetrics } from "../metrics/proxy_metrics.ts";
import { NfacctClient } from "../apply/nfacct.ts";
import type { ObjectError } from "../model/kube_object.ts";
import { rendererFor } from "../render/renderers.ts";
import { HealthTracker } from "../server/health.ts";
import { HealthCheckNodePortServers } from "../server/health_check_node_ports.ts";
import { createHealthApp } from "../server/health_server.ts";
import { createMetricsApp } from "../server/metrics_server.ts";
import { ProxyRuntimeStore } from "../server/runtime_store.ts";
import { serveApp } from "../server/serve.ts";
import type { ProxyEvent } from "../snapshot/proxy_state.ts";
import { ManifestSource } from "../source/manifest_source.ts";
import { SyncLoop, type SyncLoopHooks } from "../sync/sync_loop.ts";
import { hostAddresses, hostIPFamilies, nodeNameOf, snapshotSettingsOf } from "./settings.ts";
import { scheduleMemoryRelease } from "./release_memory.ts";

/** Options of {@link runProxy}. */
export interface RunOptions {
  /** Remove kproxy's rules and exit. */
  readonly cleanup: boolean;
  /** With cleanup: also remove upstream kube-proxy's rules. */
  readonly cleanupKubeProxy: boolean;
}

/** A source of objects: the manifest folder or the Kubernetes API. */
export interface ObjectSource {
  /** Lists once, reports it through `onSynced`, then follows changes. */
  start(): Promise<void>;
  /** Stops following changes. */
  stop(): Promise<void>;
}

/** Logs a line with a timestamp to stderr, as kube-proxy's klog does. */
export function logLine(line: string): void {
  console.error(`${new Date().toISOString()} ${line}`);
}

async function makeSource(
  config: ProxyConfig,
  nodeName: string,
  onEvents: (events: ProxyEvent[], errors: readonly ObjectError[], triggers?: number[]) => void,
  onSynced: () => void,
): Promise<ObjectSource> {
  if (config.manifests) {
    return new ManifestSource(config.manifests, { onEvents, onSynced, log: logLine });
  }
  const { KubernetesSource } = await import("../source/kubernetes_source.ts");
  return new KubernetesSource({
    kubeconfig: config.kubeconfig || undefined,
    master: config.master || undefined,
    qps: config.kubeApiQps,
    burst: config.kubeApiBurst,
    nodeName,
    onEvents: (events: ProxyEvent[], errors: readonly ObjectError[], triggers: number[]) =>
      onEvents(events, errors, triggers),
    onSynced,
    log: logLine,
  });
}

/** Counts Service and EndpointSlice changes in a batch, for kube-proxy's change metrics. */
export function countChanges(events: readonly ProxyEvent[]): ChangeCounts {
  let services = 0;
  let endpoints = 0;
  const count = (kind: string) => {
    if (kind === "Service") services++;
    else if (kind === "EndpointSlice") endpoints++;
  };
  for (const e of events) {
    if (e.type === "upsert") count(e.object.kind);
    else if (e.type === "delete") count(e.kind);
    else if (e.type === "replace") e.objects.forEach((o) => count(o.kind));
  }
  return { services, endpoints };
}

function withChangeCounts(
  hooks: SyncLoopHooks,
  pending: { services: number; endpoints: number },
  metrics: ProxyMetrics,
): SyncLoopHooks {
  return {
    ...hooks,
    onSynced: (record, snapshot, result) => {
      pending.services = 0;
      pending.endpoints = 0;
      metrics.changesPending(pending);
      hooks.onSynced?.(record, snapshot, result);
      if (record.full) scheduleMemoryRelease();
    },
  };
}

/**
 * kube-proxy's nfacct counters for the iptables metrics, read through netlink at each scrape;
 * null (reported, not fatal) when this kernel or process has no nfacct, as upstream.
 */
function nfacctReader(): NfacctReader | null {
  try {
    const client = NfacctClient.open();
    return {
      packets: (name) => {
        const counter = client.get(name);
        return counter === null ? null : Number(counter.packets);
      },
    };
  } catch (e) {
    logLine(
      `${e instanceof Error ? e.message : e}: kubeproxy_iptables_ct_state_invalid_dropped_` +
        "packets_total and kubeproxy_iptables_localhost_nodeports_accepted_packets_total " +
        "are not reported",
    );
    return null;
  }
}

/** How long NodeCIDR mode waits for the Node's pod CIDRs (upstream's timeoutForNodePodCIDR). */
const POD_CIDR_TIMEOUT_MS = 5 * 60_000;

/** Runs until SIGTERM/SIGINT; rules stay in place on exit. Returns the exit code. */
export async function runProxy(config: ProxyConfig, options: RunOptions): Promise<number> {
  const families = hostIPFamilies();
  const applier = applierFor(config, { log: logLine, families, netlink: config.nftablesNetlink });
  if (options.cleanup) {
    await applier.cleanup();
    logLine(`cleanup: removed kproxy's ${config.mode} rules`);
    if (options.cleanupKubeProxy) {
      const { cleanupKubeProxyRules } = await import("../apply/kube_proxy_cleanup.ts");
      await cleanupKubeProxyRules({ log: logLine });
    }
    return 0;
  }
  const nodeName = nodeNameOf(config);
  // Before any rule, as upstream: conntrack limits and timeouts in this network namespace.
  if (!config.dryRun) await setupConntrack(config.conntrack, { log: logLine });
  const metrics = new ProxyMetrics({
    mode: config.mode,
    ipFamilies: families,
    nfacct: config.mode === "iptables" && !config.dryRun ? nfacctReader() : null,
  });
  const health = new HealthTracker({
    healthTimeoutMs: 2 * config.syncPeriodMs,
    ipFamilies: families,
  });
  const hcnp = new HealthCheckNodePortServers({ log: logLine });
  const store = new ProxyRuntimeStore({
    config,
    metrics,
    health,
    liveRules: () => applier.liveRules(),
    renderer: rendererFor(config.mode),
    healthCheckNodePorts: config.dryRun ? null : hcnp,
    log: logLine,
    nodeAddresses: hostAddresses(),
  });
  const pending = { services: 0, endpoints: 0 };
  let addresses = hostAddresses();
  const loop = new SyncLoop({
    applier,
    settings: snapshotSettingsOf(config, nodeName, addresses),
    minSyncPeriodMs: config.minSyncPeriodMs,
    syncPeriodMs: config.syncPeriodMs,
    hooks: withChangeCounts(store.syncLoopHooks(), pending, metrics),
    log: logLine,
  });
  const onEvents = (
    events: ProxyEvent[],
    errors: readonly ObjectError[],
    triggers: number[] = [],
  ) => {
    for (const e of errors) {
      logLine(`skipped bad object: ${e.message}`);
      metrics.objectSkipped(e.kind);
    }
    const seen = countChanges(events);
    metrics.changesSeen(seen);
    pending.services += seen.services;
    pending.endpoints += seen.endpoints;
    metrics.changesPending(pending);
    loop.enqueue(events, triggers);
  };
  const source = await makeSource(config, nodeName, onEvents, () => loop.markSourcesSynced());

  const abort = new AbortController();
  const healthServer = serveApp(createHealthApp(store), config.healthzBindAddress, abort.signal);
  const metricsServer = serveApp(createMetricsApp(store), config.metricsBindAddress, abort.signal);
  logLine(
    `kproxy starting: node ${nodeName}, mode ${config.dryRun ? "dry-run " : ""}${config.mode}, ` +
      `source ${config.manifests ? `manifests ${config.manifests}` : "kubernetes API"}, ` +
      `healthz ${healthServer.addr.hostname}:${healthServer.addr.port}, ` +
      `metrics ${metricsServer.addr.hostname}:${metricsServer.addr.port}`,
  );
  loop.start();
  // NodePort CIDRs select among the interfaces' addresses: look again every sync period, as
  // upstream does at its syncs (0.0.0.0/0 and `primary` need no look: matched at packet time).
  const addressWatch = setInterval(() => {
    const now = hostAddresses();
    if (now.join(",") === addresses.join(",")) return;
    addresses = now;
    logLine(`host addresses changed: ${now.join(", ")}`);
    loop.enqueue([{ type: "settings", settings: snapshotSettingsOf(config, nodeName, now) }]);
  }, config.syncPeriodMs);
  let exitCode = 0;
  let podCIDRTimer: ReturnType<typeof setTimeout> | undefined;
  const stopped = new Promise<void>((resolve) => {
    const stop = () => resolve();
    Deno.addSignalListener("SIGTERM", stop);
    Deno.addSignalListener("SIGINT", stop);
    // As upstream: NodeCIDR mode gives the Node 5 minutes to get its pod CIDRs, then exits.
    if (config.detectLocalMode === "NodeCIDR") {
      podCIDRTimer = setTimeout(() => {
        if (loop.hasSynced) return;
        logLine(
          "timeout waiting for PodCIDR allocation to configure detect-local-mode NodeCIDR: " +
            `Node ${nodeName} has no spec.podCIDRs after ${POD_CIDR_TIMEOUT_MS / 60_000} minutes`,
        );
        exitCode = 1;
        resolve();
      }, POD_CIDR_TIMEOUT_MS);
    }
  });
  await source.start();
  await stopped;
  clearTimeout(podCIDRTimer);
  clearInterval(addressWatch);
  logLine("kproxy stopping; rules stay in place (use --cleanup to remove them)");
  await source.stop();
  await loop.stop();
  abort.abort();
  await Promise.allSettled([healthServer.finished, metricsServer.finished]);
  await hcnp.close();
  return exitCode;
}
