import assert from "node:assert/strict";
import type { E2ESizeResult, ProxyRun } from "./e2e_bench.ts";
import type { KernelResult } from "./kernel_bench.ts";
import {
  chartSeries,
  headlineTable,
  kernelTable,
  latencyChart,
  README_MARKERS,
  replaceReadmeSection,
  targetLines,
} from "./report.ts";
import { summarize } from "./stats.ts";

function run(
  label: string,
  impl: "kproxy" | "kube-proxy",
  p50: number,
  full: number,
  hwm: number,
): ProxyRun {
  return {
    spec: { impl, mode: "nftables", label },
    services: 10000,
    endpointsPerService: 10,
    fullSyncMs: full,
    note: null,
    latency: summarize([p50, p50, p50 * 2]),
    transactionMessages: 40,
    hwm,
    rss: hwm,
    cpuSeconds: 1,
    logPath: null,
  };
}

const results: E2ESizeResult[] = [{
  services: 10000,
  endpointsPerService: 10,
  creation: { objects: 20000, ms: 60000, perSecond: 333, concurrency: 32 },
  proxies: [
    run("kproxy nftables", "kproxy", 50, 10_000, 500e6),
    run("kube-proxy nftables", "kube-proxy", 800, 40_000, 300e6),
  ],
  changes: {},
}];

Deno.test("the headline table has one row per proxy", () => {
  const text = headlineTable(results);
  assert.equal(text.split("\n").length, 4);
  assert.match(text, /\| kproxy \| nftables \| 10k × 10 \| 10.00 s \| 50.0 ms \|/);
});

Deno.test("targets are judged against the numbers, floors beside them", () => {
  const kernel: KernelResult[] = [{
    backend: "nftables",
    services: 10000,
    endpoints: 10,
    skipped: null,
    fullApplyMs: 4000,
    fullLines: 1,
    changes: [],
    changeLiveMs: 3,
    changeLines: 4,
    observedBy: "",
    serviceChanges: [{ kind: "add", liveMs: 25, linesSent: 9 }],
    floors: { nftCliMs: 90, netlinkBatchMs: 0.4 },
  }];
  const lines = targetLines(results, kernel).join("\n");
  assert.match(
    lines,
    /≤ 5 ms at 10k \(kernel bench\): 3\.0 ms \(kernel floor 0\.40 ms, nft CLI floor 90\.0 ms\) — \*\*met\*\*/,
  );
  assert.match(lines, /≤ 5 ms at 100k .* — not measured/);
  assert.match(lines, /add a whole service → live ≤ 20 ms at 10k: 25\.0 ms — \*\*not met\*\*/);
  assert.match(lines, /first full sync at 10k ≤ 5 s \(kernel bench\): 4\.00 s — \*\*met\*\*/);
  assert.match(lines, /p50 50\.0 ms \(≤ 50 ms: \*\*met\*\*\)/);
  assert.match(lines, /RSS peak ≤ kube-proxy's at 10k .*\*\*not met\*\*/);
  assert.match(headlineTable(results, kernel), /\| 0\.40 ms \| 90\.0 ms \|/);
});

Deno.test("the README section is replaced between its markers only", () => {
  const readme = `a\n${README_MARKERS.begin}\nold\n${README_MARKERS.end}\nb\n`;
  const next = replaceReadmeSection(readme, "new table");
  assert.equal(next, `a\n${README_MARKERS.begin}\n\nnew table\n\n${README_MARKERS.end}\nb\n`);
  assert.equal(replaceReadmeSection("no markers", "x"), "no markers");
});

Deno.test("the chart is standalone SVG with a point per proxy and size", () => {
  const svg = latencyChart(chartSeries(results), "t <&>");
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.trimEnd().endsWith("</svg>"));
  assert.equal(svg.match(/<circle [^>]*><title>/g)?.length, 2);
  assert.match(svg, /t &lt;&amp;&gt;/);
  assert.match(latencyChart([], "empty"), /no data/);
});

Deno.test("kernel rows show the median CPU per change beside the live time", () => {
  const change = (cpuMs: number) => ({
    applyMs: 9,
    liveMs: 8,
    linesSent: 20,
    cpuMs,
    transactionMessages: 20,
  });
  const text = kernelTable([{
    backend: "nftables",
    services: 10000,
    endpoints: 10,
    skipped: null,
    fullApplyMs: 4000,
    fullLines: 1,
    changes: [change(3), change(1), change(2)],
    changeLiveMs: 8,
    changeLines: 20,
    observedBy: "",
    floors: { nftCliMs: 90, netlinkBatchMs: 0.4 },
  }]);
  const [head, , row] = text.split("\n");
  const cells = (line: string | undefined) => (line ?? "").split("|").map((c) => c.trim());
  const at = cells(head).indexOf("CPU per change (median)");
  assert.ok(at > 0);
  assert.equal(cells(row)[at], "2.0 ms");
  assert.equal(cells(row).length, cells(head).length);
});
