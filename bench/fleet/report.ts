/**
 * The fleet benchmark's report (pure, but for {@link writeFleetResults}): Markdown tables and an
 * SVG bar chart from the measured phases.
 *
 * @module
 */
import { formatMs } from "../stats.ts";
import type { DrainResult } from "./drain_phase.ts";
import type { ProcessWindow } from "./process_sampler.ts";
import type { RequestCost } from "./request_costs.ts";
import { type FleetPhaseResult, formatBytes, perNodeSummary } from "./fleet_bench.ts";

/** One cluster size's phases. */
export interface FleetSizeResult {
  /** Services in the cluster. */
  readonly services: number;
  /** `uptime` load average when the size started. */
  readonly load: string;
  /** Bytes and API server CPU of each way of fetching the collections. */
  readonly requestCosts?: readonly RequestCost[] | null;
  /** The API server restarted with no fleet connected (what a storm is compared with). */
  readonly baseline?: ProcessWindow | null;
  /** The API server with no fleet connected, before the fleets: its idle CPU rate. */
  readonly idle?: ProcessWindow | null;
  /** One per implementation. */
  readonly phases: readonly FleetPhaseResult[];
}

/** A whole run. */
export interface FleetRun {
  /** When it started (ISO). */
  readonly startedAt: string;
  /** Load average before. */
  readonly loadBefore: string;
  /** Load average after the last size. */
  loadAfter: string;
  /** kproxy's commit. */
  readonly commit: string;
  /** Each size. */
  readonly sizes: FleetSizeResult[];
  /** The drain scenario, per implementation. */
  readonly drains: DrainResult[];
}

/**
 * The API server's CPU over `window` above what it burns idle (its own loops: leases, bookmarks,
 * compaction), so a fleet that takes longer to start is not charged for the clock; the raw
 * figure when no idle rate was measured.
 */
export function cpuAboveIdle(
  window: ProcessWindow,
  idle: ProcessWindow | null | undefined,
): number {
  if (idle === null || idle === undefined || idle.seconds <= 0) return window.cpuSeconds;
  return Math.max(0, window.cpuSeconds - (idle.cpuSeconds / idle.seconds) * window.seconds);
}

function sizeLabel(n: number): string {
  return n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : String(n);
}

function seconds(s: number | null | undefined, digits = 1): string {
  return s === null || s === undefined || !Number.isFinite(s) ? "—" : `${s.toFixed(digits)} s`;
}

function count(n: number | null | undefined, digits = 0): string {
  return n === null || n === undefined || !Number.isFinite(n) ? "—" : n.toFixed(digits);
}

/** Each way of fetching Services and EndpointSlices: bytes and API server CPU per request. */
export function requestCostTable(sizes: readonly FleetSizeResult[]): string {
  const rows = [
    "| services | how | Services: bytes · API server CPU | EndpointSlices: bytes · API server CPU | both: bytes · CPU |",
    "| -------- | --- | -------------------------------- | -------------------------------------- | ----------------- |",
  ];
  for (const size of sizes) {
    const costs = size.requestCosts ?? [];
    const ways = [...new Set(costs.map((c) => c.how))];
    for (const how of ways) {
      const svc = costs.find((c) => c.how === how && c.kind === "Service");
      const eps = costs.find((c) => c.how === how && c.kind === "EndpointSlice");
      if (svc === undefined || eps === undefined) continue;
      rows.push(
        `| ${sizeLabel(size.services)} | ${how} | ${formatBytes(svc.bytes)} · ${
          seconds(svc.cpuSeconds, 3)
        } | ${formatBytes(eps.bytes)} · ${seconds(eps.cpuSeconds, 3)} | ${
          formatBytes(svc.bytes + eps.bytes)
        } · ${seconds(svc.cpuSeconds + eps.cpuSeconds, 3)} |`,
      );
    }
  }
  return rows.join("\n");
}

