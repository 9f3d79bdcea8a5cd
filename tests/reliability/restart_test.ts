/**
 * Restart without a gap: kproxy runs as a real process in a node namespace, a pod probes a
 * ClusterIP every 20 ms (a new connection each time), kproxy is killed (SIGKILL) or stopped
 * (SIGTERM) and started again. Not one probe may fail, and `nft monitor` must show that kproxy's
 * rules were complete after every committed transaction from the kill to the new process's first
 * full sync. Afterwards `kproxy --cleanup` removes kproxy's rules and nothing else.
 *
 * IP plan (tests/netns/topology.ts): pods 198.18.1.10-12 (pod2 is the client), node 198.18.0.1,
 * ClusterIP 198.18.128.10:80 → pod0/pod1 port 8080.
 */
import assert from "node:assert/strict";
import { runToolResult } from "../../src/apply/run_tool.ts";
import {
  createTopology,
  endpointSlice,
  local,
  service,
  thisNode,
  type Topology,
} from "../netns/mod.ts";
import { type KproxyProcess, runKproxyOnce, startKproxy, tail } from "./_kproxy.ts";
import { CLUSTER_IP, kproxyArgs, manifestDir, USER_TABLE, webObjects } from "./_manifests.ts";
import { type Generation, startNftMonitor } from "./_nft_monitor.ts";
import { describeFailures, failedProbes, startProbeLoop } from "./_probe_loop.ts";
import { netns, requiring } from "../requirements.ts";

const TARGET = { protocol: "TCP", ip: CLUSTER_IP, port: 80 } as const;

/** Rules kproxy owns after a generation: its nft tables, or iptables' KUBE-* chains and jumps. */
function ownedRules(g: { rules: Generation["rules"] }, mode: "nftables" | "iptables"): number {
  let n = 0;
  for (const [table, chains] of g.rules) {
    if (mode === "nftables" && !/^ip6? kproxy$/.test(table)) continue;
    if (mode === "iptables" && !/^ip6? (nat|filter|mangle)$/.test(table)) continue;
    for (const count of chains.values()) n += count;
  }
  return n;
}

function touchesKproxy(g: Generation, mode: "nftables" | "iptables"): boolean {
  return g.events.some((e) => mode === "nftables" ? / ip6? kproxy\b/.test(e) : /KUBE-/.test(e));
}

async function listTable(topology: Topology, mode: "nftables" | "iptables"): Promise<string> {
  const r = mode === "nftables"
    ? await topology.exec("node", ["nft", "list", "table", "ip", "kproxy"])
    : await topology.exec("node", ["iptables-nft-save", "-t", "nat"]);
  return r.code === 0 ? r.stdout : "";
}

