/**
 * Exposure: what kproxy opens to the network and what it runs.
 *
 * - With default flags, in a node namespace, the metrics/API server (snapshots, rules, diffs,
 *   configuration) listens on 127.0.0.1:10249 only, and the health server on 0.0.0.0:10256
 *   (`ss -ltnp` in the namespace); from an external client the health port answers and the
 *   metrics port refuses.
 * - The health server reveals nothing but health: every other path is a 404 without content.
 * - kproxy never runs a tool through a shell: no `sh -c`, `bash -c`, `shell: true` or
 *   `child_process` in src/, `Deno.Command` appears only in run_tool.ts, and at run time every
 *   process the appliers start (recorded by wrapping `Deno.Command`) is created by run_tool.ts
 *   and is one of the known tools.
 *
 * IP plan (tests/netns/topology.ts): node 198.18.0.1 / 198.19.0.1 (client link), client
 * 198.19.0.2, ClusterIP 198.18.128.10.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { IptablesApplier } from "../../src/apply/iptables_applier.ts";
import { NftablesApplier } from "../../src/apply/nftables_applier.ts";
import { runTool, runToolResult } from "../../src/apply/run_tool.ts";
import { parseKubeObject } from "../../src/model/kube_object.ts";
import { buildSnapshot } from "../../src/snapshot/proxy_state.ts";
import { createTopology, nodeAddresses, POD_CIDRS } from "../netns/mod.ts";
import { httpInNetns, type KproxyProcess, startKproxy } from "./_kproxy.ts";
import { manifestDir, webObjects } from "./_manifests.ts";
import { netns, requiring } from "../requirements.ts";

const SRC = fileURLToPath(new URL("../../src/", import.meta.url));

Deno.test(requiring([netns], {
  name: "reliability: default binds — metrics on loopback, health on all addresses",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const topology = await createTopology({ pods: 2 });
    const dir = await manifestDir(webObjects([0, 1]));
    let kproxy: KproxyProcess | null = null;
    try {
      // Only the flags needed to find the objects: the bind addresses are the defaults.
      kproxy = await startKproxy(topology.nodeNetns, [
        "--manifests",
        dir.path,
        "--hostname-override",
        "node-a",
      ]);
      const ss = await topology.exec("node", ["ss", "-ltnpH"]);
      const listeners = ss.stdout.split("\n").filter((l) => /deno/.test(l))
        .map((l) => l.trim().split(/\s+/)[3] ?? "").sort();
      assert.deepEqual(listeners, ["0.0.0.0:10256", "127.0.0.1:10249"], ss.stdout);

      // From the client: the health port answers, the metrics port is not there at all.
      const health = await httpInNetns(topology.client.netns, "http://198.19.0.1:10256/healthz");
      assert.equal(health.status, 200, health.body);
      const metrics = await httpInNetns(topology.client.netns, "http://198.19.0.1:10249/metrics");
      assert.equal(metrics.status, 0, "metrics are not reachable from outside the node");
      // On the node itself, metrics answer on loopback.
      const local = await httpInNetns(topology.nodeNetns, "http://127.0.0.1:10249/metrics");
      assert.equal(local.status, 200);
    } finally {
      await kproxy?.kill();
      await dir.remove();
      await topology.teardown();
    }
  },
}));

Deno.test(requiring([netns], {
  name: "reliability: the health server reveals nothing but health",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const topology = await createTopology({ pods: 2 });
    const dir = await manifestDir(webObjects([0, 1]));
    let kproxy: KproxyProcess | null = null;
    try {
      kproxy = await startKproxy(topology.nodeNetns, [
        "--manifests",
        dir.path,
        "--hostname-override",
        "node-a",
        "--cluster-cidr",
        POD_CIDRS.join(","),
      ]);
      const base = "http://198.19.0.1:10256";
      const secrets = [
        "/snapshot",
        "/rules",
        "/diff?from=00000000",
        "/configz",
        "/metrics",
        "/proxyMode",
        "/",
        "/snapshot?hash=00000000",
        "/%2e%2e/snapshot",
        "/healthz/../snapshot",
        "/healthz/x",
        "/HEALTHZ",
      ];
      for (const path of secrets) {
        const r = await httpInNetns(topology.client.netns, base + path);
        assert.equal(r.status, 404, `${path} on the health port: ${r.status} ${r.body}`);
        // Nothing of the cluster in the answer: no service, address or configuration.
        assert.doesNotMatch(r.body, /198\.18|web|default|nftables|kproxy|clusterCIDR/i, path);
      }
      for (const path of ["/healthz", "/livez", "/readyz"]) {
        const r = await httpInNetns(topology.client.netns, base + path);
        assert.equal(r.status, 200, path);
        const body = JSON.parse(r.body) as Record<string, unknown>;
        const allowed = new Set([
          "lastUpdated",
          "currentTime",
          "nodeEligible",
          "healthy",
          "status",
          "ready",
        ]);
        for (const key of Object.keys(body)) assert.ok(allowed.has(key), `${path} has ${key}`);
        assert.doesNotMatch(r.body, /198\.18|web|default\/|nftables|clusterCIDR/, path);
      }
      // The same paths on the metrics port (loopback) do answer: the split is deliberate.
      const snap = await httpInNetns(topology.nodeNetns, "http://127.0.0.1:10249/snapshot");
      assert.equal(snap.status, 200);
    } finally {
      await kproxy?.kill();
      await dir.remove();
      await topology.teardown();
    }
  },
}));

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}${entry.name}`;
    if (entry.isDirectory) out.push(...await sourceFiles(`${path}/`));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) out.push(path);
  }
  return out.sort();
}

Deno.test("reliability: no shell anywhere in src/ and Deno.Command only in run_tool.ts", async () => {
  const files = await sourceFiles(SRC);
  assert.ok(files.length > 50, `found ${files.length} source files`);
  const shellLike = [
    /\b(ba|da|z)?sh["'`]?\s*,\s*\[?\s*["'`]-c/, // "sh", ["-c", ...]
    /["'`](\/bin\/|\/usr\/bin\/)?(ba|da|z)?sh["'`]/, // a shell as the command
    /\b(ba)?sh -c\b/,
    /shell\s*:\s*true/,
    /child_process/,
    /\bDeno\.run\b/,
    /\bexecSync\b|\bexecFile\b|\bspawnSync\b/,
  ];
  const problems: string[] = [];
  for (const file of files) {
    const text = await Deno.readTextFile(file);
    const rel = file.slice(SRC.length);
    for (const re of shellLike) if (re.test(text)) problems.push(`${rel}: ${re}`);
    if (/new Deno\.Command\b/.test(text) && rel !== "apply/run_tool.ts") {
      problems.push(`${rel}: Deno.Command outside run_tool.ts`);
    }
  }
  assert.deepEqual(problems, []);
});

/** The tools kproxy may run (first element of argv, after `ip netns exec NS` in tests). */
const KNOWN_TOOLS = new Set([
  "nft",
  "conntrack",
  "sysctl",
  "iptables",
  "ip6tables",
  "iptables-nft-restore",
  "ip6tables-nft-restore",
  "iptables-nft-save",
  "ip6tables-nft-save",
  "iptables-legacy-restore",
  "ip6tables-legacy-restore",
  "iptables-legacy-save",
  "ip6tables-legacy-save",
]);

