/**
 * Words for people: one divergence as a block (seed, round, objects, packet, both outcomes) and
 * the results file (`conformance/results.md`), one section per backend. Pure.
 *
 * @module
 */
import { type ClusterModel, serviceObject, serviceStatus, sliceObject } from "./cluster_model.ts";
import { type Divergence, DIVERGENCE_KINDS, type DivergenceKind } from "./comparator.ts";
import { DELIBERATE_DIFFERENCES } from "./deliberate.ts";
import { formatOutcome } from "./outcome.ts";

/** One round of one seed, as run. */
export interface RoundResult {
  /** 0 for the initial cluster, then one per change round. */
  readonly round: number;
  /** What changed before this round. */
  readonly changes: readonly string[];
  /** The cluster of this round. */
  readonly cluster: ClusterModel;
  /** Packet cells compared. */
  readonly cells: number;
  /** Health answers compared. */
  readonly health: number;
  /** Cells the lab could not probe (SCTP without kernel SCTP sockets). */
  readonly notProbed: number;
  /** Cells compared again after a first-pass difference. */
  readonly rechecked: number;
  /** What still differed after the recheck. */
  readonly divergences: readonly Divergence[];
}

/** One seed, as run. */
export interface SeedResult {
  /** The seed. */
  readonly seed: number;
  /** Its rounds. */
  readonly rounds: readonly RoundResult[];
  /** Why the seed stopped early (an API refusal names a generator bug), or null. */
  readonly error: string | null;
}

/** A whole run of one backend. */
export interface RunResult {
  /** `nftables` or `iptables`. */
  readonly mode: string;
  /** Every seed, in order. */
  readonly seeds: readonly SeedResult[];
  /** Seeds asked for, when a time budget left some of them unrun. */
  readonly asked?: number;
  /** Wall time in seconds. */
  readonly seconds: number;
}

/** Where and on what the run happened. */
export interface RunContext {
  /** ISO date. */
  readonly date: string;
  /** Commit of the checkout. */
  readonly commit: string;
  /** Machine description (kernel, CPUs, memory). */
  readonly machine: string;
  /** `uptime` load averages at the start and the end. */
  readonly load: string;
  /** The command that produced the run. */
  readonly command: string;
}

function objectsOf(cluster: ClusterModel, service: string, seed: number): string[] {
  const svc = cluster.services.find((s) => s.name === service);
  if (svc === undefined) return [`(service ${service} not in this round)`];
  const status = serviceStatus(svc);
  return [
    JSON.stringify({ ...serviceObject(svc, seed), ...(status === null ? {} : { status }) }),
    ...svc.slices.map((s) => JSON.stringify(sliceObject(svc, s, seed))),
  ];
}

/** One divergence as a block of lines: seed, round, packet, outcomes, the objects involved. */
export function formatDivergence(
  seed: number,
  round: RoundResult,
  d: Divergence,
  options: { readonly objects?: boolean } = {},
): string {
  const verdict = d.deliberate === null
    ? "UNEXPLAINED"
    : d.deliberate.pending
    ? `pending fix: ${d.deliberate.id} (${d.deliberate.readmeRow})`
    : `deliberate: ${d.deliberate.id} (README: ${d.deliberate.readmeRow})`;
  const lines = [
    `divergence seed ${seed} round ${round.round} [${d.kinds.join(", ")}] ${verdict}`,
  ];
  if (round.changes.length > 0) lines.push(`  after: ${round.changes.join("; ")}`);
  let service: string | null;
  if (d.subject === "cell") {
    const c = d.cell;
    lines.push(
      `  packet: ${c.protocol} ${c.ip.includes(":") ? `[${c.ip}]` : c.ip}:${c.port} ` +
        `(${
          c.service === "" ? c.kind : `${c.kind} of ${c.service} port ${c.portName || "(unnamed)"}`
        }) from ${c.source}` +
        `${c.affinity ? ", ClientIP affinity" : ""}`,
      `  kproxy:     ${formatOutcome(d.kproxy)}`,
      `  kube-proxy: ${formatOutcome(d.upstream)}`,
    );
    service = c.service === "" ? null : c.service;
  } else {
    const h = d.check;
    lines.push(
      `  health: GET http://${h.ip.includes(":") ? `[${h.ip}]` : h.ip}:${h.port}${h.path} ` +
        `from ${h.source}${h.service === null ? "" : ` (${h.service})`}`,
      `  kproxy:     ${d.kproxy.status} ${d.kproxy.body}`,
      `  kube-proxy: ${d.upstream.status} ${d.upstream.body}`,
    );
    service = h.service;
  }
  if (service !== null && (options.objects ?? true)) {
    lines.push("  objects:", ...objectsOf(round.cluster, service, seed).map((o) => `    ${o}`));
  }
  return lines.join("\n");
}

/** Counts of a run. */
export interface RunTotals {
  /** Seeds run (including failed ones). */
  readonly seeds: number;
  /** Seeds stopped by an error. */
  readonly failedSeeds: number;
  /** Rounds run. */
  readonly rounds: number;
  /** Packet cells compared. */
  readonly cells: number;
  /** Health answers compared. */
  readonly health: number;
  /** Cells not probed. */
  readonly notProbed: number;
  /** Cells rechecked. */
  readonly rechecked: number;
  /** Unexplained divergences by kind (a divergence counts under its first kind). */
  readonly unexplained: Readonly<Record<DivergenceKind, number>>;
  /** Deliberate divergences by difference id. */
  readonly deliberate: Readonly<Record<string, number>>;
}

