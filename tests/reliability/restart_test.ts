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
import { createTopology, netnsSupport, type Topology } from "../netns/mod.ts";
import { type KproxyProcess, runKproxyOnce, startKproxy, tail } from "./_kproxy.ts";
import { CLUSTER_IP, kproxyArgs, manifestDir, USER_TABLE, webObjects } from "./_manifests.ts";
import { type Generation, startNftMonitor } from "./_nft_monitor.ts";
import { describeFailures, failedProbes, startProbeLoop } from "./_probe_loop.ts";

const support = netnsSupport();
const ignore = !support.ok;
if (ignore) console.warn(`reliability restart tests skipped: ${support.reason}`);

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
    Deno.test({
      name: `reliability: ${mode} restart after ${signal} without a failed probe`,
      ignore,
      sanitizeResources: false,
      sanitizeOps: false,
      fn: () => restartCase(mode, signal),
    });
  }
}
