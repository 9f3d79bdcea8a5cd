/**
 * The benchmark report (pure): Markdown tables of every part, the targets stated against the
 * numbers, and a hand-written SVG chart of change→live latency against cluster size.
 *
 * @module
 */
import type { E2ESizeResult, ProxyRun } from "./e2e_bench.ts";
import type { InProcessResult } from "./in_process.ts";
import type { KernelResult } from "./kernel_bench.ts";
import type { HolderMemory } from "./memory_bench.ts";
import { formatBytes, formatCount, formatMs, quantile } from "./stats.ts";

/** Where and how the benchmarks ran. */
export interface BenchEnvironment {
  /** ISO time the run started. */
  readonly startedAt: string;
  /** Wall time of each part, ms. */
  readonly durations: Readonly<Record<string, number>>;
  /** The command line. */
  readonly command: string;
  /** git commit of the tree measured. */
  readonly commit: string;
  /** CPUs, memory, kernel. */
  readonly machine: string;
  /** Load averages at the start and the end (other work on the machine skews numbers). */
  readonly load: { readonly start: string; readonly end: string };
  /** Versions of deno, nft, iptables, kube-proxy. */
  readonly tools: Readonly<Record<string, string>>;
}

/** Everything one run measured (the raw JSON). */
export interface BenchRun {
  /** Where and how. */
  readonly environment: BenchEnvironment;
  /** In-process numbers per size. */
  readonly inProcess: readonly InProcessResult[];
  /** Peak memory of a process holding a reconciled cluster. */
  readonly memory: readonly HolderMemory[];
  /** Kernel benches (absent without `--kernel`/`--e2e`). */
  readonly kernel: readonly KernelResult[];
  /** End-to-end results per size (absent without `--e2e`). */
  readonly e2e: readonly E2ESizeResult[];
}

