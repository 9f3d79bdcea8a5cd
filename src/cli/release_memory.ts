/**
 * Gives memory back after a full sync. A full sync renders the whole ruleset, and V8 keeps its heap
 * at the size that peak needed long after the garbage is gone: at 10k services the process stays
 * ~60 MiB larger than what it holds. One full garbage collection right after the sync returns it.
 * Partial syncs are left alone (they allocate little, and their latency is what users feel).
 *
 * Needs V8's `--expose-gc` (in `KPROXY_V8_FLAGS`, src/v8_flags.ts); without it this does nothing.
 */

let pending = false;

/** Runs a full garbage collection soon (once, however many full syncs end meanwhile). */
export function scheduleMemoryRelease(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc !== "function" || pending) return;
  pending = true;
  setTimeout(() => {
    pending = false;
    gc();
  }, 0);
}
