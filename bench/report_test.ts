import assert from "node:assert/strict";
import type { E2ESizeResult, ProxyRun } from "./e2e_bench.ts";
import { chartSeries, headlineTable, latencyChart, targetLines } from "./report.ts";
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

Deno.test("targets are judged against the numbers", () => {
  const lines = targetLines(results);
  assert.match(lines[0]!, /1\/16\.0\) — \*\*met\*\*/);
  assert.match(lines[1]!, /1\/4\.0\) — \*\*not met\*\*/);
  assert.match(lines[2]!, /not met/);
});

Deno.test("the chart is standalone SVG with a point per proxy and size", () => {
  const svg = latencyChart(chartSeries(results), "t <&>");
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.trimEnd().endsWith("</svg>"));
  assert.equal(svg.match(/<circle [^>]*><title>/g)?.length, 2);
  assert.match(svg, /t &lt;&amp;&gt;/);
  assert.match(latencyChart([], "empty"), /no data/);
});
