/**
 * API server outage: kproxy (`--kubeconfig`, nftables, `--sync-period 2s`) runs as a process in a
 * node namespace against a real etcd + kube-apiserver; a pod probes a ClusterIP every 20 ms. The
 * API server is stopped for 8 s — once gracefully (SIGTERM), once as a crash (SIGKILL) — and:
 *
 * - the rules stay: not one probe fails during the outage;
 * - `/healthz` stays 200 throughout (nothing is pending, so there is nothing to be late with,
 *   even past 2 × sync-period) and `/readyz` stays 200; kproxy keeps running;
 * - once the API server is back, changes written right away (an endpoint moves, a Service comes
 *   or goes) reach the kernel: kproxy reconnects and catches up. The time to that is printed.
 *
 * IP plan (tests/netns/topology.ts): pods 198.18.1.10-12 (pod2 is the client), ClusterIPs
 * 198.18.128.10 (web) and 198.18.128.20 (api), port 80 → pods' 8080; the apiserver listens on
 * 127.0.0.1, reached from the node namespace through the fixture's bridge.
 */
import assert from "node:assert/strict";
import { type NetnsBridge, startTestCluster, type TestCluster } from "../fixtures/apiserver.ts";
import {
  createTopology,
  endpointSlice,
  local,
  POD_CIDRS,
  service,
  THIS_NODE,
  thisNode,
  type Topology,
} from "../netns/mod.ts";
import { type KproxyProcess, startKproxy, tail } from "./_kproxy.ts";
import { describeFailures, failedProbes, startProbeLoop } from "./_probe_loop.ts";
import { goFixtures, netns, requiring } from "../requirements.ts";

