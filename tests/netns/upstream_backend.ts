/**
 * The same lab scenario, run against upstream kube-proxy v1.34 (the fixture build): one real
 * kube-apiserver shared by every case of a test file ({@link UpstreamLab}), the scenario's objects
 * written through it ({@link ApiObjects}), upstream started in the topology's node namespace with
 * flags equivalent to kproxy's scenario settings ({@link upstreamArgs}), and each step waited for
 * until upstream's rules for it are live in the kernel. A parity test is then written once and
 * run against kproxy-nftables, kproxy-iptables, upstream-nftables and upstream-iptables:
 *
 * ```ts
 * const lab = new UpstreamLab();
 * for (const backend of [nftables, iptables, lab.backend("nftables"), lab.backend("iptables")]) {
 *   registerScenarioTests(backend, MY_SCENARIOS);
 * }
 * lab.registerStop(); // last: stops the shared API server
 * ```
 *
 * Lower level, for tests that need more than packets (health answers, node changes):
 * `await lab.startNode(topology, "nftables", { settings })` gives a {@link LabNode}:
 * `sync(objects)` writes and waits, `proxy.get("health", "/healthz")` asks upstream. With
 * `{ implementation: "kproxy" }` the node runs kproxy as a process (`--kubeconfig`) instead, with
 * equivalent flags ({@link kproxyArgs}), so one test body checks both proxies from outside.
 *
 * "Live" is read from the kernel, never from the proxy: every sync also bumps the port of a
 * sentinel Service (`default/zz-lab-sync`, written after every other Service and EndpointSlice,
 * so one watch delivers it after them) and waits until the node's rules of each family DNAT that
 * port (and, for upstream, until its V(2) log says that sync ended: stale UDP conntrack entries
 * go after the rules). A Node change has its own watch, so the sentinel does not cover it.
 *
 * IP plan: the API server serves ClusterIPs from 198.18.128.0/17 and fd00:128::/112 (its default
 * ServiceCIDR); the sentinel holds 198.18.255.250 and fd00:128::fffa and points at a pod address
 * nobody has, 198.18.1.250 / fd00:1::fa; scenario addresses stay clear of those.
 *
 * @module
 */
import { runToolResult } from "../../src/apply/run_tool.ts";
import type { SnapshotSettings } from "../../src/snapshot/proxy_state.ts";
import {
  type NetnsBridge,
  startTestCluster,
  type TestCluster,
  type TestClusterOptions,
} from "../fixtures/apiserver.ts";
import {
  type HttpAnswer,
  type KproxyProcess,
  runKproxyOnce,
  startKproxy,
  tail,
} from "../reliability/_kproxy.ts";
import { goFixtures, netns, requiring } from "../requirements.ts";
import { ApiObjects, type PlainObject } from "./api_objects.ts";
import { THIS_NODE } from "./manifests.ts";
import type { Scenario } from "./scenario.ts";
import {
  type ProcessScenarioBackend,
  type ScenarioDriver,
  scenarioSettings,
} from "./scenario_runner.ts";
import type { Topology } from "./topology.ts";
import {
  cleanupUpstreamRules,
  startUpstreamKubeProxy,
  UPSTREAM_HEALTHZ,
  UPSTREAM_METRICS,
  type UpstreamKubeProxy,
  type UpstreamMode,
} from "./upstream_kube_proxy.ts";

export type { UpstreamKubeProxy, UpstreamMode };

/** Which proxy a lab node runs. */
export type LabImplementation = "kproxy" | "upstream";

/** The service CIDRs of the lab's API server: IPv4 and IPv6, as the scenario table uses. */
export const LAB_SERVICE_CIDRS: readonly string[] = Object.freeze([
  "198.18.128.0/17",
  "fd00:128::/112",
]);

