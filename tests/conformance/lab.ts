/**
 * The only I/O of the conformance harness: one real kube-apiserver, and two two-node labs side by
 * side with identical addresses inside — node A of one runs kproxy, node A of the other upstream
 * kube-proxy v1.34 (the fixture build); both watch the same API server. Writes the generated
 * objects, waits until both proxies programmed them, sends the matrix's probes in both labs, and
 * asks the health questions.
 *
 * IP plan: tests/netns/two_node_plan.ts; sentinel services use ClusterIPs 198.18.190.10-209 and
 * fd00:128::e:10-d7.
 *
 * @module
 */
import {
  fixtureBinary,
  type NetnsBridge,
  startTestCluster,
  type TestCluster,
} from "../fixtures/apiserver.ts";
import { createTwoNodeLab, type TwoNodeLab } from "../netns/two_node_lab.ts";
import { sysctl } from "../netns/topology.ts";
import { LAB_CLUSTER_CIDRS, LAB_SERVICE_CIDRS, labNodes, NODE_A } from "../netns/two_node_plan.ts";
import type { ProbeResult } from "../netns/probe.ts";
import { httpInNetns, type KproxyProcess, startKproxy, tail } from "../reliability/_kproxy.ts";
import { startUpstreamKubeProxy, type UpstreamKubeProxy } from "../netns/upstream_kube_proxy.ts";
import { type ApiOperation, CASE_NAMESPACE } from "./cluster_model.ts";
import type { OutcomeTable } from "./comparator.ts";
import { type Cell, type HealthCheck, type Matrix, sourceRole } from "./matrix.ts";
import {
  type CellOutcome,
  type HealthOutcome,
  summarizeHealth,
  summarizeProbes,
} from "./outcome.ts";

/** The backend both proxies run. */
export type ConformanceMode = "nftables" | "iptables";

/** One lab and the proxy on its node A. */
export interface ProxyLab {
  /** `kproxy` or `kube-proxy`. */
  readonly name: "kproxy" | "kube-proxy";
  /** The lab. */
  readonly lab: TwoNodeLab;
  /** The last lines of the proxy's log. */
  logTail(lines?: number): Promise<string>;
  /** True while the proxy runs. */
  running(): boolean;
}

/** Options of probing. */
export interface ProbeSettings {
  /** Milliseconds a probe waits before it counts as dropped. */
  readonly timeoutMs: number;
  /** Cells probed at once per source namespace. */
  readonly cellsPerSource: number;
  /** Multiply every cell's probe count (rechecks send more). */
  readonly countFactor?: number;
  /** Probes of one cell in flight at once (default: all of them). */
  readonly probesAtOnce?: number;
}

const TRACE = Deno.env.get("CONFORMANCE_TRACE") !== undefined;

/** The first pass: short timeouts for drops, many cells at once. */
export const FIRST_PASS: ProbeSettings = { timeoutMs: 500, cellsPerSource: 4 };
/**
 * A recheck of divergent cells: three times the probes, a patient timeout (3 s: TCP sends its SYN
 * again after 1 s and 3 s, the SCTP probe its INIT every second), at most 8 of a cell's probes at
 * once — a burst of 72 probes on a loaded machine starves the pods' own answers (seed 2 in
 * iptables at load 28: 27 of 72 SCTP probes unanswered in 2 s in one lab, none in the other).
 */
export const RECHECK: ProbeSettings = {
  timeoutMs: 3000,
  cellsPerSource: 8,
  countFactor: 3,
  probesAtOnce: 8,
};

/** Both labs, the API server, and the ways to drive them. */
export interface ConformanceLabs {
  /** The backend both proxies run. */
  readonly mode: ConformanceMode;
  /** The API server. */
  readonly cluster: TestCluster;
  /** kproxy's lab. */
  readonly kproxy: ProxyLab;
  /** Upstream kube-proxy's lab. */
  readonly upstream: ProxyLab;
  /** Applies writes in order; throws naming the object and the API's answer on a refusal. */
  write(ops: readonly ApiOperation[]): Promise<void>;
  /** Waits until both proxies have programmed every write so far. */
  converge(): Promise<void>;
  /** Forgets connection tracking state on both node A's (between cases). */
  flushConntrack(): Promise<void>;
  /** Stops proxies, labs and the API server. */
  stop(): Promise<void>;
}

