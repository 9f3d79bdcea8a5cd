/**
 * The in-process measurements behind `deno task bench`: generation, validation, snapshot build,
 * one-change reconcile, and per backend the full render (time, lines, bytes) and the incremental
 * transaction for one endpoint change. No kernel, no root.
 *
 * @module
 */
import type { KubeObject } from "../src/model/kube_object.ts";
import type { ProxySnapshot } from "../src/snapshot/types.ts";
import { initialProxyState, reconcile } from "../src/snapshot/proxy_state.ts";
import { fullTableText, planIncremental, renderFamily } from "../src/render/nftables/table_plan.ts";
import { renderFamilyRestore } from "../src/render/iptables/full_restore.ts";
import { renderPartialRestore } from "../src/render/iptables/partial_restore.ts";
import type { IPFamily } from "../src/model/ip.ts";
import { BENCH_SETTINGS, endpointChanges } from "./_fixtures.ts";
import { median } from "./stats.ts";
import { kubeObjectsOf, syntheticCluster } from "./synthetic_cluster.ts";

/** One backend's numbers at one size. */
export interface BackendRenderResult {
  /** `nftables` or `iptables`. */
  readonly backend: "nftables" | "iptables";
  /** Full render of both families, first time in this process (ms). */
  readonly fullRenderMs: number;
  /** Full render again (iptables reuses rendered entries of unchanged snapshot entries), ms. */
  readonly fullRenderAgainMs: number;
  /** Lines of the full rule text. */
  readonly lines: number;
  /** Bytes of the full rule text. */
  readonly bytes: number;
  /** Time to plan the incremental transaction for one endpoint change (median, ms). */
  readonly incrementalMs: number;
  /** Lines of that transaction. */
  readonly incrementalLines: number;
  /** Bytes of that transaction. */
  readonly incrementalBytes: number;
  /** The transaction itself (for the raw results). */
  readonly incrementalText: string;
}

/** The in-process numbers at one size. */
export interface InProcessResult {
  /** Services. */
  readonly services: number;
  /** Endpoints per service (default 10). */
  readonly endpointsPerService?: number;
  /** Service ports in the snapshot. */
  readonly servicePorts: number;
  /** Endpoints generated. */
  readonly endpoints: number;
  /** The service mix. */
  readonly mix: Readonly<Record<string, number>>;
  /** Generating the raw objects, ms. */
  readonly generateMs: number;
  /** Validating them (zod) into kproxy's model, ms. */
  readonly validateMs: number;
  /** Snapshot build from all objects (median of runs), ms. */
  readonly snapshotBuildMs: number;
  /** Runs behind `snapshotBuildMs`. */
  readonly snapshotBuildRuns: number;
  /** Reconcile of one EndpointSlice change (median), ms. */
  readonly reconcileOneMs: number;
  /** Every one-change reconcile sample, ms. */
  readonly reconcileSamples: readonly number[];
  /** Per backend. */
  readonly backends: readonly BackendRenderResult[];
}

const FAMILIES: readonly IPFamily[] = ["IPv4", "IPv6"];

function timed<T>(fn: () => T): [T, number] {
  const t0 = performance.now();
  const value = fn();
  return [value, performance.now() - t0];
}

function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) n++;
  return text.length > 0 && !text.endsWith("\n") ? n + 1 : n;
}

function renderNft(snapshot: ProxySnapshot): string {
  return FAMILIES.map((f) => fullTableText(renderFamily(snapshot, f))).join("\n");
}

function renderIpt(snapshot: ProxySnapshot): string {
  return FAMILIES.map((f) => renderFamilyRestore(snapshot, f).text).join("");
}

