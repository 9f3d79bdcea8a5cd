/**
 * A steady stream of probes from one namespace of a topology to one target (one probe every
 * `intervalMs`, each a new connection), recorded with timestamps, so a test can say "not one
 * probe failed while kproxy was killed and restarted".
 *
 * @module
 */
import type { ProbeResult, ProbeTarget, Topology } from "../netns/mod.ts";

/** One probe of a loop, with when it was sent. */
export interface TimedProbe {
  /** Send time, ms since epoch. */
  readonly at: number;
  /** What it saw. */
  readonly result: ProbeResult;
}

/** A running probe loop. */
export interface ProbeLoop {
  /** Probes so far. */
  results(): readonly TimedProbe[];
  /** Stops after the probe in flight; returns every probe. */
  stop(): Promise<readonly TimedProbe[]>;
}

/** Options of {@link startProbeLoop}. */
export interface ProbeLoopOptions {
  /** Pause between probes, ms (default 20). */
  readonly intervalMs?: number;
  /** Per-probe timeout, ms (default 1000). */
  readonly timeoutMs?: number;
}

/** Starts probing `target` from `from` (a role of `topology`) until stopped. */
export function startProbeLoop(
  topology: Topology,
  from: string,
  target: ProbeTarget,
  options: ProbeLoopOptions = {},
): ProbeLoop {
  const out: TimedProbe[] = [];
  let stopped = false;
  const interval = options.intervalMs ?? 20;
  const running = (async () => {
    while (!stopped) {
      const at = Date.now();
      const result = await topology.probe(from, target, { timeoutMs: options.timeoutMs ?? 1000 });
      out.push({ at, result });
      await new Promise((r) => setTimeout(r, interval));
    }
  })();
  return {
    results: () => out,
    stop: async () => {
      stopped = true;
      await running;
      return out;
    },
  };
}

/** Probes that did not get an answer (or, with `pods`, not from one of them). */
export function failedProbes(
  probes: readonly TimedProbe[],
  pods?: readonly string[],
): TimedProbe[] {
  return probes.filter((p) =>
    p.result.kind !== "answer" || (pods !== undefined && !pods.includes(p.result.pod))
  );
}

/** One line per failed probe (at most `max`), for assertion messages. */
export function describeFailures(failures: readonly TimedProbe[], max = 10): string {
  return failures.slice(0, max).map((f) =>
    `${new Date(f.at).toISOString()} ${
      f.result.kind === "answer" ? `answered by ${f.result.pod}` : `${f.result.kind}`
    }${"reason" in f.result ? ` (${f.result.reason})` : ""}`
  ).join("\n");
}
