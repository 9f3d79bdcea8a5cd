/** The fleet report renders what was measured, and says which targets were met. */
import assert from "node:assert/strict";
import { emptyTally } from "./audit.ts";
import type { FleetPhaseResult, NodeFigures } from "./fleet_bench.ts";
import {
  cpuAboveIdle,
  fleetChart,
  fleetMarkdown,
  type FleetRun,
  requestCostTable,
  targetLines,
} from "./report.ts";

function node(name: string, down: number): NodeFigures {
  return {
    name,
    syncMs: 1000,
    initialTraffic: { down, up: 1000, connections: 4, open: 3 },
    initialRequests: {
      ...emptyTally(),
      requests: 6,
      byVerb: { list: 3, watch: 3 },
      openWatches: 3,
    },
    openWatches: 3,
    openConnections: 3,
    rss: 100 * 1024 * 1024,
    hwm: 120 * 1024 * 1024,
    bytesPerChange: 2048,
    requestsPerChange: 0,
  };
}

function phase(impl: "kproxy" | "kube-proxy", down: number, cpu: number): FleetPhaseResult {
  const window = { cpuSeconds: cpu, peakCores: 1.5, peakRss: 300 * 1024 * 1024, seconds: 10 };
  return {
    impl,
    nodes: 2,
    synced: 2,
    note: null,
    allSyncedMs: 1000,
    perNode: [node("node-a", down), node("node-001", down)],
    startApiServer: window,
    changesApiServer: window,
    changeWrites: 7,
    storms: [{
      kind: "restart",
      outageMs: 5000,
      caughtUpMs: [800, 1200],
      allCaughtUpMs: 1200,
      requests: 12,
      byVerb: { list: 4, watch: 8 },
      gone: 0,
      failed: 0,
      bytesDown: 600_000,
      connections: 8,
      apiServerBoot: window,
      apiServer: window,
      probes: { sent: 100, failed: 0 },
      probeFailures: [],
    }],
  };
}

const RUN: FleetRun = {
  startedAt: "2026-12-05T00:00:00Z",
  loadBefore: "1 1 1",
  loadAfter: "2 2 2",
  commit: "abc1234",
  sizes: [{
    services: 1000,
    load: "2 2 2",
    phases: [phase("kproxy", 300_000, 1), phase("kube-proxy", 250_000, 0.5)],
  }],
  drains: [],
};

Deno.test("fleet report: targets compare kproxy with upstream in the same run", () => {
  const lines = targetLines(RUN.sizes);
  assert.match(
    lines[0] ?? "",
    /1k: initial sync bytes per node, kproxy 293\.0 KiB vs kube-proxy 244\.1 KiB \(1\.20×/,
  );
  assert.match(lines[1] ?? "", /API server CPU .* kproxy 0\.50 s vs kube-proxy 0\.25 s \(2\.00×/);
  assert.match(
    lines[2] ?? "",
    /restart: every kproxy node caught up after 1\.20 s .* 0 failed probes of 100/,
  );
});

Deno.test("fleet report: every table has a row per phase, the chart a bar per phase", () => {
  const md = fleetMarkdown(RUN);
  assert.equal(md.split("\n").filter((l) => l.startsWith("| kproxy | 1k | 2 |")).length, 3);
  assert.equal(md.split("\n").filter((l) => l.startsWith("| kube-proxy | 1k | 2 |")).length, 3);
  const svg = fleetChart(RUN.sizes);
  assert.equal((svg.match(/<rect x=/g) ?? []).length, 6, "3 panels × 2 implementations");
  assert.match(svg, /^<svg/);
});

Deno.test("fleet report: request costs add up Services and EndpointSlices per way", () => {
  const table = requestCostTable([{
    services: 10000,
    load: "1 1 1",
    phases: [],
    requestCosts: [
      { kind: "Service", how: "JSON list, gzip (kproxy)", bytes: 814_626, cpuSeconds: 0.29 },
      {
        kind: "EndpointSlice",
        how: "JSON list, gzip (kproxy)",
        bytes: 2_003_855,
        cpuSeconds: 0.52,
      },
    ],
  }]);
  assert.match(
    table,
    /\| 10k \| JSON list, gzip \(kproxy\) \| 795\.5 KiB · 0\.290 s \| 1\.91 MiB · 0\.520 s \| 2\.69 MiB · 0\.810 s \|/,
  );
});

Deno.test("fleet report: a fleet's start CPU is counted above the API server's idle rate", () => {
  const window = (cpuSeconds: number, seconds: number) => ({
    cpuSeconds,
    peakCores: 1,
    peakRss: 0,
    seconds,
  });
  // 0.05 cores idle: a 100 s start that used 20 s cost 15 s above idle; a 20 s one using 6 s, 5 s.
  const idle = window(1, 20);
  assert.equal(cpuAboveIdle(window(20, 100), idle), 15);
  assert.equal(cpuAboveIdle(window(6, 20), idle), 5);
  assert.equal(cpuAboveIdle(window(6, 20), null), 6, "no idle measured: the raw figure");
  const slow = { ...phase("kproxy", 300_000, 1), startApiServer: window(20, 100) };
  const fast = { ...phase("kube-proxy", 250_000, 1), startApiServer: window(6, 20) };
  const lines = targetLines([{ services: 1000, load: "1", idle, phases: [slow, fast] }]);
  assert.match(
    lines[1] ?? "",
    /above idle\), per node: kproxy 7\.50 s vs kube-proxy 2\.50 s \(3\.00×.*raw 10\.00 s over 100 s vs 3\.00 s over 20 s, idle 0\.050 cores/,
  );
});
