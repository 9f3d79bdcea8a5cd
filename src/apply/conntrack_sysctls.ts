/**
 * The conntrack sysctls kube-proxy owns, set once at start as upstream's `setupConntrack`
 * (cmd/kube-proxy/app/server_linux.go and conntrack.go, v1.34) does, in kproxy's own network
 * namespace (its `/proc/sys/net` is the namespace's):
 *
 * - `nf_conntrack_max` = max(`--conntrack-max-per-core` × CPUs, `--conntrack-min`), unless the
 *   per-core value is 0; then the conntrack hash table is grown to max/4 buckets when smaller.
 *   Upstream writes `/sys/module/nf_conntrack/parameters/hashsize` and only logs (and records a
 *   Node event) when /sys is read-only; kproxy writes `nf_conntrack_buckets`, the same table size
 *   (the kernel resizes the table for either), and only logs when that write does not take;
 * - `nf_conntrack_tcp_timeout_established`, `…_tcp_timeout_close_wait`, `…_udp_timeout`,
 *   `…_udp_timeout_stream` in whole seconds, each only when its duration is above 0;
 * - `nf_conntrack_tcp_be_liberal` = 1 when `--conntrack-tcp-be-liberal` (false leaves it).
 *
 * A sysctl already at its value is not written. A write that fails is fatal, as upstream: on
 * Linux 6.x `nf_conntrack_max` (and the hash size) are global and read-only outside the host's
 * network namespace, so a kproxy in a container's own namespace needs
 * `--conntrack-max-per-core=0`, exactly as kube-proxy does (it exits with "open
 * /proc/sys/net/netfilter/nf_conntrack_max: permission denied"). The timeouts and be_liberal are
 * per namespace.
 *
 * Everything goes through the `sysctl` tool (Deno lets no process without `--allow-all` touch
 * /proc/sys or /sys), and every write is read back: procps `sysctl -w` exits 0 even when the
 * kernel refused the value.
 *
 * @module
 */
import type { ConntrackConfig } from "../config/proxy_config.ts";
import { runToolResult, type ToolResult } from "./run_tool.ts";

/** One sysctl under net/netfilter and the value to give it. */
export interface ConntrackSysctl {
  /** Name under `net/netfilter`, e.g. `nf_conntrack_max`. */
  readonly name: string;
  /** Its value. */
  readonly value: number;
}

/** Upstream's `getConntrackMax`: per-core × CPUs, at least `min`; 0 means leave it. */
export function conntrackMax(config: ConntrackConfig, cpus: number): number {
  if (config.maxPerCore <= 0) return 0;
  return Math.max(config.maxPerCore * cpus, config.min);
}

/** The sysctls to set for `config` on a machine with `cpus` CPUs, in upstream's order. */
export function conntrackSysctls(config: ConntrackConfig, cpus: number): ConntrackSysctl[] {
  const out: ConntrackSysctl[] = [];
  const max = conntrackMax(config, cpus);
  if (max > 0) out.push({ name: "nf_conntrack_max", value: max });
  // Go's int(d / time.Second): whole seconds, rounded down.
  const seconds = (ms: number) => Math.floor(ms / 1000);
  if (config.tcpEstablishedTimeoutMs > 0) {
    out.push({
      name: "nf_conntrack_tcp_timeout_established",
      value: seconds(config.tcpEstablishedTimeoutMs),
    });
  }
  if (config.tcpCloseWaitTimeoutMs > 0) {
    out.push({
      name: "nf_conntrack_tcp_timeout_close_wait",
      value: seconds(config.tcpCloseWaitTimeoutMs),
    });
  }
  if (config.tcpBeLiberal) out.push({ name: "nf_conntrack_tcp_be_liberal", value: 1 });
  if (config.udpTimeoutMs > 0) {
    out.push({ name: "nf_conntrack_udp_timeout", value: seconds(config.udpTimeoutMs) });
  }
  if (config.udpStreamTimeoutMs > 0) {
    out.push({
      name: "nf_conntrack_udp_timeout_stream",
      value: seconds(config.udpStreamTimeoutMs),
    });
  }
  return out;
}

