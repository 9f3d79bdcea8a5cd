/**
 * The iptables applier against the real iptables-nft and iptables-legacy, each test in its own
 * throwaway network namespace (never the host's): restore `--test` of every golden ruleset,
 * partial syncs the kernel agrees with, clean-up that restores `iptables-save` exactly, a
 * failing restore that keeps the old rules, and removal of an earlier kube-proxy's chains.
 *
 * IP plan: node-a 198.18.0.10, pods 198.18.1.0/24, services 198.18.128.0/17, external clients
 * 198.19.0.0/24 (see src/render/iptables/_test_cases.ts).
 */
import assert from "node:assert/strict";
import { IptablesApplier, type IptablesVariant } from "../../src/apply/iptables_applier.ts";
import { runToolResult } from "../../src/apply/run_tool.ts";
import {
  BASE_SETTINGS,
  nodeA,
  objects,
  service,
  slice,
  TEST_CASES,
} from "../../src/render/iptables/_test_cases.ts";
import { renderFamilyRestore } from "../../src/render/iptables/full_restore.ts";
import { kubeRulesOnly } from "../../src/render/iptables/saved_rules.ts";
import {
  initialProxyState,
  type ProxyEvent,
  type ProxyState,
  reconcile,
} from "../../src/snapshot/proxy_state.ts";
import { withScratchNetns } from "./scratch_netns.ts";
import { iptables, netns, requiring } from "../requirements.ts";

const VARIANTS: readonly IptablesVariant[] = ["nft", "legacy"];

