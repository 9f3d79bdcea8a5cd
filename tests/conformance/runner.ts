/**
 * Runs seeds through the labs: per seed, the generated cluster goes to the API server, both
 * proxies program it, the matrix is probed in both labs and compared (cells that differ are
 * probed again, more patiently, before they count), then a round of random changes and the
 * matrix again; finally the seed's objects are deleted.
 *
 * @module
 */
import { apiOperations, type ClusterModel, GENERATED_LABEL } from "./cluster_model.ts";
import { comparedCells, compareTables, type OutcomeTable } from "./comparator.ts";
import { generateCase, type GeneratorOptions } from "./generator.ts";
import {
  askHealth,
  type ConformanceLabs,
  probeCells,
  PROBED_PROTOCOLS,
  probeMatrix,
  RECHECK,
} from "./lab.ts";
import { buildMatrix, type Matrix } from "./matrix.ts";
import { mergeRecheck } from "./outcome.ts";
import type { RoundResult, SeedResult } from "./report.ts";

/** Options of {@link runSeed}. */
export interface RunSeedOptions extends GeneratorOptions {
  /** Called with each finished round (to print divergences as they come). */
  readonly onRound?: (seed: number, round: RoundResult) => void | Promise<void>;
}

function mergeTables(first: OutcomeTable, recheck: OutcomeTable): OutcomeTable {
  const cells = new Map(first.cells);
  for (const [id, o] of recheck.cells) {
    const before = cells.get(id);
    cells.set(id, before === undefined ? o : mergeRecheck(before, o));
  }
  const health = new Map(first.health);
  for (const [id, o] of recheck.health) health.set(id, o);
  return { cells, health };
}

async function runRound(
  labs: ConformanceLabs,
  round: number,
  cluster: ClusterModel,
  changes: readonly string[],
): Promise<RoundResult> {
  const matrix: Matrix = buildMatrix(cluster);
  const [k, u] = await Promise.all([
    probeMatrix(labs.kproxy, matrix),
    probeMatrix(labs.upstream, matrix),
  ]);
  let divergences = compareTables(cluster, matrix, { kproxy: k, upstream: u });
  let rechecked = 0;
  // Explained divergences need no second look; the others are probed again, more patiently.
  const doubtful = divergences.filter((d) => d.deliberate === null);
  // CONFORMANCE_DEBUG=1 prints what the first pass saw differ (to tune timeouts and counts).
  if (Deno.env.get("CONFORMANCE_DEBUG")) {
    for (const d of doubtful) {
      if (d.subject === "cell") {
        console.log(
          `first pass: ${d.kinds} ${d.cell.id}: ${JSON.stringify(d.kproxy)} | ${
            JSON.stringify(d.upstream)
          }`,
        );
      }
    }
  }
  if (doubtful.length > 0) {
    const cells = doubtful.flatMap((d) => d.subject === "cell" ? [d.cell] : []);
    const checks = doubtful.flatMap((d) => d.subject === "health" ? [d.check] : []);
    rechecked = cells.length + checks.length;
    const recheck = async (p: typeof labs.kproxy) => ({
      cells: await probeCells(p, cells, RECHECK),
      health: await askHealth(p, checks),
    });
    const [kr, ur] = await Promise.all([recheck(labs.kproxy), recheck(labs.upstream)]);
    divergences = compareTables(cluster, matrix, {
      kproxy: mergeTables(k, kr),
      upstream: mergeTables(u, ur),
    });
  }
  const compared = comparedCells(matrix, k, u);
  const health = matrix.health.length;
  return {
    round,
    changes,
    cluster,
    cells: compared - health,
    health,
    notProbed: matrix.cells.filter((c) => !PROBED_PROTOCOLS.has(c.protocol)).length,
    rechecked,
    divergences,
  };
}

/** Deletes every object a seed wrote (by label), whatever state a failure left. */
async function deleteSeedObjects(labs: ConformanceLabs, seed: number): Promise<void> {
  const selector = encodeURIComponent(`${GENERATED_LABEL}=${seed}`);
  for (
    const [kind, path] of [
      ["EndpointSlice", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"],
      ["Service", "/api/v1/namespaces/default/services"],
    ] as const
  ) {
    const res = await labs.cluster.request(`${path}?labelSelector=${selector}`);
    const list = await res.json() as { items?: { metadata: { name: string } }[] };
    await labs.write(
      (list.items ?? []).map((i) => ({ op: "delete" as const, kind, name: i.metadata.name })),
    );
  }
}

/** Runs one seed: every round, then deletes its objects. */
export async function runSeed(
  labs: ConformanceLabs,
  seed: number,
  options: RunSeedOptions = {},
): Promise<SeedResult> {
  const c = generateCase(seed, options);
  const rounds: RoundResult[] = [];
  let error: string | null = null;
  let previous: ClusterModel | null = null;
  try {
    for (const [i, cluster] of c.rounds.entries()) {
      await labs.write(apiOperations(previous, cluster, seed));
      previous = cluster;
      await labs.converge();
      const result = await runRound(labs, i, cluster, c.changes[i] ?? []);
      rounds.push(result);
      await options.onRound?.(seed, result);
    }
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  }
  try {
    await deleteSeedObjects(labs, seed);
    await labs.converge();
    await labs.flushConntrack();
  } catch (e) {
    error ??= `cleaning up: ${e instanceof Error ? e.message : String(e)}`;
  }
  return { seed, rounds, error };
}
