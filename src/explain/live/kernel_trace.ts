/**
 * Sends one real packet and reads back what the kernel's rules did with it.
 *
 * - nftables: two base chains at priority -300 (prerouting, output) are added to kproxy's own
 *   table, matching exactly the probe's addresses and ports with `meta nftrace set 1`; `nft
 *   monitor` reads the trace; the chains are deleted afterwards.
 * - iptables-nft: the same two chains in a table of explain's own (`ip kproxy-explain-ID`),
 *   deleted afterwards; `nft monitor` reads the trace of iptables-nft's `nat` and `filter`
 *   chains (xtables-monitor cannot parse an IPv6 trace rule). No other table is touched.
 * - iptables-legacy: its TRACE target writes to the kernel log, which network namespaces do not
 *   have; the rule counters of `iptables-legacy-save -c` before and after the packet say which
 *   of kproxy's rules it hit instead (exact on a quiet node; other traffic to the same service
 *   at that moment adds to them).
 *
 * The conntrack entry the probe made is deleted afterwards.
 *
 * @module
 */
import { runTool, runToolResult, spawnTool } from "../../apply/run_tool.ts";
import { TABLE_NAME } from "../../render/nftables/names.ts";
import type { ExplainMode } from "../answer.ts";
import type { ExplainPacket } from "../packet.ts";
import { buildProbePacket } from "./packet_bytes.ts";
import { openTun, sendFromNode } from "./inject.ts";
import { counterPath, type KernelPath, parseNftTrace } from "./trace_parse.ts";

/** Options of {@link traceInKernel}. */
export interface KernelTraceOptions {
  /** The backend whose rules are live. */
  readonly mode: ExplainMode;
  /** For iptables: `nft` (iptables-nft) or `legacy`. */
  readonly iptablesVariant?: "nft" | "legacy";
  /** Run inside this named network namespace (tests); default: here. */
  readonly netns?: string;
  /** The packet is the node's own (sent on a raw socket) rather than arriving (TUN). */
  readonly fromNode: boolean;
  /** The name of the TUN device an arriving packet comes in on (default: `kpx` + random). */
  readonly inputInterface?: string;
  /** How long to wait for the monitor and the trace (default 5 s). */
  readonly timeoutMs?: number;
}

/** What the kernel did, how it was read, and the raw lines. */
export interface KernelTrace {
  /** `nftrace` (nft monitor), `nftrace-iptables` (the same, of iptables-nft) or `counters`. */
  readonly method: "nftrace" | "nftrace-iptables" | "counters";
  /** What the packet did. */
  readonly path: KernelPath;
  /** The monitor's lines (or the counters' diff source), for reports. */
  readonly lines: readonly string[];
  /** The probe's source port. */
  readonly sourcePort: number;
}

/** A streaming reader of a monitor process's stdout lines. */
class Monitor {
  readonly lines: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #done: Promise<void>;
  #changed: () => void = () => {};

  constructor(tool: string, args: readonly string[], netns: string | undefined) {
    const child = spawnTool(tool, args, netns === undefined ? {} : { netns });
    this.#child = child;
    this.#done = (async () => {
      const decoder = new TextDecoder();
      let buffer = "";
      for await (const chunk of child.stdout) {
        buffer += decoder.decode(chunk, { stream: true });
        const parts = buffer.split("\n");
        buffer = parts.pop() ?? "";
        this.lines.push(...parts);
        this.#changed();
      }
    })();
  }

  /** Resolves once a line matches `test`, or rejects after `ms`. */
  async waitFor(test: (line: string) => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.lines.some(test)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`Cannot trace: the monitor did not show ${what} within ${ms} ms`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.#changed = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch { /* gone */ }
    await this.#child.status;
    await this.#done.catch(() => {});
    await this.#child.stderr.cancel().catch(() => {});
  }
}

function randomId(): string {
  return Math.random().toString(36).slice(2, 8).padEnd(6, "0");
}