/** The per-node start figures: one row per implementation and size. */
export function startTable(sizes: readonly FleetSizeResult[]): string {
  const rows = [
    "| proxy | services | nodes | synced | last node synced | bytes received per node (p50 · max) | bytes sent | requests per node | watches open | connections open | RSS per node (p50) | API server CPU (above idle) | API server peak RSS |",
    "| ----- | -------- | ----- | ------ | ---------------- | ----------------------------------- | ---------- | ----------------- | ------------ | ---------------- | ------------------ | --------------------------- | ------------------- |",
  ];
  for (const size of sizes) {
    for (const p of size.phases) {
      const down = perNodeSummary(p.perNode.map((n) => n.initialTraffic.down));
      const up = perNodeSummary(p.perNode.map((n) => n.initialTraffic.up));
      const req = perNodeSummary(p.perNode.map((n) => n.initialRequests.requests));
      const watches = perNodeSummary(p.perNode.map((n) => n.openWatches));
      const conns = perNodeSummary(p.perNode.map((n) => n.openConnections));
      const rss = perNodeSummary(p.perNode.map((n) => n.rss));
      rows.push(
        `| ${p.impl} | ${sizeLabel(size.services)} | ${p.nodes} | ${p.synced} | ${
          formatMs(p.allSyncedMs)
        } | ${formatBytes(down.p50)} · ${formatBytes(down.max)} | ${formatBytes(up.p50)} | ${
          count(req.p50)
        } | ${count(watches.p50)} | ${count(conns.p50)} | ${formatBytes(rss.p50)} | ${
          seconds(p.startApiServer.cpuSeconds)
        } (${seconds(cpuAboveIdle(p.startApiServer, size.idle))}) | ${
          formatBytes(p.startApiServer.peakRss)
        } |`,
      );
    }
  }
  return rows.join("\n");
}

/** What a single change costs each node and the API server. */
export function changeTable(sizes: readonly FleetSizeResult[]): string {
  const rows = [
    "| proxy | services | nodes | writes | bytes received per node per change (p50) | requests per node per change | API server CPU per change | API server peak RSS |",
    "| ----- | -------- | ----- | ------ | ----------------------------------------- | ---------------------------- | ------------------------- | ------------------- |",
  ];
  for (const size of sizes) {
    for (const p of size.phases) {
      if (p.changesApiServer === null) continue;
      const bytes = perNodeSummary(p.perNode.map((n) => n.bytesPerChange));
      const req = perNodeSummary(p.perNode.map((n) => n.requestsPerChange));
      rows.push(
        `| ${p.impl} | ${sizeLabel(size.services)} | ${p.nodes} | ${p.changeWrites} | ${
          formatBytes(bytes.p50)
        } | ${count(req.p50, 2)} | ${
          seconds(p.changesApiServer.cpuSeconds / p.changeWrites, 3)
        } | ${formatBytes(p.changesApiServer.peakRss)} |`,
      );
    }
  }
  return rows.join("\n");
}

/** The reconnect storms. */
export function stormTable(sizes: readonly FleetSizeResult[]): string {
  const rows = [
    "| proxy | services | nodes | storm | API server away | every node caught up after | requests (fleet) | lists · watches · 410 · 429/5xx | bytes received (fleet) | connections | API server CPU (stop → all caught up) | peak CPU | failed probes |",
    "| ----- | -------- | ----- | ----- | --------------- | -------------------------- | ---------------- | ------------------------------- | ---------------------- | ----------- | ------------------------------------ | -------- | ------------- |",
  ];
  for (const size of sizes) {
    for (const p of size.phases) {
      for (const s of p.storms) {
        rows.push(
          `| ${p.impl} | ${sizeLabel(size.services)} | ${p.nodes} | ${
            s.kind === "restart" ? "API server restart" : "etcd compaction + API server crash"
          } | ${formatMs(s.outageMs)} | ${
            s.allCaughtUpMs === null
              ? `${s.caughtUpMs.filter((c) => c === null).length} nodes never`
              : formatMs(s.allCaughtUpMs)
          } | ${s.requests} | ${s.byVerb["list"] ?? 0} · ${
            s.byVerb["watch"] ?? 0
          } · ${s.gone} · ${s.failed} | ${formatBytes(s.bytesDown)} | ${s.connections} | ${
            seconds(s.apiServerBoot.cpuSeconds + s.apiServer.cpuSeconds)
          } | ${
            count(Math.max(s.apiServerBoot.peakCores, s.apiServer.peakCores), 2)
          } cores | ${s.probes.failed} / ${s.probes.sent} |`,
        );
      }
    }
  }
  for (const size of sizes) {
    if (size.baseline === undefined || size.baseline === null) continue;
    rows.push(
      "",
      `${sizeLabel(size.services)}: the API server alone (restarted with no fleet connected) uses ${
        seconds(size.baseline.cpuSeconds)
      } from the stop until 3 s after it is ready (peak ${
        count(size.baseline.peakCores, 2)
      } cores).`,
    );
  }
  return rows.join("\n");
}

/** The drain: connections per pool, failures, and how fast the balancer's view followed. */
export function drainTable(drains: readonly DrainResult[]): string {
  const rows = [
    "| proxy | nodes | connections (Local · Cluster service) | failed | balancer view after: taint (Cluster) · pod terminating (Local) · new pod ready (Local) |",
    "| ----- | ----- | ------------------------------------- | ------ | ------------------------------------------------------------------------------------ |",
  ];
  for (const d of drains) {
    if (d.report === null) {
      rows.push(`| ${d.impl} | ${d.nodes} | did not complete: ${d.error ?? "?"} | | |`);
      continue;
    }
    const r = d.report;
    const sent = (pool: string) => r.pools[pool]?.sent ?? 0;
    rows.push(
      `| ${d.impl} | ${d.nodes} | ${sent("local")} · ${sent("cluster")} | ${r.failures.length} | ${
        r.lags.map((l) => (l.ms === null ? "never" : formatMs(l.ms))).join(" · ")
      } |`,
    );
  }
  return rows.join("\n");
}

