import assert from "node:assert/strict";
import { ipv4Hex, textHex } from "./rule_watch.ts";

Deno.test("patterns are the bytes nf_tables carries", () => {
  assert.equal(ipv4Hex("198.18.250.3"), "c612fa03");
  assert.equal(textHex("KUBE-SEP"), "4b5542452d534550");
});