/** A write the API server refused: the generator made something invalid. */
export class ApiRefusal extends Error {
  /** Makes one. */
  constructor(message: string, readonly status: number) {
    super(message);
    this.name = "ApiRefusal";
  }
}

/** Sysctls of every lab namespace: no ICMP rate limit, so every reject is seen. */
const NO_ICMP_RATE_LIMIT = {
  "net.ipv4.icmp_ratelimit": "0",
  "net.ipv4.icmp_msgs_per_sec": "100000",
  "net.ipv4.icmp_msgs_burst": "100000",
  "net.ipv6.icmp.ratelimit": "0",
};

const SENTINEL_PORT = 7;

class Rest {
  constructor(readonly cluster: TestCluster) {}

  async call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await this.cluster.request(path, {
      method,
      headers: { "Content-Type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) {
      let message = text;
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? text;
      } catch { /* not JSON */ }
      throw new ApiRefusal(`${method} ${path}: HTTP ${res.status}: ${message}`, res.status);
    }
    return JSON.parse(text) as Record<string, unknown>;
  }

  async replace(path: string, object: Record<string, unknown>): Promise<void> {
    const current = await this.call("GET", path);
    const meta = current["metadata"] as Record<string, unknown>;
    const objMeta = object["metadata"] as Record<string, unknown>;
    await this.call("PUT", path, {
      ...object,
      metadata: { ...objMeta, resourceVersion: meta["resourceVersion"] },
    });
  }

  async writeStatus(path: string, status: Record<string, unknown>): Promise<void> {
    const current = await this.call("GET", path);
    await this.call("PUT", `${path}/status`, { ...current, status });
  }
}

const SERVICES = `/api/v1/namespaces/${CASE_NAMESPACE}/services`;
const SLICES = `/apis/discovery.k8s.io/v1/namespaces/${CASE_NAMESPACE}/endpointslices`;

async function applyOperation(rest: Rest, op: ApiOperation): Promise<void> {
  const collection = op.kind === "Service" ? SERVICES : SLICES;
  switch (op.op) {
    case "create":
      await rest.call("POST", collection, op.object);
      return;
    case "replace":
      await rest.replace(`${collection}/${op.name}`, op.object);
      return;
    case "status":
      await rest.writeStatus(`${collection}/${op.name}`, op.status);
      return;
    case "delete":
      try {
        await rest.call("DELETE", `${collection}/${op.name}`);
      } catch (e) {
        if (!(e instanceof ApiRefusal && e.status === 404)) throw e;
      }
      return;
  }
}

async function startProxyLab(
  name: "kproxy" | "kube-proxy",
  cluster: TestCluster,
  mode: ConformanceMode,
  bridges: NetnsBridge[],
): Promise<{ proxyLab: ProxyLab; stop: () => Promise<void> }> {
  const lab = await createTwoNodeLab();
  let kproxy: KproxyProcess | null = null;
  let upstream: UpstreamKubeProxy | null = null;
  try {
    await Promise.all(lab.namespaces.map((ns) => sysctl(ns, NO_ICMP_RATE_LIMIT)));
    bridges.push(await cluster.exposeInNetns(lab.nodeA));
    if (name === "kproxy") {
      kproxy = await startKproxy(lab.nodeA, [
        "--kubeconfig",
        cluster.kubeProxyKubeconfigPath,
        "--proxy-mode",
        mode,
        "--hostname-override",
        NODE_A,
        "--cluster-cidr",
        LAB_CLUSTER_CIDRS.join(","),
        "--healthz-bind-address",
        "127.0.0.1:10256",
        "--metrics-bind-address",
        "127.0.0.1:10249",
      ]);
    } else {
      upstream = await startUpstreamKubeProxy(cluster, lab.nodeA, mode, {
        nodeName: NODE_A,
        clusterCIDR: LAB_CLUSTER_CIDRS.join(","),
        logDir: cluster.dir,
      });
    }
  } catch (e) {
    await kproxy?.kill("SIGTERM");
    await upstream?.kill();
    await lab.teardown();
    throw e;
  }
  const k = kproxy;
  const u = upstream;
  return {
    proxyLab: {
      name,
      lab,
      logTail: async (lines = 40) => k !== null ? tail(k.log(), lines) : await u!.tail(lines),
      running: () => k !== null ? k.exitStatus() === null : u!.exitStatus() === undefined,
    },
    stop: async () => {
      await k?.kill("SIGTERM");
      await u?.kill();
      await lab.teardown();
    },
  };
}

