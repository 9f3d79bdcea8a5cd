/**
 * The host side of a namespace agent (`_agent_main.ts`): starts one long-lived Deno process in a
 * network namespace, waits until its listeners are bound, and sends it probe requests over
 * stdin/stdout, so a probe costs a round trip instead of a process start.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import {
  DEFAULT_PROBE_TIMEOUT_MS,
  type ProbeOptions,
  type ProbeRequest,
  type ProbeResult,
  type ProbeTarget,
} from "./probe.ts";

const AGENT_MAIN = fileURLToPath(new URL("./_agent_main.ts", import.meta.url));
const READY_TIMEOUT_MS = 20_000;

/** Options of {@link startAgent}. */
export interface AgentOptions {
  /** The name the agent answers with (the pod name). */
  readonly name: string;
  /** TCP ports to serve on (none for a pure prober). */
  readonly tcpPorts?: readonly number[];
  /** UDP ports to serve on. */
  readonly udpPorts?: readonly number[];
  /** SCTP ports to serve on (raw sockets). */
  readonly sctpPorts?: readonly number[];
}

/** A running agent in one namespace. */
export interface Agent {
  /** The name it answers with. */
  readonly name: string;
  /** Its network namespace. */
  readonly netns: string;
  /** Runs `count` probes to `target` and returns every result, in order. */
  probeMany(target: ProbeTarget, count: number, options?: ProbeOptions): Promise<ProbeResult[]>;
  /** Stops the process and waits for it to exit. */
  stop(): Promise<void>;
}

interface Waiter {
  resolve(results: ProbeResult[]): void;
  reject(error: Error): void;
}

/** Starts an agent (pod server and/or prober) in `netns` and waits until it is listening. */
export async function startAgent(netns: string, options: AgentOptions): Promise<Agent> {
  const args = [
    "netns",
    "exec",
    netns,
    Deno.execPath(),
    "run",
    "--quiet",
    "--no-prompt",
    "--no-config",
    "--no-lock",
    "--unstable-net",
    "--allow-net",
    "--allow-ffi",
    AGENT_MAIN,
    "--name",
    options.name,
  ];
  if (options.tcpPorts?.length) args.push("--tcp", options.tcpPorts.join(","));
  if (options.udpPorts?.length) args.push("--udp", options.udpPorts.join(","));
  if (options.sctpPorts?.length) args.push("--sctp", options.sctpPorts.join(","));
  const child = new Deno.Command("ip", {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const waiters = new Map<number, Waiter>();
  let stderr = "";
  let exited: Error | null = null;
  let nextId = 1;

  const stderrDone = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) {
      if (stderr.length < 8000) stderr += decoder.decode(chunk, { stream: true });
    }
  })();

  let markReady: (() => void) | undefined;
  let failReady: ((e: Error) => void) | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    failReady = reject;
  });

  const stdoutDone = (async () => {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of child.stdout) {
      pending += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        const msg = JSON.parse(line) as {
          ready?: boolean;
          id?: number;
          results?: ProbeResult[];
          error?: string;
        };
        if (msg.ready) markReady?.();
        if (msg.id === undefined) continue;
        const waiter = waiters.get(msg.id);
        waiters.delete(msg.id);
        if (msg.error !== undefined) {
          waiter?.reject(new Error(`Agent ${options.name} in ${netns}: ${msg.error}`));
        } else waiter?.resolve(msg.results ?? []);
      }
    }
  })();

  const status = child.status.then(async (s) => {
    await Promise.allSettled([stderrDone, stdoutDone]);
    exited = new Error(
      `Agent ${options.name} in ${netns} exited with ${s.code}${
        stderr.trim() === "" ? "" : `: ${stderr.trim().split("\n").slice(0, 5).join(" | ")}`
      }`,
    );
    failReady?.(exited);
    for (const w of waiters.values()) w.reject(exited);
    waiters.clear();
    return s;
  });

  let readyTimer: ReturnType<typeof setTimeout> | undefined;
  const stop = async () => {
    clearTimeout(readyTimer);
    try {
      await writer.close();
    } catch { /* already closed */ }
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await status;
  };

  try {
    await Promise.race([
      ready,
      new Promise<never>((_, reject) => {
        readyTimer = setTimeout(
          () => reject(new Error(`Agent ${options.name} in ${netns} did not start in time`)),
          READY_TIMEOUT_MS,
        );
      }),
    ]);
    clearTimeout(readyTimer);
  } catch (e) {
    await stop();
    throw e;
  }

  const encoder = new TextEncoder();
  return {
    name: options.name,
    netns,
    async probeMany(target, count, probeOptions = {}) {
      if (exited !== null) throw exited;
      const id = nextId++;
      const request: ProbeRequest = {
        id,
        protocol: target.protocol,
        ip: target.ip,
        port: target.port,
        count,
        concurrency: probeOptions.concurrency ?? 8,
        timeoutMs: probeOptions.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS,
        sourcePort: probeOptions.sourcePort ?? null,
      };
      const answer = new Promise<ProbeResult[]>((resolve, reject) => {
        waiters.set(id, { resolve, reject });
      });
      await writer.write(encoder.encode(JSON.stringify(request) + "\n"));
      return await answer;
    },
    stop,
  };
}
