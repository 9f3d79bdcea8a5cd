/**
 * End to end, in both backends: `kproxy --kubeconfig K --proxy-mode nftables|iptables` runs as a
 * process inside a test node namespace against a real kube-apiserver (reached through the
 * fixture's netns bridge), and the rules it programs carry real traffic: a Service +
 * EndpointSlice written to the API answer on their ClusterIP, and scaling the slice moves the
 * traffic. Prints the time from each API write to the rules being live. Needs root, `ip netns`
 * and the Go fixtures (tests/requirements.ts).
 *
 * IP plan (tests/netns/topology.ts): node 198.18.0.1 / primary 198.19.0.1, pods 198.18.1.10-12
 * (pod2 is the client), ClusterIP 198.18.128.10:80 → pods' port 8080; apiserver on 127.0.0.1
 * (the same port inside the node namespace, via the bridge; its certificate covers 127.0.0.1).
 */
import assert from "node:assert/strict";
import { type NetnsBridge, startTestCluster, type TestCluster } from "../fixtures/apiserver.ts";
import {
  createTopology,
  endpointSlice,
  local,
  POD_CIDRS,
  type ProbeResult,
  service,
  THIS_NODE,
  thisNode,
  type Topology,
} from "../netns/mod.ts";
import { type KproxyProcess, metricValue, startKproxy, tail } from "../reliability/_kproxy.ts";
import { TRIGGER_TIME } from "./_api.ts";
import { goFixtures, netns, requiring } from "../requirements.ts";

const CLUSTER_IP = "198.18.128.10";
const TARGET = { protocol: "TCP", ip: CLUSTER_IP, port: 80 } as const;
const SLICE = "web-ipv4";

/** Writes raw objects to the API server as the token admin. */
class Rest {
  constructor(readonly cluster: TestCluster) {}

  async #call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await this.cluster.request(path, {
      method,
      headers: { "Content-Type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`Cannot ${method} ${path}: HTTP ${res.status}: ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  }

  create(collection: string, object: Record<string, unknown>) {
    const meta = object["metadata"] as Record<string, unknown>;
    const { uid: _uid, ...metadata } = meta;
    return this.#call("POST", collection, { ...object, metadata });
  }

  /** Replaces an object (read its resourceVersion, write). */
  async replace(path: string, object: Record<string, unknown>) {
    const current = await this.#call("GET", path);
    const rv = (current["metadata"] as Record<string, unknown>)["resourceVersion"];
    const meta = object["metadata"] as Record<string, unknown>;
    const { uid: _uid, ...metadata } = meta;
    return this.#call("PUT", path, { ...object, metadata: { ...metadata, resourceVersion: rv } });
  }

  delete(path: string) {
    return this.#call("DELETE", path);
  }
}

function webSlice(pods: readonly number[]): Record<string, unknown> {
  const slice = endpointSlice("web", {
    ports: [{ name: "http", port: 8080 }],
    endpoints: pods.map((i) => local(i)),
  });
  const meta = slice["metadata"] as Record<string, unknown>;
  return {
    ...slice,
    metadata: { ...meta, annotations: { [TRIGGER_TIME]: new Date().toISOString() } },
  };
}

function answeredBy(results: readonly ProbeResult[]): string[] {
  return results.map((r) => r.kind === "answer" ? r.pod : r.kind);
}

/** Probes until `done` holds for a batch; returns when (ms since epoch) that batch was sent. */
async function probeUntil(
  topology: Topology,
  what: string,
  done: (pods: string[]) => boolean,
  options: { from?: string; batch?: number; timeoutMs?: number } = {},
): Promise<number> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  let last: string[] = [];
  while (Date.now() < deadline) {
    const sent = Date.now();
    const results = await topology.probeMany(options.from ?? "pod2", TARGET, options.batch ?? 1, {
      timeoutMs: 150,
    });
    last = answeredBy(results);
    if (done(last)) return sent;
  }
  throw new Error(`Timed out waiting for ${what}; last probes: ${last.join(", ")}`);
}

/** Time (kproxy's ISO log timestamp) of a `sync ok` log line. */
function loggedAt(line: string): number | null {
  const t = Date.parse(/^(\S+) sync ok: /.exec(line)?.[1] ?? "");
  return Number.isFinite(t) ? t : null;
}