/**
 * Starts the API server (dual-stack service CIDRs), creates nodes A and B, and starts both labs
 * with their proxies. Stop it in `finally`.
 */
export async function startConformanceLabs(mode: ConformanceMode): Promise<ConformanceLabs> {
  const cluster = await startTestCluster({
    build: false,
    serviceClusterIpRange: LAB_SERVICE_CIDRS.join(","),
  });
  const rest = new Rest(cluster);
  const bridges: NetnsBridge[] = [];
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    await Promise.allSettled(stops.map((s) => s()));
    await Promise.allSettled(bridges.map((b) => b.close()));
    await cluster.stop();
  };
  try {
    for (const node of labNodes()) {
      await rest.call("POST", "/api/v1/nodes", node);
      await rest.writeStatus(
        `/api/v1/nodes/${(node["metadata"] as { name: string }).name}`,
        node["status"] as Record<string, unknown>,
      );
    }
    const [k, u] = await Promise.all([
      startProxyLab("kproxy", cluster, mode, bridges),
      startProxyLab("kube-proxy", cluster, mode, bridges),
    ]);
    stops.push(k.stop, u.stop);
    let sentinel = 0;
    const labs: ConformanceLabs = {
      mode,
      cluster,
      kproxy: k.proxyLab,
      upstream: u.proxyLab,
      write: async (ops) => {
        for (const op of ops) await applyOperation(rest, op);
      },
      converge: async () => {
        const n = sentinel++;
        const name = `sentinel-${n}`;
        const ips = sentinelIPs(n);
        if (n > 0) {
          for (const family of ["ipv4", "ipv6"]) {
            await applyOperation(rest, {
              op: "delete",
              kind: "EndpointSlice",
              name: `sentinel-${n - 1}-${family}`,
            });
          }
          await applyOperation(rest, { op: "delete", kind: "Service", name: `sentinel-${n - 1}` });
        }
        await rest.call("POST", SERVICES, sentinelService(name, ips));
        for (const family of ["IPv4", "IPv6"] as const) {
          await rest.call("POST", SLICES, sentinelSlice(name, family));
        }
        // Upstream runs one proxier per family, each syncing on its own: wait for both.
        await Promise.all(
          [labs.kproxy, labs.upstream].flatMap((p) => ips.map((ip) => waitForSentinel(p, ip))),
        );
      },
      flushConntrack: async () => {
        await Promise.all(
          [labs.kproxy, labs.upstream].map((p) => p.lab.exec("nodeA", ["conntrack", "-F"])),
        );
      },
      stop,
    };
    return labs;
  } catch (e) {
    await stop();
    throw e;
  }
}

/** The sentinel's ClusterIPs in round `n`: a fresh pair each time (a stale rule never answers). */
function sentinelIPs(n: number): string[] {
  return [`198.18.190.${10 + (n % 200)}`, `fd00:128::e:${(0x10 + (n % 200)).toString(16)}`];
}

function sentinelService(name: string, ips: readonly string[]): Record<string, unknown> {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: CASE_NAMESPACE },
    spec: {
      clusterIP: ips[0],
      clusterIPs: [...ips],
      ipFamilies: ["IPv4", "IPv6"],
      ipFamilyPolicy: "RequireDualStack",
      ports: [{ protocol: "TCP", port: SENTINEL_PORT, targetPort: 8080 }],
    },
  };
}

function sentinelSlice(name: string, family: "IPv4" | "IPv6"): Record<string, unknown> {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: `${name}-${family.toLowerCase()}`,
      namespace: CASE_NAMESPACE,
      labels: { "kubernetes.io/service-name": name },
    },
    addressType: family,
    ports: [{ protocol: "TCP", port: 8080 }],
    endpoints: [{
      addresses: [family === "IPv4" ? "198.18.2.11" : "fd00:2:0:a::11"],
      conditions: { ready: true },
      nodeName: NODE_A,
    }],
  };
}