function sizeLabel(n: number, endpoints = 10): string {
  const services = n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : String(n);
  return endpoints === 10 ? services : `${services} × ${formatCount(endpoints)} endpoints`;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

function ratio(a: number | null | undefined, b: number | null | undefined): string {
  if (a === null || a === undefined || b === null || b === undefined || a <= 0 || b <= 0) {
    return "—";
  }
  return a <= b ? `1/${(b / a).toFixed(1)}` : `${(a / b).toFixed(1)}×`;
}

/** The Markdown table of in-process numbers. */
export function inProcessTable(results: readonly InProcessResult[]): string {
  const rows = results.map((r) => {
    const nft = r.backends.find((b) => b.backend === "nftables");
    const ipt = r.backends.find((b) => b.backend === "iptables");
    return [
      sizeLabel(r.services, r.endpointsPerService ?? 10),
      formatCount(r.servicePorts),
      formatCount(r.endpoints),
      formatMs(r.validateMs),
      formatMs(r.snapshotBuildMs),
      formatMs(r.reconcileOneMs),
      `${formatMs(nft?.fullRenderMs)} · ${formatCount(nft?.lines)} lines · ${
        formatBytes(nft?.bytes)
      }`,
      `${formatCount(nft?.incrementalLines)} lines · ${formatBytes(nft?.incrementalBytes)} · ${
        formatMs(nft?.incrementalMs)
      }`,
      `${formatMs(ipt?.fullRenderMs)} (again ${formatMs(ipt?.fullRenderAgainMs)}) · ${
        formatCount(ipt?.lines)
      } lines · ${formatBytes(ipt?.bytes)}`,
      `${formatCount(ipt?.incrementalLines)} lines · ${formatBytes(ipt?.incrementalBytes)} · ${
        formatMs(ipt?.incrementalMs)
      }`,
    ];
  });
  return table([
    "services",
    "service ports",
    "endpoints",
    "validate (zod)",
    "snapshot build",
    "one-change reconcile",
    "nftables full render",
    "nftables one-endpoint transaction",
    "iptables full render",
    "iptables one-endpoint restore",
  ], rows);
}

/** The Markdown table of holder memory. */
export function memoryTable(results: readonly HolderMemory[]): string {
  return table(
    ["services", "applier", "VmHWM (peak)", "VmRSS (settled)", "start → first sync"],
    results.map((m) => [
      sizeLabel(m.services),
      m.backend,
      formatBytes(m.hwm),
      formatBytes(m.rss),
      formatMs(m.settleMs),
    ]),
  );
}

/** Median CPU time per endpoint change (older results have none). */
function cpuPerChange(k: KernelResult): string {
  const xs = k.changes.map((c) => c.cpuMs).filter((x): x is number => x !== undefined)
    .sort((a, b) => a - b);
  return xs.length === 0 ? "—" : formatMs(quantile(xs, 0.5));
}

/** The Markdown table of kernel benches, each row with the floors measured beside it. */
export function kernelTable(results: readonly KernelResult[]): string {
  const live = (k: KernelResult, kind: "add" | "delete") => {
    const c = k.serviceChanges?.find((x) => x.kind === kind);
    return c === undefined ? "—" : formatMs(c.liveMs);
  };
  return table(
    [
      "backend",
      "services",
      "first full apply",
      "lines",
      "one endpoint change → live (median)",
      "CPU per change (median)",
      "floor: kernel commits the same netlink batch",
      "floor: nft CLI, one element to a tiny table",
      "add a service → live",
      "delete a service → live",
      "lines sent per change",
      "kernel notifications per change",
    ],
    results.map((k) =>
      k.skipped !== null
        ? [
          k.backend,
          sizeLabel(k.services, k.endpoints ?? 10),
          k.skipped,
          "",
          "",
          "",
          "",
          "",
          "",
          "",
          "",
          "",
        ]
        : [
          k.backend,
          sizeLabel(k.services, k.endpoints ?? 10),
          formatMs(k.fullApplyMs),
          formatCount(k.fullLines),
          formatMs(k.changeLiveMs),
          cpuPerChange(k),
          formatMs(k.floors?.netlinkBatchMs),
          formatMs(k.floors?.nftCliMs),
          live(k, "add"),
          live(k, "delete"),
          formatCount(k.changeLines),
          formatCount(quantile(
            k.changes.map((c) => c.transactionMessages).filter((x): x is number => x !== null)
              .sort((a, b) => a - b),
            0.5,
          )),
        ]
    ),
  );
}

/** The kernel bench's nftables row at `services` (10 endpoints each), if it ran. */
function kernelRow(kernel: readonly KernelResult[], services: number): KernelResult | null {
  return kernel.find((k) =>
    k.backend === "nftables" && k.services === services && (k.endpoints ?? 10) === 10 &&
    k.skipped === null
  ) ?? null;
}

/**
 * The headline table: one row per proxy and size, with the floors the kernel bench measured at
 * the same size in the same run (the `nft` CLI adding one element to a tiny table; the kernel
 * committing kproxy's netlink batch for one endpoint change).
 */
export function headlineTable(
  results: readonly E2ESizeResult[],
  kernel: readonly KernelResult[] = [],
): string {
  const rows: string[][] = [];
  for (const size of results) {
    const floors = kernelRow(kernel, size.services)?.floors;
    for (const p of size.proxies) {
      rows.push([
        p.spec.impl,
        `${p.spec.mode}${
          p.spec.minSyncPeriod !== undefined ? ` (min-sync ${p.spec.minSyncPeriod})` : ""
        }`,
        `${sizeLabel(p.services)} × ${p.endpointsPerService}`,
        formatMs(p.fullSyncMs),
        formatMs(p.latency?.p50),
        formatMs(p.latency?.p90),
        formatMs(p.latency?.p99),
        formatMs(p.latency?.max),
        formatMs(floors?.netlinkBatchMs),
        formatMs(floors?.nftCliMs),
        p.latency === null ? "—" : String(p.latency.n),
        formatCount(p.transactionMessages),
        formatBytes(p.hwm),
        formatBytes(p.rss),
        p.cpuSeconds === null ? "—" : `${p.cpuSeconds.toFixed(0)} s`,
        p.note ?? "",
      ]);
    }
  }
  return table([
    "proxy",
    "mode",
    "size",
    "full sync",
    "change→live p50",
    "p90",
    "p99",
    "max",
    "floor: kernel commits the change's netlink batch",
    "floor: nft CLI, one element to a tiny table",
    "changes",
    "kernel notifications per change",
    "RSS peak (VmHWM)",
    "VmRSS",
    "CPU used",
    "notes",
  ], rows);
}

/** p50 per change kind and proxy, per size. */
export function perKindTable(results: readonly E2ESizeResult[]): string {
  const rows: string[][] = [];
  for (const size of results) {
    for (const [phase, changes] of Object.entries(size.changes)) {
      const labels = [...new Set(changes.flatMap((c) => Object.keys(c.liveMs)))];
      for (const kind of [...new Set(changes.map((c) => c.kind))]) {
        const of = changes.filter((c) => c.kind === kind);
        const write = quantile(of.map((c) => c.writeMs).sort((a, b) => a - b), 0.5);
        const cells = labels.map((l) => {
          const xs = of.map((c) => c.liveMs[l]).filter((x): x is number => typeof x === "number")
            .sort((a, b) => a - b);
          return `${l}: ${formatMs(quantile(xs, 0.5))}`;
        });
        rows.push([
          sizeLabel(size.services),
          phase,
          kind,
          String(of.length),
          formatMs(write),
          cells.join("<br>"),
        ]);
      }
    }
  }
  return table(["size", "phase", "change", "n", "API write", "change→live p50 per proxy"], rows);
}

function find(results: readonly E2ESizeResult[], size: number, label: string): ProxyRun | null {
  return results.find((r) => r.services === size)?.proxies.find((p) => p.spec.label === label) ??
    null;
}

/** The targets of issue #14, each stated against the numbers of this run, floors beside them. */
export function targetLines(
  results: readonly E2ESizeResult[],
  kernel: readonly KernelResult[] = [],
): string[] {
  const verdict = (ok: boolean | null) =>
    ok === null ? "not measured" : ok ? "**met**" : "**not met**";
  const lines: string[] = [];
  for (const services of [10_000, 30_000, 100_000]) {
    const k = kernelRow(kernel, services);
    lines.push(
      `- one endpoint change → live ≤ 5 ms at ${sizeLabel(services)} (kernel bench): ${
        formatMs(k?.changeLiveMs)
      } (kernel floor ${formatMs(k?.floors?.netlinkBatchMs)}, nft CLI floor ${
        formatMs(k?.floors?.nftCliMs)
      }) — ${verdict(k?.changeLiveMs == null ? null : k.changeLiveMs <= 5)}`,
    );
  }
  const k10 = kernelRow(kernel, 10_000);
  for (const kind of ["add", "delete"] as const) {
    const c = k10?.serviceChanges?.find((x) => x.kind === kind)?.liveMs ?? null;
    lines.push(
      `- ${kind} a whole service → live ≤ 20 ms at 10k: ${formatMs(c)} — ${
        verdict(c === null ? null : c <= 20)
      }`,
    );
  }
  lines.push(
    `- first full sync at 10k ≤ 5 s (kernel bench): ${formatMs(k10?.fullApplyMs)} — ${
      verdict(k10?.fullApplyMs == null ? null : k10.fullApplyMs <= 5000)
    }`,
  );
  const k = find(results, 10_000, "kproxy nftables");
  const p50 = k?.latency?.p50 ?? null;
  const p99 = k?.latency?.p99 ?? null;
  lines.push(
    `- e2e change→live at 10k: p50 ${formatMs(p50)} (≤ 50 ms: ${
      verdict(p50 === null ? null : p50 <= 50)
    }), p99 ${formatMs(p99)} (≤ 150 ms: ${verdict(p99 === null ? null : p99 <= 150)})`,
  );
  const full = k?.fullSyncMs ?? null;
  lines.push(
    `- e2e first full sync at 10k ≤ 8 s: ${formatMs(full)} — ${
      verdict(full === null ? null : full <= 8000)
    }`,
  );
  for (const services of [1_000, 10_000]) {
    const kp = find(results, services, "kproxy nftables");
    const up = find(results, services, "kube-proxy nftables");
    const a = kp?.hwm ?? null;
    const b = up?.hwm ?? null;
    lines.push(
      `- RSS peak ≤ kube-proxy's at ${sizeLabel(services)} (same run, nftables): kproxy ${
        formatBytes(a)
      } vs ${formatBytes(b)} (${ratio(a, b)}) — ${
        verdict(a === null || b === null ? null : a <= b)
      }`,
    );
  }
  const size = [...results].map((r) => r.services).sort((a, b) => b - a).find((s) =>
    find(results, s, "kproxy nftables")?.latency && find(results, s, "kube-proxy nftables")?.latency
  );
  if (size !== undefined) {
    const kp = find(results, size, "kproxy nftables") as ProxyRun;
    const up = find(results, size, "kube-proxy nftables") as ProxyRun;
    lines.push(
      `- against kube-proxy at ${sizeLabel(size)}: change→live p50 ${
        formatMs(kp.latency?.p50)
      } vs ${formatMs(up.latency?.p50)} (${ratio(kp.latency?.p50, up.latency?.p50)}), full sync ${
        formatMs(kp.fullSyncMs)
      } vs ${formatMs(up.fullSyncMs)} (${ratio(kp.fullSyncMs, up.fullSyncMs)})`,
    );
  }
  return lines;
}

/** One series of the chart: a proxy's p50 (and p90) latency at each size. */
export interface ChartSeries {
  /** Legend text. */
  readonly label: string;
  /** Points by size. */
  readonly points: readonly { size: number; p50: number; p90: number }[];
}

/** The chart's series from the e2e results (proxies with latencies). */
export function chartSeries(results: readonly E2ESizeResult[]): ChartSeries[] {
  const labels = [...new Set(results.flatMap((r) => r.proxies.map((p) => p.spec.label)))];
  return labels.map((label) => ({
    label,
    points: results.flatMap((r) => {
      const p = r.proxies.find((x) => x.spec.label === label);
      return p?.latency ? [{ size: r.services, p50: p.latency.p50, p90: p.latency.p90 }] : [];
    }),
  })).filter((s) => s.points.length > 0);
}

const COLORS = ["#1b7f3b", "#c0392b", "#e67e22", "#2c6fbb", "#8e44ad", "#7f8c8d"];

function esc(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/**
 * A log–log line chart of change→live latency (p50, with a bar up to p90) against cluster size,
 * as standalone SVG.
 */
export function latencyChart(series: readonly ChartSeries[], title: string): string {
  const W = 760;
  const H = 460;
  const m = { left: 80, right: 250, top: 50, bottom: 60 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const sizes = [...new Set(series.flatMap((s) => s.points.map((p) => p.size)))].sort((a, b) =>
    a - b
  );
  const values = series.flatMap((s) => s.points.flatMap((p) => [p.p50, p.p90]))
    .filter((v) => v > 0);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${
      W / 2 - m.right / 2 + m.left / 2
    }" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`,
  );
  if (sizes.length === 0 || values.length === 0) {
    out.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no data</text>`, "</svg>");
    return out.join("\n") + "\n";
  }
  const lo = 10 ** Math.floor(Math.log10(Math.min(...values)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...values)));
  const y = (v: number) =>
    m.top + ph - (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) * ph;
  const sLo = Math.min(...sizes);
  const sHi = Math.max(...sizes);
  const x = (s: number) =>
    sHi === sLo ? m.left + pw / 2 : m.left + 20 +
      (Math.log10(s) - Math.log10(sLo)) / (Math.log10(sHi) - Math.log10(sLo)) * (pw - 40);
  // Axes and grid.
  out.push(
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`,
  );
  for (let v = lo; v <= hi * 1.0001; v *= 10) {
    const yy = y(v).toFixed(1);
    out.push(
      `<line x1="${m.left}" x2="${m.left + pw}" y1="${yy}" y2="${yy}" stroke="#ddd"/>`,
      `<text x="${m.left - 8}" y="${yy}" text-anchor="end" dominant-baseline="middle">${
        esc(formatMs(v))
      }</text>`,
    );
  }
  for (const s of sizes) {
    const xx = x(s).toFixed(1);
    out.push(
      `<line x1="${xx}" x2="${xx}" y1="${m.top}" y2="${m.top + ph}" stroke="#eee"/>`,
      `<text x="${xx}" y="${m.top + ph + 18}" text-anchor="middle">${sizeLabel(s)}</text>`,
    );
  }
  out.push(
    `<text x="${m.left + pw / 2}" y="${
      H - 18
    }" text-anchor="middle">services in the cluster (× endpoints each; log scale)</text>`,
    `<text x="20" y="${m.top + ph / 2}" text-anchor="middle" transform="rotate(-90 20 ${
      m.top + ph / 2
    })">API write → rule live in the kernel (log scale)</text>`,
  );
  // Series.
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length] as string;
    const dx = (i - (series.length - 1) / 2) * 5;
    const pts = s.points.map((p) => `${(x(p.size) + dx).toFixed(1)},${y(p.p50).toFixed(1)}`);
    if (pts.length > 1) {
      out.push(
        `<polyline points="${pts.join(" ")}" fill="none" stroke="${color}" stroke-width="2"/>`,
      );
    }
    for (const p of s.points) {
      const xx = (x(p.size) + dx).toFixed(1);
      out.push(
        `<line x1="${xx}" x2="${xx}" y1="${y(p.p50).toFixed(1)}" y2="${
          y(p.p90).toFixed(1)
        }" stroke="${color}" stroke-width="1.5" opacity="0.6"/>`,
        `<circle cx="${xx}" cy="${y(p.p50).toFixed(1)}" r="4" fill="${color}"><title>${
          esc(s.label)
        } ${sizeLabel(p.size)}: p50 ${esc(formatMs(p.p50))}, p90 ${
          esc(formatMs(p.p90))
        }</title></circle>`,
      );
    }
    const ly = m.top + 10 + i * 22;
    out.push(
      `<line x1="${m.left + pw + 16}" x2="${
        m.left + pw + 40
      }" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
      `<circle cx="${m.left + pw + 28}" cy="${ly}" r="4" fill="${color}"/>`,
      `<text x="${m.left + pw + 46}" y="${ly}" dominant-baseline="middle">${esc(s.label)}</text>`,
    );
  });
  out.push(
    `<text x="${m.left + pw + 16}" y="${
      m.top + 20 + series.length * 22
    }" font-size="11" fill="#555">dot: p50; bar: up to p90</text>`,
    "</svg>",
  );
  return out.join("\n") + "\n";
}

