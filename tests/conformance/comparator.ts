/**
 * The comparator: two outcome tables (kproxy's and upstream kube-proxy's, cell by cell) →
 * divergences, each classified as a deliberate difference (with the README row that explains it)
 * or unexplained. Pure.
 *
 * @module
 */
import type { ClusterModel } from "./cluster_model.ts";
import {
  classifyDivergence,
  type DeliberateDifference,
  type UnclassifiedDivergence,
} from "./deliberate.ts";
import type { Cell, Matrix } from "./matrix.ts";
import type { CellOutcome, HealthOutcome } from "./outcome.ts";

/** How two outcomes of one cell differ, most serious first. */
export type DivergenceKind =
  /** One side answered, refused or dropped where the other did something else. */
  | "reachability"
  /** Both answered, from different endpoint sets (or one was sticky and the other not). */
  | "endpoints"
  /** The pods saw different source addresses. */
  | "client address"
  /** Both refused, with a different errno (reset vs ICMP, port vs admin unreachable). */
  | "refusal type"
  /** A health answer differs. */
  | "health";

/** Every kind, in report order. */
export const DIVERGENCE_KINDS: readonly DivergenceKind[] = [
  "reachability",
  "endpoints",
  "client address",
  "refusal type",
  "health",
];

/** One difference between the proxies. */
export type Divergence = UnclassifiedDivergence & {
  /** What differs, most serious first. */
  readonly kinds: readonly DivergenceKind[];
  /** The deliberate difference that explains it, or null when unexplained. */
  readonly deliberate: DeliberateDifference | null;
};

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Which of answer / refused / dropped an outcome shows. */
function shape(o: CellOutcome): string {
  return [
    o.answers.length > 0 ? "answer" : "",
    o.refused.length > 0 ? "refused" : "",
    o.timeouts > 0 ? "dropped" : "",
  ].filter((s) => s !== "").join("+");
}

/** The ways two outcomes of `cell` differ (empty: they agree). */
export function cellDifferences(cell: Cell, a: CellOutcome, b: CellOutcome): DivergenceKind[] {
  if (cell.luckyReachability) {
    // Which endpoint sticks is luck, and so whether it answers or its closed port refuses:
    // each side must still stick to one outcome.
    const uniform = (o: CellOutcome) =>
      (o.answers.length === 1 ? 1 : 0) + (o.refused.length > 0 ? 1 : 0) +
            (o.timeouts > 0 ? 1 : 0) === 1 && o.answers.length <= 1;
    return uniform(a) && uniform(b) ? [] : ["endpoints"];
  }
  const kinds: DivergenceKind[] = [];
  if (shape(a) !== shape(b)) kinds.push("reachability");
  if (a.answers.length > 0 && b.answers.length > 0) {
    // With ClientIP affinity one endpoint takes every probe, and which one is luck.
    const differ = cell.affinity
      ? (a.answers.length === 1) !== (b.answers.length === 1)
      : !sameList(a.answers, b.answers);
    if (differ) kinds.push("endpoints");
    // With affinity the address a pod sees depends on the lucky endpoint (masquerading picks
    // the address towards its node; a pod that reached itself is hairpinned): compare only
    // when both picked the same endpoints.
    const sources = !sameList(a.clientIPs, b.clientIPs) &&
      (!cell.affinity || sameList(a.answers, b.answers));
    if (sources) kinds.push("client address");
  }
  if (a.refused.length > 0 && b.refused.length > 0 && !sameList(a.refused, b.refused)) {
    kinds.push("refusal type");
  }
  return kinds;
}

/** Outcome tables of one round: cell or health id → outcome. */
export interface OutcomeTable {
  /** Packet cells. */
  readonly cells: ReadonlyMap<string, CellOutcome>;
  /** Health questions. */
  readonly health: ReadonlyMap<string, HealthOutcome>;
}

/**
 * Compares kproxy's table with upstream's over `matrix` (built from `cluster`); every
 * divergence, classified.
 */
export function compareTables(
  cluster: ClusterModel,
  matrix: Matrix,
  tables: { readonly kproxy: OutcomeTable; readonly upstream: OutcomeTable },
): Divergence[] {
  const { kproxy, upstream } = tables;
  const serviceOf = (name: string | null) => cluster.services.find((s) => s.name === name);
  const out: Divergence[] = [];
  for (const cell of matrix.cells) {
    const a = kproxy.cells.get(cell.id);
    const b = upstream.cells.get(cell.id);
    if (a === undefined || b === undefined) continue;
    const kinds = cellDifferences(cell, a, b);
    if (kinds.length === 0) continue;
    const d = { subject: "cell" as const, cell, kproxy: a, upstream: b, kinds };
    out.push({ ...d, deliberate: classifyDivergence(d, serviceOf(cell.service)) });
  }
  for (const check of matrix.health) {
    const a = kproxy.health.get(check.id);
    const b = upstream.health.get(check.id);
    if (a === undefined || b === undefined) continue;
    if (a.status === b.status && a.body === b.body) continue;
    const d = {
      subject: "health" as const,
      check,
      kproxy: a,
      upstream: b,
      kinds: ["health"] as const,
    };
    out.push({ ...d, deliberate: classifyDivergence(d, serviceOf(check.service)) });
  }
  return out;
}

/** Cells compared: those both tables have. */
export function comparedCells(matrix: Matrix, a: OutcomeTable, b: OutcomeTable): number {
  return matrix.cells.filter((c) => a.cells.has(c.id) && b.cells.has(c.id)).length +
    matrix.health.filter((h) => a.health.has(h.id) && b.health.has(h.id)).length;
}
