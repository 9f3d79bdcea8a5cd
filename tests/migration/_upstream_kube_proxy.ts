/**
 * Upstream kube-proxy (the fixture build, v1.34.4) run inside a test network namespace — never
 * anywhere else — against the test cluster, which `exposeInNetns` makes reachable in there at
 * its usual 127.0.0.1 URL.
 *
 * It runs with `--conntrack-max-per-core=0` and zero TCP timeouts, so it leaves the conntrack
 * sysctls alone, and binds its health and metrics servers to the namespace's own loopback.
 *
 * @module
 */
import { fixtureBinary, type TestCluster } from "../fixtures/apiserver.ts";

/** kube-proxy's backends the migration tests use. */
export type UpstreamMode = "nftables" | "iptables";

/** A running upstream kube-proxy. */
export interface UpstreamKubeProxy {
  /** Its log file (stdout and stderr). */
  readonly logPath: string;
  /** The last lines of its log. */
  tail(lines?: number): Promise<string>;
  /** Exit status once it ended, else undefined. */
  exitStatus(): Deno.CommandStatus | undefined;
  /** Kills it (SIGKILL, as a crashed or replaced kube-proxy: rules stay) and waits. */
  kill(): Promise<void>;
}

/** Options of {@link startUpstreamKubeProxy}. */
export interface UpstreamKubeProxyOptions {
  /** The node name (`--hostname-override`); a Node of that name must exist. */
  readonly nodeName: string;
  /** `--cluster-cidr`, comma-separated; default none. */
  readonly clusterCIDR?: string;
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
  if (!/^kp[0-9a-z-]+$/.test(netns)) {
    throw new Error(`Cannot start kube-proxy in netns ${netns}: not a test namespace`);
  }
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
    "--conntrack-max-per-core=0",
    "--conntrack-tcp-timeout-established=0s",
    "--conntrack-tcp-timeout-close-wait=0s",
    "--healthz-bind-address=127.0.0.1:10256",
    "--metrics-bind-address=127.0.0.1:10249",
    ...(options.clusterCIDR ? [`--cluster-cidr=${options.clusterCIDR}`] : []),
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
    logPath,
    tail,
    exitStatus: () => status,
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
