/**
 * The benchmark harness: `deno task bench` runs the in-process part (no root, a few minutes);
 * `deno task bench:e2e` (`--e2e`) runs everything: in-process, kernel benches in bench
 * namespaces, and the end-to-end comparison with upstream kube-proxy against a real API server.
 * Results go to `bench/results/` (Markdown, SVG chart, raw JSON) and the tables to stdout.
 *
 * ```sh
 * deno run -A bench/run.ts [--e2e | --kernel] [--sizes 1000,10000,30000]
 *   [--kernel-sizes 1000,10000,30000] [--kernel-cap 240] [--kernel-backends nftables,iptables-nft]
 *   [--e2e-sizes 1000,10000] [--e2e-changes 32]
 *   [--e2e-endpoints 10] [--e2e-cap 600] [--e2e-phase-budget 900] [--phases nftables,iptables]
 *   [--out bench/results]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { fixtureBinary } from "../tests/fixtures/apiserver.ts";
import { runE2E } from "./e2e_bench.ts";
import { type InProcessResult, measureInProcess } from "./in_process.ts";
import {
  estimateApplyMs,
  type KernelBackend,
  type KernelResult,
  measureKernel,
  skippedKernel,
  toolVersions,
} from "./kernel_bench.ts";
import { type HolderMemory, measureHolderMemory } from "./memory_bench.ts";
import { canCreateNetns } from "./netns.ts";
import type { ProxyMode } from "./proxy_process.ts";
import {
  type BenchRun,
  chartSeries,
  headlineTable,
  inProcessTable,
  kernelTable,
  latencyChart,
  memoryTable,
  readmeBenchSection,
  replaceReadmeSection,
  resultsMarkdown,
  targetLines,
} from "./report.ts";
import { formatMs } from "./stats.ts";

const t0 = performance.now();

/** Prints a progress line with the elapsed time. */
function progress(line: string): void {
  const s = ((performance.now() - t0) / 1000).toFixed(0).padStart(5);
  console.error(`[${s} s] ${line}`);
}

/** A cluster size: services, and endpoints per service (`100k`, `1x5000`). */
interface ClusterSize {
  readonly services: number;
  readonly endpoints: number;
}

function clusterSizesOf(text: string): ClusterSize[] {
  return text.split(",").map((s) => s.trim()).filter((s) => s !== "").map((s) => {
    const [a, b] = s.split("x");
    const services = Number((a ?? "").replace(/k$/i, "000"));
    const endpoints = b === undefined ? 10 : Number(b.replace(/k$/i, "000"));
    if (!Number.isInteger(services) || services < 1 || !Number.isInteger(endpoints)) {
      throw new Error(`Cannot read size ${JSON.stringify(s)} (N, Nk or SERVICESxENDPOINTS)`);
    }
    return { services, endpoints };
  });
}

function sizesOf(text: string): number[] {
  return clusterSizesOf(text).map((s) => s.services);
}

async function sh(argv: readonly string[]): Promise<string> {
  try {
    const out = await new Deno.Command(argv[0] as string, {
      args: argv.slice(1),
      stdout: "piped",
      stderr: "piped",
    }).output();
    return new TextDecoder().decode(out.success ? out.stdout : out.stderr).trim();
  } catch {
    return "missing";
  }
}

async function loadAverage(): Promise<string> {
  return (await Deno.readTextFile("/proc/loadavg").catch(() => "?")).split(" ").slice(0, 3).join(
    " ",
  );
}

async function machine(): Promise<string> {
  const mem = /MemTotal:\s+(\d+)/.exec(await Deno.readTextFile("/proc/meminfo").catch(() => ""));
  const gib = mem ? (Number(mem[1]) / 1024 / 1024).toFixed(1) : "?";
  return `${navigator.hardwareConcurrency} CPUs, ${gib} GiB, Linux ${await sh(["uname", "-r"])}`;
}