/** Lines comparing kproxy with upstream against the issue's targets. */
export function targetLines(sizes: readonly FleetSizeResult[]): string[] {
  const out: string[] = [];
  for (const size of sizes) {
    const k = size.phases.find((p) => p.impl === "kproxy");
    const u = size.phases.find((p) => p.impl === "kube-proxy");
    if (k === undefined) continue;
    const label = sizeLabel(size.services);
    if (u !== undefined) {
      const kb = perNodeSummary(k.perNode.map((n) => n.initialTraffic.down)).p50;
      const ub = perNodeSummary(u.perNode.map((n) => n.initialTraffic.down)).p50;
      out.push(
        `- ${label}: initial sync bytes per node, kproxy ${formatBytes(kb)} vs kube-proxy ${
          formatBytes(ub)
        } (${(kb / ub).toFixed(2)}×; target ≤ 1×)`,
      );
      const kc = cpuAboveIdle(k.startApiServer, size.idle) / k.nodes;
      const uc = cpuAboveIdle(u.startApiServer, size.idle) / u.nodes;
      out.push(
        `- ${label}: API server CPU for the fleet start (above idle), per node: kproxy ${
          seconds(kc, 2)
        } vs kube-proxy ${seconds(uc, 2)} (${(kc / uc).toFixed(2)}×; target ≤ 1×)` +
          (k.nodes === u.nodes ? "" : ` — fleets of ${k.nodes} and ${u.nodes} nodes`) +
          (size.idle === null || size.idle === undefined
            ? ""
            : `; raw ${seconds(k.startApiServer.cpuSeconds / k.nodes, 2)} over ${
              seconds(k.startApiServer.seconds, 0)
            } vs ${seconds(u.startApiServer.cpuSeconds / u.nodes, 2)} over ${
              seconds(u.startApiServer.seconds, 0)
            }, idle ${count(size.idle.cpuSeconds / size.idle.seconds, 3)} cores`),
      );
    }
    for (const s of k.storms) {
      out.push(
        `- ${label}, ${k.nodes} nodes, ${s.kind}: every kproxy node caught up ${
          s.allCaughtUpMs === null ? "never" : `after ${formatMs(s.allCaughtUpMs)}`
        } (target ≤ 30 s), ${s.probes.failed} failed probes of ${s.probes.sent} (target 0)`,
      );
    }
  }
  return out;
}

