/** nfacct messages byte for byte (struct layout from linux/netfilter/nfnetlink_acct.h). */
import assert from "node:assert/strict";
import { encodeAttributes, stringAttr, u32Attr, u64Attr } from "./attributes.ts";
import { encodeMessages } from "./message.ts";
import { getCounter, newCounter, NFACCT, nfacctType, parseCounter } from "./nfacct.ts";

Deno.test("nfacct: NEW and GET of a named counter, byte for byte", () => {
  const bytes = encodeMessages([newCounter("ab"), getCounter("ab")], 5);
  assert.deepEqual([...bytes], [
    // NEW: length 28, type 0x0700, flags REQUEST|ACK|CREATE, seq 5, port 0
    28,
    0,
    0,
    0,
    0x00,
    0x07,
    0x05,
    0x04,
    5,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    // nfgenmsg: AF_UNSPEC, version 0, res_id 0
    0,
    0,
    0,
    0,
    // NFACCT_NAME "ab\0", padded
    7,
    0,
    1,
    0,
    0x61,
    0x62,
    0,
    0,
    // GET: type 0x0701, flags REQUEST|ACK, seq 6
    28,
    0,
    0,
    0,
    0x01,
    0x07,
    0x05,
    0x00,
    6,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    7,
    0,
    1,
    0,
    0x61,
    0x62,
    0,
    0,
  ]);
  assert.throws(() => getCounter(""), /1 to 31 bytes/);
  assert.throws(() => newCounter("x".repeat(32)), /1 to 31 bytes/);
});

Deno.test("nfacct: the kernel's answer to GET reads back as the counter", () => {
  const attrs = encodeAttributes([
    stringAttr(NFACCT.NAME, "localhost_nps_accepted_pkts"),
    u64Attr(NFACCT.PKTS, 3n),
    u64Attr(NFACCT.BYTES, 180n),
    u32Attr(NFACCT.USE, 1),
  ]);
  const reply = new Uint8Array(20 + attrs.length);
  const view = new DataView(reply.buffer);
  view.setUint32(0, reply.length, true);
  view.setUint16(4, nfacctType(0), true);
  reply.set(attrs, 20);
  assert.deepEqual(parseCounter(reply), {
    name: "localhost_nps_accepted_pkts",
    packets: 3n,
    bytes: 180n,
  });
  view.setUint16(4, 2, true); // NLMSG_ERROR
  assert.equal(parseCounter(reply), null);
});