/** Adds up a run. */
export function runTotals(run: RunResult): RunTotals {
  const unexplained = Object.fromEntries(DIVERGENCE_KINDS.map((k) => [k, 0])) as Record<
    DivergenceKind,
    number
  >;
  const deliberate: Record<string, number> = {};
  let rounds = 0, cells = 0, health = 0, notProbed = 0, rechecked = 0;
  for (const seed of run.seeds) {
    for (const r of seed.rounds) {
      rounds++;
      cells += r.cells;
      health += r.health;
      notProbed += r.notProbed;
      rechecked += r.rechecked;
      for (const d of r.divergences) {
        if (d.deliberate === null) unexplained[d.kinds[0]!]++;
        else deliberate[d.deliberate.id] = (deliberate[d.deliberate.id] ?? 0) + 1;
      }
    }
  }
  return {
    seeds: run.seeds.length,
    failedSeeds: run.seeds.filter((s) => s.error !== null).length,
    rounds,
    cells,
    health,
    notProbed,
    rechecked,
    unexplained,
    deliberate,
  };
}

function seedRanges(seeds: readonly number[]): string {
  const sorted = [...seeds].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}–${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(", ");
}

/** The section of results.md for one backend's run. */
export function resultsSection(run: RunResult, context: RunContext): string {
  const t = runTotals(run);
  const unexplainedTotal = Object.values(t.unexplained).reduce((a, b) => a + b, 0);
  const lines = [
    `## ${run.mode}`,
    "",
    `- command: \`${context.command}\``,
    `- date: ${context.date}; commit \`${context.commit}\``,
    `- machine: ${context.machine}; load ${context.load}`,
    `- seeds: ${seedRanges(run.seeds.map((s) => s.seed))} (${t.seeds} seeds, ${t.rounds} rounds, ` +
    `${Math.round(run.seconds)} s)` +
    (run.asked !== undefined && run.asked > t.seeds
      ? `; ${run.asked} asked for, the time budget ran out after ${t.seeds}`
      : ""),
    `- compared: **${t.cells} packet cells** and ${t.health} health answers` +
    (t.notProbed > 0
      ? `; ${t.notProbed} SCTP cells not probed (no SCTP sockets in this kernel)`
      : "") +
    `; ${t.rechecked} cells rechecked after a first-pass difference`,
    `- **unexplained divergences: ${unexplainedTotal}**` +
    (t.failedSeeds > 0 ? `; seeds stopped by an error: ${t.failedSeeds}` : ""),
    "",
    "| kind | unexplained |",
    "| ---- | ----------- |",
    ...DIVERGENCE_KINDS.map((k) => `| ${k} | ${t.unexplained[k]} |`),
    "",
  ];
  const deliberate = Object.entries(t.deliberate);
  if (deliberate.length > 0) {
    lines.push(
      "| explained divergence | where | divergences |",
      "| -------------------- | ----- | ----------- |",
      ...deliberate.map(([id, n]) => {
        const d = DELIBERATE_DIFFERENCES.find((x) => x.id === id);
        const where = d?.pending ? `pending: ${d.readmeRow}` : `README: ${d?.readmeRow}`;
        return `| ${id} | ${where} | ${n} |`;
      }),
      "",
    );
  }
  const unexplained = run.seeds.flatMap((s) =>
    s.rounds.flatMap((r) =>
      r.divergences.filter((d) => d.deliberate === null).map((d) =>
        formatDivergence(s.seed, r, d, { objects: false })
      )
    )
  );
  const failed = run.seeds.filter((s) => s.error !== null);
  if (unexplained.length > 0 || failed.length > 0) {
    lines.push("```text", ...unexplained.slice(0, 50));
    if (unexplained.length > 50) lines.push(`… and ${unexplained.length - 50} more`);
    for (const s of failed) lines.push(`seed ${s.seed} stopped: ${s.error}`);
    lines.push("```", "");
  }
  return lines.join("\n");
}

/** The results file's header. */
export const RESULTS_HEADER = `# Differential conformance: kproxy against upstream kube-proxy v1.34

Written by \`deno task conformance\` (tests/conformance/). Each seed is a random cluster written
to a real kube-apiserver; kproxy and upstream kube-proxy each run on node A of their own
two-node lab (identical addresses inside), and every cell of the packet matrix (service port ×
address kind × source × family) is sent in both labs and compared, then again after random
changes. A divergence is either explained by a row of the README's "Differences from
kube-proxy" table or counted as unexplained.
`;

/** Replaces (or appends) `section` in the results file text, keyed by its \`## mode\` title. */
export function mergeResults(existing: string, section: string): string {
  const title = section.split("\n")[0]!;
  const body = existing.trim() === "" ? RESULTS_HEADER : existing;
  const parts = body.split(/^(?=## )/m);
  const i = parts.findIndex((p) => p.split("\n")[0] === title);
  if (i >= 0) parts[i] = `${section.trimEnd()}\n\n`;
  else parts.push(`${section.trimEnd()}\n\n`);
  return parts.map((p, idx) => (idx === 0 && !p.endsWith("\n\n") ? `${p.trimEnd()}\n\n` : p)).join(
    "",
  )
    .trimEnd() + "\n";
}