/** The nft match of exactly the probe (addresses, protocol, ports). */
function probeMatch(packet: ExplainPacket, sourcePort: number): string {
  const ipX = packet.family === "IPv4" ? "ip" : "ip6";
  const proto = packet.protocol.toLowerCase();
  // Only the probe itself, not what its spoofed source sends back on the same tuple (a TCP
  // reset, an SCTP ABORT): a SYN, or an INIT.
  const first = packet.protocol === "TCP"
    ? " tcp flags & (syn | ack) == syn"
    : packet.protocol === "SCTP"
    ? " sctp chunk init exists"
    : "";
  return `${ipX} saddr ${packet.source} ${ipX} daddr ${packet.destination} ` +
    `meta l4proto ${proto} th sport ${sourcePort} th dport ${packet.port}${first}`;
}

function traceChains(table: string, name: string, match: string): string[] {
  return [
    `add chain ${table} ${name}-pre { type filter hook prerouting priority -300 ; }`,
    `add rule ${table} ${name}-pre ${match} meta nftrace set 1`,
    `add chain ${table} ${name}-out { type filter hook output priority -300 ; }`,
    `add rule ${table} ${name}-out ${match} meta nftrace set 1`,
  ];
}

async function inject(packet: ExplainPacket, sourcePort: number, options: KernelTraceOptions) {
  const bytes = buildProbePacket({ ...packet, sourcePort });
  const netns = options.netns === undefined ? {} : { netns: options.netns };
  if (options.fromNode) {
    sendFromNode(bytes, netns);
    return;
  }
  const tun = openTun({
    ...netns,
    ...(options.inputInterface === undefined ? {} : { name: options.inputInterface }),
  });
  try {
    tun.write(bytes);
    // The kernel has taken the packet when write returns; keep the device a moment so the
    // forward and postrouting hooks see an input device that still exists.
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    tun.close();
  }
}

async function forgetConntrack(packet: ExplainPacket, sourcePort: number, netns?: string) {
  const family = packet.family === "IPv4" ? "ipv4" : "ipv6";
  await runToolResult("conntrack", [
    "-D",
    "-f",
    family,
    "-p",
    packet.protocol.toLowerCase(),
    "--orig-src",
    packet.source,
    "--orig-dst",
    packet.destination,
    "--sport",
    String(sourcePort),
    "--dport",
    String(packet.port),
  ], netns === undefined ? {} : { netns }).catch(() => null);
}

/** How to set a trace up and take it down around one monitor run. */
interface TraceSetup {
  /** Adds harmless canary object `k`; the monitor printing `canary(k)` means it listens. */
  readonly addCanary: (k: number) => Promise<void>;
  /** The text the monitor prints for canary `k`. */
  readonly canary: (k: number) => string;
  /** Adds the trace rules. */
  readonly add: () => Promise<void>;
  /** Removes the trace rules and the canaries `0..canaries-1`. */
  readonly remove: (canaries: number) => Promise<void>;
}

const CANARY_ATTEMPTS = 20;

async function withMonitor(
  args: readonly string[],
  options: KernelTraceOptions,
  setup: TraceSetup,
  send: () => Promise<void>,
): Promise<string[]> {
  const timeout = options.timeoutMs ?? 5000;
  const [tool, ...rest] = args as [string, ...string[]];
  const monitor = new Monitor(tool, rest, options.netns);
  let canaries = 0;
  try {
    // The monitor listens once it prints a change made after it started.
    for (;;) {
      await setup.addCanary(canaries);
      canaries++;
      try {
        await monitor.waitFor((l) => l.includes(setup.canary(canaries - 1)), 250, "a canary");
        break;
      } catch (e) {
        if (canaries >= CANARY_ATTEMPTS) throw e;
      }
    }
    await setup.add();
    await send();
    // The probe's hooks have all run when sending returns, so its trace events are queued on
    // the monitor's socket before the event of one more canary: seeing that, we have them all.
    await setup.addCanary(canaries);
    canaries++;
    await monitor.waitFor((l) => l.includes(setup.canary(canaries - 1)), timeout, "the end marker");
    return [...monitor.lines];
  } finally {
    try {
      if (canaries > 0) await setup.remove(canaries);
    } finally {
      await monitor.stop();
    }
  }
}