const SENTINEL = "zz-lab-sync";
const SENTINEL_CLUSTER_IPS = ["198.18.255.250", "fd00:128::fffa"] as const;
const SENTINEL_ENDPOINTS = ["198.18.1.250", "fd00:1::fa"] as const;
const SENTINEL_FIRST_PORT = 20_000;
/** How long a sync may take to show in the kernel before the step fails. */
const LIVE_TIMEOUT_MS = 30_000;

/**
 * Upstream kube-proxy flags equivalent to kproxy's scenario settings. `hostAddresses` has no flag
 * (upstream reads the interfaces); an empty `nodePortAddresses` means "every local address",
 * which upstream's nftables mode spells `0.0.0.0/0,::/0` (its empty default means `primary`).
 */
export function upstreamArgs(settings: SnapshotSettings, mode: UpstreamMode): string[] {
  return ["--iptables-min-sync-period=0s", ...commonArgs(settings, mode)];
}

/**
 * kproxy flags for the same settings, so that a lab node can run kproxy as a process against
 * the lab's API server exactly as upstream runs.
 */
export function kproxyArgs(settings: SnapshotSettings, mode: UpstreamMode): string[] {
  return [`--iptables-masquerade-bit=${settings.masqueradeBit}`, ...commonArgs(settings, mode)];
}

function commonArgs(settings: SnapshotSettings, mode: UpstreamMode): string[] {
  const args: string[] = [];
  if (settings.clusterCIDRs.length > 0) {
    args.push(`--cluster-cidr=${settings.clusterCIDRs.join(",")}`);
  }
  const detect = settings.detectLocal;
  if (detect !== undefined && detect.mode !== "ClusterCIDR") {
    args.push(`--detect-local-mode=${detect.mode}`);
    if (detect.mode === "BridgeInterface") {
      args.push(`--pod-bridge-interface=${detect.bridgeInterface}`);
    }
    if (detect.mode === "InterfaceNamePrefix") {
      args.push(`--pod-interface-name-prefix=${detect.interfaceNamePrefix}`);
    }
  }
  if (settings.masqueradeAll) args.push("--masquerade-all=true");
  if (settings.masqueradeBit !== 14) {
    args.push(`--iptables-masquerade-bit=${settings.masqueradeBit}`);
  }
  args.push(`--iptables-localhost-nodeports=${settings.localhostNodePorts}`);
  const npa = settings.nodePortAddresses.length > 0
    ? settings.nodePortAddresses
    : mode === "nftables"
    ? ["0.0.0.0/0", "::/0"]
    : [];
  if (npa.length > 0) args.push(`--nodeport-addresses=${npa.join(",")}`);
  return args;
}

function sentinelObjects(port: number, dualStack: boolean): PlainObject[] {
  const families = dualStack ? [0, 1] : [0];
  const service: PlainObject = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: SENTINEL, namespace: "default" },
    spec: {
      clusterIP: SENTINEL_CLUSTER_IPS[0],
      clusterIPs: families.map((i) => SENTINEL_CLUSTER_IPS[i]),
      ipFamilies: families.map((i) => (i === 0 ? "IPv4" : "IPv6")),
      ports: [{ name: "p", protocol: "TCP", port, targetPort: port }],
    },
  };
  const slices = families.map((i): PlainObject => ({
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: `${SENTINEL}-${i === 0 ? "ipv4" : "ipv6"}`,
      namespace: "default",
      labels: { "kubernetes.io/service-name": SENTINEL },
    },
    addressType: i === 0 ? "IPv4" : "IPv6",
    ports: [{ name: "p", protocol: "TCP", port }],
    endpoints: [{ addresses: [SENTINEL_ENDPOINTS[i]], conditions: { ready: true } }],
  }));
  return [service, ...slices];
}

