/**
 * Churn: the in-process SyncLoop with the real NftablesApplier in a throwaway namespace, under a
 * steady stream of changes (see _churn_main.ts, run as its own process so memory is measured after
 * real garbage collections). Afterwards:
 *
 * - the kernel holds exactly what a fresh render of a snapshot of the final objects holds
 *   (listings compared after normalising), and the loop's last snapshot is that snapshot;
 * - no two syncs ever overlapped (a wrapping applier counts concurrent calls), none failed;
 * - memory returns to its level: after going back to the starting objects, the JS heap is
 *   within 15% + 8 MB of where it was, and RSS within 2.5× (V8 and malloc keep what they grew
 *   into for the biggest scripts); in the soak, RSS also levels off over the run.
 *
 * Normal runs: 2,000 services, 100 changes a second for 5 s. `deno task test:soak`
 * (KPROXY_SOAK=1): 10,000 services, 100 changes a second for 60 s, and RSS must plateau.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import type { ChurnReport } from "./_churn_main.ts";
import { netns, requiring } from "../requirements.ts";

const soak = Deno.env.get("KPROXY_SOAK") === "1";
const MAIN = fileURLToPath(new URL("./_churn_main.ts", import.meta.url));
const MB = 1024 * 1024;

async function runChurn(args: readonly string[]): Promise<ChurnReport> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", "--v8-flags=--expose-gc", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `churn run failed:\n${stderr.slice(-3000)}`);
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as ChurnReport;
}

function check(r: ChurnReport): void {
  console.log(
    `  ${r.services} services, ${r.changes} changes in ${r.seconds} s: ${r.syncs} syncs ` +
      `(${r.fullSyncs} full, ${r.failedSyncs} failed), max ${r.maxConcurrent} at once; ` +
      `first sync ${r.initialSyncMs} ms, settled ${r.settleMs} ms after the last change; ` +
      `${r.rulesetLines} ruleset lines, ${r.finalServicePorts} service ports\n` +
      `  heap ${(r.heapBefore / MB).toFixed(1)} → ${(r.heapAfter / MB).toFixed(1)} MB, ` +
      `RSS ${(r.rssBefore / MB).toFixed(0)} → ${(r.rssAfter / MB).toFixed(0)} MB ` +
      `(post-GC RSS every 5 s: ${r.rssSamplesMB.join(" ")} MB)`,
  );
  assert.equal(r.overlaps, 0, "syncs never overlap");
  assert.equal(r.maxConcurrent, 1);
  assert.equal(r.failedSyncs, 0);
  assert.ok(r.syncs >= 2, `${r.syncs} syncs`);
  assert.ok(r.snapshotHashMatches, "the last synced snapshot is the final objects' snapshot");
  assert.ok(r.rulesetMatches, `live ruleset equals a fresh render: ${r.firstDifference}`);
  assert.ok(
    r.heapAfter <= r.heapBefore * 1.15 + 8 * MB,
    `heap ${r.heapBefore} → ${r.heapAfter} bytes for the same objects`,
  );
  assert.ok(r.rssAfter <= r.rssBefore * 2.5, `RSS ${r.rssBefore} → ${r.rssAfter} bytes`);
  const samples = r.rssSamplesMB;
  if (samples.length >= 6) {
    // Resident memory levels off instead of growing with every change: the second half of the
    // run peaks near the first (big coalesced syncs move the peak; a leak would keep climbing).
    const half = Math.floor(samples.length / 2);
    const first = Math.max(...samples.slice(0, half));
    const second = Math.max(...samples.slice(half));
    assert.ok(second <= first * 1.5 + 64, `RSS kept growing: ${samples.join(" ")} MB`);
  }
}

Deno.test(requiring([netns], {
  name: soak
    ? "reliability: churn at 10,000 services, 100 changes/s for 60 s (soak)"
    : "reliability: churn at 2,000 services, 100 changes/s for 5 s",
  async fn() {
    const report = await runChurn(
      soak
        ? ["--services", "10000", "--rate", "100", "--seconds", "60", "--sync-period-ms", "30000"]
        : ["--services", "2000", "--rate", "100", "--seconds", "5", "--sync-period-ms", "2000"],
    );
    check(report);
  },
}));
