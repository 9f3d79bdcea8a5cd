/**
 * KubernetesSource → SyncLoop against a real etcd + kube-apiserver (tests/fixtures/apiserver.ts):
 * the synced snapshots follow creates, updates and deletes; API server restarts, 410 Gone relists,
 * quiet watches and malformed objects are survived. Skipped, loudly, without the Go fixtures.
 *
 * IP plan: apiserver 127.0.0.1:<free port> (advertised 198.18.0.1), the source reaches it through
 * a loopback relay; ClusterIPs from 198.18.128.0/17; pods 198.18.1.10+ (stored, never dialled).
 */
import assert from "node:assert/strict";
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { startTestCluster, type TestCluster } from "../fixtures/apiserver.ts";
import { TestApi } from "./_api.ts";
import {
  endpointsOf,
  type SourceHarness,
  startSourceHarness,
  summarize,
} from "./_source_harness.ts";
import { TcpRelay } from "./_tcp_relay.ts";
import { goFixtures, requiring } from "../requirements.ts";

const WEB = "default/web:http";

function ms(from: number, to: number): string {
  return `${Math.max(0, to - from)} ms`;
}

/** Latency samples of "API write → snapshot synced", printed at the end. */
const latencies: number[] = [];

async function timed(
  harness: SourceHarness,
  what: string,
  write: () => Promise<void>,
  check: Parameters<SourceHarness["waitFor"]>[1],
): Promise<number> {
  const t0 = Date.now();
  await write();
  const written = Date.now();
  const at = await harness.waitFor(what, check, { since: t0 });
  latencies.push(at - t0);
  console.log(`    ${what}: write ${ms(t0, written)}, write → synced ${ms(t0, at)}`);
  return at - t0;
}

function servicePresent(id: string) {
  return (s: Parameters<Parameters<SourceHarness["waitFor"]>[1]>[0]) => endpointsOf(s, id) !== null;
}

