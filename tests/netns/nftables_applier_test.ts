/**
 * The nftables applier against the real kernel, in throwaway network namespaces (`kp-nft-*`,
 * never the host's): golden scripts pass `nft --check`, cleanup leaves other tables alone, a
 * failed transaction keeps the previous rules, and partial syncs end where a full load does.
 * IP plan: see src/render/nftables/_fixtures.ts (node 198.18.0.10, pods 198.18.1.0/24,
 * ClusterIPs 198.18.128.0/17).
 */
import assert from "node:assert/strict";
import { NftablesApplier } from "../../src/apply/nftables_applier.ts";
import { runTool, runToolResult } from "../../src/apply/run_tool.ts";
import { goldenCases } from "../../src/render/nftables/_golden_cases.ts";
import { objects, rawNode, rawService, rawSlice } from "../../src/render/nftables/_fixtures.ts";
import { renderNftables } from "../../src/render/nftables/nftables_renderer.ts";
import { initialProxyState, reconcile } from "../../src/snapshot/proxy_state.ts";
import { FIXTURE_SETTINGS } from "../../src/render/nftables/_fixtures.ts";
import type { ProxySnapshot } from "../../src/snapshot/types.ts";
import { withScratchNetns } from "./scratch_netns.ts";
import { netns, nft as nftTool, requiring } from "../requirements.ts";

function nft(ns: string, args: string[], stdin?: string): Promise<string> {
  return runTool("nft", args, { netns: ns, ...(stdin !== undefined ? { stdin } : {}) });
}

/**
 * `nft list table` output in a canonical form: top-level blocks sorted by header, set elements
 * sorted, rule order kept (it matters).
 */
export function canonicalListing(text: string): string {
  const blocks: string[] = [];
  let current: string[] | null = null;
  let depth = 0;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    const opens = (line.match(/\{/g) ?? []).length;
    const closes = (line.match(/\}/g) ?? []).length;
    if (depth === 1 && current === null && opens > 0) current = [];
    if (current !== null) current.push(line);
    depth += opens - closes;
    if (depth === 1 && current !== null) {
      blocks.push(canonicalBlock(current));
      current = null;
    }
    if (depth === 0 && line.startsWith("table ")) blocks.push(line);
  }
  return blocks.sort().join("\n");
}

function canonicalBlock(lines: string[]): string {
  const text = lines.join("\n");
  return text.replace(/elements = \{([^}]*)\}/g, (_m, body: string) => {
    const els = body.split(",").map((e) => e.trim()).filter((e) => e !== "").sort();
    return `elements = { ${els.join(", ")} }`;
  });
}

const HTTP = { name: "http", protocol: "TCP", port: 80 };
const HTTP_TARGET = { name: "http", protocol: "TCP", port: 8080 };

Deno.test(requiring([netns, nftTool], {
  name: "nftables: golden scripts pass nft --check in a namespace",
  async fn() {
    await withScratchNetns("kp-nft", async (ns) => {
      for (const [name, snapshot] of await goldenCases()) {
        const result = await runToolResult("nft", ["--check", "-f", "-"], {
          netns: ns,
          stdin: renderNftables(snapshot),
        });
        assert.equal(result.code, 0, `${name}: ${result.stderr}`);
      }
    });
  },
}));

Deno.test(requiring([netns, nftTool], {
  name: "nftables: cleanup removes only kproxy's tables",
  async fn() {
    await withScratchNetns("kp-nft", async (ns) => {
      await nft(
        ns,
        ["-f", "-"],
        [
          "table inet other {",
          "\tchain input { type filter hook input priority 0; policy accept; tcp dport 22 accept; }",
          "}",
          "table ip kube-proxy {",
          "\tchain services { }",
          "}",
        ].join("\n"),
      );
      const before = await nft(ns, ["list", "ruleset"]);
      const applier = new NftablesApplier({ netns: ns });
      const snapshot = (await goldenCases()).get("examples") as ProxySnapshot;
      await applier.sync({ snapshot, changedServicePorts: [], full: true });
      const live = await applier.liveRules();
      assert.match(live, /table ip kproxy/);
      assert.match(live, /table ip6 kproxy/);
      await applier.cleanup();
      assert.equal(await nft(ns, ["list", "ruleset"]), before);
      assert.equal(await applier.liveRules(), "");
      await applier.cleanup(); // idempotent
    });
  },
}));

