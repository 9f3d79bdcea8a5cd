/**
 * The compiler against nft 1.0.6's own bytes (tests/golden/netlink/commands.txt, written and
 * checked against a live nft by tests/netns/netlink_oracle_test.ts), and what it refuses.
 */
import assert from "node:assert/strict";
import { normalizeBatch } from "./_normalize.ts";
import { ORACLE_COMMANDS, ORACLE_GOLDEN, ORACLE_SETS, parseGolden } from "./_oracle_cases.ts";
import { compileScript } from "./compile_script.ts";
import { UnsupportedNftText } from "./compile_values.ts";
import { encodeMessages, type NftMessage } from "./message.ts";

const setDeclaration = (family: string, name: string) => ORACLE_SETS[`${family} ${name}`];

function normalised(messages: readonly NftMessage[]): string[] {
  const bytes = encodeMessages(messages, 0);
  const out: { msg: number; body: Uint8Array }[] = [];
  for (let at = 0; at < bytes.length;) {
    const view = new DataView(bytes.buffer, at);
    out.push({
      msg: view.getUint16(4, true) & 0xff,
      body: bytes.slice(at + 16, at + view.getUint32(0, true)),
    });
    at += view.getUint32(0, true);
  }
  return normalizeBatch(out);
}

Deno.test("compile: every curated command is byte for byte what nft 1.0.6 sends", async () => {
  const golden = parseGolden(await Deno.readTextFile(ORACLE_GOLDEN));
  assert.deepEqual([...golden.keys()], [...ORACLE_COMMANDS], "the golden file covers the commands");
  for (const [command, expected] of golden) {
    const compiled = compileScript([command], { setDeclaration });
    assert.deepEqual(normalised(compiled.messages), expected, command);
    assert.ok(compiled.commands.every((c) => c === command));
  }
});

Deno.test("compile: a script is its commands in order, anonymous sets numbered apart", () => {
  const rule = (n: number) =>
    `add rule ip kproxy service-x meta l4proto tcp dnat ip addr . port to numgen random mod 2 map { 0 : 198.18.1.${n} . 80, 1 : 198.18.1.${
      n + 1
    } . 80 }`;
  const compiled = compileScript(["flush chain ip kproxy service-x", rule(1), rule(3)], {
    setDeclaration,
    firstSetId: 40,
  });
  assert.deepEqual(compiled.messages.map((m) => m.type & 0xff), [8, 9, 12, 6, 9, 12, 6]);
  assert.deepEqual(compiled.commands, [
    "flush chain ip kproxy service-x",
    rule(1),
    rule(1),
    rule(1),
    rule(3),
    rule(3),
    rule(3),
  ]);
  const text = new TextDecoder().decode(encodeMessages(compiled.messages, 0));
  assert.equal(text.split("__map%d").length - 1, 6);
});

Deno.test("compile: text outside kproxy's vocabulary is refused, never guessed", () => {
  const refused = [
    "add rule ip kproxy service-x iifname eth0 accept",
    "add rule ip kproxy service-x ct state new jump x",
    "add rule ip kproxy service-x ip6 daddr fd00::1 accept", // wrong family
    "add rule ip kproxy service-x tcp dport 80 udp dport 53 accept",
    "add rule ip kproxy service-x drop accept",
    "add rule ip kproxy service-x dnat to 198.18.1.1",
    "add element ip kproxy nowhere { 198.18.1.1 }",
    "add element ip kproxy cluster-ips { 198.18.1.1 : drop }",
    "add element ip kproxy service-ips { 198.18.1.1 . tcp . 80 }",
    "add element ip kproxy service-ips { 198.18.1.1 . tcp : drop }",
    "add set ip kproxy s { type ipv4_addr; flags interval; }",
    "add map ip kproxy m { type ipv4_addr : verdict; }",
    "add table ip kproxy",
    "insert rule ip kproxy service-x drop",
  ];
  for (const line of refused) {
    assert.throws(() => compileScript([line], { setDeclaration }), UnsupportedNftText, line);
  }
});

Deno.test("compile: only element changes without jumps are quick (nothing to validate)", () => {
  const quick = (line: string) => !compileScript([line], { setDeclaration }).validates;
  assert.equal(quick("add element ip kproxy cluster-ips { 198.18.128.10 }"), true);
  assert.equal(
    quick(
      "add element ip kproxy cluster-endpoints { 198.18.128.10 . tcp . 80 . 65536 : 198.18.1.10 . 8080 }",
    ),
    true,
  );
  assert.equal(
    quick("add element ip kproxy no-endpoint-services { 198.18.200.11 . tcp . 443 : drop }"),
    true,
  );
  assert.equal(
    quick("add element ip kproxy service-ips { 198.18.128.10 . tcp . 80 : goto service-x }"),
    false,
  );
  assert.equal(quick("add rule ip kproxy service-x drop"), false);
  assert.equal(quick("flush chain ip kproxy service-x"), false);
});