Deno.test(requiring([goFixtures], {
  name: "kubernetes source: snapshots follow a real API server through restarts, 410 and faults",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const cluster = await startTestCluster();
    const relay = TcpRelay.start(Number(new URL(cluster.server).port));
    const api = new TestApi(cluster.tokenKubeconfigPath);
    let harness: SourceHarness | undefined;
    try {
      harness = await startSourceHarness({
        kubeconfig: cluster.tokenKubeconfigPath,
        master: relay.url,
        watchIdleTimeoutMs: 4_000,
      });
      const h = harness;

      await t.step("first sync holds the default/kubernetes service", async () => {
        await h.waitFor("default/kubernetes", servicePresent("default/kubernetes:https"));
        assert.equal(h.errors.length, 0);
      });

      await t.step("create, update and delete a Service and its EndpointSlice", async () => {
        await timed(
          h,
          "Service create",
          () => api.createService("web").then(() => {}),
          (s) => endpointsOf(s, WEB) !== null,
        );
        await timed(
          h,
          "EndpointSlice create (2 endpoints)",
          () => api.createSlice("web", "web-a", [{ ip: "198.18.1.10" }, { ip: "198.18.1.11" }]),
          (s) => endpointsOf(s, WEB)?.length === 2,
        );
        assert.deepEqual(endpointsOf(h.applier.last!, WEB), [
          "198.18.1.10:8080",
          "198.18.1.11:8080",
        ]);
        await timed(
          h,
          "EndpointSlice scale to 3 (one not ready)",
          () =>
            api.updateSlice("web", "web-a", [
              { ip: "198.18.1.10" },
              { ip: "198.18.1.11", ready: false },
              { ip: "198.18.1.12" },
            ]),
          (s) => endpointsOf(s, WEB)?.length === 3,
        );
        assert.deepEqual(endpointsOf(h.applier.last!, WEB), [
          "198.18.1.10:8080",
          "198.18.1.11:8080 (not ready)",
          "198.18.1.12:8080",
        ]);
        await timed(
          h,
          "second EndpointSlice create",
          () => api.createSlice("web", "web-b", [{ ip: "198.18.1.13" }]),
          (s) => endpointsOf(s, WEB)?.length === 4,
        );
        await timed(
          h,
          "EndpointSlice delete",
          () => api.deleteSlice("web-a"),
          (s) => endpointsOf(s, WEB)?.join() === "198.18.1.13:8080",
        );
        await timed(
          h,
          "Service delete",
          () => api.deleteService("web"),
          (s) => endpointsOf(s, WEB) === null,
        );
        await api.deleteSlice("web-b");
        assert.ok(h.programmed.length > 0, "network programming latency was reported");
      });

      await t.step(
        "services and slices of another proxy, and headless slices, are ignored",
        async () => {
          await api.createService("other", { "service.kubernetes.io/service-proxy-name": "other" });
          // The EndpointSlice controller copies the Service's labels onto its slices.
          await api.createSlice("other", "other-a", [{ ip: "198.18.1.20" }], {
            "service.kubernetes.io/service-proxy-name": "other",
          });
          await api.createService("mine");
          await api.createSlice("mine", "mine-a", [{ ip: "198.18.1.21" }]);
          await api.createSlice("mine", "mine-headless", [{ ip: "198.18.1.22" }], {
            "service.kubernetes.io/headless": "",
          });
          await h.waitFor("mine", (s) => endpointsOf(s, "default/mine:http")?.length === 1);
          const last = h.applier.last!;
          assert.equal(endpointsOf(last, "default/other:http"), null);
          assert.deepEqual(endpointsOf(last, "default/mine:http"), ["198.18.1.21:8080"]);
          // The ServiceCIDR is the API server's own (`kubernetes`).
          assert.deepEqual(h.source.sizes(), {
            Service: 2,
            EndpointSlice: 2,
            Node: 0,
            ServiceCIDR: 1,
          });
        },
      );

      await t.step("a Node label change (topology zone) is picked up", async () => {
        await timed(
          h,
          "Node create (zone-a)",
          () => api.setNodeZone("node-a", "zone-a"),
          (s) => s.node.zone === "zone-a",
        );
        await timed(
          h,
          "Node relabel (zone-b)",
          () => api.setNodeZone("node-a", "zone-b"),
          (s) => s.node.zone === "zone-b",
        );
        // Another node's labels are not even watched.
        await api.setNodeZone("node-b", "zone-c");
        assert.deepEqual(h.source.sizes()["Node"], 1);
      });

      await t.step(
        "ServiceCIDRs are followed: the API server's own, then one added and removed",
        async () => {
          await h.waitFor(
            "the default ServiceCIDR",
            (s) => s.serviceCIDRs.includes("198.18.128.0/17"),
          );
          await timed(
            h,
            "ServiceCIDR create",
            () => api.createServiceCIDR("extra", ["198.19.128.0/24"]),
            (s) => s.serviceCIDRs.includes("198.19.128.0/24"),
          );
          await timed(
            h,
            "ServiceCIDR delete",
            () => api.deleteServiceCIDR("extra"),
            (s) => !s.serviceCIDRs.includes("198.19.128.0/24"),
          );
          assert.ok(h.applier.last?.serviceCIDRs.includes("198.18.128.0/17"));
        },
      );

      await t.step(
        "a malformed EndpointSlice is skipped without harming other services",
        async () => {
          await api.createService("broken");
          await api.createSlice("broken", "broken-good", [{ ip: "198.18.1.30" }]);
          await h.waitFor("broken", (s) => endpointsOf(s, "default/broken:http")?.length === 1);
          const before = h.errors.length;
          // The API server accepts an IPv4 address with leading zeros (legacy validation);
          // kproxy's model does not.
          await api.createSlice("broken", "broken-bad", [{ ip: "198.018.1.31" }]);
          await api.createSlice("mine", "mine-b", [{ ip: "198.18.1.23" }]);
          await h.waitFor("mine-b", (s) => endpointsOf(s, "default/mine:http")?.length === 2);
          await waitUntil("the error", () => h.errors.length > before);
          const error = h.errors.at(-1)!;
          assert.equal(error.name, "default/broken-bad");
          assert.match(error.message, /endpoints\[0\]\.addresses\[0\] is not an IP address/);
          assert.deepEqual(endpointsOf(h.applier.last!, "default/broken:http"), [
            "198.18.1.30:8080",
          ]);
          // Fixing it brings its endpoint in.
          await api.updateSlice("broken", "broken-bad", [{ ip: "198.18.1.31" }]);
          await h.waitFor(
            "broken fixed",
            (s) => endpointsOf(s, "default/broken:http")?.length === 2,
          );
        },
      );

      await t.step("a graceful API server restart mid-watch: the next change arrives", async () => {
        await cluster.restartApiServer();
        await timed(
          h,
          "Service create after restart",
          () => api.createService("after-restart").then(() => {}),
          servicePresent(
            "default/after-restart:http",
          ),
        );
      });

      await t.step("a crashed API server (SIGKILL): the next change arrives", async () => {
        await cluster.restartApiServer({ crash: true });
        await timed(
          h,
          "Service create after crash",
          () => api.createService("after-crash").then(() => {}),
          servicePresent(
            "default/after-crash:http",
          ),
        );
      });

      await t.step("410 Gone: a relist replaces each kind, nothing stale survives", async () => {
        await api.createService("stale");
        await api.createSlice("stale", "stale-a", [{ ip: "198.18.1.40" }]);
        await api.createSlice("mine", "mine-stale", [{ ip: "198.18.1.41" }]);
        await h.waitFor("stale", (s) =>
          endpointsOf(s, "default/stale:http")?.length === 1 &&
          endpointsOf(s, "default/mine:http")?.length === 3);
        const expiredBefore = h.source.stats()["Service"]?.expired ?? 0;
        // The source loses its connection; meanwhile objects go away and etcd forgets them.
        await relay.pause();
        await api.deleteSlice("stale-a");
        await api.deleteService("stale");
        await api.deleteSlice("mine-stale");
        await api.createService("fresh");
        await cluster.compactEtcd();
        await cluster.restartApiServer(); // a fresh watch cache: old resourceVersions are gone
        const t0 = Date.now();
        relay.resume();
        const at = await h.waitFor("relist", (s) =>
          endpointsOf(s, "default/stale:http") === null &&
          endpointsOf(s, "default/fresh:http") !== null &&
          endpointsOf(s, "default/mine:http")?.length === 2, { since: t0 });
        console.log(`    reconnect → relisted snapshot synced: ${ms(t0, at)}`);
        const stats = h.source.stats();
        assert.ok(
          (stats["Service"]?.expired ?? 0) > expiredBefore,
          `the Service watch saw 410: ${JSON.stringify(stats)}`,
        );
        const last = h.applier.last!;
        assert.ok(last.servicePorts.some((p) => p.id === "default/kubernetes:https"));
        assert.equal(last.node.zone, "zone-b", "the Node survived the other kinds' relists");
        assert.deepEqual(endpointsOf(last, "default/broken:http"), [
          "198.18.1.30:8080",
          "198.18.1.31:8080",
        ]);
      });

      await t.step("a watch that goes quiet is dropped and restarted", async () => {
        // Let the watches start anew through the relay (over one HTTP/2 connection), then
        // silence it.
        await waitUntil("open watches", () => relay.connections >= 1);
        await new Promise((r) => setTimeout(r, 500));
        const idleBefore = Object.values(h.source.stats()).reduce((n, s) => n + s.idleRestarts, 0);
        const frozen = relay.freeze();
        assert.ok(frozen >= 1, `froze ${frozen} connections`);
        const t0 = Date.now();
        await api.createService("after-freeze");
        const at = await h.waitFor("after-freeze", servicePresent("default/after-freeze:http"), {
          since: t0,
          timeoutMs: 30_000,
        });
        console.log(`    change on a silenced watch → synced: ${ms(t0, at)} (idle timeout 4 s)`);
        const idleAfter = Object.values(h.source.stats()).reduce((n, s) => n + s.idleRestarts, 0);
        assert.ok(idleAfter > idleBefore, "an idle restart happened");
      });

      const sorted = [...latencies].sort((a, b) => a - b);
      console.log(
        `    API write → snapshot synced over ${sorted.length} changes: median ${
          sorted[Math.floor(sorted.length / 2)]
        } ms, max ${sorted.at(-1)} ms; network programming latency (trigger annotation) max ${
          Math.max(...h.programmed).toFixed(3)
        } s`,
      );
      assert.equal(
        h.errors.filter((e) => e.name !== "default/broken-bad").length,
        0,
        `unexpected errors: ${h.errors.map((e) => e.message).join("; ")}`,
      );
    } catch (e) {
      console.error(`last snapshot: ${JSON.stringify(summarize(harness?.applier.last ?? null))}`);
      console.error(`apiserver log: ${cluster.apiServerLogPath}`);
      throw e;
    } finally {
      await harness?.stop();
      await relay.close();
      await cluster.stop();
    }
  },
}));

