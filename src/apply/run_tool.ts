/**
 * Runs a system tool (nft, iptables-restore, conntrack, ...) directly, never through a shell,
 * optionally inside a network namespace (`ip netns exec`), feeding text on stdin.
 */

/** Options for {@link runTool}. */
export interface RunToolOptions {
  /** Text written to the tool's stdin. */
  readonly stdin?: string;
  /** Run inside this named network namespace (tests and benches). */
  readonly netns?: string;
  /** Kill the tool after this many milliseconds. */
  readonly timeoutMs?: number;
}

/** What a tool run returned. */
export interface ToolResult {
  /** Exit code (-1 when killed). */
  readonly code: number;
  /** Captured stdout. */
  readonly stdout: string;
  /** Captured stderr. */
  readonly stderr: string;
}

/** A failed tool run: names the command and carries its stderr. */
export class ToolError extends Error {
  /** The command that failed, as argv. */
  readonly argv: readonly string[];
  /** The failed run. */
  readonly result: ToolResult;
  /** Makes a ToolError for `argv` and its result. */
  constructor(argv: readonly string[], result: ToolResult) {
    const detail = result.stderr.trim().split("\n").slice(0, 5).join(" | ");
    super(`${argv.join(" ")} exited with ${result.code}${detail ? `: ${detail}` : ""}`);
    this.name = "ToolError";
    this.argv = argv;
    this.result = result;
  }
}

/** The argv that runs `tool args` inside `netns` (when given). */
export function toolArgv(tool: string, args: readonly string[], netns?: string): string[] {
  return netns ? ["ip", "netns", "exec", netns, tool, ...args] : [tool, ...args];
}

/** Runs a tool and returns its result, whatever the exit code. */
export async function runToolResult(
  tool: string,
  args: readonly string[],
  options: RunToolOptions = {},
): Promise<ToolResult> {
  const argv = toolArgv(tool, args, options.netns);
  const [cmd, ...rest] = argv as [string, ...string[]];
  const child = new Deno.Command(cmd, {
    args: rest,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (options.timeoutMs !== undefined) {
    timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }, options.timeoutMs);
  }
  try {
    // Read the output while writing the input: a tool that writes more than a pipe buffer
    // before it has read all of its input would otherwise wait on us as we wait on it.
    const output = child.output();
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      try {
        await writer.write(new TextEncoder().encode(options.stdin));
        await writer.close();
      } catch { /* the tool exited early; its status says why */ }
    }
    const out = await output;
    const dec = new TextDecoder();
    return {
      code: out.signal ? -1 : out.code,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
    };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/** Runs a tool and returns its stdout; throws {@link ToolError} on a non-zero exit. */
export async function runTool(
  tool: string,
  args: readonly string[],
  options: RunToolOptions = {},
): Promise<string> {
  const result = await runToolResult(tool, args, options);
  if (result.code !== 0) throw new ToolError(toolArgv(tool, args, options.netns), result);
  return result.stdout;
}

/**
 * Starts a long-running tool (a monitor) with its stdout piped for streaming and stderr piped;
 * the caller reads stdout, and kills and awaits the child.
 */
export function spawnTool(
  tool: string,
  args: readonly string[],
  options: Pick<RunToolOptions, "netns"> = {},
): Deno.ChildProcess {
  const [cmd, ...rest] = toolArgv(tool, args, options.netns) as [string, ...string[]];
  return new Deno.Command(cmd, { args: rest, stdout: "piped", stderr: "piped" }).spawn();
}
