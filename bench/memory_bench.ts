/**
 * Peak memory of a kproxy process holding a reconciled cluster: writes the cluster as JSON
 * manifests, starts {@link ./rss_holder.ts} on them, waits for its first full sync, and reads
 * `VmHWM`/`VmRSS` from `/proc/PID/status` of that process.
 *
 * @module
 */
import { writeManifests } from "./gen_manifests.ts";
import { processMemory } from "./rss_holder.ts";
import { syntheticCluster } from "./synthetic_cluster.ts";
import { v8FlagsArg } from "../src/v8_flags.ts";

/** Memory of one holder run. */
export interface HolderMemory {
  /** Services. */
  readonly services: number;
  /** `nftables` or `iptables` applier memory. */
  readonly backend: string;
  /** From process start to the first full sync done, ms (includes Deno start-up). */
  readonly settleMs: number;
  /** Peak resident set (VmHWM), bytes. */
  readonly hwm: number;
  /** Resident set after settling (VmRSS), bytes. */
  readonly rss: number;
}

const HOLDER = new URL("./rss_holder.ts", import.meta.url).pathname;

/** Runs the holder on a `size`-service cluster and reads its memory. */
export async function measureHolderMemory(size: number, backend: string): Promise<HolderMemory> {
  const dir = await Deno.makeTempDir({ prefix: `kpb-manifests-${size}-` });
  try {
    await writeManifests(syntheticCluster({ services: size }), dir, { format: "json" });
    const t0 = performance.now();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", v8FlagsArg(), HOLDER, dir, backend],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    try {
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!/settled \d+/.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`Cannot measure memory at ${size}: the holder exited early`);
        text += value;
      }
      const settleMs = performance.now() - t0;
      const mem = await processMemory(child.pid);
      reader.releaseLock();
      await child.stdin.close();
      await child.stdout.cancel().catch(() => {});
      return { services: size, backend, settleMs, hwm: mem.hwm, rss: mem.rss };
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* exited */ }
      await child.status;
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