/** Sends the packet once and reads what the kernel did with it. */
export async function traceInKernel(
  packet: ExplainPacket,
  options: KernelTraceOptions,
): Promise<KernelTrace> {
  const netns = options.netns === undefined ? {} : { netns: options.netns };
  const sourcePort = 32768 + Math.floor(Math.random() * 28000);
  const id = randomId();
  const match = probeMatch(packet, sourcePort);
  const send = () => inject(packet, sourcePort, options);
  try {
    if (options.mode === "nftables") {
      const table = `${packet.family === "IPv4" ? "ip" : "ip6"} ${TABLE_NAME}`;
      const tables = await runTool("nft", ["list", "tables"], netns);
      if (!tables.split("\n").some((l) => l.trim() === `table ${table}`)) {
        throw new Error(
          `Cannot trace: table ${table} is not here (is kproxy running with --proxy-mode nftables?)`,
        );
      }
      const name = `explain-trace-${id}`;
      const canary = (k: number) => `explain-ready-${id}-${k}`;
      const nft = (lines: readonly string[]) =>
        runTool("nft", ["-f", "-"], { ...netns, stdin: lines.join("\n") + "\n" }).then(() => {});
      let traced = false;
      const lines = await withMonitor(["nft", "monitor"], options, {
        addCanary: (k) => nft([`add chain ${table} ${canary(k)}`]),
        canary,
        add: async () => {
          await nft(traceChains(table, name, match));
          traced = true;
        },
        remove: (n) =>
          nft([
            ...(traced
              ? [`delete chain ${table} ${name}-pre`, `delete chain ${table} ${name}-out`]
              : []),
            ...Array.from({ length: n }, (_, k) => `delete chain ${table} ${canary(k)}`),
          ]),
      }, send);
      const path = parseNftTrace(lines, {
        tables: new Map([[table, table]]),
        ignoreChains: (c) => c.startsWith("explain-"),
        targets: "all",
      });
      return { method: "nftrace", path, lines, sourcePort };
    }
    if ((options.iptablesVariant ?? "nft") === "nft") {
      const table = `${packet.family === "IPv4" ? "ip" : "ip6"} kproxy-explain-${id}`;
      const nft = (lines: readonly string[]) =>
        runTool("nft", ["-f", "-"], { ...netns, stdin: lines.join("\n") + "\n" }).then(() => {});
      // nft monitor, not xtables-monitor: the latter dies on the IPv6 trace rule.
      const lines = await withMonitor(["nft", "monitor"], options, {
        addCanary: (k) => nft([`add table ${table}`, `add chain ${table} ready-${k}`]),
        canary: (k) => `${table} ready-${k}`,
        add: () => nft(traceChains(table, "trace", match)),
        remove: () => nft([`delete table ${table}`]),
      }, send);
      const ipX = packet.family === "IPv4" ? "ip" : "ip6";
      const path = parseNftTrace(lines, {
        tables: new Map([[`${ipX} nat`, "nat"], [`${ipX} filter`, "filter"]]),
        ignoreChains: () => false,
        targets: { prefix: "KUBE-" },
      });
      return { method: "nftrace-iptables", path, lines, sourcePort };
    }
    const save = packet.family === "IPv4" ? "iptables-legacy-save" : "ip6tables-legacy-save";
    const before = await runTool(save, ["-c"], netns);
    await send();
    // Read at once: the probe has been counted when sending returns; its replies only add noise.
    const after = await runTool(save, ["-c"], netns);
    return {
      method: "counters",
      path: counterPath(before, after),
      lines: after.split("\n").filter((l) => /^\[\d+:\d+\] -A KUBE-/.test(l)),
      sourcePort,
    };
  } finally {
    await forgetConntrack(packet, sourcePort, options.netns);
  }
}