/** The proxy process of a lab node, whichever it is. */
export interface LabProxy {
  /** kproxy or upstream kube-proxy. */
  readonly implementation: LabImplementation;
  /** Its backend. */
  readonly mode: UpstreamMode;
  /** GET `path` from its health (`health`) or metrics server, inside the namespace. */
  get(server: "health" | "metrics", path: string): Promise<HttpAnswer>;
  /** The last lines of its log. */
  tail(lines?: number): Promise<string>;
  /** Its exit code once it ended, else null. */
  exitCode(): number | null;
  /** Kills it (SIGKILL: its rules stay). */
  kill(): Promise<void>;
}

function upstreamProxy(kp: UpstreamKubeProxy): LabProxy {
  return {
    implementation: "upstream",
    mode: kp.mode,
    get: (server, path) => kp.get(server, path),
    tail: (lines) => kp.tail(lines),
    exitCode: () => kp.exitStatus()?.code ?? null,
    kill: () => kp.kill(),
  };
}

function kproxyProxy(kp: KproxyProcess, mode: UpstreamMode): LabProxy {
  return {
    implementation: "kproxy",
    mode,
    get: (server, path) => kp.get(server, path),
    tail: (lines) => Promise.resolve(tail(kp.log(), lines)),
    exitCode: () => kp.exitStatus()?.code ?? null,
    kill: async () => {
      await kp.kill("SIGKILL");
    },
  };
}

/** The rule text of the proxy's tables (or nat chains) of one family in `netns`. */
async function proxyRules(
  netnsName: string,
  implementation: LabImplementation,
  mode: UpstreamMode,
  v6: boolean,
): Promise<string> {
  const table = implementation === "upstream" ? "kube-proxy" : "kproxy";
  const r = mode === "nftables"
    ? await runToolResult("nft", ["list", "table", v6 ? "ip6" : "ip", table], { netns: netnsName })
    : await runToolResult(v6 ? "ip6tables-save" : "iptables-save", ["-t", "nat"], {
      netns: netnsName,
    });
  return r.code === 0 ? r.stdout : "";
}

/**
 * True when `rules` send the sentinel's ClusterIP, at `port`, to its endpoint at `port`: a rule
 * per service port (iptables, upstream nftables: a line with the ClusterIP and the port, and a
 * DNAT to `ep:port`), or kproxy nftables' endpoint-map element `vip . tcp . port . N : ep . port`.
 */
function sentinelLive(rules: string, family: 0 | 1, port: number): boolean {
  const ep = SENTINEL_ENDPOINTS[family];
  const vip = SENTINEL_CLUSTER_IPS[family];
  const quote = (s: string) => s.replaceAll(".", "\\.");
  const element = new RegExp(
    `(?:^|[\\s{,])${quote(vip)} \\. tcp \\. ${port} \\. \\d+ : ${quote(ep)} \\. ${port}\\b`,
    "m",
  );
  if (element.test(rules)) return true;
  const target = family === 0 ? `${ep}:${port}` : `[${ep}]:${port}`;
  if (!rules.includes(target)) return false;
  const portWord = new RegExp(`\\b${port}\\b`);
  return rules.split("\n").some((line) => line.includes(vip) && portWord.test(line));
}

/**
 * True when, for each family, the proxy's last sync has run to its end. Upstream: its V(2)
 * "SyncProxyRules complete" line follows its last "Syncing … rules" line (rules go in first,
 * stale UDP conntrack entries are cleared after). kproxy clears conntrack before its sync
 * returns, so rules in the kernel mean the sync is over.
 */
async function syncsFinished(proxy: LabProxy, families: readonly (0 | 1)[]): Promise<boolean> {
  if (proxy.implementation === "kproxy") return true;
  const log = await proxy.tail(1_000_000);
  return families.every((f) => {
    const family = `ipFamily="${f === 0 ? "IPv4" : "IPv6"}"`;
    let started = -1;
    let completed = -1;
    for (const [i, line] of log.split("\n").entries()) {
      if (!line.includes(family)) continue;
      if (/"Syncing (nftables|iptables) rules"/.test(line)) started = i;
      else if (line.includes('"SyncProxyRules complete"')) completed = i;
    }
    return started >= 0 && completed > started;
  });
}