async function restartCase(mode: "nftables" | "iptables", signal: "SIGKILL" | "SIGTERM") {
  const topology = await createTopology({ pods: 3 });
  const dir = await manifestDir(webObjects());
  let first: KproxyProcess | null = null;
  let second: KproxyProcess | null = null;
  try {
    await runToolResult("nft", ["-f", "-"], { netns: topology.nodeNetns, stdin: USER_TABLE });
    const userBefore = (await topology.exec("node", ["nft", "list", "table", "inet", "user"]))
      .stdout;
    first = await startKproxy(topology.nodeNetns, kproxyArgs(dir.path, mode));
    const warm = await topology.distribution("pod2", TARGET, 10);
    assert.equal((warm.answers["pod0"] ?? 0) + (warm.answers["pod1"] ?? 0), 10, tail(first.log()));

    const monitor = await startNftMonitor(topology.nodeNetns);
    const loop = startProbeLoop(topology, "pod2", TARGET, { intervalMs: 20 });
    let killedAt = 0;
    let restartedAt = 0;
    let generations: readonly Generation[] = [];
    try {
      await new Promise((r) => setTimeout(r, 800));
      const exitStatusPromise = first.kill(signal);
      killedAt = Date.now();
      const status = await exitStatusPromise;
      if (signal === "SIGTERM") {
        assert.equal(status.code, 0, `graceful exit code, log:\n${tail(first.log())}`);
        assert.match(first.log(), /rules stay in place/);
      } else {
        assert.equal(status.signal, "SIGKILL");
      }
      // Dead for a while: the kernel keeps forwarding with the old rules.
      await new Promise((r) => setTimeout(r, 1500));
      assert.match(await listTable(topology, mode), mode === "nftables" ? /services/ : /KUBE-SVC-/);
      restartedAt = Date.now();
      second = await startKproxy(topology.nodeNetns, kproxyArgs(dir.path, mode));
      await new Promise((r) => setTimeout(r, 800));
    } finally {
      const probes = await loop.stop();
      generations = await monitor.stop();
      const failures = failedProbes(probes, ["pod0", "pod1"]);
      const during = probes.filter((p) => p.at >= killedAt);
      console.log(
        `  ${mode} ${signal}: ${probes.length} probes (${during.length} after the kill, ` +
          `${probes.filter((p) => p.at >= killedAt && p.at < restartedAt).length} while no ` +
          `kproxy ran), ${failures.length} failed; ${generations.length} nft generations`,
      );
      assert.ok(probes.length >= 50, `only ${probes.length} probes`);
      assert.equal(failures.length, 0, describeFailures(failures));
    }
    // The model starts from the listing taken when the monitor started: that is the baseline.
    const firstTouch = generations.find((g) => touchesKproxy(g, mode));
    assert.ok(firstTouch !== undefined, "the restarted kproxy wrote its rules");
    const baseline = ownedRules({ rules: monitor.initialRules }, mode);
    assert.ok(baseline > 5, `baseline ${baseline} rules`);
    const afterKill = generations.filter((g) => g.receivedAt >= killedAt);
    for (const g of afterKill) {
      assert.equal(
        ownedRules(g, mode),
        baseline,
        `generation ${g.number} by ${g.process} left ${ownedRules(g, mode)} of ${baseline} ` +
          `rules:\n${g.events.slice(0, 20).join("\n")}`,
      );
    }
    const beforeRestart = afterKill.filter((g) => g.receivedAt < restartedAt);
    assert.deepEqual(
      beforeRestart.filter((g) => touchesKproxy(g, mode)).map((g) => g.events.slice(0, 3)),
      [],
      "nothing touched kproxy's rules while no kproxy ran",
    );

    // --cleanup removes kproxy's rules and leaves the user's table alone.
    await second?.kill("SIGTERM");
    const cleanup = await runKproxyOnce(topology.nodeNetns, [
      ...kproxyArgs(dir.path, mode),
      "--cleanup",
    ]);
    assert.equal(cleanup.code, 0, cleanup.log);
    const left = mode === "nftables"
      ? (await topology.exec("node", ["nft", "list", "tables"])).stdout
      : (await topology.exec("node", ["iptables-nft-save"])).stdout +
        (await topology.exec("node", ["ip6tables-nft-save"])).stdout;
    assert.doesNotMatch(left, mode === "nftables" ? /kproxy/ : /KUBE-(SVC|SEP|SERVICES)/);
    const userAfter = (await topology.exec("node", ["nft", "list", "table", "inet", "user"]))
      .stdout;
    assert.equal(userAfter, userBefore, "the user's table is untouched");
  } finally {
    await first?.kill();
    await second?.kill();
    await dir.remove();
    await topology.teardown();
  }
}

for (const mode of ["nftables", "iptables"] as const) {
  for (const signal of ["SIGKILL", "SIGTERM"] as const) {
    Deno.test(requiring([netns], {
      name: `reliability: ${mode} restart after ${signal} without a failed probe`,
      sanitizeResources: false,
      sanitizeOps: false,
      fn: () => restartCase(mode, signal),
    }));
  }
}

