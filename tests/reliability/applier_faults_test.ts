/**
 * Applier failures and tampering, against kproxy running as a process in a node namespace with
 * `--sync-period 2s` (so `/healthz` turns 503 once a change has waited 4 s):
 *
 * - `nft -f` / `iptables-restore` fail on demand (wrappers first on PATH): the previous rules
 *   stay (probes keep reaching the old endpoint), the sync is retried with doubling backoff
 *   capped at the sync period, failures are counted in the metrics, `/healthz` is 200 until the
 *   pending change is 2 × sync-period old and 503 after, and the first good sync is a full one.
 * - Someone else flushes, edits or deletes kproxy's rules: the next periodic resync repairs them.
 * - A user's own table is never touched by any of it.
 *
 * IP plan (tests/netns/topology.ts): pods 198.18.1.10-12 (pod2 is the client), ClusterIP
 * 198.18.128.10:80 → pod0 (then pod1) port 8080.
 */
import assert from "node:assert/strict";
import { runToolResult } from "../../src/apply/run_tool.ts";
import { createTopology, type Topology } from "../netns/mod.ts";
import { failingTools } from "./_failing_tool.ts";
import { type KproxyProcess, metricValue, startKproxy, tail } from "./_kproxy.ts";
import { kproxyArgs, manifestDir, USER_TABLE, webObjects } from "./_manifests.ts";
import { netns, requiring } from "../requirements.ts";

const TARGET = { protocol: "TCP", ip: "198.18.128.10", port: 80 } as const;
const SYNC_PERIOD_MS = 2000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Mode = "nftables" | "iptables";

const FAILURE_METRICS: Record<Mode, string[]> = {
  nftables: ["kubeproxy_sync_proxy_rules_nftables_sync_failures_total"],
  iptables: [
    "kubeproxy_sync_proxy_rules_iptables_restore_failures_total",
    "kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total",
  ],
};

async function failures(kproxy: KproxyProcess, mode: Mode): Promise<number> {
  const m = await kproxy.get("metrics", "/metrics");
  assert.equal(m.status, 200);
  return FAILURE_METRICS[mode].reduce((n, name) => n + (metricValue(m.body, name) || 0), 0);
}

/** Which pods answered `count` probes; throws unless every probe was answered. */
async function answering(topology: Topology, count = 6): Promise<string[]> {
  const d = await topology.distribution("pod2", TARGET, count);
  return Object.keys(d.answers).sort();
}

/** Waits until every probe of a batch is answered by exactly `pods`. */
async function waitForPods(topology: Topology, pods: string[], timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  let last: string[] = [];
  for (;;) {
    const d = await topology.distribution("pod2", TARGET, 6, { timeoutMs: 300 });
    last = Object.keys(d.answers).sort();
    if (JSON.stringify(last) === JSON.stringify(pods) && d.refused + d.timeout === 0) {
      return Date.now();
    }
    if (Date.now() > deadline) {
      throw new Error(`Probes reached ${last.join(",") || "nothing"}, not ${pods.join(",")}`);
    }
    await sleep(50);
  }
}

async function userTable(topology: Topology): Promise<string> {
  return (await topology.exec("node", ["nft", "list", "table", "inet", "user"])).stdout;
}

