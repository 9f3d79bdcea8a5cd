/**
 * `deno task conformance [--seeds N] [--first S] [--seed-list A,B] [--mode nftables|iptables]
 * [--rounds R] [--minutes M] [--out FILE] [--no-write]`: runs seeds through kproxy and upstream
 * kube-proxy side by side, prints every divergence as it is found, and writes the backend's
 * section of `conformance/results.md` (with `--minutes`, no seed starts after M minutes: the
 * section names the seeds that ran out of those asked for). Exits 1 when an unexplained
 * divergence (or a failed seed) remains.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { fixturesAvailable } from "../fixtures/apiserver.ts";
import { netnsSupport } from "../netns/topology.ts";
import { type ConformanceLabs, type ConformanceMode, startConformanceLabs } from "./lab.ts";
import {
  formatDivergence,
  mergeResults,
  resultsSection,
  type RunContext,
  type RunResult,
  runTotals,
  type SeedResult,
} from "./report.ts";
import { runSeed } from "./runner.ts";

const REPO = new URL("../../", import.meta.url).pathname;

async function text(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null", cwd: REPO })
      .output();
    return new TextDecoder().decode(out.stdout).trim();
  } catch {
    return "?";
  }
}

async function machine(): Promise<string> {
  const mem = (await Deno.readTextFile("/proc/meminfo").catch(() => "")).match(
    /MemTotal:\s+(\d+)/,
  );
  const gib = mem ? (Number(mem[1]) / 1024 / 1024).toFixed(1) : "?";
  return `Linux ${await text("uname", ["-r"])}, ${navigator.hardwareConcurrency} CPUs, ${gib} GiB`;
}

async function loadAverage(): Promise<string> {
  return (await Deno.readTextFile("/proc/loadavg").catch(() => "?")).split(" ").slice(0, 3).join(
    " ",
  );
}

/** Leaves the labs as they are until a file is deleted, for `ip netns exec` by hand. */
async function pauseForInspection(labs: ConformanceLabs): Promise<void> {
  const flag = await Deno.makeTempFile({ prefix: "kproxy-conformance-paused-" });
  console.log(
    `paused: kproxy's node A is ${labs.kproxy.lab.nodeA}, kube-proxy's ${labs.upstream.lab.nodeA}` +
      ` (pods ${labs.kproxy.lab.id}-a0…, ${labs.upstream.lab.id}-a0…); rm ${flag} to go on`,
  );
  while (await Deno.stat(flag).then(() => true, () => false)) {
    await new Promise((r) => setTimeout(r, 500));
  }
}

function usage(message: string): never {
  console.error(`conformance: ${message}`);
  console.error(
    "usage: deno task conformance [--seeds N] [--first S] [--seed-list A,B] " +
      "[--mode nftables|iptables] [--rounds R] [--minutes M] [--out FILE] [--no-write] " +
      "[--pause-on-divergence]",
  );
  Deno.exit(2);
}

/** Parses the command line into the seeds and options of a run. */
export function parseConformanceArgs(argv: readonly string[]): {
  seeds: number[];
  mode: ConformanceMode;
  rounds: number;
  minutes: number | null;
  out: string;
  write: boolean;
  pause: boolean;
} {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      seeds: { type: "string" },
      first: { type: "string" },
      "seed-list": { type: "string" },
      mode: { type: "string" },
      rounds: { type: "string" },
      minutes: { type: "string" },
      out: { type: "string" },
      "no-write": { type: "boolean" },
      "pause-on-divergence": { type: "boolean" },
    },
    strict: true,
  });
  const int = (name: string, v: string | undefined, fallback: number) => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) usage(`--${name} must be a whole number, not ${v}`);
    return n;
  };
  const mode = values.mode ?? "nftables";
  if (mode !== "nftables" && mode !== "iptables") usage(`--mode must be nftables or iptables`);
  const first = int("first", values.first, 1);
  const seeds = values["seed-list"] !== undefined
    ? values["seed-list"].split(",").map((s) => int("seed-list", s.trim(), 0))
    : Array.from({ length: int("seeds", values.seeds, 3) }, (_, i) => first + i);
  return {
    seeds,
    mode,
    rounds: int("rounds", values.rounds, 1),
    minutes: values.minutes === undefined ? null : int("minutes", values.minutes, 0),
    out: values.out ?? `${REPO}conformance/results.md`,
    write: !(values["no-write"] ?? false),
    pause: values["pause-on-divergence"] ?? false,
  };
}

if (import.meta.main) {
  const args = parseConformanceArgs(Deno.args);
  const support = netnsSupport();
  if (!support.ok) usage(`needs network namespaces: ${support.reason}`);
  if (!fixturesAvailable()) {
    usage(
      "needs the Go fixtures (kube-apiserver, etcd, kube-proxy): run tests/fixtures/build_fixtures.sh",
    );
  }
  const loadBefore = await loadAverage();
  const started = performance.now();
  console.log(
    `conformance: ${args.mode}, seeds ${args.seeds.join(",")}, ${args.rounds} change round(s)`,
  );
  const labs = await startConformanceLabs(args.mode);
  const seeds: SeedResult[] = [];
  try {
    for (const seed of args.seeds) {
      if (args.minutes !== null && performance.now() - started > args.minutes * 60_000) {
        console.log(`time budget of ${args.minutes} min spent: seeds from ${seed} on not run`);
        break;
      }
      const t0 = performance.now();
      const result = await runSeed(labs, seed, {
        changeRounds: args.rounds,
        onRound: async (s, round) => {
          for (const d of round.divergences) console.log(formatDivergence(s, round, d));
          if (args.pause && round.divergences.some((d) => d.deliberate === null)) {
            await pauseForInspection(labs);
          }
        },
      });
      seeds.push(result);
      const cells = result.rounds.reduce((n, r) => n + r.cells, 0);
      const divs = result.rounds.reduce(
        (n, r) => n + r.divergences.filter((d) => d.deliberate === null).length,
        0,
      );
      const rechecked = result.rounds.reduce((n, r) => n + r.rechecked, 0);
      console.log(
        `seed ${seed}: ${result.rounds.length} rounds, ${cells} cells (${rechecked} rechecked), ` +
          `${divs} unexplained, ` +
          `${((performance.now() - t0) / 1000).toFixed(1)} s` +
          (result.error === null ? "" : `; stopped: ${result.error}`),
      );
    }
  } finally {
    await labs.stop();
  }
  const run: RunResult = {
    mode: args.mode,
    seeds,
    asked: args.seeds.length,
    seconds: (performance.now() - started) / 1000,
  };
  const context: RunContext = {
    date: new Date().toISOString().slice(0, 10),
    commit: await text("git", ["rev-parse", "--short", "HEAD"]),
    machine: await machine(),
    load: `${loadBefore} → ${await loadAverage()}`,
    command: `deno task conformance ${Deno.args.join(" ")}`.trim(),
  };
  const section = resultsSection(run, context);
  console.log(`\n${section}`);
  if (args.write) {
    await Deno.mkdir(new URL(".", `file://${args.out}`), { recursive: true }).catch(() => {});
    const existing = await Deno.readTextFile(args.out).catch(() => "");
    await Deno.writeTextFile(args.out, mergeResults(existing, section));
    console.log(`wrote ${args.out}`);
  }
  const totals = runTotals(run);
  const unexplained = Object.values(totals.unexplained).reduce((a, b) => a + b, 0);
  Deno.exit(unexplained === 0 && totals.failedSeeds === 0 ? 0 : 1);
}