/** The whole results.md. */
export function resultsMarkdown(run: BenchRun): string {
  const env = run.environment;
  const parts: string[] = [];
  parts.push(
    "# kproxy benchmark results",
    "",
    `Run ${env.startedAt} on ${env.machine}, commit \`${env.commit}\`, command \`${env.command}\`.`,
    `Load average at start ${env.load.start}, at end ${env.load.end} (the machine is shared: other work skews the numbers).`,
    `Tools: ${Object.entries(env.tools).map(([k, v]) => `${k}: ${v}`).join("; ")}.`,
    `Durations: ${
      Object.entries(env.durations).map(([k, v]) => `${k} ${formatMs(v)}`).join(", ")
    }.`,
    "",
  );
  if (run.e2e.length > 0) {
    parts.push(
      "## End to end: API write → rule live in the kernel",
      "",
      "Real etcd + kube-apiserver on loopback; each proxy in its own network namespace, all watching",
      "the same API server (bridged in through a Unix socket). Full sync: proxy process start until",
      "its ruleset is in the kernel (polled for the last service: nftables, its ClusterIP in the",
      "`cluster-ips` set; iptables, its chain in `nft list chains`; proxies started one after",
      "another). change→live: from the start of the API write until the kernel in that proxy's",
      "namespace committed the change (nf_tables notifications, read raw from netlink",
      "inside the namespace; not the proxy's own report). Changes cycle scale-up (add an endpoint),",
      "add a service (Service + EndpointSlice with 3 endpoints), scale-down, delete a service, 1–2 s",
      "apart. Memory from /proc/PID/status after the series.",
      "",
      headlineTable(run.e2e, run.kernel),
      "",
      "### Targets",
      "",
      ...targetLines(run.e2e, run.kernel),
      "",
      "### By kind of change",
      "",
      perKindTable(run.e2e),
      "",
      "### Creating the clusters (client-node, 32 requests in flight)",
      "",
      table(
        ["services", "objects", "time", "objects/s"],
        run.e2e.map((r) => [
          sizeLabel(r.services),
          formatCount(r.creation.objects),
          formatMs(r.creation.ms),
          r.creation.perSecond.toFixed(0),
        ]),
      ),
      "",
      "![change→live latency against cluster size](chart.svg)",
      "",
    );
  }
  if (run.kernel.length > 0) {
    parts.push(
      "## Kernel: kproxy's appliers in a bench namespace",
      "",
      "First full apply (render + load) into an empty namespace, then single endpoint changes",
      "(reconcile + incremental transaction); live = the kernel's notification of the new endpoint.",
      "Floors, measured in the same namespace: the kernel committing the change's netlink batch",
      "(time inside `sendmsg`), and the `nft` CLI adding one element to a one-set table of its own.",
      "",
      kernelTable(run.kernel),
      "",
    );
  }
  if (run.inProcess.length > 0) {
    parts.push(
      "## In process (no kernel)",
      "",
      "Snapshot build: reconcile of every object from an empty state. One-change reconcile: one",
      "EndpointSlice gains an endpoint (median of 20). Full render: both families. One-endpoint",
      "transaction: what the applier sends for that change (nft commands; iptables-restore input).",
      "",
      inProcessTable(run.inProcess),
      "",
    );
  }
  if (run.memory.length > 0) {
    parts.push(
      "## Memory of a process holding a reconciled cluster",
      "",
      "`bench/rss_holder.ts`: kproxy's manifest source, sync loop and applier (the kernel tool",
      "replaced by `true`), first full sync done; VmHWM/VmRSS from /proc/PID/status.",
      "",
      memoryTable(run.memory),
      "",
    );
  }
  const mix = run.inProcess[run.inProcess.length - 1]?.mix;
  if (mix !== undefined) {
    parts.push(
      "## Cluster mix (largest size)",
      "",
      Object.entries(mix).map(([k, v]) => `${k} ${formatCount(v)}`).join(" · "),
      "",
    );
  }
  return parts.join("\n");
}

