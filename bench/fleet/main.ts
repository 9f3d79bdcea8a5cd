/**
 * `deno task bench:fleet`: the fleet lab at each size, kproxy's fleet and then upstream
 * kube-proxy's on the same API server and objects, then the results (JSON, Markdown tables, SVG
 * chart) in `bench/results/fleet/`. Needs root (network namespaces) and the Go fixtures. Run it
 * under `flock /work/.bench.lock` on a shared machine.
 *
 * ```sh
 * deno run -A bench/fleet/main.ts [--sizes 1000,10000] [--nodes 30,30] [--impls kproxy,kube-proxy]
 *   [--upstream-nodes 30,15] [--probe-nodes 3] [--changes 20] [--storms restart,compact]
 *   [--drain-nodes 3] [--request-repeats 5] [--out bench/results/fleet]
 * deno run -A bench/fleet/main.ts --rerender bench/results/fleet   # tables and chart again
 * ```
 *
 * `--nodes` and `--upstream-nodes` give the fleet size per cluster size (one value: every size).
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { ProxyImpl } from "../proxy_process.ts";
import {
  baselineRestart,
  type FleetPhaseResult,
  idleWindow,
  runFleetPhase,
  type StormKind,
} from "./fleet_bench.ts";
import type { ProcessWindow } from "./process_sampler.ts";
import { measureRequestCosts, type RequestCost } from "./request_costs.ts";
import { startTestCluster } from "../../tests/fixtures/apiserver.ts";
import { type DrainResult, runDrainPhase } from "./drain_phase.ts";
import { startFleetCluster } from "./lab.ts";
import { type FleetRun, type FleetSizeResult, writeFleetResults } from "./report.ts";

const t0 = performance.now();

/** A progress line with the elapsed time and the machine's 1-minute load. */
function progress(line: string): void {
  const s = ((performance.now() - t0) / 1000).toFixed(0).padStart(5);
  let load = "?";
  try {
    load = Deno.readTextFileSync("/proc/loadavg").split(" ")[0] ?? "?";
  } catch { /* not Linux */ }
  console.error(`[${s} s, load ${load.padStart(5)}] ${line}`);
}

function numbers(text: string): number[] {
  return text.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => {
    const n = Number(s.replace(/k$/i, "000"));
    if (!Number.isInteger(n) || n < 0) throw new Error(`Cannot read number ${JSON.stringify(s)}`);
    return n;
  });
}

function pick(list: readonly number[], i: number): number {
  return list[Math.min(i, list.length - 1)] ?? 0;
}

