/** `kproxy [flags]`: the long-running proxy — source → sync loop → applier, plus the servers. */
import { applierFor } from "../apply/appliers.ts";
import type { ProxyConfig } from "../config/proxy_config.ts";
import type { ObjectError } from "../model/kube_object.ts";
import type { ProxyEvent } from "../snapshot/proxy_state.ts";
import { ManifestSource } from "../source/manifest_source.ts";
import { SyncLoop } from "../sync/sync_loop.ts";
import { hostAddresses, nodeNameOf, snapshotSettingsOf } from "./settings.ts";

/** Options of {@link runProxy}. */
export interface RunOptions {
  /** Remove kproxy's rules and exit. */
  readonly cleanup: boolean;
  /** With cleanup: also remove upstream kube-proxy's rules. */
  readonly cleanupKubeProxy: boolean;
}

/** Logs a line with a timestamp to stderr, as kube-proxy's klog does. */
export function logLine(line: string): void {
  console.error(`${new Date().toISOString()} ${line}`);
}

/** Runs until SIGTERM/SIGINT; rules stay in place on exit. Returns the exit code. */
export async function runProxy(config: ProxyConfig, options: RunOptions): Promise<number> {
  const applier = applierFor(config, { log: logLine });
  if (options.cleanup) {
    await applier.cleanup();
    logLine(`cleanup: removed kproxy's ${config.mode} rules`);
    return 0;
  }
  const nodeName = nodeNameOf(config);
  const loop = new SyncLoop({
    applier,
    settings: snapshotSettingsOf(config, nodeName, hostAddresses()),
    minSyncPeriodMs: config.minSyncPeriodMs,
    syncPeriodMs: config.syncPeriodMs,
    log: logLine,
  });
  const onEvents = (events: ProxyEvent[], errors: readonly ObjectError[]) => {
    for (const e of errors) logLine(`skipped bad object: ${e.message}`);
    loop.enqueue(events);
  };
  if (!config.manifests) {
    throw new Error("Cannot start: the Kubernetes API source is not built in yet; use --manifests");
  }
  const source = new ManifestSource(config.manifests, {
    onEvents,
    onSynced: () => loop.markSourcesSynced(),
    log: logLine,
  });
  logLine(
    `kproxy starting: node ${nodeName}, mode ${config.dryRun ? "dry-run " : ""}${config.mode}, ` +
      `manifests ${config.manifests}`,
  );
  loop.start();
  await source.start();
  const stopped = new Promise<void>((resolve) => {
    const stop = () => resolve();
    Deno.addSignalListener("SIGTERM", stop);
    Deno.addSignalListener("SIGINT", stop);
  });
  await stopped;
  logLine("kproxy stopping; rules stay in place (use --cleanup to remove them)");
  await source.stop();
  await loop.stop();
  return 0;
}
