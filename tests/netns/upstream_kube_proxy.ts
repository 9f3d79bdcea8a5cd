/**
 * Upstream kube-proxy (the fixture build, v1.34.4) run inside a test network namespace — never
 * anywhere else — against the test cluster, which `exposeInNetns` makes reachable in there at
 * its usual 127.0.0.1 URL.
 *
 * It runs with `--conntrack-max-per-core=0` and zero TCP timeouts (unless `args` has its own
 * `--conntrack-*` flags), so it leaves the conntrack sysctls alone, and binds its health and
 * metrics servers to the namespace's own loopback (127.0.0.1:10256 and 127.0.0.1:10249, read
 * with {@link UpstreamKubeProxy.get}).
 *
 * @module
 */
import { runToolResult } from "../../src/apply/run_tool.ts";
import { fixtureBinary, type TestCluster } from "../fixtures/apiserver.ts";
import { type HttpAnswer, httpInNetns } from "../reliability/_kproxy.ts";

/** kube-proxy's backends the lab runs. */
export type UpstreamMode = "nftables" | "iptables";

/** Where upstream's health server listens inside its namespace. */
export const UPSTREAM_HEALTHZ = "127.0.0.1:10256";
/** Where upstream's metrics server listens inside its namespace. */
export const UPSTREAM_METRICS = "127.0.0.1:10249";

/** A running upstream kube-proxy. */
export interface UpstreamKubeProxy {
  /** The namespace it runs in. */
  readonly netns: string;
  /** Its backend. */
  readonly mode: UpstreamMode;
  /** Its log file (stdout and stderr). */
  readonly logPath: string;
  /** The last lines of its log. */
  tail(lines?: number): Promise<string>;
  /** Exit status once it ended, else undefined. */
  exitStatus(): Deno.CommandStatus | undefined;
  /** GET `path` from its health (`health`) or metrics (`metrics`) server, inside the namespace. */
  get(server: "health" | "metrics", path: string): Promise<HttpAnswer>;
  /** Kills it (SIGKILL, as a crashed or replaced kube-proxy: rules stay) and waits. */
  kill(): Promise<void>;
}

/** Options of {@link startUpstreamKubeProxy}. */
export interface UpstreamKubeProxyOptions {
  /** The node name (`--hostname-override`); a Node of that name must exist. */
  readonly nodeName: string;
  /** `--cluster-cidr`, comma-separated; default none. */
  readonly clusterCIDR?: string;
  /**
   * Further flags, after the fixed ones (e.g. `--nodeport-addresses=primary`); with any
   * `--conntrack-*` flag among them the fixed conntrack flags are left out: the test decides.
   */
  readonly args?: readonly string[];
  /** Folder for the log file; default a new temporary folder. */
  readonly logDir?: string;
}

/** Starts upstream kube-proxy in `netns` with kube-proxy's own RBAC identity. */
export async function startUpstreamKubeProxy(
  cluster: TestCluster,
  netns: string,
  mode: UpstreamMode,
  options: UpstreamKubeProxyOptions,
): Promise<UpstreamKubeProxy> {
  assertTestNamespace(netns);
  const dir = options.logDir ?? await Deno.makeTempDir({ prefix: "kproxy-upstream-" });
  const logPath = `${dir}/kube-proxy-${mode}-${netns}.log`;
  const log = await Deno.open(logPath, { create: true, append: true });
  const args = [
    "netns",
    "exec",
    netns,
    fixtureBinary("kube-proxy"),
    `--kubeconfig=${cluster.kubeProxyKubeconfigPath}`,
    `--hostname-override=${options.nodeName}`,
    `--proxy-mode=${mode}`,
    ...(options.args?.some((a) => a.startsWith("--conntrack-")) ? [] : [
      "--conntrack-max-per-core=0",
      "--conntrack-tcp-timeout-established=0s",
      "--conntrack-tcp-timeout-close-wait=0s",
    ]),
    `--healthz-bind-address=${UPSTREAM_HEALTHZ}`,
    `--metrics-bind-address=${UPSTREAM_METRICS}`,
    ...(options.clusterCIDR ? [`--cluster-cidr=${options.clusterCIDR}`] : []),
    ...(options.args ?? []),
    "--v=2",
  ];
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("ip", {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    log.close();
    throw e;
  }
  // Both streams into the one log file, unbuffered.
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) await log.write(chunk).catch(() => 0);
  };
  const pumps = Promise.allSettled([pump(child.stdout), pump(child.stderr)]);
  let status: Deno.CommandStatus | undefined;
  const finished = child.status.then(async (s) => {
    status = s;
    await pumps;
    log.close();
  });
  const tail = async (lines = 40) => {
    const text = await Deno.readTextFile(logPath).catch(() => "");
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  };
  return {
    netns,
    mode,
    logPath,
    tail,
    exitStatus: () => status,
    get: (server, path) =>
      httpInNetns(
        netns,
        `http://${server === "health" ? UPSTREAM_HEALTHZ : UPSTREAM_METRICS}${path}`,
      ),
    kill: async () => {
      if (status === undefined) {
        try {
          // `ip netns exec` execs kube-proxy: this pid is kube-proxy itself.
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }
      await finished;
    },
  };
}

/** Runs `kube-proxy --cleanup` in `netns`: upstream removes every rule of every mode it owns. */
export async function cleanupUpstreamRules(netns: string): Promise<void> {
  assertTestNamespace(netns);
  const r = await runToolResult(fixtureBinary("kube-proxy"), ["--cleanup", "--v=0"], {
    netns,
    timeoutMs: 60_000,
  });
  if (r.code !== 0) {
    throw new Error(`kube-proxy --cleanup in ${netns} exited with ${r.code}:\n${r.stderr}`);
  }
}

function assertTestNamespace(netns: string): void {
  if (!/^kp[0-9a-z-]+$/.test(netns)) {
    throw new Error(`Cannot run kube-proxy in netns ${netns}: not a test namespace`);
  }
}

/** Polls `probe` every 200 ms until it returns true; throws `describe()` after `timeoutMs`. */
export async function waitUntil(
  probe: () => Promise<boolean>,
  timeoutMs: number,
  describe: () => Promise<string>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(await describe());
}
