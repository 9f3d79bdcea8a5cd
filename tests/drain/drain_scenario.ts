/**
 * Draining a node without losing a connection, end to end: a {@link NodeLab} of N nodes, each
 * running a proxy against the test API server; two LoadBalancer Services served by the same pods
 * — `web-local` (`externalTrafficPolicy: Local`) and `web-cluster` (`Cluster`); and a userspace
 * load balancer in the client namespace (`_balancer_main.ts`) that checks every node every
 * second, as cloud load balancers do (the Local service's `healthCheckNodePort`, kube-proxy's
 * `/healthz` on 10256 for the Cluster one) and sends a steady stream of connections through both.
 *
 * Then node 0 is drained the way the cluster autoscaler does it: tainted
 * `ToBeDeletedByClusterAutoscaler`; its Node deleted; its pod replaced by one on the last node
 * (the new one ready, the old one terminating but still serving, then gone, then stopped); and
 * finally node 0 is switched off. Every connection must get an answer from a pod, and the
 * balancer's view must follow the health answers within its check interval.
 *
 * IP plan: {@link NodeLab}'s; the Services' ClusterIPs come from the test API server's range
 * (198.18.128.0/17); the pods are `a0` on node 0, `a1` on node 1, `a2` (the replacement) on the
 * last node.
 *
 * @module
 */
import type { NetnsBridge, TestCluster } from "../fixtures/apiserver.ts";
import { type Agent, startAgent } from "../netns/agent.ts";
import type {
  BalancerConfig,
  BalancerEvent,
  ConnectionRecord,
  HealthTransition,
} from "./balancer.ts";
import {
  createNodeLab,
  LAB_POD_PORT,
  type LabNode,
  type LabPod,
  type NodeLab,
} from "./node_lab.ts";

/** The taint the cluster autoscaler puts on a node it is about to delete. */
export const TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler";
/** kube-proxy's health port. */
export const PROXY_HEALTH_PORT = 10256;

/** A proxy the scenario started on a node. */
export interface DrainProxy {
  /** Stops it. */
  stop(): Promise<void>;
}

/** Options of {@link runDrainScenario}. */
export interface DrainScenarioOptions {
  /** Nodes (at least 3). */
  readonly nodes: number;
  /** Starts the proxy of `node` as Node `nodeName` (the API server is reachable inside). */
  readonly startProxy: (node: LabNode, nodeName: string) => Promise<DrainProxy>;
  /** The balancer's check interval, ms (default 1000). */
  readonly intervalMs?: number;
  /** One connection per service every this many ms (default 25). */
  readonly loadIntervalMs?: number;
  /** Progress lines. */
  readonly log?: (line: string) => void;
}

/** A step of the drain, and when it was done (epoch ms). */
export interface DrainStep {
  /** What was done. */
  readonly name: string;
  /** When. */
  readonly at: number;
}

/** How long after a step the balancer's view changed as expected. */
export interface DrainLag {
  /** The expected change, e.g. `cluster: node 0 out`. */
  readonly what: string;
  /** ms from the step to the balancer's transition; null if it never came. */
  readonly ms: number | null;
}

/** What the scenario saw. */
export interface DrainReport {
  /** Connections per pool: sent, and answered per node. */
  readonly pools: Readonly<
    Record<string, { sent: number; failed: number; byNode: Record<string, number> }>
  >;
  /** Every failed connection. */
  readonly failures: readonly ConnectionRecord[];
  /** Every change of the balancer's view. */
  readonly transitions: readonly HealthTransition[];
  /** The drain's steps. */
  readonly steps: readonly DrainStep[];
  /** The expected view changes and their delays. */
  readonly lags: readonly DrainLag[];
  /** Connections sent to node 0 after it was switched off. */
  readonly afterPowerOff: number;
}

