/** Messages and batches: headers, sequence numbers, delimiters and the acknowledgement. */
import assert from "node:assert/strict";
import { encodeBatch } from "./batch.ts";
import { newChain } from "./chain.ts";
import { encodeMessages, NFPROTO, NLM_F } from "./message.ts";
import { flushChain } from "./rule.ts";

const ref = { family: NFPROTO.IPV4, table: "kproxy", chain: "service-x" };

Deno.test("message: nlmsghdr and nfgenmsg, little-endian header and big-endian res_id", () => {
  const bytes = encodeMessages([newChain(ref)], 7);
  const view = new DataView(bytes.buffer);
  assert.equal(view.getUint32(0, true), bytes.length);
  assert.equal(view.getUint16(4, true), (10 << 8) | 3); // NFNL_SUBSYS_NFTABLES, NEWCHAIN
  assert.equal(view.getUint16(6, true), NLM_F.REQUEST | NLM_F.CREATE);
  assert.equal(view.getUint32(8, true), 7);
  assert.equal(view.getUint32(12, true), 0);
  assert.deepEqual([...bytes.subarray(16, 20)], [NFPROTO.IPV4, 0, 0, 0]);
});

Deno.test("batch: BEGIN and END around the messages, only the last one asks for an ack", () => {
  const batch = encodeBatch([newChain(ref), flushChain(ref)], 100);
  const headers: { type: number; flags: number; seq: number; resId: number }[] = [];
  const view = new DataView(batch.bytes.buffer);
  for (let at = 0; at < batch.bytes.length; at += view.getUint32(at, true)) {
    headers.push({
      type: view.getUint16(at + 4, true),
      flags: view.getUint16(at + 6, true),
      seq: view.getUint32(at + 8, true),
      resId: view.getUint16(at + 18, false),
    });
  }
  assert.deepEqual(headers.map((h) => h.type), [16, 0x0a03, 0x0a08, 17]);
  assert.deepEqual(headers.map((h) => h.seq), [100, 101, 102, 103]);
  assert.deepEqual(headers.map((h) => h.resId), [10, 0, 0, 10]);
  assert.deepEqual(headers.map((h) => (h.flags & NLM_F.ACK) !== 0), [false, false, true, false]);
  assert.equal(batch.ackSeq, 102);
  assert.equal(batch.count, 2);
  assert.equal(encodeBatch([newChain(ref)], 1, { ackEach: true }).ackSeq, 2);
  assert.throws(() => encodeBatch([], 1), /empty/);
});