function esc(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** One bar group of the chart. */
interface BarGroup {
  readonly label: string;
  readonly bars: readonly { readonly impl: string; readonly value: number }[];
}

function barPanel(
  out: string[],
  box: { x: number; y: number; w: number; h: number },
  title: string,
  groups: readonly BarGroup[],
  format: (v: number) => string,
): void {
  const colors: Record<string, string> = { kproxy: "#1f77b4", "kube-proxy": "#d62728" };
  out.push(
    `<text x="${box.x + box.w / 2}" y="${box.y - 10}" text-anchor="middle" font-weight="bold">${
      esc(title)
    }</text>`,
    `<line x1="${box.x}" x2="${box.x + box.w}" y1="${box.y + box.h}" y2="${
      box.y + box.h
    }" stroke="#333"/>`,
  );
  const max = Math.max(1e-9, ...groups.flatMap((g) => g.bars.map((b) => b.value)));
  const gw = box.w / Math.max(1, groups.length);
  groups.forEach((g, gi) => {
    const bw = (gw * 0.7) / Math.max(1, g.bars.length);
    g.bars.forEach((b, bi) => {
      const h = (b.value / max) * (box.h - 20);
      const x = box.x + gi * gw + gw * 0.15 + bi * bw;
      out.push(
        `<rect x="${x.toFixed(1)}" y="${(box.y + box.h - h).toFixed(1)}" width="${
          (bw - 4).toFixed(1)
        }" height="${h.toFixed(1)}" fill="${colors[b.impl] ?? "#777"}"/>`,
        `<text x="${(x + (bw - 4) / 2).toFixed(1)}" y="${
          (box.y + box.h - h - 4).toFixed(1)
        }" text-anchor="middle" font-size="10">${esc(format(b.value))}</text>`,
      );
    });
    out.push(
      `<text x="${(box.x + gi * gw + gw / 2).toFixed(1)}" y="${
        box.y + box.h + 16
      }" text-anchor="middle">${esc(g.label)}</text>`,
    );
  });
}

/**
 * The chart: per-node bytes for the initial sync, API server CPU per node for the fleet start,
 * and the time until every node caught up after an API server restart — kproxy and upstream
 * side by side at each size.
 */
export function fleetChart(sizes: readonly FleetSizeResult[]): string {
  const W = 900;
  const H = 330;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${
      W / 2
    }" y="22" text-anchor="middle" font-size="15" font-weight="bold">A fleet of proxies on one API server (kproxy blue, kube-proxy red)</text>`,
  ];
  const label = (s: FleetSizeResult, p: FleetPhaseResult) =>
    `${sizeLabel(s.services)} × ${p.nodes}`;
  const groups = (value: (p: FleetPhaseResult) => number | null): BarGroup[] =>
    sizes.map((s) => ({
      label: s.phases.map((p) => label(s, p)).filter((v, i, a) => a.indexOf(v) === i).join(" / "),
      bars: s.phases.map((p) => ({ impl: p.impl, value: value(p) ?? 0 })),
    }));
  const box = (i: number) => ({ x: 40 + i * 290, y: 70, w: 250, h: 200 });
  barPanel(
    out,
    box(0),
    "bytes per node, initial sync",
    groups((p) => perNodeSummary(p.perNode.map((n) => n.initialTraffic.down)).p50),
    formatBytes,
  );
  barPanel(
    out,
    box(1),
    "API server CPU per node, fleet start",
    sizes.map((s) => ({
      label: [...new Set(s.phases.map((p) => `${sizeLabel(s.services)} × ${p.nodes}`))].join(" / "),
      bars: s.phases.map((p) => ({
        impl: p.impl,
        value: cpuAboveIdle(p.startApiServer, s.idle) / Math.max(1, p.nodes),
      })),
    })),
    (v) => `${v.toFixed(2)} s`,
  );
  barPanel(
    out,
    box(2),
    "restart: until every node caught up",
    groups((p) => p.storms.find((s) => s.kind === "restart")?.allCaughtUpMs ?? null),
    (v) => formatMs(v),
  );
  out.push(
    `<text x="${W / 2}" y="${H - 12}" text-anchor="middle">services × nodes</text>`,
    "</svg>",
  );
  return out.join("\n") + "\n";
}

/** The whole Markdown report. */
export function fleetMarkdown(run: FleetRun): string {
  return [
    "# Fleet benchmark",
    "",
    `Run ${run.startedAt} at kproxy commit ${run.commit}; machine load (1/5/15 min) before ${run.loadBefore}, after ${run.loadAfter}.`,
    "Every proxy runs nftables mode in its own network namespace; bytes are counted on each node's",
    "bridge to the API server (TLS records: upstream's protobuf over HTTP/2 and kproxy's JSON over HTTP/2",
    "alike), requests in the API server's audit log (one user per node).",
    "",
    "## Targets",
    "",
    ...targetLines(run.sizes),
    ...run.drains.map((d) =>
      `- drain, ${d.impl}, ${d.nodes} nodes: ${
        d.report === null
          ? `did not complete (${d.error})`
          : `${d.report.failures.length} failed connections`
      } (target 0)`
    ),
    "",
    "## What the API server pays for one initial sync, by request",
    "",
    "Each way of fetching the Services and EndpointSlices (kube-proxy's label selector), measured",
    "with curl against the same API server before the fleets start; watch-lists are never",
    "compressed, and the API server encodes them per watcher.",
    "",
    requestCostTable(run.sizes),
    "",
    "## Fleet start",
    "",
    startTable(run.sizes),
    "",
    "## Changes",
    "",
    changeTable(run.sizes),
    "",
    "## Reconnect storms",
    "",
    stormTable(run.sizes),
    "",
    "## Drain",
    "",
    "A userspace load balancer in the client namespace checks every node every second (the Local",
    "service's healthCheckNodePort, /healthz on 10256 for the Cluster one) and sends 40 connections",
    "a second through each service; node 0 is tainted ToBeDeletedByClusterAutoscaler, its Node",
    "deleted, its pod replaced on the last node, and then it is switched off.",
    "",
    drainTable(run.drains),
    "",
    "![fleet chart](chart.svg)",
    "",
  ].join("\n");
}

/** Writes `results.json`, `results.md` and `chart.svg` into `dir`. */
export async function writeFleetResults(dir: string, run: FleetRun): Promise<void> {
  await Deno.writeTextFile(`${dir}/results.json`, JSON.stringify(run, null, 2) + "\n");
  await Deno.writeTextFile(`${dir}/results.md`, fleetMarkdown(run));
  await Deno.writeTextFile(`${dir}/chart.svg`, fleetChart(run.sizes));
}