/** The objects: this node, and one UDP service with local endpoints (default pod0 and pod1). */
function udpObjects(pods: readonly number[] = [0, 1]): unknown[] {
  return [
    thisNode(),
    service("dns", {
      clusterIPs: [UDP_CLUSTER_IP],
      ports: [{ name: "dns", protocol: "UDP", port: 53 }],
    }),
    endpointSlice("dns", {
      ports: [{ name: "dns", protocol: "UDP", port: 8080 }],
      endpoints: pods.map((i) => local(i)),
    }),
  ];
}

const UDP_CLUSTER_IP = "198.18.128.53";
const UDP_TARGET = { protocol: "UDP", ip: UDP_CLUSTER_IP, port: 53 } as const;
/** One UDP flow (a fixed source port): conntrack pins it to one endpoint. */
const FLOW = { sourcePort: 40053, concurrency: 1 };

/** The flow's conntrack entries, without counters and timers. */
async function flowEntries(topology: Topology): Promise<string[]> {
  const r = await topology.exec("node", [
    "conntrack",
    "-L",
    "-p",
    "udp",
    "--orig-dst",
    UDP_CLUSTER_IP,
  ]);
  return r.stdout.trim().split("\n").filter((l) => l.includes("sport=40053"))
    .map((e) => e.replace(/^\S+\s+\d+\s+\d+\s+/, "").replace(/ (mark|use)=.*$/, ""));
}

/**
 * A restart keeps an established UDP flow where it is (its conntrack entry survives), and a flow
 * pinned to an endpoint that went away while no kproxy ran is cut, so it moves to a live one.
 */
async function udpFlowCase(mode: "nftables" | "iptables"): Promise<void> {
  const topology = await createTopology({ pods: 3 });
  const dir = await manifestDir(udpObjects());
  let kproxy: KproxyProcess | null = null;
  try {
    kproxy = await startKproxy(topology.nodeNetns, kproxyArgs(dir.path, mode));
    const before = await topology.probeMany("pod2", UDP_TARGET, 5, FLOW);
    const pods = [...new Set(before.map((r) => (r.kind === "answer" ? r.pod : r.kind)))];
    assert.equal(pods.length, 1, `one flow, one endpoint: ${pods}`);
    const pinned = pods[0] as string;
    const entriesBefore = await flowEntries(topology);
    assert.equal(entriesBefore.length, 1, entriesBefore.join("\n"));

    // 1. Restart with the same objects: the flow keeps its entry and its endpoint.
    await kproxy.kill("SIGKILL");
    kproxy = await startKproxy(topology.nodeNetns, kproxyArgs(dir.path, mode));
    const kept = await flowEntries(topology);
    const again = await topology.probeMany("pod2", UDP_TARGET, 5, FLOW);
    assert.deepEqual(kept, entriesBefore, "the UDP flow's conntrack entry survives a restart");
    assert.deepEqual(
      again.map((r) => (r.kind === "answer" ? r.pod : r.kind)),
      Array(5).fill(pinned),
    );

    // 2. The pinned endpoint goes away while no kproxy runs: the restart cuts the stale flow.
    await kproxy.kill("SIGKILL");
    const other = pinned === "pod0" ? 1 : 0;
    await dir.write(udpObjects([other]));
    kproxy = await startKproxy(topology.nodeNetns, kproxyArgs(dir.path, mode));
    const moved = await topology.probeMany("pod2", UDP_TARGET, 5, FLOW);
    console.log(
      `  ${mode}: UDP flow pinned to ${pinned}; after a restart its conntrack entry was kept ` +
        `(${kept.length}); after a restart without ${pinned} it moved to ` +
        `${[...new Set(moved.map((r) => (r.kind === "answer" ? r.pod : r.kind)))]}`,
    );
    assert.deepEqual(
      moved.map((r) => (r.kind === "answer" ? r.pod : r.kind)),
      Array(5).fill(`pod${other}`),
    );
  } finally {
    await kproxy?.kill();
    await dir.remove();
    await topology.teardown();
  }
}

for (const mode of ["nftables", "iptables"] as const) {
  Deno.test(requiring([netns], {
    name: `reliability: ${mode} restart keeps established UDP flows and cuts stale ones`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: () => udpFlowCase(mode),
  }));
}