/** Runs `sysctl` with some arguments. */
export type SysctlRunner = (args: readonly string[]) => Promise<ToolResult>;

/** Options of {@link setupConntrack}. */
export interface SetupConntrackOptions {
  /** CPUs to scale `maxPerCore` by (default: `navigator.hardwareConcurrency`). */
  readonly cpus?: number;
  /** Runs `sysctl` (default: the tool, in this process's network namespace). */
  readonly run?: SysctlRunner;
  /** Log sink. */
  readonly log?: (line: string) => void;
}

/** A conntrack setting kproxy could not make: fatal at start, as for kube-proxy. */
export class ConntrackSetupError extends Error {
  /** Makes one. */
  constructor(message: string) {
    super(message);
    this.name = "ConntrackSetupError";
  }
}

const runSysctl: SysctlRunner = (args) => runToolResult("sysctl", args, { timeoutMs: 10_000 });

/** Reads `net.netfilter.<name>`; NaN when it cannot be read. */
async function readSysctl(run: SysctlRunner, name: string): Promise<number> {
  const r = await run(["-n", `net.netfilter.${name}`]).catch(() => null);
  const text = r?.code === 0 ? r.stdout.trim() : "";
  return text === "" ? NaN : Number(text);
}

/** Writes `net.netfilter.<name>` and reads it back; returns why it did not take, or null. */
async function writeSysctl(run: SysctlRunner, name: string, value: number): Promise<string | null> {
  let stderr = "";
  try {
    const r = await run(["-w", `net.netfilter.${name}=${value}`]);
    stderr = r.stderr.trim();
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  const now = await readSysctl(run, name);
  if (now === value) return null;
  return `it stays ${Number.isNaN(now) ? "unreadable" : now}${stderr === "" ? "" : ` (${stderr})`}`;
}

/**
 * Sets the conntrack sysctls of `config` (see the module comment); returns what it wrote.
 * Throws {@link ConntrackSetupError} naming the sysctl when a write does not take.
 */
export async function setupConntrack(
  config: ConntrackConfig,
  options: SetupConntrackOptions = {},
): Promise<ConntrackSysctl[]> {
  const run = options.run ?? runSysctl;
  const log = options.log ?? (() => {});
  const cpus = options.cpus ?? navigator.hardwareConcurrency;
  const written: ConntrackSysctl[] = [];
  for (const sysctl of conntrackSysctls(config, cpus)) {
    if (await readSysctl(run, sysctl.name) !== sysctl.value) {
      const failed = await writeSysctl(run, sysctl.name, sysctl.value);
      if (failed !== null) {
        const hint = sysctl.name === "nf_conntrack_max"
          ? "; it is global and read-only outside the host's network namespace, and " +
            "--conntrack-max-per-core=0 leaves it as it is"
          : "";
        throw new ConntrackSetupError(
          `Cannot set net/netfilter/${sysctl.name} to ${sysctl.value}: ${failed}${hint}`,
        );
      }
      log(`conntrack: set net/netfilter/${sysctl.name}=${sysctl.value}`);
      written.push(sysctl);
    }
    if (sysctl.name === "nf_conntrack_max") await ensureBuckets(run, sysctl.value, log);
  }
  return written;
}

/** Upstream's hash size rule after nf_conntrack_max: at least max/4 buckets. */
async function ensureBuckets(
  run: SysctlRunner,
  max: number,
  log: (line: string) => void,
): Promise<void> {
  const want = Math.trunc(max / 4);
  const buckets = await readSysctl(run, "nf_conntrack_buckets");
  if (Number.isNaN(buckets)) {
    throw new ConntrackSetupError("Cannot read net/netfilter/nf_conntrack_buckets");
  }
  if (buckets >= want) return;
  const failed = await writeSysctl(run, "nf_conntrack_buckets", want);
  if (failed !== null) {
    log(
      `conntrack: cannot grow net/netfilter/nf_conntrack_buckets from ${buckets} to ${want}: ` +
        `${failed}; conntrack limits may cause problems later`,
    );
    return;
  }
  log(`conntrack: set net/netfilter/nf_conntrack_buckets=${want}`);
}