for (const mode of ["nftables", "iptables"] as const) {
  Deno.test(requiring([netns, goFixtures], {
    name:
      `e2e: kproxy --kubeconfig --proxy-mode ${mode} follows a real API server with real traffic`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const cluster = await startTestCluster();
      let topology: Topology | null = null;
      let bridge: NetnsBridge | null = null;
      let kproxy: KproxyProcess | null = null;
      const report: string[] = [];
      try {
        topology = await createTopology({ pods: 3 });
        const node = topology.nodeNetns;
        bridge = await cluster.exposeInNetns(node);
        const rest = new Rest(cluster);
        const nodeObject = thisNode();
        await rest.create("/api/v1/nodes", nodeObject);
        await rest.replace(`/api/v1/nodes/${THIS_NODE}/status`, nodeObject);
        await rest.create(
          "/api/v1/namespaces/default/services",
          service("web", { clusterIPs: [CLUSTER_IP], ports: [{ name: "http", port: 80 }] }),
        );

        kproxy = await startKproxy(node, [
          "--kubeconfig",
          cluster.kubeProxyKubeconfigPath,
          "--proxy-mode",
          mode,
          "--hostname-override",
          THIS_NODE,
          "--cluster-cidr",
          POD_CIDRS.join(","),
          "--healthz-bind-address",
          "127.0.0.1:0",
          "--metrics-bind-address",
          "127.0.0.1:0",
        ]);
        const k = kproxy;
        assert.match(
          k.log(),
          /kubernetes source: Services, EndpointSlices and Node listed; synced/,
        );

        // A Service without endpoints: kproxy rejects its ClusterIP.
        const empty = answeredBy(await topology.probeMany("pod2", TARGET, 1, { timeoutMs: 500 }));
        assert.deepEqual(empty, ["refused"], tail(k.log()));

        const measure = async (
          what: string,
          write: () => Promise<unknown>,
          done: (pods: string[]) => boolean,
          batch = 1,
        ) => {
          const from = k.log().length;
          const t0 = Date.now();
          await write();
          const live = await probeUntil(topology!, what, done, { batch });
          const line0 = await k.waitForLog(/^\S+ sync ok: .*$/m, 5_000, from).catch(() => null);
          const synced = line0 === null ? null : loggedAt(line0[0]);
          const line = `${what}: API write → traffic answers ≤ ${live - t0} ms` +
            (synced === null ? "" : `; → ${mode} sync done ${synced - t0} ms`);
          report.push(line);
          console.log(`    ${line}`);
        };

        await measure(
          "EndpointSlice create (pod0)",
          () =>
            rest.create(
              "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
              webSlice([0]),
            ),
          (pods) => pods[0] === "pod0",
        );
        const one = answeredBy(await topology.probeMany("pod2", TARGET, 10));
        assert.deepEqual(new Set(one), new Set(["pod0"]));

        await measure(
          "EndpointSlice scale to pod0+pod1",
          () =>
            rest.replace(
              `/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/${SLICE}`,
              webSlice([0, 1]),
            ),
          (pods) => pods.includes("pod1"),
          4,
        );
        const two = await topology.distribution("pod2", TARGET, 40);
        assert.ok(
          (two.answers["pod0"] ?? 0) > 0 && (two.answers["pod1"] ?? 0) > 0,
          JSON.stringify(two),
        );
        assert.equal(
          (two.answers["pod0"] ?? 0) + (two.answers["pod1"] ?? 0),
          40,
          JSON.stringify(two),
        );

        await measure(
          "EndpointSlice scale to pod1 only",
          () =>
            rest.replace(
              `/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/${SLICE}`,
              webSlice([1]),
            ),
          (pods) => pods.every((p) => p === "pod1"),
          8,
        );
        // From the node namespace itself (locally originated traffic) too.
        const fromNode = answeredBy(await topology.probeMany("node", TARGET, 5));
        assert.deepEqual(new Set(fromNode), new Set(["pod1"]));

        const metrics = await k.get("metrics", "/metrics");
        const programmed = metricValue(
          metrics.body,
          "kubeproxy_network_programming_duration_seconds_count",
        );
        assert.ok(programmed >= 3, `network programming latency observed ${programmed} times`);
        const sum = metricValue(metrics.body, "kubeproxy_network_programming_duration_seconds_sum");
        report.push(
          `kubeproxy_network_programming_duration_seconds: ${programmed} observations, mean ${
            (sum / programmed * 1000).toFixed(1)
          } ms (trigger annotation → rules live)`,
        );

        await measure(
          "Service delete",
          () => rest.delete("/api/v1/namespaces/default/services/web"),
          (pods) => pods[0] !== "pod1" && pods[0] !== "pod0",
        );
        console.log(`    summary:\n      ${report.join("\n      ")}`);
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
}