/** Probes the sentinel's ClusterIP from node A until it answers: everything before it is live. */
async function waitForSentinel(p: ProxyLab, ip: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: ProbeResult | undefined;
  while (Date.now() < deadline) {
    [last] = await p.lab.probeMany("nodeA", { protocol: "TCP", ip, port: SENTINEL_PORT }, 1, {
      timeoutMs: 200,
    });
    if (last?.kind === "answer") return;
    if (!p.running()) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `${p.name} did not program sentinel ${ip}:${SENTINEL_PORT} (last probe ${
      JSON.stringify(last)
    }); log:\n${await p.logTail()}`,
  );
}

/** Protocols the lab can probe (SCTP over raw sockets, whatever the kernel). */
export const PROBED_PROTOCOLS: ReadonlySet<string> = new Set(["TCP", "UDP", "SCTP"]);

/** Runs `cells` in `p`'s lab, a few cells at a time per source; outcomes by cell id. */
export async function probeCells(
  p: ProxyLab,
  cells: readonly Cell[],
  settings: ProbeSettings,
): Promise<Map<string, CellOutcome>> {
  const out = new Map<string, CellOutcome>();
  // Work units per source: a cell, or every cell of one affinity service port and family in a
  // row (ClientIP affinity is shared by all of a service port's addresses: cells of it sent at
  // once would race for the first pick).
  const bySource = new Map<string, Map<string, Cell[]>>();
  for (const cell of cells) {
    if (!PROBED_PROTOCOLS.has(cell.protocol)) continue;
    const role = sourceRole(cell.source);
    const units = bySource.get(role) ?? new Map<string, Cell[]>();
    bySource.set(role, units);
    const key = cell.affinity
      ? `${cell.service} ${cell.portName} ${cell.protocol} ${cell.family}`
      : cell.id;
    units.set(key, [...(units.get(key) ?? []), cell]);
  }
  await Promise.all([...bySource].map(async ([role, units]) => {
    const queue = [...units.values()];
    let next = 0;
    const worker = async () => {
      while (next < queue.length) {
        for (const cell of queue[next++]!) {
          const count = Math.round(cell.count * (settings.countFactor ?? 1));
          const results = await p.lab.probeMany(
            role,
            { protocol: cell.protocol, ip: cell.ip, port: cell.port },
            count,
            // With affinity, one probe at a time: concurrent first packets would each be
            // balanced before any of them recorded the affinity.
            {
              timeoutMs: settings.timeoutMs,
              concurrency: cell.affinity ? 1 : Math.min(count, settings.probesAtOnce ?? count),
            },
          );
          // CONFORMANCE_TRACE=1: every probe of a cell that saw a drop, in order, with its time.
          if (TRACE && results.some((r) => r.kind === "timeout")) {
            const seen = results.map((r) => `${r.kind === "answer" ? r.pod : r.kind}@${r.ms}`);
            console.log(`trace ${p.name} ${cell.id}: ${seen.join(" ")}`);
          }
          out.set(cell.id, summarizeProbes(results));
        }
      }
    };
    await Promise.all(Array.from({ length: settings.cellsPerSource }, worker));
  }));
  return out;
}

/** Asks `checks` in `p`'s lab. */
export async function askHealth(
  p: ProxyLab,
  checks: readonly HealthCheck[],
): Promise<Map<string, HealthOutcome>> {
  const out = new Map<string, HealthOutcome>();
  await Promise.all(checks.map(async (check) => {
    const host = check.ip.includes(":") ? `[${check.ip}]` : check.ip;
    const answer = await httpInNetns(
      p.lab.netnsOf(sourceRole(check.source)),
      `http://${host}:${check.port}${check.path}`,
    );
    out.set(check.id, summarizeHealth(answer.status, answer.body));
  }));
  return out;
}

/** The whole matrix in one lab. */
export async function probeMatrix(
  p: ProxyLab,
  matrix: Matrix,
  settings: ProbeSettings = FIRST_PASS,
): Promise<OutcomeTable> {
  const [cells, health] = await Promise.all([
    probeCells(p, matrix.cells, settings),
    askHealth(p, matrix.health),
  ]);
  return { cells, health };
}

/** Whether the upstream fixture is there (the harness needs it). */
export function upstreamBinary(): string {
  return fixtureBinary("kube-proxy");
}
