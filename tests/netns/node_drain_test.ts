/**
 * Node drain, as kube-proxy v1.34's `ProxyHealthServer` has it: while the Node carries the
 * `ToBeDeletedByClusterAutoscaler` taint, or has a `deletionTimestamp`, `/healthz` answers 503
 * with `nodeEligible: false` (so cloud load balancers that health-check port 10256 stop sending
 * to the node), `/livez` stays 200, and the rules keep carrying traffic. The same test body runs
 * against kproxy (a `--kubeconfig` process, both backends) and upstream kube-proxy (both modes),
 * each on a lab node fed through the same kube-apiserver; and once more for kproxy reading a
 * manifest folder, where the drain is a file edit. Each drain must show on `/healthz` within a
 * second of the write.
 *
 * IP plan (topology.ts): node 198.18.0.1 / primary 198.19.0.1, pod0 198.18.1.10; Service
 * default/web ClusterIP 198.18.128.40:80 → pod0:8080; health servers on 127.0.0.1:10256 inside
 * the node namespace.
 */
import assert from "node:assert/strict";
import { type KproxyProcess, startKproxy } from "../reliability/_kproxy.ts";
import { manifestDir } from "../reliability/_manifests.ts";
import { goFixtures, netns, requiring } from "../requirements.ts";
import { endpointSlice, local, service, THIS_NODE, thisNode } from "./manifests.ts";
import type { HttpAnswer } from "../reliability/_kproxy.ts";
import { createTopology, POD_CIDRS, type Topology } from "./topology.ts";
import { type LabImplementation, UpstreamLab, type UpstreamMode } from "./upstream_backend.ts";

const CLUSTER_IP = "198.18.128.40";
const TARGET = { protocol: "TCP", ip: CLUSTER_IP, port: 80 } as const;
/** How soon after the write `/healthz` must tell (the bound). */
const DRAIN_VISIBLE_MS = 1_000;

type Raw = Record<string, unknown>;

/** Node, Service and slice; the Node drained as `drain` says. */
function objects(drain: "none" | "taint" | "deleting"): Raw[] {
  const node = thisNode() as Raw;
  const spec = node["spec"] as Raw;
  const metadata = node["metadata"] as Raw;
  const drained: Raw = drain === "none" ? node : drain === "taint"
    ? {
      ...node,
      spec: {
        ...spec,
        taints: [{
          key: "ToBeDeletedByClusterAutoscaler",
          value: "1732600000",
          effect: "NoSchedule",
        }],
      },
    }
    : { ...node, metadata: { ...metadata, deletionTimestamp: new Date().toISOString() } };
  return [
    drained,
    service("web", { clusterIPs: [CLUSTER_IP], ports: [{ name: "http", port: 80 }] }),
    endpointSlice("web", { ports: [{ name: "http", port: 8080 }], endpoints: [local(0)] }),
  ];
}

type Get = (server: "health" | "metrics", path: string) => Promise<HttpAnswer>;

function eligibleOf(answer: HttpAnswer): unknown {
  try {
    return (JSON.parse(answer.body) as Raw)["nodeEligible"];
  } catch {
    return `unparsable: ${answer.body}`;
  }
}

/** Polls `/healthz` until it answers `status`; returns how long that took after `since`. */
async function healthzBecomes(get: Get, status: number, since: number): Promise<number> {
  const deadline = since + 10_000;
  let last: HttpAnswer = { status: 0, body: "" };
  while (Date.now() < deadline) {
    last = await get("health", "/healthz");
    if (last.status === status) return Date.now() - since;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`/healthz still answers ${last.status} ${last.body}, expected ${status}`);
}

/** Every probe from a pod-less node and from the client reaches pod0. */
async function assertTrafficFlows(topology: Topology, when: string): Promise<void> {
  const fromNode = await topology.probeMany("node", TARGET, 5);
  assert.deepEqual(
    fromNode.map((r) => r.kind === "answer" ? r.pod : `${r.kind}`),
    ["pod0", "pod0", "pod0", "pod0", "pod0"],
    `${when}: the ClusterIP must keep answering`,
  );
}