async function run(netns: string, tool: string, args: string[], stdin?: string) {
  const r = await runToolResult(tool, args, {
    netns,
    timeoutMs: 60_000,
    ...(stdin !== undefined ? { stdin } : {}),
  });
  if (r.code !== 0) throw new Error(`${tool} ${args.join(" ")}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** iptables-save without the comment lines (timestamps). */
async function save(netns: string, variant: IptablesVariant, v6 = false): Promise<string> {
  const text = await run(netns, `${v6 ? "ip6" : "ip"}tables-${variant}-save`, []);
  return text.split("\n").filter((l) => !l.startsWith("#")).join("\n");
}

function webObjects(endpoints: number, protocol = "TCP") {
  return objects([
    service("web", {
      type: "LoadBalancer",
      clusterIPs: ["198.18.128.10", "fd00:80::10"],
      ports: [{ name: "http", protocol, port: 80, nodePort: 30080 }],
      lbIPs: ["198.18.250.10"],
      sourceRanges: ["198.19.0.0/24"],
      etp: "Local",
      hcNodePort: 32080,
    }),
    slice("web", "web-4", {
      ports: [{ name: "http", protocol, port: 8080 }],
      endpoints: Array.from({ length: endpoints }, (_, i) => ({
        ip: `198.18.1.${10 + i}`,
        node: i === 0 ? "node-a" : "node-b",
      })),
    }),
    slice("web", "web-6", {
      family: "IPv6",
      ports: [{ name: "http", protocol, port: 8080 }],
      endpoints: [{ ip: "fd00:1::10" }],
    }),
    service("dns", {
      clusterIPs: ["198.18.128.53"],
      ports: [{ name: "dns", protocol: "UDP", port: 53 }],
      affinity: 60,
    }),
    slice("dns", "dns-1", {
      ports: [{ name: "dns", protocol: "UDP", port: 5353 }],
      endpoints: [{ ip: "198.18.1.53" }, { ip: "198.18.1.54" }],
    }),
  ]);
}

function upserts(objs: ReturnType<typeof objects>): ProxyEvent[] {
  return objs.map((object) => ({ type: "upsert", object }));
}

function start(endpoints: number): ProxyState {
  return reconcile(initialProxyState(BASE_SETTINGS), [{
    type: "replace",
    objects: [...objects([nodeA()]), ...webObjects(endpoints)],
  }]).state;
}

for (const variant of VARIANTS) {
  Deno.test(requiring([netns, iptables], {
    name: `iptables-${variant}: every golden ruleset passes iptables-restore --test`,
    async fn() {
      await withScratchNetns("kp-ipt", async (netns) => {
        for (const tc of TEST_CASES) {
          const snapshot = await tc.snapshot();
          for (const family of ["IPv4", "IPv6"] as const) {
            const { text } = renderFamilyRestore(snapshot, family);
            const tool = `${family === "IPv4" ? "ip" : "ip6"}tables-${variant}-restore`;
            await run(netns, tool, ["--test", "--noflush"], text).catch((e) => {
              throw new Error(`${tc.name} ${family}: ${e instanceof Error ? e.message : e}`);
            });
          }
        }
      });
    },
  }));

  for (const chainsPerStage of [undefined, 3]) {
    const staged = chainsPerStage === undefined ? "" : ", in stages of 3 chains";
    Deno.test(requiring([netns, iptables], {
      name: `iptables-${variant}: partial syncs leave what a full sync would${staged}`,
      async fn() {
        await withScratchNetns("kp-ipt", async (netns) => {
          const applier = new IptablesApplier({
            netns,
            variant,
            ...(chainsPerStage === undefined ? {} : { chainsPerStage }),
          });
          let state = start(3);
          const first = await applier.sync({
            snapshot: state.snapshot,
            changedServicePorts: [],
            full: false,
          });
          assert.equal(first.full, true);
          const steps: ProxyEvent[][] = [
            upserts(webObjects(1)), // fewer endpoints, the local one stays
            upserts(objects([service("dns", {
              clusterIPs: ["198.18.128.53"],
              ports: [{ name: "dns", protocol: "UDP", port: 53 }],
            })])), // affinity dropped: the dns chains are rewritten without -m recent
            upserts(objects([slice("web", "web-4", {
              ports: [{ name: "http", protocol: "TCP", port: 8080 }],
              endpoints: [{ ip: "198.18.1.20", node: "node-b" }],
            })])), // no local endpoint any more: external DROP rules appear in filter
            [{ type: "delete", kind: "Service", namespace: "default", name: "dns" }],
            upserts(webObjects(4)),
          ];
          for (const events of steps) {
            const r = reconcile(state, events);
            state = r.state;
            const res = await applier.sync({
              snapshot: state.snapshot,
              changedServicePorts: r.changedServicePorts,
              full: false,
            });
            assert.equal(res.full, false);
            const partial4 = kubeRulesOnly(await save(netns, variant));
            const partial6 = kubeRulesOnly(await save(netns, variant, true));
            await applier.sync({ snapshot: state.snapshot, changedServicePorts: [], full: true });
            const sorted = (t: string) => t.split("\n").sort().join("\n");
            assert.equal(sorted(kubeRulesOnly(await save(netns, variant))), sorted(partial4));
            assert.equal(sorted(kubeRulesOnly(await save(netns, variant, true))), sorted(partial6));
          }
          const live = await applier.liveRules();
          assert.match(live, new RegExp(`# IPv4: iptables-${variant}-save`));
          assert.match(live, /-A KUBE-SERVICES .*KUBE-NODEPORTS/);
          await applier.cleanup();
          assert.equal(kubeRulesOnly(await save(netns, variant)), "");
          assert.equal(kubeRulesOnly(await save(netns, variant, true)), "");
        });
      },
    }));
  }

  Deno.test(requiring([netns, iptables], {
    name: `iptables-${variant}: cleanup leaves iptables-save as it was`,
    async fn() {
      await withScratchNetns("kp-ipt", async (netns) => {
        // A user's own chain and rules, which kproxy must never touch.
        await run(
          netns,
          `iptables-${variant}-restore`,
          ["--noflush"],
          "*filter\n:USER-CHAIN - [0:0]\n-A USER-CHAIN -s 198.19.0.9/32 -j DROP\n" +
            "-A INPUT -s 198.19.0.8/32 -j DROP\n-A INPUT -j USER-CHAIN\nCOMMIT\n" +
            "*nat\n-A POSTROUTING -s 198.18.1.0/24 -d 198.19.0.0/24 -j MASQUERADE\nCOMMIT\n",
        );
        // (A node always has its filter and nat tables; iptables cannot delete a table, so the
        // IPv6 ones are made to exist before, as they would on a node.)
        await run(
          netns,
          `ip6tables-${variant}-restore`,
          ["--noflush"],
          "*filter\n-A INPUT -s fd00:19::8/128 -j DROP\nCOMMIT\n" +
            "*nat\n-A POSTROUTING -s fd00:1::/64 -d fd00:19::/64 -j MASQUERADE\nCOMMIT\n",
        );
        const before4 = await save(netns, variant);
        const before6 = await save(netns, variant, true);
        const applier = new IptablesApplier({ netns, variant });
        let state = start(2);
        await applier.sync({ snapshot: state.snapshot, changedServicePorts: [], full: true });
        const r = reconcile(state, upserts(webObjects(3)));
        state = r.state;
        await applier.sync({
          snapshot: state.snapshot,
          changedServicePorts: r.changedServicePorts,
          full: false,
        });
        assert.notEqual(await save(netns, variant), before4);
        await applier.cleanup();
        assert.equal(await save(netns, variant), before4);
        assert.equal(await save(netns, variant, true), before6);
      });
    },
  }));

  Deno.test(requiring([netns, iptables], {
    name: `iptables-${variant}: a failing restore keeps the previous rules`,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "kproxy-ipt-" });
      try {
        const failing = `${dir}/iptables-restore-fails`;
        await Deno.writeTextFile(
          failing,
          "#!/bin/sh\necho 'iptables-restore: line 3 failed' >&2\nexit 1\n",
        );
        await Deno.chmod(failing, 0o755);
        await withScratchNetns("kp-ipt", async (netns) => {
          const good = new IptablesApplier({ netns, variant, families: ["IPv4"] });
          const state = start(2);
          await good.sync({ snapshot: state.snapshot, changedServicePorts: [], full: true });
          const before = await save(netns, variant);
          const bad = new IptablesApplier({
            netns,
            variant,
            families: ["IPv4"],
            tools: { restore4: failing },
          });
          const r = reconcile(state, upserts(webObjects(4)));
          await assert.rejects(
            bad.sync({ snapshot: r.state.snapshot, changedServicePorts: [], full: true }),
            /exited with 1: iptables-restore: line 3 failed/,
          );
          assert.equal(bad.needsFullSync, true);
          assert.equal(await save(netns, variant), before);
          // And a restore the kernel refuses (a -D of a rule that is not there) changes nothing.
          await assert.rejects(
            run(
              netns,
              `iptables-${variant}-restore`,
              ["--noflush", "-w"],
              "*nat\n:KUBE-SVC-NEWNEWNEWNEWNEWN - [0:0]\n-D KUBE-SERVICES -j KUBE-NOPE\nCOMMIT\n",
            ),
          );
          assert.equal(await save(netns, variant), before);
        });
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  }));

  Deno.test(requiring([netns, iptables], {
    name: `iptables-${variant}: the first sync takes over an earlier kube-proxy's chains`,
    async fn() {
      await withScratchNetns("kp-ipt", async (netns) => {
        await run(
          netns,
          `iptables-${variant}-restore`,
          ["--noflush"],
          "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n" +
            ":KUBE-SVC-OLDOLDOLDOLDOLDO - [0:0]\n:KUBE-SEP-OLDOLDOLDOLDOLDO - [0:0]\n" +
            "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n" +
            "-A KUBE-SEP-OLDOLDOLDOLDOLDO -p tcp -m tcp -j DNAT --to-destination 198.18.1.99:80\n" +
            "-A KUBE-SVC-OLDOLDOLDOLDOLDO -j KUBE-SEP-OLDOLDOLDOLDOLDO\n" +
            '-A KUBE-SERVICES -d 198.18.128.99/32 -p tcp -m comment --comment "old/svc cluster IP"' +
            " -m tcp --dport 80 -j KUBE-SVC-OLDOLDOLDOLDOLDO\n" +
            '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n' +
            '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n' +
            "COMMIT\n",
        );
        const applier = new IptablesApplier({ netns, variant, families: ["IPv4"] });
        await applier.sync({ snapshot: start(1).snapshot, changedServicePorts: [], full: false });
        const after = await save(netns, variant);
        assert.ok(!after.includes("OLDOLDOLD"), after);
        assert.equal(after.match(/-A PREROUTING .*-j KUBE-SERVICES/g)?.length, 1);
        await applier.cleanup();
        assert.ok(!(await save(netns, variant)).includes("KUBE-"));
      });
    },
  }));
}

Deno.test(requiring([netns, iptables], {
  name: "iptables: the variant is detected with iptables --version",
  async fn() {
    await withScratchNetns("kp-ipt", async (netns) => {
      const version = await run(netns, "iptables", ["--version"]);
      const applier = new IptablesApplier({ netns });
      assert.equal(await applier.variant(), /nf_tables/.test(version) ? "nft" : "legacy");
    });
  },
}));
