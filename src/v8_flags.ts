/**
 * The V8 flags kproxy runs with: `deno compile` bakes them into the binary, and `deno task kproxy`
 * and the benchmarks pass them to `deno run`.
 *
 * `--max-semi-space-size=4` (MiB) caps V8's young generation, which otherwise grows to ~100 MiB
 * of mostly empty space while a big sync allocates. Measured with `bench/rss_holder.ts` at 10k
 * services × 10 endpoints: settled RSS 413 → 330 MiB, peak 481 → 418 MiB; at 1k 167 → 107 MiB;
 * snapshot build and render times unchanged within noise (2 MiB measured the same as 4).
 *
 * `--expose-gc` lets kproxy run one full collection after each full sync
 * (src/cli/release_memory.ts), so the heap does not stay at the size the sync's peak needed.
 */

/** Flags for V8, each as `deno --v8-flags` takes them. */
export const KPROXY_V8_FLAGS: readonly string[] = Object.freeze([
  "--max-semi-space-size=4",
  "--expose-gc",
]);

/** The `--v8-flags=…` argument of `deno run` / `deno compile`. */
export function v8FlagsArg(): string {
  return `--v8-flags=${KPROXY_V8_FLAGS.join(",")}`;
}
