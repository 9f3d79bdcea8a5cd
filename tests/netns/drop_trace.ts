/**
 * Proof that a packet was dropped by a proxy rule, not merely lost: while probes run, a small
 * table of the test's own (`inet kproxy-test-trace`) in the node namespace sets `meta nftrace` on
 * packets to the probed address, and `nft monitor` reports every chain each packet passes and
 * the verdict that ended it. An unrouted address times out too, but leaves no drop verdict in the
 * proxy's chains. iptables-nft rules are nf_tables chains, so the same trace covers both backends.
 * iptables-legacy is not nf_tables: there the proof is the packet counters of the `KUBE-*` DROP
 * rules (`iptables-legacy-save -c` before and after), one drop counted per packet.
 *
 * Only the node namespace of a test topology is touched; the trace table is removed afterwards.
 *
 * @module
 */
import { runTool } from "../../src/apply/run_tool.ts";
import { TABLE_NAME } from "../../src/render/nftables/names.ts";
import type { ProbeTarget } from "./probe.ts";

/** The test's own table that marks packets for tracing. */
export const TRACE_TABLE = "kproxy-test-trace";

/** One packet's path as `nft monitor` reported it. */
export interface PacketTrace {
  /** The kernel's trace id of the packet. */
  readonly id: string;
  /** `family table chain` of each chain the packet entered, in order. */
  readonly chains: readonly string[];
  /** Where a `drop` verdict ended the packet (`family table chain`), or null. */
  readonly droppedIn: string | null;
}

/** Upstream kube-proxy's nftables table. */
const UPSTREAM_TABLE_NAME = "kube-proxy";

/**
 * Whether `family table chain` is one of a proxy's: kproxy's nftables tables, upstream
 * kube-proxy's (`kube-proxy`), or an iptables chain of either (`KUBE-*`).
 */
export function isProxyChain(where: string): boolean {
  const [, table, chain] = where.split(" ");
  return table === TABLE_NAME || table === UPSTREAM_TABLE_NAME || (chain ?? "").startsWith("KUBE-");
}

/** Reads `nft monitor` output into one {@link PacketTrace} per trace id, in order of appearance. */
export function parsePacketTraces(monitorOutput: string): PacketTrace[] {
  const traces = new Map<string, { chains: string[]; droppedIn: string | null }>();
  const line = /^trace id ([0-9a-f]+) (\S+) (\S+) (\S+) (.*)$/;
  for (const text of monitorOutput.split("\n")) {
    const m = line.exec(text.trim());
    if (m === null) continue;
    const [, id = "", family, table, chain, rest = ""] = m;
    if (table === TRACE_TABLE) continue;
    const where = `${family} ${table} ${chain}`;
    const trace = traces.get(id) ?? { chains: [], droppedIn: null };
    traces.set(id, trace);
    if (trace.chains.at(-1) !== where) trace.chains.push(where);
    if (/\(verdict drop\)\s*$|^policy drop\b|^verdict drop\b/.test(rest)) {
      trace.droppedIn ??= where;
    }
  }
  return [...traces].map(([id, t]) => ({ id, chains: t.chains, droppedIn: t.droppedIn }));
}

/** The nft match for packets to `target`. */
function targetMatch(target: ProbeTarget): string {
  const family = target.ip.includes(":") ? "ip6" : "ip";
  return `${family} daddr ${target.ip} ${target.protocol.toLowerCase()} dport ${target.port}`;
}

/** The trace table: marks packets to `target` as they arrive and as the node sends them. */
function traceTableScript(target: ProbeTarget): string {
  const rule = `${targetMatch(target)} meta nftrace set 1`;
  return [
    `table inet ${TRACE_TABLE} {`,
    `  chain prerouting {`,
    `    type filter hook prerouting priority -400; policy accept;`,
    `    ${rule}`,
    `  }`,
    `  chain output {`,
    `    type filter hook output priority -400; policy accept;`,
    `    ${rule}`,
    `  }`,
    `}`,
    "",
  ].join("\n");
}

