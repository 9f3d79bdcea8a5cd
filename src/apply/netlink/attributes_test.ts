/** Netlink attributes: layout, padding, nesting, and reading back. */
import assert from "node:assert/strict";
import {
  encodeAttributes,
  nestAttr,
  parseAttributes,
  stringAttr,
  u16Attr,
  u32Attr,
  u64Attr,
  u8Attr,
} from "./attributes.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("attributes: length, type and padding as libmnl writes them", () => {
  // "kp\0" is 3 bytes: length 7, padded to 8.
  assert.equal(hex(encodeAttributes([stringAttr(1, "kp")])), "070001006b700000");
  assert.equal(hex(encodeAttributes([u32Attr(2, 0x30)])), "0800020000000030");
  assert.equal(hex(encodeAttributes([u16Attr(3, 8080)])), "060003001f900000");
  assert.equal(hex(encodeAttributes([u8Attr(4, 6)])), "0500040006000000");
  assert.equal(hex(encodeAttributes([u64Attr(11, 10800000n)])), "0c000b000000000000a4cb80");
});

Deno.test("attributes: a nest carries NLA_F_NESTED and its children's padded length", () => {
  const bytes = encodeAttributes([nestAttr(3, [nestAttr(1, [u8Attr(1, 6)])])]);
  assert.equal(hex(bytes), "100003800c0001800500010006000000");
  const [outer] = parseAttributes(bytes);
  assert.equal(outer?.type, 3);
  assert.equal(outer?.nested, true);
  const [inner] = parseAttributes(outer!.payload);
  assert.equal(inner?.nested, true);
  assert.deepEqual([...parseAttributes(inner!.payload)[0]!.payload], [6]);
});

Deno.test("attributes: reading stops at a malformed attribute", () => {
  const bytes = encodeAttributes([u32Attr(1, 1), u32Attr(2, 2)]);
  new DataView(bytes.buffer).setUint16(8, 64, true); // the second claims more than there is
  assert.deepEqual(parseAttributes(bytes).map((a) => a.type), [1]);
});