/** Measures everything in-process at `size` services × `endpoints` endpoints (default 10). */
export function measureInProcess(
  size: number,
  log: (line: string) => void = () => {},
  endpoints = 10,
): InProcessResult {
  const [cluster, generateMs] = timed(() =>
    syntheticCluster({ services: size, endpointsPerService: endpoints, plain: endpoints > 10 })
  );
  const [objects, validateMs] = timed(() => kubeObjectsOf(cluster));
  log(
    `  ${size}: generated in ${generateMs.toFixed(0)} ms, validated in ${validateMs.toFixed(0)} ms`,
  );

  const runs = size <= 1_000 ? 5 : size <= 10_000 ? 3 : 1;
  const buildTimes: number[] = [];
  let state = initialProxyState(BENCH_SETTINGS);
  for (let i = 0; i < runs; i++) {
    const objs: readonly KubeObject[] = objects;
    const [r, ms] = timed(() =>
      reconcile(initialProxyState(BENCH_SETTINGS), [{ type: "replace", objects: objs }])
    );
    state = r.state;
    buildTimes.push(ms);
  }
  const snapshot = state.snapshot;
  log(`  ${size}: snapshot build ${median(buildTimes).toFixed(0)} ms (${runs} runs)`);

  const changes = endpointChanges(cluster, 21);
  const reconcileSamples: number[] = [];
  for (const events of changes) {
    reconcileSamples.push(timed(() => reconcile(state, events))[1]);
  }
  // The first reconcile warms the code paths; keep it out of the median.
  const reconcileOneMs = median(reconcileSamples.slice(1));
  log(`  ${size}: one-change reconcile ${reconcileOneMs.toFixed(2)} ms (median of 20)`);
  const change = reconcile(state, changes[0] ?? []);
  const next = change.state.snapshot;
  const ids = change.changedServicePorts;

  const backends: BackendRenderResult[] = [];
  {
    const [text, fullRenderMs] = timed(() => renderNft(snapshot));
    const fullRenderAgainMs = timed(() => renderNft(snapshot))[1];
    const live = FAMILIES.map((f) => renderFamily(snapshot, f));
    const samples: number[] = [];
    let commands: string[] = [];
    for (let i = 0; i < 5; i++) {
      const [cmds, ms] = timed(() =>
        FAMILIES.flatMap((f, j) =>
          planIncremental(live[j]!, renderFamily(next, f, ids), ids).commands
        )
      );
      samples.push(ms);
      commands = cmds;
    }
    const inc = commands.length === 0 ? "" : commands.join("\n") + "\n";
    backends.push({
      backend: "nftables",
      fullRenderMs,
      fullRenderAgainMs,
      lines: countLines(text),
      bytes: new TextEncoder().encode(text).length,
      incrementalMs: median(samples),
      incrementalLines: commands.length,
      incrementalBytes: inc.length,
      incrementalText: inc,
    });
    log(`  ${size}: nftables full render ${fullRenderMs.toFixed(0)} ms, ${countLines(text)} lines`);
  }
  // The iptables restore input of a very large cluster (100k services: ~5M lines) does not fit
  // in one JavaScript string (V8's limit, ~512 Mi characters): the row says so, the run goes on.
  let ipt: [string, number] | null = null;
  try {
    ipt = timed(() => renderIpt(snapshot));
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    log(`  ${size}: iptables full render failed: ${error.message} (one string per family)`);
  }
  if (ipt !== null) {
    const [text, fullRenderMs] = ipt;
    const fullRenderAgainMs = timed(() => renderIpt(snapshot))[1];
    const live = FAMILIES.map((f) => renderFamilyRestore(snapshot, f).services);
    const samples: number[] = [];
    let inc = "";
    let lines = 0;
    for (let i = 0; i < 5; i++) {
      const [parts, ms] = timed(() =>
        FAMILIES.map((f, j) => renderPartialRestore(next, f, live[j]!, ids))
      );
      samples.push(ms);
      inc = parts.map((p) => p.text).join("");
      lines = parts.reduce((n, p) => n + countLines(p.text), 0);
    }
    backends.push({
      backend: "iptables",
      fullRenderMs,
      fullRenderAgainMs,
      lines: countLines(text),
      bytes: new TextEncoder().encode(text).length,
      incrementalMs: median(samples),
      incrementalLines: lines,
      incrementalBytes: inc.length,
      incrementalText: inc,
    });
    log(`  ${size}: iptables full render ${fullRenderMs.toFixed(0)} ms, ${countLines(text)} lines`);
  }
  return {
    services: size,
    endpointsPerService: endpoints,
    servicePorts: snapshot.servicePorts.length,
    endpoints: cluster.mix["endpoints"] ?? 0,
    mix: cluster.mix,
    generateMs,
    validateMs,
    snapshotBuildMs: median(buildTimes),
    snapshotBuildRuns: runs,
    reconcileOneMs,
    reconcileSamples,
    backends,
  };
}