async function nft(netns: string, args: string[], stdin?: string): Promise<string> {
  return await runTool("nft", args, { netns, ...(stdin === undefined ? {} : { stdin }) });
}

/** A running `nft monitor` in a namespace, collecting its output. */
class NftMonitor {
  #output = "";
  readonly #child: Deno.ChildProcess;
  readonly #done: Promise<void>;

  constructor(netns: string) {
    this.#child = new Deno.Command("ip", {
      args: ["netns", "exec", netns, "nft", "monitor"],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#done = this.#child.stdout.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (chunk) => void (this.#output += chunk) }),
    ).catch(() => {});
  }

  get output(): string {
    return this.#output;
  }

  async stop(): Promise<string> {
    try {
      this.#child.kill("SIGTERM");
    } catch { /* already gone */ }
    await this.#child.status;
    await this.#done;
    return this.#output;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How a backend's drops are seen: nf_tables traces, or iptables-legacy rule counters. */
export type DropEvidence = "nftrace" | "legacy-counters";

/** `family table chain` → packets dropped by that chain's DROP rules, from `*-save -c` output. */
export function parseDropCounters(family: "ip" | "ip6", saveOutput: string): Map<string, number> {
  const out = new Map<string, number>();
  let table = "";
  for (const line of saveOutput.split("\n")) {
    if (line.startsWith("*")) table = line.slice(1).trim();
    const m = /^\[(\d+):\d+\] -A (\S+) .*-j DROP\s*$/.exec(line.trim());
    if (m === null) continue;
    const where = `${family} ${table} ${m[2]}`;
    out.set(where, (out.get(where) ?? 0) + Number(m[1]));
  }
  return out;
}

/** One synthetic trace per packet a proxy DROP rule counted between two readings. */
export function countedDrops(
  before: ReadonlyMap<string, number>,
  after: ReadonlyMap<string, number>,
): PacketTrace[] {
  const out: PacketTrace[] = [];
  for (const [where, n] of after) {
    if (!isProxyChain(where)) continue;
    for (let i = 0; i < n - (before.get(where) ?? 0); i++) {
      out.push({ id: `${where}#${i + 1}`, chains: [where], droppedIn: where });
    }
  }
  return out;
}

async function legacyDropCounters(
  netns: string,
  target: ProbeTarget,
): Promise<Map<string, number>> {
  const family = target.ip.includes(":") ? "ip6" : "ip";
  const save = family === "ip6" ? "ip6tables-legacy-save" : "iptables-legacy-save";
  return parseDropCounters(family, await runTool(save, ["-c"], { netns }));
}

/**
 * Runs `probe` while every packet to `target` is traced in `netns` (or, with `legacy-counters`,
 * while the proxy's DROP rules count); returns its value and one trace per packet seen. The
 * monitor is known to listen (a ping table's events show up) before tracing starts.
 */
export async function traceProbes<T>(
  netns: string,
  target: ProbeTarget,
  probe: () => Promise<T>,
  evidence: DropEvidence = "nftrace",
): Promise<{ value: T; traces: PacketTrace[] }> {
  if (evidence === "legacy-counters") {
    const before = await legacyDropCounters(netns, target);
    const value = await probe();
    return { value, traces: countedDrops(before, await legacyDropCounters(netns, target)) };
  }
  const monitor = new NftMonitor(netns);
  try {
    const ping = `${TRACE_TABLE}-ping`;
    for (let waited = 0; !monitor.output.includes(ping); waited += 50) {
      if (waited > 10_000) throw new Error(`nft monitor in ${netns} reported nothing in 10 s`);
      await nft(netns, ["-f", "-"], `add table inet ${ping}\ndelete table inet ${ping}\n`);
      await sleep(50);
    }
    await nft(netns, ["-f", "-"], traceTableScript(target));
    const value = await probe();
    await sleep(200); // the last events reach the monitor
    return { value, traces: parsePacketTraces(await monitor.stop()) };
  } finally {
    await monitor.stop();
    await nft(netns, ["delete", "table", "inet", TRACE_TABLE]).catch(() => {});
  }
}