/**
 * The drain sequence, whatever the proxy and the source: healthy, tainted, untainted, being
 * deleted. `drain(kind)` makes the change; returns the measured delays.
 */
async function drainSequence(
  topology: Topology,
  get: Get,
  drain: (kind: "none" | "taint" | "deleting") => Promise<void>,
): Promise<string> {
  const healthy = await get("health", "/healthz");
  assert.equal(healthy.status, 200, healthy.body);
  assert.equal(eligibleOf(healthy), true, healthy.body);
  await assertTrafficFlows(topology, "before the drain");

  const delays: string[] = [];
  for (const kind of ["taint", "none", "deleting"] as const) {
    const t0 = Date.now();
    await drain(kind);
    const want = kind === "none" ? 200 : 503;
    const ms = await healthzBecomes(get, want, t0);
    delays.push(`${kind} → ${want} in ${ms} ms`);
    assert.ok(ms <= DRAIN_VISIBLE_MS, `${kind}: /healthz took ${ms} ms to answer ${want}`);
    const h = await get("health", "/healthz");
    assert.equal(eligibleOf(h), kind === "none", h.body);
    const live = await get("health", "/livez");
    assert.equal(live.status, 200, `/livez ignores the node: ${live.body}`);
    assert.equal(eligibleOf(live), undefined, `/livez says nothing of the node: ${live.body}`);
    await assertTrafficFlows(topology, `node ${kind}`);
  }
  return delays.join(", ");
}

const lab = new UpstreamLab();
const CASES: readonly [LabImplementation, UpstreamMode][] = [
  ["kproxy", "nftables"],
  ["kproxy", "iptables"],
  ["upstream", "nftables"],
  ["upstream", "iptables"],
];

for (const [implementation, mode] of CASES) {
  Deno.test(requiring([netns, goFixtures], {
    name: `node drain through the API server (${implementation} ${mode}): /healthz 503 ` +
      "within a second on the autoscaler taint and on deletion, /livez 200, traffic flows",
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const topology = await createTopology({ pods: 1 });
      const node = await lab.startNode(topology, mode, {
        implementation,
        args: [`--cluster-cidr=${POD_CIDRS.join(",")}`],
      });
      try {
        await node.sync(objects("none"));
        const proxy = node.proxy!;
        const delays = await drainSequence(
          topology,
          (server, path) => proxy.get(server, path),
          (kind) => node.write(objects(kind)),
        );
        console.log(`    ${implementation} ${mode}: ${delays}`);
      } finally {
        await node.close();
        await topology.teardown();
      }
    },
  }));
}

Deno.test(requiring([netns], {
  name: "node drain through a manifest edit (kproxy nftables): the taint and the deletion " +
    "timestamp in the Node's file turn /healthz 503 within a second, traffic flows",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const topology = await createTopology({ pods: 1 });
    const dir = await manifestDir(objects("none"));
    let kproxy: KproxyProcess | null = null;
    try {
      kproxy = await startKproxy(topology.nodeNetns, [
        "--manifests",
        dir.path,
        "--proxy-mode=nftables",
        `--hostname-override=${THIS_NODE}`,
        `--cluster-cidr=${POD_CIDRS.join(",")}`,
        "--healthz-bind-address=127.0.0.1:10256",
        "--metrics-bind-address=127.0.0.1:10249",
      ]);
      const k = kproxy;
      const delays = await drainSequence(
        topology,
        (server, path) => k.get(server, path),
        (kind) => dir.write(objects(kind)),
      );
      console.log(`    kproxy nftables, manifests: ${delays}`);
    } finally {
      await kproxy?.kill("SIGTERM");
      await dir.remove();
      await topology.teardown();
    }
  },
}));

lab.registerStop();
