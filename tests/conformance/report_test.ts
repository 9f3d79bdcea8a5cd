/**
 * The report: a divergence names its seed, round, packet and both outcomes; the results file
 * keeps one section per backend.
 *
 * IP plan: tests/netns/two_node_plan.ts.
 */
import assert from "node:assert/strict";
import { lbService } from "./_fixtures.ts";
import type { Divergence } from "./comparator.ts";
import { buildMatrix } from "./matrix.ts";
import {
  formatDivergence,
  mergeResults,
  RESULTS_HEADER,
  resultsSection,
  type RoundResult,
  type RunContext,
} from "./report.ts";

const CLUSTER = { services: [lbService()] };
const CELL = buildMatrix(CLUSTER).cells.find((c) => c.kind === "NodePort primary")!;
const DIVERGENCE: Divergence = {
  subject: "cell",
  cell: CELL,
  kinds: ["reachability"],
  deliberate: null,
  kproxy: {
    answers: ["a1:8080"],
    clientIPs: ["198.19.0.2"],
    refused: [],
    timeouts: 0,
    total: 9,
  },
  upstream: { answers: [], clientIPs: [], refused: [], timeouts: 9, total: 9 },
};
const ROUND: RoundResult = {
  round: 1,
  changes: ["web: externalTrafficPolicy Local"],
  cluster: CLUSTER,
  cells: 40,
  health: 5,
  notProbed: 0,
  rechecked: 1,
  divergences: [DIVERGENCE],
};
const CONTEXT: RunContext = {
  date: "2026-12-05",
  commit: "abc1234",
  machine: "Linux 6.18, 2 CPUs, 23.5 GiB",
  load: "1.0 → 2.0",
  command: "deno task conformance --seeds 1",
};

Deno.test("report: a divergence says seed, round, change, packet, both outcomes and objects", () => {
  const text = formatDivergence(9, ROUND, DIVERGENCE);
  assert.match(text, /^divergence seed 9 round 1 \[reachability\] UNEXPLAINED$/m);
  assert.match(text, /after: web: externalTrafficPolicy Local/);
  assert.match(text, /packet: TCP 198\.19\.0\.1:30080 \(NodePort primary of web port http\) from/);
  assert.match(text, /kproxy: {5}answered by a1:8080 \(saw 198\.19\.0\.2\)/);
  assert.match(text, /kube-proxy: dropped 9\/9/);
  assert.match(text, /"kind":"Service".*"name":"web"/);
  assert.match(text, /"kind":"EndpointSlice".*"name":"web-0"/);
});

Deno.test("report: results file has one section per backend, replaced on rerun", () => {
  const run = { mode: "nftables", seeds: [{ seed: 9, rounds: [ROUND], error: null }], seconds: 12 };
  const section = resultsSection(run, CONTEXT);
  assert.match(section, /^## nftables$/m);
  assert.match(section, /\*\*40 packet cells\*\* and 5 health answers/);
  assert.match(section, /\*\*unexplained divergences: 1\*\*/);
  assert.match(section, /\| reachability \| 1 \|/);
  const once = mergeResults("", section);
  assert.ok(once.startsWith(RESULTS_HEADER.trimEnd()));
  const iptables = resultsSection({ ...run, mode: "iptables" }, CONTEXT);
  const both = mergeResults(once, iptables);
  assert.match(both, /## nftables[\s\S]*## iptables/);
  const clean = resultsSection({ ...run, seeds: [{ ...run.seeds[0]!, rounds: [] }] }, CONTEXT);
  const rerun = mergeResults(both, clean);
  assert.equal(rerun.match(/^## nftables$/gm)?.length, 1);
  assert.match(rerun, /## nftables[\s\S]*unexplained divergences: 0[\s\S]*## iptables/);
  assert.doesNotMatch(section, /asked for/);
  const budget = resultsSection({ ...run, asked: 200 }, CONTEXT);
  assert.match(budget, /seeds: 9 \(1 seeds, .*; 200 asked for, the time budget ran out after 1/);
});
