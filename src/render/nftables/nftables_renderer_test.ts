/**
 * Golden tests of the rendered nft text (tests/golden/nftables/*.nft; `UPDATE_GOLDEN=1`
 * rewrites them), plus determinism and reference checks. IP plan: see `_golden_cases.ts`.
 */
import assert from "node:assert/strict";
import { goldenCases } from "./_golden_cases.ts";
import { checkReferences } from "./references.ts";
import { renderNftables } from "./nftables_renderer.ts";
import { rendererFor } from "../renderers.ts";

const GOLDEN_DIR = new URL("../../../tests/golden/nftables/", import.meta.url);
const update = Deno.env.get("UPDATE_GOLDEN") === "1";

/** Trailing spaces and blank-line runs do not matter. */
function normalise(text: string): string {
  return text.split("\n").map((l) => l.trimEnd()).join("\n").replace(/\n{2,}/g, "\n\n").trim();
}

for (const [name, snapshot] of await goldenCases()) {
  Deno.test(`nftables golden: ${name}`, async () => {
    const text = renderNftables(snapshot);
    assert.equal(renderNftables(snapshot), text, "rendering is deterministic");
    assert.deepEqual(checkReferences(text), []);
    const file = new URL(`${name}.nft`, GOLDEN_DIR);
    if (update) {
      await Deno.mkdir(GOLDEN_DIR, { recursive: true });
      await Deno.writeTextFile(file, text);
    }
    const golden = await Deno.readTextFile(file);
    assert.equal(normalise(text), normalise(golden));
  });
}

Deno.test("nftables renderer is registered for the nftables mode", () => {
  assert.equal(rendererFor("nftables")?.mode, "nftables");
});

Deno.test("checkReferences reports undefined chains and sets", () => {
  const text = [
    "table ip kproxy {",
    "\tset s { type ipv4_addr; }",
    "\tchain a {",
    "\t\tip saddr @s jump b",
    "\t\tip daddr @nope goto missing",
    "\t}",
    "\tchain b {",
    "\t}",
    "}",
  ].join("\n");
  assert.deepEqual(checkReferences(text), [
    "table ip kproxy line 5: chain missing is not defined",
    "table ip kproxy line 5: set nope is not defined",
  ]);
});