interface Step {
  readonly snapshot: ProxySnapshot;
  readonly changed: readonly string[];
}

function steps(): Step[] {
  let state = initialProxyState(FIXTURE_SETTINGS);
  const out: Step[] = [];
  const apply = (
    raws: unknown[],
    deletes: { kind: "Service" | "EndpointSlice"; name: string }[] = [],
  ) => {
    const r = reconcile(state, [
      ...objects(raws).map((object) => ({ type: "upsert" as const, object })),
      ...deletes.map((d) => ({
        type: "delete" as const,
        kind: d.kind,
        namespace: "default",
        name: d.name,
      })),
    ]);
    state = r.state;
    out.push({ snapshot: state.snapshot, changed: r.changedServicePorts });
  };
  apply([
    rawNode(),
    rawService("web", { clusterIPs: ["198.18.128.10"], ports: [HTTP] }),
    rawSlice("web", HTTP_TARGET, [{ ip: "198.18.1.2" }, { ip: "198.18.1.3", node: "node-b" }]),
    rawService("sticky", {
      type: "NodePort",
      clusterIPs: ["198.18.128.11"],
      externalIPs: ["198.18.200.11"],
      sessionAffinity: "ClientIP",
      ports: [{ ...HTTP, nodePort: 30011 }],
    }),
    rawSlice("sticky", HTTP_TARGET, [{ ip: "198.18.1.4" }, { ip: "198.18.1.5" }]),
    rawService("empty", { clusterIPs: ["198.18.128.12"], ports: [HTTP] }),
  ]);
  // An endpoint leaves, another joins; an empty service gets endpoints.
  apply([
    rawSlice("web", HTTP_TARGET, [{ ip: "198.18.1.3", node: "node-b" }, { ip: "198.18.1.6" }]),
    rawSlice("sticky", HTTP_TARGET, [{ ip: "198.18.1.5" }, { ip: "198.18.1.7" }]),
    rawSlice("empty", HTTP_TARGET, [{ ip: "198.18.1.2" }]),
  ]);
  // ETP Local, affinity timeout change, a service goes away, another claims its IP.
  apply(
    [
      rawService("sticky", {
        type: "NodePort",
        clusterIPs: ["198.18.128.11"],
        externalIPs: ["198.18.200.11"],
        externalTrafficPolicy: "Local",
        sessionAffinity: "ClientIP",
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } },
        ports: [{ ...HTTP, nodePort: 30011 }],
      }),
      rawService("web2", {
        clusterIPs: ["198.18.128.13"],
        externalIPs: ["198.18.200.11"],
        ports: [HTTP],
      }),
      rawSlice("web2", HTTP_TARGET, [{ ip: "198.18.1.8" }]),
    ],
    [{ kind: "Service", name: "web" }],
  );
  // Everything loses its endpoints.
  apply([], [
    { kind: "EndpointSlice", name: "sticky-a" },
    { kind: "EndpointSlice", name: "empty-a" },
    { kind: "EndpointSlice", name: "web2-a" },
  ]);
  return out;
}

Deno.test(requiring([netns, nftTool], {
  name: "nftables: partial syncs leave the same tables as a full load",
  async fn() {
    await withScratchNetns("kp-nft", async (ns) => {
      await withScratchNetns("kp-nft", async (fresh) => {
        const applier = new NftablesApplier({ netns: ns });
        const all = steps();
        for (const [i, step] of all.entries()) {
          const result = await applier.sync({
            snapshot: step.snapshot,
            changedServicePorts: step.changed,
            full: i === 0,
          });
          assert.equal(result.full, i === 0);
          assert.equal(applier.lastSyncKind, i === 0 ? "scratch" : "partial");
          if (i > 0) {
            assert.equal(applier.lastTransport, "netlink", `step ${i} went through nft -f`);
          }
          const reference = new NftablesApplier({ netns: fresh });
          await reference.sync({ snapshot: step.snapshot, changedServicePorts: [], full: true });
          assert.equal(
            canonicalListing(await applier.liveRules()),
            canonicalListing(await reference.liveRules()),
            `after step ${i}`,
          );
        }
        // A periodic full sync flushes and rewrites in place.
        await applier.sync({ snapshot: all.at(-1)!.snapshot, changedServicePorts: [], full: true });
        assert.equal(applier.lastSyncKind, "flush");
      });
    });
  },
}));

