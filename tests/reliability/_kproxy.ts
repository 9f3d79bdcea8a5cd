/**
 * kproxy as a real process inside a test's node namespace (`ip netns exec NODE deno run
 * src/cli/main.ts ...`), the way an operator runs it: log capture, waiting for log lines, HTTP
 * calls to its health and metrics servers from inside the namespace, and signals.
 *
 * `ip netns exec` enters the namespace and then execs deno, so the child's pid is kproxy's own
 * and a signal reaches kproxy itself.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { runToolResult } from "../../src/apply/run_tool.ts";
import { v8FlagsArg } from "../../src/v8_flags.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const MAIN = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url));

/** Options of {@link startKproxy}. */
export interface KproxyOptions {
  /** Extra environment (e.g. a PATH with a failing `nft` first). */
  readonly env?: Readonly<Record<string, string>>;
  /** Wait until the first sync succeeded (default true; false for `--cleanup` runs). */
  readonly waitForSync?: boolean;
  /** How long to wait for start-up, ms (default 60 s: a cold deno may compile first). */
  readonly startTimeoutMs?: number;
  /** Deno permission flags instead of `--allow-all` (e.g. the compiled binary's). */
  readonly permissions?: readonly string[];
}

/** An HTTP answer read from inside the namespace. */
export interface HttpAnswer {
  /** Status code (0 when the connection failed). */
  readonly status: number;
  /** Response body. */
  readonly body: string;
}

/** A kproxy process in a namespace. Always {@link KproxyProcess.kill} it in `finally`. */
export interface KproxyProcess {
  /** Its pid (the deno process itself). */
  readonly pid: number;
  /** The namespace it runs in. */
  readonly netns: string;
  /** `host:port` of the health server, once started (else ""). */
  readonly healthz: string;
  /** `host:port` of the metrics server, once started (else ""). */
  readonly metrics: string;
  /** Everything it printed so far (stdout and stderr interleaved by arrival). */
  log(): string;
  /** Waits until the log, from character `from` on, matches `re`; returns the match. */
  waitForLog(re: RegExp, timeoutMs: number, from?: number): Promise<RegExpExecArray>;
  /** Resolves with the exit status once the process ended and its output was read. */
  readonly finished: Promise<Deno.CommandStatus>;
  /** The exit status once known. */
  exitStatus(): Deno.CommandStatus | null;
  /** Sends `signal` (default SIGKILL) and waits for the exit; safe when already gone. */
  kill(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  /** GET `path` from the health (`health`) or metrics (`metrics`) server, inside the namespace. */
  get(server: "health" | "metrics", path: string): Promise<HttpAnswer>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** GETs `url` with curl inside `netns` (no shell); status 0 when nothing answered. */
export async function httpInNetns(netns: string, url: string): Promise<HttpAnswer> {
  const r = await runToolResult(
    "curl",
    ["-s", "--max-time", "3", "-o", "-", "-w", "\n%{http_code}", url],
    { netns, timeoutMs: 10_000 },
  );
  const nl = r.stdout.lastIndexOf("\n");
  const status = Number(r.stdout.slice(nl + 1).trim());
  return { status: Number.isFinite(status) ? status : 0, body: r.stdout.slice(0, nl) };
}

/**
 * Flags that keep kproxy off the conntrack sysctls (as the tests run upstream kube-proxy):
 * nf_conntrack_max is global and read-only in a test namespace, so kproxy's default would refuse
 * to start there, as kube-proxy's does. Prepended to every start whose arguments name no
 * `--conntrack-*` flag.
 */
export const LEAVE_CONNTRACK_SYSCTLS: readonly string[] = Object.freeze([
  "--conntrack-max-per-core=0",
  "--conntrack-tcp-timeout-established=0",
  "--conntrack-tcp-timeout-close-wait=0",
]);

function conntrackDefaults(args: readonly string[]): readonly string[] {
  return args.some((a) => a.startsWith("--conntrack-")) ? [] : LEAVE_CONNTRACK_SYSCTLS;
}

/** Starts `deno run src/cli/main.ts ...args` inside `netns` and waits for it to start. */
export async function startKproxy(
  netns: string,
  args: readonly string[],
  options: KproxyOptions = {},
): Promise<KproxyProcess> {
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      netns,
      Deno.execPath(),
      "run",
      ...(options.permissions ?? ["--allow-all"]),
      "--quiet",
      "--no-prompt",
      v8FlagsArg(),
      MAIN,
      ...conntrackDefaults(args),
      ...args,
    ],
    cwd: REPO,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  let status: Deno.CommandStatus | null = null;
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  };
  const pipes = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const finished = (async () => {
    const s = await child.status;
    await pipes.catch(() => undefined);
    status = s;
    return s;
  })();

  const waitForLog = async (re: RegExp, timeoutMs: number, from = 0) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(text.slice(from));
      if (m !== null) return m;
      if (status !== null) {
        throw new Error(
          `kproxy in ${netns} exited (${status.code}) before logging ${re}:\n${tail(text)}`,
        );
      }
      if (Date.now() > deadline) {
        throw new Error(`kproxy in ${netns} did not log ${re} in ${timeoutMs} ms:\n${tail(text)}`);
      }
      await sleep(10);
    }
  };

  const kill = async (signal: Deno.Signal = "SIGKILL") => {
    if (status === null) {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
    }
    return await finished;
  };

  let healthz = "";
  let metrics = "";
  try {
    const started = await waitForLog(
      /kproxy starting: .*healthz (\S+), metrics (\S+)\n/,
      options.startTimeoutMs ?? 60_000,
    );
    healthz = started[1] ?? "";
    metrics = started[2] ?? "";
    if (options.waitForSync ?? true) {
      await waitForLog(/sync ok: full/, options.startTimeoutMs ?? 60_000);
    }
  } catch (e) {
    if (options.waitForSync === false && status !== null) {
      // A --cleanup run exits without starting servers: that is its success.
    } else {
      await kill();
      throw e;
    }
  }

  const hostPort = (addr: string) => addr.replace(/^0\.0\.0\.0:/, "127.0.0.1:");
  return {
    pid: child.pid,
    netns,
    healthz,
    metrics,
    log: () => text,
    waitForLog,
    finished,
    exitStatus: () => status,
    kill,
    get: (server, path) =>
      httpInNetns(netns, `http://${hostPort(server === "health" ? healthz : metrics)}${path}`),
  };
}

/** Runs `kproxy ...args` to completion inside `netns` (e.g. `--cleanup`); returns code and log. */
export async function runKproxyOnce(
  netns: string,
  args: readonly string[],
): Promise<{ code: number; log: string }> {
  const r = await runToolResult(
    Deno.execPath(),
    [
      "run",
      "--allow-all",
      "--quiet",
      "--no-prompt",
      `--config=${REPO}deno.json`,
      v8FlagsArg(),
      MAIN,
      ...conntrackDefaults(args),
      ...args,
    ],
    { netns, timeoutMs: 120_000 },
  );
  return { code: r.code, log: r.stdout + r.stderr };
}

/** The last lines of a log, for error messages. */
export function tail(text: string, lines = 30): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** The value of a Prometheus sample (`name{labels} value`), summed over every label set. */
export function metricValue(exposition: string, name: string): number {
  let sum = 0;
  let seen = false;
  for (const line of exposition.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m === null || m[1] !== name) continue;
    sum += Number(m[3]);
    seen = true;
  }
  return seen ? sum : NaN;
}