/** Markers of the README's benchmark section, which {@link readmeBenchSection} rewrites. */
export const README_MARKERS = Object.freeze({
  begin: "<!-- bench:begin (written by bench/run.ts --e2e; do not edit by hand) -->",
  end: "<!-- bench:end -->",
});

/** The README's benchmark tables for a run (what goes between the markers). */
export function readmeBenchSection(run: BenchRun): string {
  const env = run.environment;
  const parts = [
    `Latest full run: ${env.startedAt.slice(0, 10)}, commit \`${env.commit}\`, ${env.machine};`,
    `load average ${env.load.start} at the start, ${env.load.end} at the end (a shared machine:`,
    "the other work there is every proxy's contention). Raw numbers and the per-kind table:",
    "`bench/results/results.md`.",
    "",
  ];
  if (run.e2e.length > 0) {
    parts.push(
      "### End to end: API write → rule live in the kernel",
      "",
      headlineTable(run.e2e, run.kernel),
      "",
      "![change→live latency against cluster size](bench/results/chart.svg)",
      "",
    );
  }
  parts.push("### Targets", "", ...targetLines(run.e2e, run.kernel), "");
  if (run.kernel.length > 0) parts.push("### Kernel", "", kernelTable(run.kernel), "");
  if (run.inProcess.length > 0) parts.push("### In process", "", inProcessTable(run.inProcess), "");
  if (run.memory.length > 0) {
    parts.push("### Memory of a process holding a cluster", "", memoryTable(run.memory), "");
  }
  return parts.join("\n");
}

/** `readme` with the text between the markers replaced (unchanged when they are missing). */
export function replaceReadmeSection(readme: string, section: string): string {
  const a = readme.indexOf(README_MARKERS.begin);
  const b = readme.indexOf(README_MARKERS.end);
  if (a < 0 || b < a) return readme;
  return readme.slice(0, a + README_MARKERS.begin.length) + "\n\n" + section.trimEnd() + "\n\n" +
    readme.slice(b);
}