Deno.test(requiring([netns, nftTool], {
  name: "nftables: a failed transaction keeps the previous rules and forces a full sync",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kp-nft-fake-" });
    try {
      // While `broken` exists, the wrapper sends nft the real transaction plus one element
      // naming a missing chain, so the kernel rejects the whole transaction.
      const wrapper = `${dir}/nft`;
      const flag = `${dir}/broken`;
      await Deno.writeTextFile(
        wrapper,
        `#!/bin/sh\nif [ -e ${flag} ]; then\n` +
          `  { cat; echo 'add element ip kproxy service-ips { 198.18.128.99 . tcp . 1 : goto no-such-chain }'; } | nft "$@"\n` +
          `else exec nft "$@"; fi\n`,
      );
      await Deno.chmod(wrapper, 0o755);
      await withScratchNetns("kp-nft", async (ns) => {
        const [first, second] = steps() as [Step, Step];
        const applier = new NftablesApplier({ netns: ns, nftPath: wrapper });
        await applier.sync({ snapshot: first.snapshot, changedServicePorts: [], full: true });
        const before = await applier.liveRules();
        await Deno.writeTextFile(flag, "");
        await assert.rejects(
          applier.sync({
            snapshot: second.snapshot,
            changedServicePorts: second.changed,
            full: false,
          }),
          /no-such-chain|No such file/,
        );
        assert.equal(await applier.liveRules(), before);
        assert.equal(applier.needsFullSync, true);
        await Deno.remove(flag);
        const result = await applier.sync({
          snapshot: second.snapshot,
          changedServicePorts: second.changed,
          full: false,
        });
        assert.equal(result.full, true);
        assert.equal(applier.lastSyncKind, "scratch");
        const reference = renderNftables(second.snapshot);
        assert.match(reference, /198\.18\.1\.6 \. 8080/);
        assert.match(await applier.liveRules(), /198\.18\.1\.6 \. 8080/);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
}));

Deno.test(requiring([netns, nftTool], {
  name:
    "nftables: a netlink batch the kernel refuses keeps the previous rules and forces a full sync",
  async fn() {
    await withScratchNetns("kp-nft", async (ns) => {
      const [first, second] = steps() as [Step, Step];
      const applier = new NftablesApplier({ netns: ns });
      await applier.sync({ snapshot: first.snapshot, changedServicePorts: [], full: true });
      // Someone else removes an element the next partial sync deletes: the kernel refuses the
      // whole batch (ENOENT), so nothing of it may be live.
      const gone = "198.18.1.4 . 198.18.1.4"; // sticky's endpoint, which leaves in step 2
      await nft(ns, ["delete", "element", "ip", "kproxy", "hairpin-endpoints", `{ ${gone} }`]);
      const before = await applier.liveRules();
      const changed = second.changed;
      await assert.rejects(
        applier.sync({ snapshot: second.snapshot, changedServicePorts: changed, full: false }),
        /not committed: ENOENT.*delete element ip kproxy hairpin-endpoints \{ 198\.18\.1\.4 \. 198\.18\.1\.4 \}/,
      );
      assert.equal(await applier.liveRules(), before);
      assert.equal(applier.needsFullSync, true);
      const result = await applier.sync({
        snapshot: second.snapshot,
        changedServicePorts: changed,
        full: false,
      });
      assert.equal(result.full, true);
      assert.equal(applier.lastSyncKind, "scratch");
      await withScratchNetns("kp-nft", async (fresh) => {
        const reference = new NftablesApplier({ netns: fresh });
        await reference.sync({ snapshot: second.snapshot, changedServicePorts: [], full: true });
        assert.equal(
          canonicalListing(await applier.liveRules()),
          canonicalListing(await reference.liveRules()),
        );
      });
    });
  },
}));

Deno.test(requiring([netns, nftTool], {
  name: "nftables: a first sync replaces whatever a previous run left",
  async fn() {
    await withScratchNetns("kp-nft", async (ns) => {
      const all = steps();
      await nft(ns, ["-f", "-"], "table ip kproxy {\n\tchain stray { }\n}\n");
      const applier = new NftablesApplier({ netns: ns });
      await applier.sync({ snapshot: all[0]!.snapshot, changedServicePorts: [], full: false });
      assert.equal(applier.lastSyncKind, "scratch");
      assert.doesNotMatch(await applier.liveRules(), /stray/);
    });
  },
}));