async function waitUntil(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function withCluster(fn: (cluster: TestCluster) => Promise<void>): Promise<void> {
  const cluster = await startTestCluster();
  try {
    await fn(cluster);
  } finally {
    await cluster.stop();
  }
}

Deno.test(requiring([goFixtures], {
  name: "kubernetes source: client-certificate kubeconfig with kube-proxy's own RBAC, watches too",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withCluster(async (cluster) => {
      const api = new TestApi(cluster.tokenKubeconfigPath);
      const h = await startSourceHarness({ kubeconfig: cluster.kubeProxyKubeconfigPath });
      try {
        await h.waitFor("first sync", servicePresent("default/kubernetes:https"));
        // The change arrives over the watch, which must present the client certificate too.
        await timed(
          h,
          "EndpointSlice create (client-cert watch)",
          async () => {
            await api.createService("web");
            await api.createSlice("web", "web-a", [{ ip: "198.18.1.10" }]);
          },
          (s) => endpointsOf(s, WEB)?.length === 1,
        );
        await api.setNodeZone("node-a", "zone-a");
        await h.waitFor("node zone", (s) => s.node.zone === "zone-a");
        const refusedIn = (lines: readonly string[]) => lines.filter((l) => /HTTP 40[13]/.test(l));
        assert.deepEqual(
          refusedIn(h.logs),
          [],
          "no 401/403: system:node-proxier may list and watch all three kinds",
        );
        // A restarting API server answers 403 until its RBAC caches are filled (upstream's
        // clients see the same); the watches must come back once it has.
        await cluster.restartApiServer();
        await timed(
          h,
          "EndpointSlice update after restart (client-cert watch)",
          () => api.updateSlice("web", "web-a", [{ ip: "198.18.1.10" }, { ip: "198.18.1.11" }]),
          (s) => endpointsOf(s, WEB)?.length === 2,
        );
        const settled = h.logs.length;
        await timed(
          h,
          "EndpointSlice update once settled (client-cert watch)",
          () => api.updateSlice("web", "web-a", [{ ip: "198.18.1.12" }]),
          (s) => endpointsOf(s, WEB)?.length === 1,
        );
        assert.equal(h.errors.length, 0);
        assert.deepEqual(refusedIn(h.logs.slice(settled)), [], "no 401/403 once it has started");
      } finally {
        await h.stop();
      }
    });
  },
}));

