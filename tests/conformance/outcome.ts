/**
 * What a cell's probes saw, reduced to what must be equal between two proxies: which endpoints
 * answered (a set), the source addresses the pods saw, refusals (with the errno) and drops
 * (timeouts). Pure.
 *
 * @module
 */
import type { ProbeResult } from "../netns/probe.ts";

/** The outcome of one cell in one lab. */
export interface CellOutcome {
  /** Endpoints that answered, as `pod:port`, sorted, unique. */
  readonly answers: readonly string[];
  /** Source addresses the pods saw, sorted, unique. */
  readonly clientIPs: readonly string[];
  /** Refusal reasons (`ECONNREFUSED`, `EHOSTUNREACH`...), sorted, unique. */
  readonly refused: readonly string[];
  /** Probes that got nothing back in time. */
  readonly timeouts: number;
  /** Probes sent. */
  readonly total: number;
  /** After a recheck: the first pass's own outcome, for the report. */
  readonly firstPass?: CellOutcome;
}

/** The outcome of one health question in one lab. */
export interface HealthOutcome {
  /** HTTP status (0: no answer). */
  readonly status: number;
  /** The body fields that must agree (JSON, keys sorted), or the raw body when not JSON. */
  readonly body: string;
}

function sortedUnique(items: Iterable<string>): string[] {
  return [...new Set(items)].sort();
}

/** Summarises a cell's probe results. */
export function summarizeProbes(results: readonly ProbeResult[]): CellOutcome {
  const answers: string[] = [];
  const clientIPs: string[] = [];
  const refused: string[] = [];
  let timeouts = 0;
  for (const r of results) {
    if (r.kind === "answer") {
      answers.push(`${r.pod}:${r.serverPort ?? "?"}`);
      clientIPs.push(r.clientIP);
    } else if (r.kind === "refused") refused.push(r.reason);
    else timeouts++;
  }
  return {
    answers: sortedUnique(answers),
    clientIPs: sortedUnique(clientIPs),
    refused: sortedUnique(refused),
    timeouts,
    total: results.length,
  };
}

/**
 * A recheck of a cell that differed in the first pass: the recheck's outcome counts (twice the
 * probes, a patient timeout), so one odd first-pass probe — a loaded machine's late answer, a
 * UDP source port that met a flow of the previous round in conntrack — does not; the first pass
 * is kept for the report.
 */
export function mergeRecheck(first: CellOutcome, recheck: CellOutcome): CellOutcome {
  return { ...recheck, firstPass: first };
}

/** One line describing an outcome (and its first pass, after a recheck). */
export function formatOutcome(o: CellOutcome): string {
  if (o.firstPass === undefined) return formatPass(o);
  const { firstPass, ...recheck } = o;
  return `${formatPass(recheck)} [first pass: ${formatPass(firstPass)}]`;
}

function formatPass(o: CellOutcome): string {
  const parts: string[] = [];
  if (o.answers.length > 0) {
    parts.push(`answered by ${o.answers.join(" ")} (saw ${o.clientIPs.join(" ")})`);
  }
  if (o.refused.length > 0) parts.push(`refused ${o.refused.join(" ")}`);
  if (o.timeouts > 0) parts.push(`dropped ${o.timeouts}/${o.total}`);
  return parts.length === 0 ? "nothing sent" : parts.join("; ");
}

/** Timestamps differ by nature; what a health answer says does not. */
const TIMESTAMP_FIELDS = new Set(["lastUpdated", "currentTime"]);

function withoutTimestamps(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutTimestamps);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>)
      .filter(([k]) => !TIMESTAMP_FIELDS.has(k))
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => [k, withoutTimestamps(v)]),
  );
}

/** Reads a health answer into the fields both proxies must agree on. */
export function summarizeHealth(status: number, body: string): HealthOutcome {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { status, body: body.trim() };
  }
  if (parsed === null || typeof parsed !== "object") return { status, body: body.trim() };
  const kept = withoutTimestamps(parsed);
  return { status, body: JSON.stringify(kept) };
}
