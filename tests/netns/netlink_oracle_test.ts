/**
 * The netlink compiler against nft itself, in throwaway namespaces (`kp-nl-*`): for every
 * curated command (src/apply/netlink/_oracle_cases.ts), and for the whole incremental
 * transactions that take each golden nftables case from its fixed part to everything and back,
 * the batch kproxy builds is byte for byte the batch `nft --check --debug=mnl` builds
 * (normalised as src/apply/netlink/_normalize.ts says). The curated batches are also kept in
 * tests/golden/netlink/commands.txt for the unit test; `KPROXY_UPDATE_GOLDEN=1` rewrites it.
 * IP plan: see _oracle_cases.ts and src/render/nftables/_fixtures.ts.
 */
import assert from "node:assert/strict";
import { nftBatchMessages } from "../../src/apply/netlink/_nft_debug.ts";
import { normalizeBatch } from "../../src/apply/netlink/_normalize.ts";
import {
  goldenText,
  ORACLE_COMMANDS,
  ORACLE_GOLDEN,
  ORACLE_SETS,
  oracleBaseScript,
  parseGolden,
} from "../../src/apply/netlink/_oracle_cases.ts";
import { compileScript } from "../../src/apply/netlink/compile_script.ts";
import { encodeMessages, type NftMessage } from "../../src/apply/netlink/message.ts";
import { runTool } from "../../src/apply/run_tool.ts";
import { goldenCases } from "../../src/render/nftables/_golden_cases.ts";
import { rawNode, rawService, rawSlice, snapshotOf } from "../../src/render/nftables/_fixtures.ts";
import {
  type FamilyTable,
  fullTableText,
  planIncremental,
  renderFamily,
} from "../../src/render/nftables/table_plan.ts";
import type { ProxySnapshot } from "../../src/snapshot/types.ts";
import { netns, nft, requiring, root } from "../requirements.ts";
import { withScratchNetns } from "./scratch_netns.ts";

/** Our messages as the same normalised hex. */
function ours(messages: readonly NftMessage[]): string[] {
  const bytes = encodeMessages(messages, 0);
  const out: { msg: number; body: Uint8Array }[] = [];
  for (let at = 0; at < bytes.length;) {
    const view = new DataView(bytes.buffer, at);
    const length = view.getUint32(0, true);
    out.push({ msg: view.getUint16(4, true) & 0xff, body: bytes.slice(at + 16, at + length) });
    at += length;
  }
  return normalizeBatch(out);
}

async function theirs(ns: string, script: string): Promise<string[]> {
  const messages = await nftBatchMessages(ns, script);
  return normalizeBatch(messages.map((m) => ({ msg: m.type & 0xff, body: m.body })));
}

Deno.test(requiring([root, netns, nft], {
  name: "netlink: every curated command compiles to nft's own bytes (and the golden file agrees)",
  async fn() {
    await withScratchNetns("kp-nl", async (ns) => {
      await runTool("nft", ["-f", "-"], { netns: ns, stdin: oracleBaseScript() });
      const live = new Map<string, string[]>();
      for (const command of ORACLE_COMMANDS) {
        const expected = await theirs(ns, command);
        live.set(command, expected);
        const compiled = compileScript([command], {
          setDeclaration: (family, name) => ORACLE_SETS[`${family} ${name}`],
        });
        assert.deepEqual(ours(compiled.messages), expected, command);
      }
      const text = goldenText(live);
      if (Deno.env.get("KPROXY_UPDATE_GOLDEN") === "1") {
        await Deno.writeTextFile(ORACLE_GOLDEN, text);
      }
      assert.deepEqual(
        parseGolden(await Deno.readTextFile(ORACLE_GOLDEN)),
        parseGolden(text),
        "tests/golden/netlink/commands.txt is stale (KPROXY_UPDATE_GOLDEN=1 rewrites it)",
      );
    });
  },
}));

/** The same tables with no service ports: what a first load holds before any service. */
function fixedOnly(t: FamilyTable): FamilyTable {
  return { ...t, ports: new Map(), claims: new Map() };
}

/**
 * A whole transaction in comparable form: chain, rule and set messages in their order; element
 * messages sorted, since nft merges runs of `add element` to one set and sends them in its own
 * order (the order of elements in a transaction means nothing).
 */
function transaction(messages: readonly string[]): { objects: string[]; elements: string[] } {
  const isElement = (m: string) => m.startsWith("12:") || m.startsWith("14:");
  return {
    objects: messages.filter((m) => !isElement(m)),
    elements: messages.filter(isElement).sort(),
  };
}

async function checkTransactions(name: string, snapshot: ProxySnapshot): Promise<void> {
  const tables = (["IPv4", "IPv6"] as const).map((f) => renderFamily(snapshot, f));
  const ids = snapshot.servicePorts.map((sp) => sp.id);
  const setDeclaration = (family: "ip" | "ip6", set: string) =>
    tables.find((t) => t.tableFamily === family)?.fixed.sets.find((s) => s.name === set)
      ?.declaration;
  await withScratchNetns("kp-nl", async (ns) => {
    // Up: from the fixed part to every service port.
    const empty = tables.map(fixedOnly);
    await runTool("nft", ["-f", "-"], { netns: ns, stdin: empty.map(fullTableText).join("\n") });
    const up = tables.flatMap((t, i) => planIncremental(empty[i]!, t, ids).commands);
    assert.ok(up.length > 0, name);
    assert.deepEqual(
      transaction(ours(compileScript(up, { setDeclaration }).messages)),
      transaction(await theirs(ns, up.join("\n"))),
      `${name}: the transaction that adds everything`,
    );
    // Down: from everything back to the fixed part.
    await runTool("nft", ["-f", "-"], { netns: ns, stdin: "flush ruleset\n" });
    await runTool("nft", ["-f", "-"], { netns: ns, stdin: tables.map(fullTableText).join("\n") });
    const full = tables.map((t) => renderFamily(snapshot, t.ctx.family));
    const down = full.flatMap((t, i) => planIncremental(t, empty[i]!, ids).commands);
    assert.deepEqual(
      transaction(ours(compileScript(down, { setDeclaration }).messages)),
      transaction(await theirs(ns, down.join("\n"))),
      `${name}: the transaction that removes everything`,
    );
  });
}

Deno.test(requiring([root, netns, nft], {
  name: "netlink: whole incremental transactions of every golden case equal nft's bytes",
  async fn() {
    const cases = await goldenCases();
    const HTTP = { name: "http", protocol: "TCP", port: 80 };
    const TARGET = { name: "http", protocol: "TCP", port: 8080 };
    // More than 16 endpoints: the numgen map rule, in both families.
    cases.set(
      "many_endpoints",
      snapshotOf([
        rawNode(),
        rawService("wide", {
          clusterIPs: ["198.18.128.70", "fd00:128::70"],
          ipFamilies: ["IPv4", "IPv6"],
          ipFamilyPolicy: "PreferDualStack",
          ports: [HTTP],
        }),
        rawSlice(
          "wide",
          TARGET,
          Array.from({ length: 20 }, (_, k) => ({ ip: `198.18.1.${k + 1}` })),
        ),
        rawSlice(
          "wide",
          TARGET,
          Array.from({ length: 20 }, (_, k) => ({ ip: `fd00:1::${k + 1}` })),
          "b",
        ),
      ]),
    );
    for (const [name, snapshot] of cases) await checkTransactions(name, snapshot);
  },
}));