function nodeName(i: number): string {
  return `lab-node-${i}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function api(
  cluster: TestCluster,
  method: string,
  path: string,
  body?: unknown,
  contentType = "application/json",
): Promise<Record<string, unknown>> {
  const res = await cluster.request(path, {
    method,
    headers: { "Content-Type": contentType },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`Cannot ${method} ${path}: HTTP ${res.status}: ${text}`);
  return text === "" ? {} : JSON.parse(text) as Record<string, unknown>;
}

function loadBalancer(name: string, local: boolean) {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: "default" },
    spec: {
      type: "LoadBalancer",
      externalTrafficPolicy: local ? "Local" : "Cluster",
      ports: [{ name: "http", protocol: "TCP", port: 80, targetPort: LAB_POD_PORT }],
    },
  };
}

interface EndpointState {
  readonly pod: LabPod;
  readonly state: "ready" | "terminating";
}

function slice(service: string, endpoints: readonly EndpointState[]) {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: `${service}-1`,
      namespace: "default",
      labels: {
        "kubernetes.io/service-name": service,
        "endpointslice.kubernetes.io/managed-by": "kproxy-drain-test",
      },
    },
    addressType: "IPv4",
    endpoints: endpoints.map((e) => ({
      addresses: [e.pod.ipv4],
      conditions: e.state === "ready"
        ? { ready: true, serving: true, terminating: false }
        : { ready: false, serving: true, terminating: true },
      nodeName: nodeName(e.pod.node),
      targetRef: { kind: "Pod", namespace: "default", name: e.pod.name },
    })),
    ports: [{ name: "http", protocol: "TCP", port: LAB_POD_PORT }],
  };
}

/** The balancer process in the client namespace. */
class Balancer {
  readonly events: BalancerEvent[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #done: Promise<void>;
  #stderr = "";

  constructor(netns: string, config: BalancerConfig) {
    const child = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        netns,
        Deno.execPath(),
        "run",
        "--quiet",
        "--no-config",
        "--no-lock",
        "--allow-net",
        new URL("./_balancer_main.ts", import.meta.url).pathname,
        JSON.stringify(config),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    const out = (async () => {
      let rest = "";
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        const lines = (rest + chunk).split("\n");
        rest = lines.pop() ?? "";
        for (const line of lines) {
          if (line.trim() !== "") this.events.push(JSON.parse(line) as BalancerEvent);
        }
      }
    })();
    const err = (async () => {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        this.#stderr += chunk;
      }
    })();
    this.#done = Promise.allSettled([out, err, child.status]).then(() => {});
  }

  get stderr(): string {
    return this.#stderr;
  }

  async send(command: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(command + "\n"));
  }

  /** Healthy nodes of `pool` in the balancer's view now. */
  view(pool: string): Set<string> {
    const healthy = new Set<string>();
    for (const e of this.events) {
      if (e.type !== "health" || e.pool !== pool) continue;
      if (e.healthy) healthy.add(e.node);
      else healthy.delete(e.node);
    }
    return healthy;
  }

  /** The first transition of `pool`/`node` to `healthy` at or after `since`. */
  transition(pool: string, node: string, healthy: boolean, since: number) {
    return this.events.find((e): e is Extract<BalancerEvent, { type: "health" }> =>
      e.type === "health" && e.pool === pool && e.node === node && e.healthy === healthy &&
      e.at >= since
    );
  }

  async stop(): Promise<void> {
    await this.send("stop").catch(() => {});
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 15_000);
    await this.#done;
    clearTimeout(timer);
    await this.#writer.close().catch(() => {});
  }

  kill(): void {
    try {
      this.#child.kill("SIGKILL");
    } catch { /* gone */ }
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms: number) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** Runs the drain; the caller asserts on the report. Removes everything it built. */
export async function runDrainScenario(
  cluster: TestCluster,
  options: DrainScenarioOptions,
): Promise<DrainReport> {
  const log = options.log ?? (() => {});
  const n = options.nodes;
  if (n < 3) throw new Error("Cannot run the drain scenario on fewer than 3 nodes");
  const interval = options.intervalMs ?? 1_000;
  const lab: NodeLab = await createNodeLab(n);
  const bridges: NetnsBridge[] = [];
  const proxies: DrainProxy[] = [];
  let prober: Agent | null = null;
  let balancer: Balancer | null = null;
  try {
    for (const node of lab.nodes) {
      await api(cluster, "POST", "/api/v1/nodes", {
        apiVersion: "v1",
        kind: "Node",
        metadata: {
          name: nodeName(node.index),
          labels: { "kubernetes.io/hostname": nodeName(node.index) },
        },
      });
      await api(cluster, "PATCH", `/api/v1/nodes/${nodeName(node.index)}/status`, {
        status: { addresses: [{ type: "InternalIP", address: node.ipv4 }] },
      }, "application/merge-patch+json");
      bridges.push(await cluster.exposeInNetns(node.netns));
    }
    const a0 = await lab.addPod(0, "a0");
    const a1 = await lab.addPod(1, "a1");
    const services = ["web-local", "web-cluster"] as const;
    const created: Record<string, Record<string, unknown>> = {};
    for (const name of services) {
      created[name] = await api(
        cluster,
        "POST",
        "/api/v1/namespaces/default/services",
        loadBalancer(name, name === "web-local"),
      );
    }
    const writeSlices = async (endpoints: readonly EndpointState[], create = false) => {
      for (const name of services) {
        const body = slice(name, endpoints);
        if (create) {
          await api(
            cluster,
            "POST",
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
            body,
          );
        } else {
          await api(
            cluster,
            "PUT",
            `/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/${name}-1`,
            body,
          );
        }
      }
    };
    await writeSlices([{ pod: a0, state: "ready" }, { pod: a1, state: "ready" }], true);
    const spec = (name: string) =>
      created[name]?.["spec"] as {
        ports: { nodePort: number }[];
        healthCheckNodePort?: number;
      };
    const localPort = spec("web-local").ports[0]?.nodePort ?? 0;
    const clusterPort = spec("web-cluster").ports[0]?.nodePort ?? 0;
    const hcPort = spec("web-local").healthCheckNodePort ?? 0;
    log(`web-local NodePort ${localPort} (health ${hcPort}), web-cluster NodePort ${clusterPort}`);

    proxies.push(
      ...await Promise.all(lab.nodes.map((node) => options.startProxy(node, nodeName(node.index)))),
    );
    log(`${n} proxies started`);

    // Every node answers on both NodePorts before traffic starts (the first sync is live).
    prober = await startAgent(lab.client, { name: "client" });
    const p = prober;
    for (const node of lab.nodes) {
      for (const port of [clusterPort, ...(node.index < 2 ? [localPort] : [])]) {
        await until(`node ${node.index} to answer on ${port}`, async () => {
          const [r] = await p.probeMany({ protocol: "TCP", ip: node.ipv4, port }, 1, {
            timeoutMs: 500,
          });
          return r?.kind === "answer";
        }, 90_000);
      }
    }

    const ips = lab.nodes.map((x) => x.ipv4);
    balancer = new Balancer(lab.client, {
      nodes: ips,
      pools: [
        { name: "local", backendPort: localPort, healthPort: hcPort, healthPath: "/" },
        {
          name: "cluster",
          backendPort: clusterPort,
          healthPort: PROXY_HEALTH_PORT,
          healthPath: "/healthz",
        },
      ],
      intervalMs: interval,
      loadIntervalMs: options.loadIntervalMs ?? 25,
      connectionTimeoutMs: 2_000,
    });
    const b = balancer;
    const node0 = ips[0] as string;
    const last = ips[n - 1] as string;
    await until("the balancer's first view", () => {
      const local = b.view("local");
      const cluster = b.view("cluster");
      return local.size === 2 && local.has(node0) && local.has(ips[1] as string) &&
        cluster.size === n;
    }, 30_000).catch((e) => {
      throw new Error(`${(e as Error).message}; balancer stderr: ${b.stderr}`);
    });
    await b.send("start");
    log("traffic started");
    await sleep(3_000);

    const steps: DrainStep[] = [];
    const step = (name: string) => {
      const at = Date.now();
      steps.push({ name, at });
      log(name);
      return at;
    };
    const lags: DrainLag[] = [];
    const lagOf = async (
      what: string,
      pool: string,
      node: string,
      healthy: boolean,
      since: number,
    ) => {
      const seen = await until(
        what,
        () => b.transition(pool, node, healthy, since) !== undefined,
        10_000,
      )
        .then(() => b.transition(pool, node, healthy, since)?.at ?? null, () => null);
      lags.push({ what, ms: seen === null ? null : seen - since });
    };

    const tTaint = step(`taint node 0 ${TO_BE_DELETED_TAINT}`);
    await api(cluster, "PATCH", `/api/v1/nodes/${nodeName(0)}`, {
      spec: {
        taints: [{
          key: TO_BE_DELETED_TAINT,
          value: String(Math.floor(tTaint / 1000)),
          effect: "NoSchedule",
        }],
      },
    }, "application/merge-patch+json");
    await lagOf("cluster: node 0 out after the taint", "cluster", node0, false, tTaint);
    await sleep(2_000);

    step("delete Node 0");
    await api(cluster, "DELETE", `/api/v1/nodes/${nodeName(0)}`);
    await sleep(2_000);

    const a2 = await lab.addPod(n - 1, "a2");
    const tMove = step("pods move: a2 ready on the last node, a0 terminating (still serving)");
    await writeSlices([
      { pod: a0, state: "terminating" },
      { pod: a1, state: "ready" },
      { pod: a2, state: "ready" },
    ]);
    await Promise.all([
      lagOf("local: node 0 out once its pod terminates", "local", node0, false, tMove),
      lagOf("local: the last node in once its pod is ready", "local", last, true, tMove),
    ]);
    await sleep(2_000);

    step("a0 leaves the EndpointSlices");
    await writeSlices([{ pod: a1, state: "ready" }, { pod: a2, state: "ready" }]);
    await sleep(1_500);
    step("a0 stops");
    await lab.removePod(a0);
    await sleep(1_000);
    const tOff = step("node 0 is switched off");
    await lab.powerOff(0);
    await sleep(3_000);
    await b.stop();
    log("traffic stopped");

    const connections = b.events.filter((e): e is Extract<BalancerEvent, { type: "connection" }> =>
      e.type === "connection"
    );
    const pools: Record<string, { sent: number; failed: number; byNode: Record<string, number> }> =
      {};
    for (const c of connections) {
      const pool = pools[c.pool] ??= { sent: 0, failed: 0, byNode: {} };
      pool.sent++;
      if (c.pod === null) pool.failed++;
      else pool.byNode[c.node ?? "none"] = (pool.byNode[c.node ?? "none"] ?? 0) + 1;
    }
    return {
      pools,
      failures: connections.filter((c) => c.pod === null),
      transitions: b.events.filter((e): e is Extract<BalancerEvent, { type: "health" }> =>
        e.type === "health"
      ),
      steps,
      lags,
      afterPowerOff: connections.filter((c) => c.node === node0 && c.at >= tOff).length,
    };
  } finally {
    balancer?.kill();
    await prober?.stop().catch(() => {});
    await Promise.allSettled(proxies.map((p) => p.stop()));
    await Promise.allSettled(bridges.map((br) => br.close()));
    await lab.teardown();
    for (let i = 0; i < n; i++) {
      await cluster.request(`/api/v1/nodes/${nodeName(i)}`, { method: "DELETE" })
        .then((r) => r.body?.cancel()).catch(() => {});
    }
  }
}

/** The report in a few lines, for logs and assertion messages. */
export function describeDrain(report: DrainReport): string {
  const lines: string[] = [];
  for (const [pool, p] of Object.entries(report.pools)) {
    lines.push(
      `${pool}: ${p.sent} connections, ${p.failed} failed; answered per node ${
        JSON.stringify(p.byNode)
      }`,
    );
  }
  for (const l of report.lags) {
    lines.push(`${l.what}: ${l.ms === null ? "never" : `${l.ms} ms`}`);
  }
  const t0 = report.steps[0]?.at ?? 0;
  for (const s of report.steps) lines.push(`+${s.at - t0} ms ${s.name}`);
  for (const t of report.transitions) {
    lines.push(`+${t.at - t0} ms ${t.pool} ${t.node} ${t.healthy ? "in" : "out"} (${t.status})`);
  }
  for (const f of report.failures.slice(0, 10)) {
    lines.push(`FAILED +${f.at - t0} ms ${f.pool} via ${f.node}: ${f.error}`);
  }
  return lines.join("\n");
}