async function loadAverage(): Promise<string> {
  return (await Deno.readTextFile("/proc/loadavg").catch(() => "?")).split(" ").slice(0, 3)
    .join(" ");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      sizes: { type: "string", default: "1000,10000" },
      nodes: { type: "string", default: "30,30" },
      "upstream-nodes": { type: "string", default: "30,15" },
      impls: { type: "string", default: "kproxy,kube-proxy" },
      "probe-nodes": { type: "string", default: "3" },
      changes: { type: "string", default: "20" },
      storms: { type: "string", default: "restart,compact" },
      "start-timeout": { type: "string", default: "2400" },
      "storm-timeout": { type: "string", default: "600" },
      "drain-nodes": { type: "string", default: "3" },
      "request-repeats": { type: "string", default: "5" },
      out: { type: "string", default: "bench/results/fleet" },
      rerender: { type: "string" },
    },
  });
  if (values.rerender !== undefined) {
    // Tables and chart again from a run's raw results (after a change to the report).
    const dir = values.rerender;
    const run = JSON.parse(await Deno.readTextFile(`${dir}/results.json`)) as FleetRun;
    await writeFleetResults(dir, { ...run, drains: run.drains ?? [] });
    progress(`rewrote ${dir}/results.md and chart.svg`);
    return;
  }
  const sizes = numbers(values.sizes);
  const nodes = numbers(values.nodes);
  const upstreamNodes = numbers(values["upstream-nodes"]);
  const impls = values.impls.split(",").map((s) => s.trim()) as ProxyImpl[];
  const storms = values.storms.split(",").map((s) => s.trim()).filter((s) =>
    s !== ""
  ) as StormKind[];
  const out = values.out;
  await Deno.mkdir(out, { recursive: true });
  const logDir = await Deno.makeTempDir({ prefix: "kproxy-fleet-logs-" });
  progress(`logs in ${logDir}`);
  const run: FleetRun = {
    startedAt: new Date().toISOString(),
    loadBefore: await loadAverage(),
    loadAfter: "",
    // KPROXY_COMMIT names the commit when the run is from an exported tree (no .git).
    commit: Deno.env.get("KPROXY_COMMIT") ??
      await new Deno.Command("git", { args: ["rev-parse", "--short", "HEAD"] }).output()
        .then((o) => new TextDecoder().decode(o.stdout).trim() || "?").catch(() => "?"),
    sizes: [],
    drains: [],
  };
  // The drain first: it is short, and a long fleet size that has to be cut keeps it.
  const drainNodes = Number(values["drain-nodes"]);
  if (drainNodes > 0) {
    for (const impl of impls) {
      // An API server each: the scenario creates its Services and Nodes under fixed names.
      const cluster = await startTestCluster();
      try {
        progress(`=== drain, ${impl}, ${drainNodes} nodes`);
        const result: DrainResult = await runDrainPhase(cluster, impl, drainNodes, progress);
        progress(
          result.report === null
            ? `${impl} drain did not complete: ${result.error}`
            : `${impl} drain: ${result.report.failures.length} failed connections`,
        );
        run.drains.push(result);
      } finally {
        await cluster.stop();
      }
    }
    run.loadAfter = await loadAverage();
    await writeFleetResults(out, run);
    progress(`wrote ${out}`);
  }
  for (const [si, services] of sizes.entries()) {
    const n = Math.max(pick(nodes, si), pick(upstreamNodes, si));
    progress(`=== ${services} services, up to ${n} nodes (load ${await loadAverage()})`);
    const fc = await startFleetCluster({ services, nodes: n, log: progress });
    const phases: FleetPhaseResult[] = [];
    const result: FleetSizeResult & {
      baseline: ProcessWindow | null;
      idle: ProcessWindow | null;
      requestCosts: RequestCost[] | null;
    } = {
      services,
      load: await loadAverage(),
      requestCosts: null,
      baseline: null,
      idle: null,
      phases,
    };
    run.sizes.push(result);
    try {
      progress(
        `created ${fc.creation.objects} objects in ${(fc.creation.ms / 1000).toFixed(0)} s`,
      );
      const repeats = Number(values["request-repeats"]);
      if (repeats > 0) {
        result.requestCosts = await measureRequestCosts(fc.cluster, repeats);
        progress(`measured ${result.requestCosts.length} ways of fetching the collections`);
      }
      result.idle = await idleWindow(fc);
      progress(
        `API server idle: ${(result.idle.cpuSeconds / result.idle.seconds).toFixed(3)} cores`,
      );
      if (storms.length > 0) {
        result.baseline = await baselineRestart(fc);
        progress(`API server restart alone: ${result.baseline.cpuSeconds.toFixed(1)} s CPU`);
      }
      for (const impl of impls) {
        const fleetNodes = impl === "kproxy" ? pick(nodes, si) : pick(upstreamNodes, si);
        if (fleetNodes === 0) continue;
        const phase = await runFleetPhase(fc, {
          impl,
          nodes: fleetNodes,
          probeNodes: Math.min(fleetNodes, Number(values["probe-nodes"])),
          changes: Number(values.changes),
          storms,
          startTimeoutMs: Number(values["start-timeout"]) * 1000,
          stormTimeoutMs: Number(values["storm-timeout"]) * 1000,
          logDir,
          log: progress,
        }).catch((e) => {
          progress(`${impl}: the phase failed: ${e instanceof Error ? e.stack : e}`);
          return null;
        });
        if (phase !== null) phases.push(phase);
        // Written after every phase: a long run that dies keeps what it measured.
        run.loadAfter = await loadAverage();
        await writeFleetResults(out, run);
      }
    } finally {
      await fc.stop();
    }
    progress(`wrote ${out}`);
  }
}

if (import.meta.main) await main();