async function failureCase(mode: Mode): Promise<void> {
  const topology = await createTopology({ pods: 3 });
  const tools = await failingTools(
    mode === "nftables" ? ["nft"] : ["iptables-nft-restore", "ip6tables-nft-restore"],
  );
  const dir = await manifestDir(webObjects([0]));
  let kproxy: KproxyProcess | null = null;
  try {
    await runToolResult("nft", ["-f", "-"], { netns: topology.nodeNetns, stdin: USER_TABLE });
    const userBefore = await userTable(topology);
    kproxy = await startKproxy(
      topology.nodeNetns,
      // nft -f is what fails here, so incremental nftables syncs go through it too (the netlink
      // path's refusals are tested against the kernel in tests/netns/nftables_applier_test.ts).
      kproxyArgs(dir.path, mode, [
        "--sync-period",
        "2s",
        ...(mode === "nftables" ? ["--nftables-netlink=false"] : []),
      ]),
      { env: { PATH: tools.path } },
    );
    assert.deepEqual(await answering(topology), ["pod0"]);
    assert.equal((await kproxy.get("health", "/healthz")).status, 200);
    const failuresBefore = await failures(kproxy, mode);

    // 1. The tool fails; a change is pending.
    await tools.setFailing(true);
    const logFrom = kproxy.log().length;
    const queuedAt = Date.now();
    await dir.write(webObjects([1]));
    await kproxy.waitForLog(/sync failed \(attempt 1,/, 5000, logFrom);
    // The old rules stay: pod0 keeps answering.
    assert.deepEqual(await answering(topology), ["pod0"]);
    await sleep(Math.max(0, queuedAt + SYNC_PERIOD_MS - Date.now()));
    const early = await kproxy.get("health", "/healthz");
    assert.equal(early.status, 200, `healthy before 2 × sync-period: ${early.body}`);
    await sleep(Math.max(0, queuedAt + 2 * SYNC_PERIOD_MS + 700 - Date.now()));
    const late = await kproxy.get("health", "/healthz");
    assert.equal(late.status, 503, `unhealthy after 2 × sync-period: ${late.body}`);
    assert.equal(JSON.parse(late.body).healthy, false);
    assert.deepEqual(await answering(topology), ["pod0"]);
    const failed = (await failures(kproxy, mode)) - failuresBefore;
    const retries = [...kproxy.log().slice(logFrom).matchAll(/retry in (\d+) ms/g)]
      .map((m) => Number(m[1]));
    console.log(
      `  ${mode}: ${failed} failed syncs counted, retry delays ${retries.join(", ")} ms; ` +
        `/healthz ${early.status} at ${SYNC_PERIOD_MS} ms, ${late.status} at ` +
        `${2 * SYNC_PERIOD_MS + 700} ms`,
    );
    assert.ok(retries.length >= 4, `retries: ${retries}`);
    assert.ok(failed >= retries.length, `${failed} failures counted for ${retries.length} logged`);
    for (let i = 1; i < retries.length; i++) {
      const expected = Math.min((retries[0] as number) * 2 ** i, SYNC_PERIOD_MS);
      assert.equal(retries[i], expected, `backoff doubles up to the sync period: ${retries}`);
    }
    // /readyz stays ready: rules are live, just old.
    assert.equal((await kproxy.get("health", "/readyz")).status, 200);

    // 2. The tool works again: the next sync is full and brings the change.
    const okFrom = kproxy.log().length;
    await tools.setFailing(false);
    const ok = await kproxy.waitForLog(
      /sync ok: (full|partial)/,
      2 * SYNC_PERIOD_MS + 2000,
      okFrom,
    );
    assert.equal(ok[1], "full", "the first good sync after a failure is full");
    await waitForPods(topology, ["pod1"], 3000);
    assert.equal((await kproxy.get("health", "/healthz")).status, 200);

    // 3. Tampering is repaired by the next periodic resync.
    for (const tamper of tampering(mode)) {
      const from = kproxy.log().length;
      for (const argv of tamper.argv) {
        const r = await topology.exec("node", argv);
        assert.equal(r.code, 0, `${argv.join(" ")}: ${r.stderr}`);
      }
      const d = await topology.distribution("pod2", TARGET, 4, { timeoutMs: 300 });
      if (tamper.breaks) assert.ok((d.answers["pod1"] ?? 0) < 4, `${tamper.name} broke traffic`);
      const t0 = Date.now();
      await kproxy.waitForLog(/sync ok: full/, SYNC_PERIOD_MS + 3000, from);
      const repairedAt = await waitForPods(topology, ["pod1"], SYNC_PERIOD_MS + 3000);
      if (tamper.check !== undefined) await tamper.check(topology);
      console.log(`  ${mode}: ${tamper.name} repaired after ${repairedAt - t0} ms`);
    }
    if (mode === "nftables" || /nf_tables/.test(await iptablesVersion(topology))) {
      // 4. Nobody touches anything: the next resync reads the namespace's nf_tables generation,
      // finds only its own last transactions, and rewrites nothing (iptables-legacy cannot).
      const from = kproxy.log().length;
      const [line] = await kproxy.waitForLog(/sync ok: [^\n]*/, SYNC_PERIOD_MS + 3000, from);
      assert.match(line, /sync ok: partial \(resync: rules untouched\), .* 0 lines/, line);
      await waitForPods(topology, ["pod1"], 3000);
    }
    assert.equal(await userTable(topology), userBefore, "the user's table is untouched");
    assert.equal(kproxy.exitStatus(), null, "kproxy kept running");
  } catch (e) {
    if (kproxy !== null) console.error(tail(kproxy.log(), 40));
    throw e;
  } finally {
    await kproxy?.kill();
    await tools.remove();
    await dir.remove();
    await topology.teardown();
  }
}

async function iptablesVersion(topology: Topology): Promise<string> {
  const r = await topology.exec("node", ["iptables", "--version"]);
  return r.stdout + r.stderr;
}

interface Tamper {
  readonly name: string;
  readonly argv: readonly (readonly string[])[];
  /** True when the tampering stops the probes (checked before the repair). */
  readonly breaks: boolean;
  readonly check?: (topology: Topology) => Promise<void>;
}

function tampering(mode: Mode): Tamper[] {
  if (mode === "nftables") {
    return [
      {
        name: "nft flush table ip kproxy",
        argv: [["nft", "flush", "table", "ip", "kproxy"]],
        breaks: true,
      },
      {
        name: "a foreign rule in kproxy's services chain",
        argv: [[
          "nft",
          "insert",
          "rule",
          "ip",
          "kproxy",
          "services",
          "ip",
          "daddr",
          "198.18.128.10",
          "drop",
        ]],
        breaks: true,
        check: async (t) => {
          const listing =
            (await t.exec("node", ["nft", "list", "chain", "ip", "kproxy", "services"]))
              .stdout;
          assert.doesNotMatch(listing, /drop/, "the foreign rule is gone");
        },
      },
      {
        name: "nft delete table ip kproxy",
        argv: [["nft", "delete", "table", "ip", "kproxy"]],
        breaks: true,
      },
    ];
  }
  return [
    {
      name: "iptables -t nat -F KUBE-SERVICES",
      argv: [["iptables-nft", "-t", "nat", "-F", "KUBE-SERVICES"]],
      breaks: true,
    },
    {
      name: "jump rules deleted from PREROUTING and OUTPUT",
      argv: [
        [
          "iptables-nft",
          "-t",
          "nat",
          "-D",
          "PREROUTING",
          "-m",
          "comment",
          "--comment",
          "kubernetes service portals",
          "-j",
          "KUBE-SERVICES",
        ],
        [
          "iptables-nft",
          "-t",
          "nat",
          "-D",
          "OUTPUT",
          "-m",
          "comment",
          "--comment",
          "kubernetes service portals",
          "-j",
          "KUBE-SERVICES",
        ],
      ],
      breaks: true,
    },
    {
      name: "a foreign DROP rule in KUBE-SERVICES",
      argv: [[
        "iptables-nft",
        "-t",
        "nat",
        "-I",
        "KUBE-SERVICES",
        "-d",
        "198.18.128.10/32",
        "-j",
        "RETURN",
      ]],
      breaks: true,
      check: async (t) => {
        const save = (await t.exec("node", ["iptables-nft-save", "-t", "nat"])).stdout;
        assert.doesNotMatch(save, /-A KUBE-SERVICES -d 198\.18\.128\.10\/32 -j RETURN/);
      },
    },
  ];
}

for (const mode of ["nftables", "iptables"] as const) {
  Deno.test(requiring([netns], {
    name: `reliability: ${mode} tool failures keep old rules, retry, report, and tampering heals`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: () => failureCase(mode),
  }));
}