Deno.test(requiring([goFixtures], {
  name: "kubernetes source: in-cluster service-account config (token file, CA, service env)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withCluster(async (cluster) => {
      const root = await Deno.makeTempDir({ prefix: "kproxy-sa-" });
      const saved = ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"].map((k) =>
        [k, Deno.env.get(k)] as const
      );
      try {
        const sa = `${root}/var/run/secrets/kubernetes.io/serviceaccount`;
        await Deno.mkdir(sa, { recursive: true });
        await Deno.writeTextFile(`${sa}/token`, cluster.token);
        await Deno.writeTextFile(`${sa}/ca.crt`, cluster.caCert);
        await Deno.writeTextFile(`${sa}/namespace`, "kube-system");
        const url = new URL(cluster.server);
        Deno.env.set("KUBERNETES_SERVICE_HOST", url.hostname);
        Deno.env.set("KUBERNETES_SERVICE_PORT", url.port);
        const h = await startSourceHarness({ inClusterRoot: root });
        try {
          await h.waitFor("first sync", servicePresent("default/kubernetes:https"));
          const api = new TestApi(cluster.tokenKubeconfigPath);
          await api.createService("in-cluster");
          await h.waitFor("in-cluster", servicePresent("default/in-cluster:http"));
        } finally {
          await h.stop();
        }
      } finally {
        for (const [k, v] of saved) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
        await Deno.remove(root, { recursive: true });
      }
    });
  },
}));

Deno.test(requiring([goFixtures], {
  name: "kubernetes source: the API server filters out ExternalName and headless Services",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await withCluster(async (cluster) => {
      const api = new TestApi(cluster.tokenKubeconfigPath);
      const ports = [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }];
      await api.core.createNamespacedService({
        namespace: "default",
        body: {
          metadata: { name: "headless" },
          spec: { clusterIP: "None", selector: { app: "h" }, ports },
        },
      });
      await api.core.createNamespacedService({
        namespace: "default",
        body: {
          metadata: { name: "external" },
          spec: { type: "ExternalName", externalName: "x.example" },
        },
      });
      await api.createService("web");
      const h = await startSourceHarness({ kubeconfig: cluster.kubeProxyKubeconfigPath });
      try {
        await h.waitFor("web", servicePresent(WEB));
        // Only default/kubernetes and web were sent: the other two never reached kproxy.
        assert.equal(h.source.sizes()["Service"], 2);
        // A Service that becomes ExternalName leaves the selection: the watch says "deleted".
        await api.core.patchNamespacedService(
          {
            name: "web",
            namespace: "default",
            body: { spec: { type: "ExternalName", externalName: "web.example", clusterIP: "" } },
          },
          setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
        );
        await h.waitFor("web gone", (s) => endpointsOf(s, WEB) === null);
        await waitUntil("the cache to drop web", () => h.source.sizes()["Service"] === 1);
        assert.equal(h.errors.length, 0);
      } finally {
        await h.stop();
      }
    });
  },
}));