/** Options of {@link UpstreamLab.startNode}. */
export interface LabNodeOptions {
  /** Which proxy runs on the node; default upstream kube-proxy. */
  readonly implementation?: LabImplementation;
  /** kproxy's settings to mirror (default: the scenario table's defaults). */
  readonly settings?: SnapshotSettings;
  /** Further proxy flags, after those of `settings`. */
  readonly args?: readonly string[];
}

/** A proxy on one lab node (upstream, or kproxy as a process), fed through the lab's API server. */
export interface LabNode extends ScenarioDriver {
  /** The running proxy (null before the first sync and after `cleanup`). */
  readonly proxy: LabProxy | null;
  /** The store writing this node's objects. */
  readonly objects: ApiObjects;
  /** The shared API server. */
  readonly cluster: TestCluster;
  /** Writes `objects` without waiting for rules (e.g. a Node change, which the sentinel misses). */
  write(objects: readonly unknown[]): Promise<void>;
  /** Starts the proxy without waiting for its rules (after `write`; `sync` starts it too). */
  start(): Promise<void>;
}

/** One kube-apiserver for every upstream case of a test file, started on first use. */
export class UpstreamLab {
  readonly #options: TestClusterOptions;
  #cluster: Promise<TestCluster> | null = null;
  #users = 0;

  /** A lab whose API server is started with `options` (default: dual-stack service CIDRs). */
  constructor(options: TestClusterOptions = {}) {
    this.#options = options;
  }

