/**
 * Network namespaces the benchmarks create (`kpb-<tag>-<random>`): kernel rules are only ever
 * installed inside them. Each is removed on `remove()`, and every one still open is removed when
 * the bench process exits, is interrupted (SIGINT/SIGTERM) or an error escapes — after ending
 * the processes running inside it (only the bench started processes there).
 *
 * @module
 */

/** A namespace made by the benchmarks. */
export interface BenchNetns {
  /** Its name, `kpb-...`. */
  readonly name: string;
  /** PIDs of the processes running inside it. */
  pids(): Promise<number[]>;
  /** Ends the processes inside it and deletes it. Safe to call twice. */
  remove(): Promise<void>;
}

const open = new Map<string, BenchNetns>();
let hooked = false;

async function ip(args: readonly string[]): Promise<string> {
  const out = await new Deno.Command("ip", { args: [...args], stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(
      `Cannot run ip ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

function ipSync(args: readonly string[]): string {
  const out = new Deno.Command("ip", { args: [...args], stdout: "piped", stderr: "piped" })
    .outputSync();
  return new TextDecoder().decode(out.stdout);
}

function killSync(pid: number): void {
  try {
    Deno.kill(pid, "SIGKILL");
  } catch { /* gone */ }
}

const exitHooks = new Set<() => void>();

/**
 * Runs `fn` (synchronously) if the bench is interrupted or exits before the returned function
 * is called; for clean-up that must happen even then.
 */
export function atExit(fn: () => void): () => void {
  hookExit();
  exitHooks.add(fn);
  return () => exitHooks.delete(fn);
}

/** Synchronous last-resort clean-up (unload and signal handlers cannot await). */
function removeAllSync(): void {
  for (const fn of exitHooks) {
    try {
      fn();
    } catch { /* best effort */ }
  }
  exitHooks.clear();
  for (const name of open.keys()) {
    for (const pid of ipSync(["netns", "pids", name]).split(/\s+/).filter((p) => p !== "")) {
      killSync(Number(pid));
    }
    ipSync(["netns", "delete", name]);
  }
  open.clear();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  globalThis.addEventListener("unload", removeAllSync);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      console.error(`\nbench: ${signal}: removing ${open.size} network namespaces`);
      removeAllSync();
      Deno.exit(130);
    });
  }
}

/** True when this process may create network namespaces (root with `ip` available). */
export function canCreateNetns(): boolean {
  try {
    return Deno.uid() === 0 &&
      new Deno.Command("ip", { args: ["netns", "list"], stdout: "null", stderr: "null" })
        .outputSync().success;
  } catch {
    return false;
  }
}

/** Creates `kpb-<tag>-<random>` with its loopback up. */
export async function createBenchNetns(tag: string): Promise<BenchNetns> {
  hookExit();
  const rand = crypto.getRandomValues(new Uint8Array(3));
  const suffix = Array.from(rand, (b) => b.toString(16).padStart(2, "0")).join("");
  const name = `kpb-${tag}-${suffix}`.slice(0, 40);
  await ip(["netns", "add", name]);
  let removed = false;
  const pids = async () =>
    (await ip(["netns", "pids", name])).split(/\s+/).filter((p) => p !== "").map(Number);
  const ns: BenchNetns = {
    name,
    pids,
    remove: async () => {
      if (removed) return;
      removed = true;
      open.delete(name);
      for (const pid of await pids().catch(() => [])) {
        try {
          Deno.kill(pid, "SIGTERM");
        } catch { /* gone */ }
      }
      const deadline = Date.now() + 5_000;
      while ((await pids().catch(() => [])).length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      for (const pid of await pids().catch(() => [])) killSync(pid);
      await ip(["netns", "delete", name]);
    },
  };
  open.set(name, ns);
  try {
    await ip(["-n", name, "link", "set", "lo", "up"]);
  } catch (e) {
    await ns.remove();
    throw e;
  }
  return ns;
}

/** Runs `fn` with a fresh namespace and removes it afterwards, also on failure. */
export async function withBenchNetns<T>(
  tag: string,
  fn: (ns: BenchNetns) => Promise<T>,
): Promise<T> {
  const ns = await createBenchNetns(tag);
  try {
    return await fn(ns);
  } finally {
    await ns.remove();
  }
}
