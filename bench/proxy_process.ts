/**
 * The proxies the end-to-end benchmark runs, each inside its own bench namespace: kproxy
 * (`deno run -A src/cli/main.ts`) and upstream kube-proxy (`.cache/fixtures/bin/kube-proxy`),
 * with their logs in files, their memory read from /proc, and a probe that tells when their
 * first full sync is in the kernel.
 *
 * Upstream runs with default flags except what keeps it off the host: conntrack sysctls left
 * as they are (`--conntrack-max-per-core=0`, TCP timeouts 0; the UDP ones default to 0), its OOM
 * score left alone (`--oom-score-adj=0`). It still sets `route_localnet` in iptables mode, which
 * is per network namespace.
 *
 * @module
 */
import { servicePortChainNames } from "../src/render/iptables/chain_names.ts";
import { fixtureBinary } from "../tests/fixtures/apiserver.ts";
import { pollUntil } from "./rule_watch.ts";
import { BENCH_CLUSTER_CIDRS, BENCH_NODE_NAME } from "./synthetic_cluster.ts";
import { v8FlagsArg } from "../src/v8_flags.ts";

/** Which implementation. */
export type ProxyImpl = "kproxy" | "kube-proxy";
/** Which backend. */
export type ProxyMode = "nftables" | "iptables";

/** What to run. */
export interface ProxySpec {
  /** kproxy or upstream. */
  readonly impl: ProxyImpl;
  /** Backend. */
  readonly mode: ProxyMode;
  /** `--min-sync-period`, when not the default. */
  readonly minSyncPeriod?: string;
  /** A short label for tables and logs, e.g. `kube-proxy nftables (min-sync 0)`. */
  readonly label: string;
}

/** A running proxy. */
export interface ProxyProcess {
  /** What it is. */
  readonly spec: ProxySpec;
  /** Its namespace. */
  readonly netns: string;
  /** PID of the proxy itself (`ip netns exec` execs it). */
  readonly pid: number;
  /** Epoch ms when it was started. */
  readonly startedAt: number;
  /** Its log file. */
  readonly logPath: string;
  /** Exit status, once it exited. */
  exited(): Deno.CommandStatus | null;
  /** Stops it (SIGTERM, then SIGKILL after 10 s). */
  stop(): Promise<void>;
}

const REPO = new URL("../", import.meta.url).pathname;

/** Options of {@link proxyArgv} and {@link startProxy}. */
export interface ProxyArgvOptions {
  /** `--hostname-override`; default {@link BENCH_NODE_NAME}. */
  readonly nodeName?: string;
}

/** The command line of a proxy. */
export function proxyArgv(
  spec: ProxySpec,
  kubeconfig: string,
  options: ProxyArgvOptions = {},
): string[] {
  const common = [
    `--kubeconfig=${kubeconfig}`,
    `--proxy-mode=${spec.mode}`,
    `--hostname-override=${options.nodeName ?? BENCH_NODE_NAME}`,
    `--cluster-cidr=${BENCH_CLUSTER_CIDRS.join(",")}`,
  ];
  if (spec.minSyncPeriod !== undefined) {
    // kube-proxy's flag applies to every mode but IPVS (the config file's minSyncPeriod).
    const flag = spec.impl === "kproxy" ? "min-sync-period" : "iptables-min-sync-period";
    common.push(`--${flag}=${spec.minSyncPeriod}`);
  }
  // Both leave the conntrack sysctls alone (nf_conntrack_max is read-only in a namespace).
  const conntrack = [
    "--conntrack-max-per-core=0",
    "--conntrack-tcp-timeout-established=0",
    "--conntrack-tcp-timeout-close-wait=0",
  ];
  if (spec.impl === "kproxy") {
    return [
      Deno.execPath(),
      "run",
      "-A",
      v8FlagsArg(),
      `${REPO}src/cli/main.ts`,
      ...common,
      ...conntrack,
    ];
  }
  return [
    fixtureBinary("kube-proxy"),
    ...common,
    ...conntrack,
    "--oom-score-adj=0",
    "--v=2",
  ];
}