  /** The shared API server (started on first call). */
  cluster(): Promise<TestCluster> {
    this.#cluster ??= startTestCluster({
      serviceClusterIpRange: LAB_SERVICE_CIDRS.join(","),
      ...this.#options,
    });
    return this.#cluster;
  }

  /**
   * Exposes the API server in `topology`'s node namespace; the proxy starts with the first
   * `sync`, once the objects (the Node among them) are in the API. One node at a time.
   */
  async startNode(
    topology: Topology,
    mode: UpstreamMode,
    options: LabNodeOptions = {},
  ): Promise<LabNode> {
    if (this.#users > 0) {
      throw new Error("Cannot start a second lab node: the lab runs one node at a time");
    }
    const cluster = await this.cluster();
    const dualStack = cluster.serviceClusterIpRange.includes(":");
    const families: (0 | 1)[] = dualStack ? [0, 1] : [0];
    const ns = topology.nodeNetns;
    const implementation = options.implementation ?? "upstream";
    const bridge: NetnsBridge = await cluster.exposeInNetns(ns);
    this.#users++;
    const objects = new ApiObjects(cluster);
    const settings = options.settings;
    const settingArgs = settings === undefined
      ? []
      : implementation === "upstream"
      ? upstreamArgs(settings, mode)
      : kproxyArgs(settings, mode);
    const args = [...settingArgs, ...(options.args ?? [])];
    let proxy: LabProxy | null = null;
    let port = SENTINEL_FIRST_PORT;
    let current: readonly PlainObject[] = [];
    let closed = false;

    const start = async (waitForSync = true): Promise<LabProxy> => {
      if (implementation === "upstream") {
        return upstreamProxy(
          await startUpstreamKubeProxy(cluster, ns, mode, {
            nodeName: THIS_NODE,
            args,
            logDir: cluster.dir,
          }),
        );
      }
      const kp = await startKproxy(ns, [
        "--kubeconfig",
        cluster.kubeProxyKubeconfigPath,
        `--proxy-mode=${mode}`,
        `--hostname-override=${THIS_NODE}`,
        `--healthz-bind-address=${UPSTREAM_HEALTHZ}`,
        `--metrics-bind-address=${UPSTREAM_METRICS}`,
        ...args,
      ], { waitForSync });
      return kproxyProxy(kp, mode);
    };
    const describe = async (what: string) => {
      const code = proxy?.exitCode() ?? null;
      return `${implementation} (${mode}) in ${ns}: ${what}` +
        (code === null ? "" : `; it exited with ${code}`) +
        `; its log:\n${await proxy?.tail(30)}`;
    };
    const waitLive = async () => {
      const deadline = Date.now() + LIVE_TIMEOUT_MS;
      for (;;) {
        if (proxy === null) throw new Error(`${implementation} (${mode}) in ${ns} is not running`);
        if (proxy.exitCode() !== null) throw new Error(await describe("exited"));
        let live = true;
        for (const f of families) {
          const rules = await proxyRules(ns, implementation, mode, f === 1);
          if (!sentinelLive(rules, f, port)) live = false;
        }
        if (live && await syncsFinished(proxy, families)) return;
        if (Date.now() > deadline) {
          throw new Error(await describe(`rules not live ${LIVE_TIMEOUT_MS} ms after the sync`));
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const write = async (raws: readonly unknown[]) => {
      current = raws as PlainObject[];
      await objects.sync([...current, ...sentinelObjects(port, dualStack)]);
    };
    const node: LabNode = {
      get proxy() {
        return proxy;
      },
      objects,
      cluster,
      write,
      async start() {
        proxy ??= await start(false);
      },
      async sync(raws) {
        // Deletions land first; then the sentinel moves, behind every other change.
        await write(raws);
        port++;
        await objects.sync([...current, ...sentinelObjects(port, dualStack)]);
        proxy ??= await start();
        await waitLive();
      },
      async cleanup() {
        await proxy?.kill();
        proxy = null;
        if (implementation === "upstream") await cleanupUpstreamRules(ns);
        else {
          const r = await runKproxyOnce(ns, ["--cleanup", `--proxy-mode=${mode}`]);
          if (r.code !== 0) throw new Error(`kproxy --cleanup exited with ${r.code}:\n${r.log}`);
        }
      },
      async liveRules() {
        const v4 = await proxyRules(ns, implementation, mode, false);
        const v6 = dualStack ? await proxyRules(ns, implementation, mode, true) : "";
        return v4 + v6;
      },
      close: async () => {
        if (closed) return;
        closed = true;
        try {
          await proxy?.kill();
          proxy = null;
          await bridge.close();
          await objects.clear();
        } finally {
          this.#users--;
        }
      },
    };
    return node;
  }

  /**
   * A scenario backend named `upstream-<mode>` (or `kproxy-process-<mode>`): the proxy runs with
   * the scenario's settings, fed through the lab's API server.
   */
  backend(
    mode: UpstreamMode,
    options: { readonly implementation?: LabImplementation; readonly args?: readonly string[] } =
      {},
  ): ProcessScenarioBackend {
    const implementation = options.implementation ?? "upstream";
    return {
      name: implementation === "upstream" ? `upstream-${mode}` : `kproxy-process-${mode}`,
      requirements: [goFixtures],
      open: (topology: Topology, scenario: Scenario) =>
        this.startNode(topology, mode, {
          implementation,
          settings: scenarioSettings(scenario),
          ...(options.args === undefined ? {} : { args: options.args }),
        }),
    };
  }

  /** Stops the API server (safe when it never started, and twice). */
  async stop(): Promise<void> {
    const started = this.#cluster;
    this.#cluster = null;
    if (started === null) return;
    const cluster = await started.catch(() => null);
    await cluster?.stop();
  }

  /** Registers the file's last test: it stops the shared API server. */
  registerStop(name = "upstream lab: the shared API server stops"): void {
    Deno.test(requiring([netns, goFixtures], {
      name,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        const started = this.#cluster;
        await this.stop();
        const cluster = await started?.catch(() => null);
        if (cluster?.apiServerRunning()) throw new Error("the lab's API server still runs");
      },
    }));
  }
}