Deno.test(requiring([netns], {
  name: "reliability: at run time every tool is started by run_tool.ts, never a shell",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const ns = `kp-rel-cmd-${Deno.pid}`;
    await runTool("ip", ["netns", "add", ns]);
    const original = Deno.Command;
    const seen: { argv: string[]; fromRunTool: boolean }[] = [];
    class RecordingCommand extends original {
      constructor(command: string | URL, options?: Deno.CommandOptions) {
        const stack = new Error().stack ?? "";
        // The frame right above this constructor is the caller.
        const caller = stack.split("\n").slice(2, 3).join("");
        seen.push({
          argv: [String(command), ...(options?.args ?? []).map(String)],
          fromRunTool: /src\/apply\/run_tool\.ts/.test(caller),
        });
        super(command, options);
      }
    }
    try {
      const raws = webObjects([0, 1]);
      const objects = raws.map((r) => parseKubeObject(r)).flatMap((r) =>
        r.ok === true ? [r.value] : []
      );
      const snapshot = buildSnapshot(objects, {
        nodeName: "node-a",
        clusterCIDRs: POD_CIDRS,
        masqueradeAll: false,
        masqueradeBit: 14,
        localhostNodePorts: true,
        nodePortAddresses: [],
        hostAddresses: nodeAddresses(false),
      });
      (Deno as { Command: typeof Deno.Command }).Command = RecordingCommand;
      try {
        for (
          const applier of [new NftablesApplier({ netns: ns }), new IptablesApplier({ netns: ns })]
        ) {
          await applier.sync({ snapshot, changedServicePorts: [], full: true });
          await applier.sync({ snapshot, changedServicePorts: [], full: false });
          await applier.liveRules();
          await applier.cleanup();
        }
      } finally {
        (Deno as { Command: typeof Deno.Command }).Command = original;
      }
    } finally {
      await runToolResult("ip", ["netns", "del", ns]);
    }
    assert.ok(seen.length >= 6, `recorded ${seen.length} commands`);
    for (const { argv, fromRunTool } of seen) {
      assert.ok(fromRunTool, `${argv.join(" ")} was not started by run_tool.ts`);
      // Tests run the tools through `ip netns exec NS`; kproxy itself runs them directly.
      const tool = argv[0] === "ip" && argv[1] === "netns" ? argv[4] : argv[0];
      assert.ok(
        tool !== undefined && KNOWN_TOOLS.has(tool),
        `unexpected tool in ${argv.join(" ")}`,
      );
    }
    console.log(
      `  ${seen.length} tool runs, all through run_tool.ts: ${
        [...new Set(seen.map((s) => s.argv[4]))].join(", ")
      }`,
    );
  },
}));