/** Starts a proxy in `netns`, logging to `logPath`. */
export async function startProxy(
  spec: ProxySpec,
  netns: string,
  kubeconfig: string,
  logPath: string,
  options: ProxyArgvOptions = {},
): Promise<ProxyProcess> {
  const argv = proxyArgv(spec, kubeconfig, options);
  const log = await Deno.open(logPath, { write: true, create: true, truncate: true });
  await log.write(new TextEncoder().encode(`### ip netns exec ${netns} ${argv.join(" ")}\n`));
  const startedAt = performance.timeOrigin + performance.now();
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", netns, ...argv],
    cwd: REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let status: Deno.CommandStatus | null = null;
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      let written = 0;
      while (written < chunk.length) written += await log.write(chunk.subarray(written));
    }
  };
  const pumps = Promise.allSettled([pump(child.stdout), pump(child.stderr)]);
  const finished = child.status.then(async (s) => {
    status = s;
    await pumps;
    log.close();
    return s;
  });
  return {
    spec,
    netns,
    pid: child.pid,
    startedAt,
    logPath,
    exited: () => status,
    stop: async () => {
      if (status !== null) return;
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 10_000);
      await finished;
      clearTimeout(timer);
    },
  };
}

/** `VmHWM` and `VmRSS` of a process, bytes (null when it is gone). */
export async function memoryOf(pid: number): Promise<{ hwm: number; rss: number } | null> {
  try {
    const text = await Deno.readTextFile(`/proc/${pid}/status`);
    const kb = (f: string) => Number(new RegExp(`${f}:\\s+(\\d+) kB`).exec(text)?.[1] ?? NaN);
    return { hwm: kb("VmHWM") * 1024, rss: kb("VmRSS") * 1024 };
  } catch {
    return null;
  }
}

/** CPU time (user + system) a process used so far, seconds (null when it is gone). */
export async function cpuSecondsOf(pid: number): Promise<number | null> {
  try {
    const fields = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1]?.split(" ") ?? [];
    // Fields 14 and 15 of stat (utime, stime), in clock ticks of 1/100 s.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/** A command whose output shows that a proxy's first full sync is live in the kernel. */
export interface SyncMarker {
  /** What to run inside the proxy's namespace. */
  readonly argv: readonly string[];
  /** True when the command's output shows the marker. */
  seen(stdout: string): boolean;
}

/** The last service port of the cluster, which the first full sync writes with all the others. */
export interface MarkerServicePort {
  /** Namespace. */
  readonly namespace: string;
  /** Service name. */
  readonly name: string;
  /** Port name (TCP). */
  readonly port: string;
  /** The Service's (IPv4) ClusterIP. */
  readonly clusterIP: string;
}

/**
 * How to see that a proxy's first full sync (one atomic transaction) is live: iptables, the
 * service port's chain in `nft list chains`; nftables, its ClusterIP in the proxy table's
 * `cluster-ips` set, which kproxy and upstream both keep (a plain kproxy service port has no
 * chain of its own since f704c63, only set and map elements).
 */
export function fullSyncMarker(spec: ProxySpec, sp: MarkerServicePort): SyncMarker {
  if (spec.mode === "iptables") {
    const chain = servicePortChainNames(`${sp.namespace}/${sp.name}:${sp.port}`, "TCP").svc;
    return { argv: ["nft", "list", "chains"], seen: (text) => text.includes(chain) };
  }
  const table = spec.impl === "kproxy" ? "kproxy" : "kube-proxy";
  const ip = new RegExp(`[\\s{,]${sp.clusterIP.replaceAll(".", "\\.")}[\\s},]`);
  return {
    argv: ["nft", "get", "element", "ip", table, "cluster-ips", `{ ${sp.clusterIP} }`],
    seen: (text) => ip.test(text),
  };
}

/**
 * Polls `marker` in the proxy's namespace until it shows; the epoch ms it was first seen, or
 * null after `timeoutMs` (or when the proxy exited).
 */
export async function waitForSync(
  proxy: ProxyProcess,
  marker: SyncMarker,
  options: { intervalMs: number; timeoutMs: number },
): Promise<number | null> {
  const result = await pollUntil(
    ["ip", "netns", "exec", proxy.netns, ...marker.argv],
    (text) => marker.seen(text) || proxy.exited() !== null,
    options,
  );
  return proxy.exited() !== null ? null : result.at;
}