const WEB = { protocol: "TCP", ip: "198.18.128.10", port: 80 } as const;
const API = { protocol: "TCP", ip: "198.18.128.20", port: 80 } as const;
const OUTAGE_MS = 8_000;
const SYNC_PERIOD = "2s";
const SLICES = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";
const SERVICES = "/api/v1/namespaces/default/services";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Writes raw objects as the cluster's admin. */
async function call(
  cluster: TestCluster,
  method: string,
  path: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const res = await cluster.request(path, {
    method,
    headers: { "Content-Type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`Cannot ${method} ${path}: HTTP ${res.status}: ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

function withoutUid(object: Record<string, unknown>): Record<string, unknown> {
  const { uid: _uid, ...metadata } = object["metadata"] as Record<string, unknown>;
  return { ...object, metadata };
}

async function replace(cluster: TestCluster, path: string, object: Record<string, unknown>) {
  const current = await call(cluster, "GET", path);
  const rv = (current["metadata"] as Record<string, unknown>)["resourceVersion"];
  const o = withoutUid(object);
  const metadata = { ...(o["metadata"] as Record<string, unknown>), resourceVersion: rv };
  return await call(cluster, "PUT", path, { ...o, metadata });
}

function slice(name: string, pods: readonly number[]): Record<string, unknown> {
  return endpointSlice(name, {
    ports: [{ name: "http", port: 8080 }],
    endpoints: pods.map((i) => local(i)),
  });
}

function svc(name: string, ip: string): Record<string, unknown> {
  return service(name, { clusterIPs: [ip], ports: [{ name: "http", port: 80 }] });
}

/**
 * Probes `target` until three batches in a row are answered only by `pods` (by no pod, for
 * `[]`); returns when the first of them was sent. Three batches of eight: a subset of the old
 * endpoints cannot pass by chance.
 */
/**
 * Waits until every kind whose list or watch failed in `log` has logged that it resumed since its
 * last failure, then a little longer: a watch counts as working once it has lasted 1 s.
 */
async function allResumed(log: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = log();
    const lastFailure = new Map<string, number>();
    const lastResume = new Map<string, number>();
    for (const m of text.matchAll(/ (\w+) (?:watch|list) (failed|resumed) /g)) {
      (m[2] === "failed" ? lastFailure : lastResume).set(m[1] as string, m.index);
    }
    const waiting = [...lastFailure].filter(([kind, at]) => (lastResume.get(kind) ?? -1) < at);
    if (waiting.length === 0) break;
    if (Date.now() > deadline) {
      throw new Error(`not resumed: ${waiting.map(([kind]) => kind).join(", ")}`);
    }
    await sleep(100);
  }
  await sleep(1_500);
}

async function converge(
  topology: Topology,
  target: typeof WEB | typeof API,
  pods: readonly string[],
  timeoutMs: number,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  let streak = 0;
  let since = 0;
  for (;;) {
    const sent = Date.now();
    const d = await topology.distribution("pod2", target, 8, { timeoutMs: 300 });
    const answered = Object.keys(d.answers).sort();
    last = JSON.stringify(d);
    // A deleted Service's ClusterIP routes nowhere: no pod answers any more.
    const ok = pods.length === 0
      ? answered.length === 0
      : d.refused + d.timeout === 0 && answered.join() === [...pods].sort().join();
    if (ok) {
      if (streak++ === 0) since = sent;
      if (streak === 3) return since;
    } else streak = 0;
    if (Date.now() > deadline) {
      throw new Error(`${target.ip} did not converge to ${pods.join(",") || "no answer"}: ${last}`);
    }
    if (!ok) await sleep(50);
  }
}

Deno.test(requiring([netns, goFixtures], {
  name: "reliability: API server outages keep rules and health; kproxy catches up after",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const cluster = await startTestCluster();
    let topology: Topology | null = null;
    let bridge: NetnsBridge | null = null;
    let kproxy: KproxyProcess | null = null;
    try {
      topology = await createTopology({ pods: 3 });
      bridge = await cluster.exposeInNetns(topology.nodeNetns);
      const node = thisNode();
      await call(cluster, "POST", "/api/v1/nodes", withoutUid(node));
      await replace(cluster, `/api/v1/nodes/${THIS_NODE}/status`, node);
      await call(cluster, "POST", SERVICES, withoutUid(svc("web", WEB.ip)));
      await call(cluster, "POST", SLICES, slice("web", [0]));

      const args = [
        "--kubeconfig",
        cluster.kubeProxyKubeconfigPath,
        "--proxy-mode",
        "nftables",
        "--hostname-override",
        THIS_NODE,
        "--cluster-cidr",
        POD_CIDRS.join(","),
        "--sync-period",
        SYNC_PERIOD,
        "--healthz-bind-address",
        "127.0.0.1:0",
        "--metrics-bind-address",
        "127.0.0.1:0",
      ];
      kproxy = await startKproxy(topology.nodeNetns, args);
      const k = kproxy;
      await converge(topology, WEB, ["pod0"], 20_000);

      const rounds = [
        {
          stop: { crash: false },
          web: [1],
          // A new Service appears right after the API server is back.
          after: async () => {
            await replace(cluster, `${SLICES}/web-ipv4`, slice("web", [1]));
            await call(cluster, "POST", SERVICES, withoutUid(svc("api", API.ip)));
            await call(cluster, "POST", SLICES, slice("api", [0]));
          },
          api: ["pod0"],
        },
        {
          stop: { crash: true },
          web: [0, 1],
          // And goes again, while web scales up.
          after: async () => {
            await replace(cluster, `${SLICES}/web-ipv4`, slice("web", [0, 1]));
            await call(cluster, "DELETE", `${SERVICES}/api`);
          },
          api: [],
        },
      ];
      for (const round of rounds) {
        const name = round.stop.crash ? "crash (SIGKILL)" : "graceful stop (SIGTERM)";
        const loop = startProbeLoop(topology, "pod2", WEB, { intervalMs: 20 });
        const health: number[] = [];
        const logFrom = k.log().length;
        let stoppedAt = 0;
        let backAt = 0;
        let caughtUp = 0;
        try {
          await cluster.stopApiServer(round.stop);
          stoppedAt = Date.now();
          while (Date.now() < stoppedAt + OUTAGE_MS) {
            health.push((await k.get("health", "/healthz")).status);
            await sleep(500);
          }
          assert.equal((await k.get("health", "/readyz")).status, 200);
          assert.equal(k.exitStatus(), null, "kproxy keeps running without its API server");
          await cluster.startApiServer();
          backAt = Date.now();
          await round.after();
          const webAt = await converge(topology, WEB, round.web.map((i) => `pod${i}`), 60_000);
          const apiAt = await converge(topology, API, round.api, 60_000);
          caughtUp = Math.max(webAt, apiAt);
          // Every kind is listing and watching again before the next outage begins.
          await allResumed(() => k.log().slice(logFrom), 30_000);
        } finally {
          const probes = await loop.stop();
          const failures = failedProbes(probes, ["pod0", "pod1"]);
          const during = probes.filter((p) => p.at >= stoppedAt && p.at < backAt).length;
          const lines = k.log().slice(logFrom).split("\n").filter((l) =>
            l !== "" && !/ sync ok: /.test(l)
          );
          const complaints = lines.length;
          if (Deno.env.get("KPROXY_TEST_VERBOSE") === "1") console.log(lines.join("\n"));
          console.log(
            `  ${name}: API server down ${backAt - stoppedAt} ms; ${probes.length} probes ` +
              `(${during} during the outage), ${failures.length} failed; /healthz ` +
              `${[...new Set(health)].join("/")} ×${health.length}; caught up ` +
              `${
                caughtUp - backAt
              } ms after the API server was back; ${complaints} other log lines`,
          );
          assert.equal(failures.length, 0, describeFailures(failures));
        }
        assert.ok(health.length >= 10 && health.every((s) => s === 200), `healthz ${health}`);
        // Each watch had been working: its first retry comes at once (250 ms + jitter), not
        // after a delay inherited from the previous outage.
        const round1st = new Map<string, number>();
        for (
          const m of k.log().slice(logFrom).matchAll(/ (\w+) watch failed \(retry in (\d+) ms\)/g)
        ) {
          if (!round1st.has(m[1] as string)) round1st.set(m[1] as string, Number(m[2]));
        }
        for (const [kind, delay] of round1st) {
          assert.ok(delay <= 300, `${name}: first ${kind} watch retry after ${delay} ms`);
        }
        assert.equal((await k.get("health", "/healthz")).status, 200);
      }

      // kproxy itself restarts while the API server is down: it cannot list, so it must not
      // touch the rules the previous process left; they keep serving until it can.
      const loop = startProbeLoop(topology, "pod2", WEB, { intervalMs: 20 });
      let blindMs = 0;
      try {
        await k.kill("SIGKILL");
        await cluster.stopApiServer({ crash: true });
        kproxy = await startKproxy(topology.nodeNetns, args, { waitForSync: false });
        const blind = kproxy;
        const blindFrom = Date.now();
        await sleep(5_000);
        assert.equal(blind.exitStatus(), null, "kproxy waits for its API server");
        assert.doesNotMatch(blind.log(), /sync ok/, "no sync before the objects are listed");
        assert.equal((await blind.get("health", "/healthz")).status, 200, "starting up: healthy");
        assert.equal((await blind.get("health", "/readyz")).status, 503, "not ready: no sync yet");
        const table = await topology.exec("node", ["nft", "list", "table", "ip", "kproxy"]);
        assert.match(table.stdout, /198\.18\.1\.11/, "the previous process's rules are in place");
        await cluster.startApiServer();
        await replace(cluster, `${SLICES}/web-ipv4`, slice("web", [1]));
        await converge(topology, WEB, ["pod1"], 60_000);
        blindMs = Date.now() - blindFrom;
        await blind.waitForLog(/sync ok: full/, 5_000);
        assert.equal((await blind.get("health", "/readyz")).status, 200);
      } finally {
        const probes = await loop.stop();
        const failures = failedProbes(probes, ["pod0", "pod1"]);
        console.log(
          `  kproxy restarted without an API server: ${probes.length} probes over ` +
            `${blindMs} ms, ${failures.length} failed; old rules served until the first list`,
        );
        assert.equal(failures.length, 0, describeFailures(failures));
      }
    } catch (e) {
      if (kproxy !== null) console.error(`kproxy log:\n${tail(kproxy.log(), 60)}`);
      throw e;
    } finally {
      await kproxy?.kill("SIGTERM");
      await bridge?.close();
      await topology?.teardown();
      await cluster.stop();
    }
  },
}));
