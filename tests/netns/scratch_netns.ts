/**
 * A throwaway network namespace for tests that need a kernel but no topology (applier and
 * netlink tests): `PREFIX-RANDOM`, created empty and always deleted afterwards.
 *
 * @module
 */
import { runTool, runToolResult } from "../../src/apply/run_tool.ts";

/** Runs `fn` in a fresh, empty network namespace named `PREFIX-…` and always deletes it. */
export async function withScratchNetns<T>(
  prefix: string,
  fn: (netns: string) => Promise<T>,
): Promise<T> {
  const netns = `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
  await runTool("ip", ["netns", "add", netns]);
  try {
    return await fn(netns);
  } finally {
    await runToolResult("ip", ["netns", "del", netns]);
  }
}