async function runKernel(
  sizes: readonly ClusterSize[],
  capMs: number,
  only: readonly string[],
): Promise<KernelResult[]> {
  const versions = await toolVersions();
  let backends: KernelBackend[] = ["nftables", "iptables-nft"];
  if (!/missing/.test(versions["iptables-legacy"] ?? "missing")) backends.push("iptables-legacy");
  if (only.length > 0) backends = backends.filter((b) => only.includes(b));
  const results: KernelResult[] = [];
  for (const backend of backends) {
    let last: KernelResult | null = null;
    for (const { services: size, endpoints } of sizes) {
      if (endpoints !== 10) {
        progress(`kernel ${backend} ${size} × ${endpoints} endpoints: loading`);
        try {
          results.push(await measureKernel(backend, size, { log: progress, endpoints }));
        } catch (e) {
          const why = `failed: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`;
          results.push({ ...skippedKernel(backend, size, why), endpoints });
        }
        continue;
      }
      if (last?.fullApplyMs != null) {
        const estimate = estimateApplyMs(last.services, last.fullApplyMs, size);
        if (estimate > capMs) {
          const why = `skipped (too slow: estimated ${formatMs(estimate)} from ${
            formatMs(last.fullApplyMs)
          } at ${last.services})`;
          progress(`kernel ${backend} ${size}: ${why}`);
          results.push(skippedKernel(backend, size, why));
          continue;
        }
      }
      progress(`kernel ${backend} ${size} services: loading into a bench namespace`);
      try {
        last = await measureKernel(backend, size, { log: progress });
        results.push(last);
      } catch (e) {
        const why = `failed: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`;
        progress(`kernel ${backend} ${size}: ${why}`);
        results.push(skippedKernel(backend, size, why));
        break;
      }
    }
  }
  return results;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      e2e: { type: "boolean", default: false },
      kernel: { type: "boolean", default: false },
      sizes: { type: "string", default: "1000,10000,30000,100000,1x5000" },
      "memory-sizes": { type: "string", default: "1000,10000,30000" },
      "kernel-sizes": { type: "string", default: "1000,10000,30000,100000,1x5000" },
      "kernel-cap": { type: "string", default: "400" },
      "kernel-backends": { type: "string", default: "nftables,iptables-nft,iptables-legacy" },
      "e2e-sizes": { type: "string", default: "1000,10000,30000" },
      "e2e-changes": { type: "string", default: "32" },
      "e2e-endpoints": { type: "string", default: "10" },
      "e2e-cap": { type: "string", default: "600" },
      "e2e-phase-budget": { type: "string", default: "900" },
      phases: { type: "string", default: "nftables,iptables" },
      out: { type: "string", default: new URL("./results", import.meta.url).pathname },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: run.ts [--e2e | --kernel] [--sizes 1000,10000,30000] [--memory-sizes ...]\n" +
        "  [--kernel-sizes 1000,10000,30000] [--kernel-cap SECONDS]\n" +
        "  [--kernel-backends nftables,iptables-nft,iptables-legacy] [--e2e-sizes 1000,10000]\n" +
        "  [--e2e-changes 32] [--e2e-endpoints 10] [--e2e-cap SECONDS] [--e2e-phase-budget SECONDS]\n" +
        "  [--phases nftables,iptables] [--out DIR]",
    );
    return 0;
  }
  const kernel = values.kernel || values.e2e;
  if (kernel && !canCreateNetns()) {
    console.error(
      "bench: --kernel and --e2e need root and `ip netns` (they run in bench namespaces)",
    );
    return 2;
  }
  const startedAt = new Date().toISOString();
  // The code the proxies run is the checkout's at the start (it may move on during a long run).
  const commit = await sh([
    "git",
    "-C",
    new URL("..", import.meta.url).pathname,
    "rev-parse",
    "--short",
    "HEAD",
  ]);
  const loadStart = await loadAverage();
  const durations: Record<string, number> = {};
  const timed = async <T>(name: string, fn: () => Promise<T> | T): Promise<T> => {
    const s = performance.now();
    try {
      return await fn();
    } finally {
      durations[name] = performance.now() - s;
    }
  };

  const inProcess: InProcessResult[] = await timed("in-process", () => {
    const out: InProcessResult[] = [];
    for (const { services, endpoints } of clusterSizesOf(values.sizes)) {
      progress(`in-process ${services} services × ${endpoints} endpoints`);
      out.push(measureInProcess(services, progress, endpoints));
    }
    return out;
  });
  console.log("\n## In process\n\n" + inProcessTable(inProcess) + "\n");

  const memory: HolderMemory[] = await timed("memory", async () => {
    const out: HolderMemory[] = [];
    for (const size of sizesOf(values["memory-sizes"])) {
      progress(`memory: a kproxy process holding ${size} services (nftables applier)`);
      out.push(await measureHolderMemory(size, "nftables"));
    }
    return out;
  });
  console.log("## Memory\n\n" + memoryTable(memory) + "\n");

  let kernelResults: KernelResult[] = [];
  if (kernel) {
    kernelResults = await timed(
      "kernel",
      () =>
        runKernel(
          clusterSizesOf(values["kernel-sizes"]),
          Number(values["kernel-cap"]) * 1000,
          values["kernel-backends"].split(",").map((b) => b.trim()).filter((b) => b !== ""),
        ),
    );
    console.log("## Kernel\n\n" + kernelTable(kernelResults) + "\n");
  }

  let e2e: Awaited<ReturnType<typeof runE2E>> = [];
  if (values.e2e) {
    const logDir = await Deno.makeTempDir({ prefix: "kpb-e2e-logs-" });
    await Deno.mkdir(values.out, { recursive: true });
    progress(`e2e: proxy logs in ${logDir}`);
    e2e = await timed("e2e", () =>
      runE2E({
        sizes: sizesOf(values["e2e-sizes"]),
        endpointsPerService: Number(values["e2e-endpoints"]),
        changes: Number(values["e2e-changes"]),
        phases: values.phases.split(",").map((p) => p.trim()) as ProxyMode[],
        fullSyncCapMs: Number(values["e2e-cap"]) * 1000,
        phaseBudgetMs: Number(values["e2e-phase-budget"]) * 1000,
        logDir,
        log: progress,
        checkpoint: (partial) =>
          Deno.writeTextFile(
            `${values.out}/results.partial.json`,
            JSON.stringify(partial, null, 1),
          ),
      }));
    await Deno.remove(`${values.out}/results.partial.json`).catch(() => {});
    console.log(
      "## End to end\n\n" + headlineTable(e2e, kernelResults) + "\n\n" +
        targetLines(e2e, kernelResults).join("\n") + "\n",
    );
  }

  const tools = kernel ? await toolVersions() : {};
  const run: BenchRun = {
    environment: {
      startedAt,
      durations,
      command: `deno run -A bench/run.ts ${Deno.args.join(" ")}`.trim(),
      commit,
      machine: await machine(),
      load: { start: loadStart, end: await loadAverage() },
      tools: {
        deno: Deno.version.deno,
        ...tools,
        ...(values.e2e
          ? { "kube-proxy": await sh([fixtureBinary("kube-proxy"), "--version"]) }
          : {}),
      },
    },
    inProcess,
    memory,
    kernel: kernelResults,
    e2e,
  };
  const out = values.out;
  await Deno.mkdir(out, { recursive: true });
  const base = values.e2e ? "results" : kernel ? "kernel" : "in_process";
  await Deno.writeTextFile(`${out}/${base}.md`, resultsMarkdown(run));
  await Deno.writeTextFile(`${out}/${base}.json`, JSON.stringify(run, null, 1) + "\n");
  if (values.e2e) {
    await Deno.writeTextFile(
      `${out}/chart.svg`,
      latencyChart(chartSeries(e2e), "Change → live latency (API write → kernel), by cluster size"),
    );
    // The README's benchmark section comes from this run, so a rerun elsewhere rewrites it.
    const readmePath = new URL("../README.md", import.meta.url).pathname;
    const readme = await Deno.readTextFile(readmePath);
    const next = replaceReadmeSection(readme, readmeBenchSection(run));
    if (next !== readme) {
      await Deno.writeTextFile(readmePath, next);
      progress(`README.md: benchmark section rewritten from this run`);
    }
  }
  progress(`done in ${formatMs(performance.now() - t0)}; wrote ${out}/${base}.md and .json`);
  return 0;
}

if (import.meta.main) Deno.exit(await main());
