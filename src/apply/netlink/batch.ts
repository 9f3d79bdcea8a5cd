/**
 * A batch: BATCH_BEGIN, the messages, BATCH_END. The kernel applies everything between the two
 * as one transaction — all of it or, if any message fails, none of it — and then answers: an
 * `NLMSG_ERROR` for each failed message and an acknowledgement for each that asked for one.
 * The last message asks ({@link encodeBatch}), so its acknowledgement says the batch committed.
 *
 * @module
 */
import { encodeMessages, NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END, NLM_F } from "./message.ts";
import type { NftMessage } from "./message.ts";
import { NFNL_SUBSYS_NFTABLES, NFPROTO } from "./message.ts";

/** The BATCH_BEGIN message (for nf_tables: `res_id` is the subsystem). */
export function batchBegin(): NftMessage {
  return {
    type: NFNL_MSG_BATCH_BEGIN,
    flags: 0,
    family: NFPROTO.UNSPEC,
    resId: NFNL_SUBSYS_NFTABLES,
    attributes: [],
  };
}

/** The BATCH_END message. */
export function batchEnd(): NftMessage {
  return {
    type: NFNL_MSG_BATCH_END,
    flags: 0,
    family: NFPROTO.UNSPEC,
    resId: NFNL_SUBSYS_NFTABLES,
    attributes: [],
  };
}

/** An encoded batch and which sequence number is which message. */
export interface EncodedBatch {
  /** The bytes to send in one `sendmsg`. */
  readonly bytes: Uint8Array;
  /** Sequence number of BATCH_BEGIN; message i of the input has `firstSeq + 1 + i`. */
  readonly firstSeq: number;
  /** Sequence number of the message whose acknowledgement ends the exchange. */
  readonly ackSeq: number;
  /** Number of messages between BEGIN and END. */
  readonly count: number;
}

/**
 * Wraps `messages` (at least one) in BEGIN/END starting at sequence number `firstSeq`. With
 * `ackEach`, every message asks for an acknowledgement (tests); otherwise only the last.
 */
export function encodeBatch(
  messages: readonly NftMessage[],
  firstSeq: number,
  options: { readonly ackEach?: boolean } = {},
): EncodedBatch {
  if (messages.length === 0) throw new Error("Cannot encode an empty nf_tables batch");
  const last = messages.length - 1;
  const body = messages.map((m, i) =>
    options.ackEach === true || i === last ? { ...m, flags: m.flags | NLM_F.ACK } : m
  );
  const bytes = encodeMessages([batchBegin(), ...body, batchEnd()], firstSeq);
  return { bytes, firstSeq, ackSeq: firstSeq + 1 + last, count: messages.length };
}
