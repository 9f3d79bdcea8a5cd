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
 * `await lab.startNode(topology, "nftables", { settings })` gives an {@link UpstreamNode}:
 * `sync(objects)` writes and waits, `kubeProxy.get("health", "/healthz")` asks upstream.
 *
 * "Live" is read from the kernel, never from the proxy: every sync also bumps the port of a
 * sentinel Service (`default/zz-lab-sync`, written after every other Service and EndpointSlice,
 * so one watch delivers it after them) and waits until the node's rules of each family DNAT that
 * port. A Node change has its own watch, so it is not covered by the sentinel (upstream reads
 * the Node for health and topology only).
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
  type UpstreamKubeProxy,
  type UpstreamMode,
} from "./upstream_kube_proxy.ts";

export type { UpstreamKubeProxy, UpstreamMode };

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
  const args: string[] = ["--iptables-min-sync-period=0s"];
  if (settings.clusterCIDRs.length > 0) {
    args.push(`--cluster-cidr=${settings.clusterCIDRs.join(",")}`);
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

/** The rule text of upstream's tables (or chains) of one family in `netns`. */
async function upstreamRules(netnsName: string, mode: UpstreamMode, v6: boolean): Promise<string> {
  const r = mode === "nftables"
    ? await runToolResult("nft", ["list", "table", v6 ? "ip6" : "ip", "kube-proxy"], {
      netns: netnsName,
    })
    : await runToolResult(v6 ? "ip6tables-save" : "iptables-save", ["-t", "nat"], {
      netns: netnsName,
    });
  return r.code === 0 ? r.stdout : "";
}

/** True when `rules` send the sentinel's ClusterIP, at `port`, to its endpoint at `port`. */
function sentinelLive(rules: string, family: 0 | 1, port: number): boolean {
  const ep = SENTINEL_ENDPOINTS[family];
  const target = family === 0 ? `${ep}:${port}` : `[${ep}]:${port}`;
  if (!rules.includes(target)) return false;
  const vip = SENTINEL_CLUSTER_IPS[family];
  const portWord = new RegExp(`\\b${port}\\b`);
  return rules.split("\n").some((line) => line.includes(vip) && portWord.test(line));
}

/**
 * True when, for each family, upstream's last sync has run to its end (its V(2) "SyncProxyRules
 * complete" line follows its last "Syncing … rules" line): rules go in first, stale UDP conntrack
 * entries are cleared after, so "live" waits for both.
 */
async function syncsFinished(
  kubeProxy: UpstreamKubeProxy | null,
  families: readonly (0 | 1)[],
): Promise<boolean> {
  if (kubeProxy === null) return false;
  const log = await Deno.readTextFile(kubeProxy.logPath).catch(() => "");
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
export interface UpstreamNodeOptions {
  /** kproxy's settings to mirror (default: the scenario table's defaults). */
  readonly settings?: SnapshotSettings;
  /** Further upstream flags, after those of `settings`. */
  readonly args?: readonly string[];
}

/** Upstream kube-proxy on one lab node, fed through the lab's API server. */
export interface UpstreamNode extends ScenarioDriver {
  /** The running kube-proxy (null before the first sync and after `cleanup`). */
  readonly kubeProxy: UpstreamKubeProxy | null;
  /** The store writing this node's objects. */
  readonly objects: ApiObjects;
  /** The shared API server. */
  readonly cluster: TestCluster;
  /** Writes `objects` without waiting for rules (e.g. a Node change, which the sentinel misses). */
  write(objects: readonly unknown[]): Promise<void>;
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

  /** Whether the lab's API server serves IPv6 ClusterIPs. */
  #dualStack(cluster: TestCluster): boolean {
    return cluster.serviceClusterIpRange.includes(":");
  }

  /**
   * Exposes the API server in `topology`'s node namespace; kube-proxy starts with the first
   * `sync`, once the objects (the Node among them) are in the API.
   */
  async startNode(
    topology: Topology,
    mode: UpstreamMode,
    options: UpstreamNodeOptions = {},
  ): Promise<UpstreamNode> {
    if (this.#users > 0) {
      throw new Error("Cannot start a second upstream node: the lab runs one node at a time");
    }
    const cluster = await this.cluster();
    const dualStack = this.#dualStack(cluster);
    const ns = topology.nodeNetns;
    const bridge: NetnsBridge = await cluster.exposeInNetns(ns);
    this.#users++;
    const objects = new ApiObjects(cluster);
    const settings = options.settings;
    const args = [
      ...(settings === undefined ? [] : upstreamArgs(settings, mode)),
      ...(options.args ?? []),
    ];
    let kubeProxy: UpstreamKubeProxy | null = null;
    let port = SENTINEL_FIRST_PORT;
    let current: readonly PlainObject[] = [];
    let closed = false;

    const describe = async (what: string) => {
      const exit = kubeProxy?.exitStatus();
      return `upstream kube-proxy (${mode}) in ${ns}: ${what}` +
        (exit === undefined ? "" : `; it exited with ${exit.code}`) +
        `; log ${kubeProxy?.logPath}:\n${await kubeProxy?.tail(30)}`;
    };
    const waitLive = async () => {
      const deadline = Date.now() + LIVE_TIMEOUT_MS;
      const families: (0 | 1)[] = dualStack ? [0, 1] : [0];
      for (;;) {
        if (kubeProxy?.exitStatus() !== undefined) throw new Error(await describe("exited"));
        let live = true;
        for (const f of families) {
          if (!sentinelLive(await upstreamRules(ns, mode, f === 1), f, port)) live = false;
        }
        if (live && await syncsFinished(kubeProxy, families)) return;
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
    const node: UpstreamNode = {
      get kubeProxy() {
        return kubeProxy;
      },
      objects,
      cluster,
      write,
      async sync(raws) {
        // Deletions land first; then the sentinel moves, behind every other change.
        await write(raws);
        port++;
        await objects.sync([...current, ...sentinelObjects(port, dualStack)]);
        if (kubeProxy === null) {
          kubeProxy = await startUpstreamKubeProxy(cluster, ns, mode, {
            nodeName: THIS_NODE,
            args,
            logDir: cluster.dir,
          });
        }
        await waitLive();
      },
      async cleanup() {
        await kubeProxy?.kill();
        kubeProxy = null;
        await cleanupUpstreamRules(ns);
      },
      async liveRules() {
        const v4 = await upstreamRules(ns, mode, false);
        const v6 = dualStack ? await upstreamRules(ns, mode, true) : "";
        return v4 + v6;
      },
      close: async () => {
        if (closed) return;
        closed = true;
        try {
          await kubeProxy?.kill();
          kubeProxy = null;
          await bridge.close();
          await objects.clear();
        } finally {
          this.#users--;
        }
      },
    };
    return node;
  }

  /** A scenario backend named `upstream-<mode>`: upstream with the scenario's settings. */
  backend(mode: UpstreamMode, options: { readonly args?: readonly string[] } = {}) {
    const backend: ProcessScenarioBackend = {
      name: `upstream-${mode}`,
      requirements: [goFixtures],
      open: (topology: Topology, scenario: Scenario) =>
        this.startNode(topology, mode, {
          settings: scenarioSettings(scenario),
          ...(options.args === undefined ? {} : { args: options.args }),
        }),
    };
    return backend;
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
