/**
 * A kproxy process holding a reconciled cluster, for peak-memory measurements: the manifest
 * source, the sync loop and the nftables applier of `kproxy --manifests DIR`, with `nft` replaced
 * by `true` so no kernel is touched (the applier still renders and keeps its memory of the live
 * tables). Prints `settled <ms>` once the first full sync is done, then waits until stdin closes
 * so the parent can read `/proc/PID/status`.
 *
 * Usage: `deno run -A bench/rss_holder.ts DIR [nftables|iptables]`
 *
 * @module
 */
import { IptablesApplier } from "../src/apply/iptables_applier.ts";
import { NftablesApplier } from "../src/apply/nftables_applier.ts";
import type { Applier } from "../src/apply/applier.ts";
import { ManifestSource } from "../src/source/manifest_source.ts";
import { SyncLoop } from "../src/sync/sync_loop.ts";
import { BENCH_SETTINGS } from "./_fixtures.ts";
import { scheduleMemoryRelease } from "../src/cli/release_memory.ts";

/** Reads `VmHWM` and `VmRSS` (bytes) of a process from /proc. */
export async function processMemory(pid: number | "self"): Promise<{ hwm: number; rss: number }> {
  const text = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(text)?.[1] ?? NaN);
  return { hwm: kb("VmHWM") * 1024, rss: kb("VmRSS") * 1024 };
}

async function main(dir: string, mode: string): Promise<void> {
  const applier: Applier = mode === "iptables"
    ? new IptablesApplier({
      variant: "nft",
      conntrackCleanup: false,
      // Answers every tool with success and no output: nothing reaches the kernel.
      runner: () => Promise.resolve({ code: 0, stdout: "", stderr: "" }),
    })
    : new NftablesApplier({ nftPath: "true", conntrackCleanup: false });
  const t0 = performance.now();
  const loop = new SyncLoop({
    applier,
    settings: BENCH_SETTINGS,
    minSyncPeriodMs: 10,
    syncPeriodMs: 3_600_000,
    // As `kproxy` does (src/cli/run_command.ts): memory goes back after each full sync.
    hooks: { onSynced: (record) => record.full && scheduleMemoryRelease() },
  });
  const source = new ManifestSource(dir, {
    onEvents: (events) => loop.enqueue(events),
    onSynced: () => loop.markSourcesSynced(),
  });
  loop.start();
  await source.start();
  await loop.settled(600_000);
  await new Promise((r) => setTimeout(r, 200)); // the release scheduled by the sync
  console.log(
    `settled ${(performance.now() - t0).toFixed(0)} ${loop.state.snapshot.servicePorts.length}`,
  );
  // Hold the state until the parent closes stdin.
  for await (const _ of Deno.stdin.readable) { /* wait */ }
  await source.stop();
  await loop.stop();
}

if (import.meta.main) {
  const [dir, mode = "nftables"] = Deno.args;
  if (dir === undefined) {
    console.error("usage: rss_holder.ts DIR [nftables|iptables]");
    Deno.exit(2);
  }
  await main(dir, mode);
}
