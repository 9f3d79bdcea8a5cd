/**
 * nfacct (`NFNL_SUBSYS_ACCT`) messages: the named packet/byte counters that iptables' `-m nfacct`
 * match adds to, and that kube-proxy reads for two of its metrics. Builders for the two requests
 * kproxy sends (create a counter, get one) and a parser for the kernel's answer. Pure: values in,
 * bytes out, and back.
 *
 * @module
 */
import { parseAttributes, stringAttr } from "./attributes.ts";
import { MESSAGE_HEADER_BYTES, type NftMessage, NLM_F } from "./message.ts";

/** `NFNL_SUBSYS_ACCT`: the high byte of every nfacct message type. */
export const NFNL_SUBSYS_ACCT = 7;

/** nfacct message numbers (`enum nfnl_acct_msg_types`). */
export const NFNL_MSG_ACCT = Object.freeze({ NEW: 0, GET: 1, GET_CTRZERO: 2, DEL: 3 });

/** nfacct attributes (`enum nfnl_acct_type`). */
export const NFACCT = Object.freeze({ NAME: 1, PKTS: 2, BYTES: 3, USE: 4, FLAGS: 5 });

/** The longest counter name the kernel takes (`NFACCT_NAME_MAX` 32, with the NUL). */
export const NFACCT_NAME_MAX = 31;

/** One counter's values. */
export interface NfacctCounter {
  /** Its name. */
  readonly name: string;
  /** Packets counted. */
  readonly packets: bigint;
  /** Bytes counted. */
  readonly bytes: bigint;
}

function checkName(name: string): void {
  if (name === "" || new TextEncoder().encode(name).length > NFACCT_NAME_MAX) {
    throw new Error(`Cannot name an nfacct counter ${JSON.stringify(name)}: 1 to 31 bytes`);
  }
}

/** The `nlmsg_type` of nfacct message `msg`. */
export function nfacctType(msg: number): number {
  return (NFNL_SUBSYS_ACCT << 8) | msg;
}

/** Creates counter `name` (EBUSY when it exists), acknowledged. */
export function newCounter(name: string): NftMessage {
  checkName(name);
  return {
    type: nfacctType(NFNL_MSG_ACCT.NEW),
    flags: NLM_F.CREATE | NLM_F.ACK,
    family: 0,
    attributes: [stringAttr(NFACCT.NAME, name)],
  };
}

/** Asks for counter `name` (ENOENT when it does not exist), acknowledged. */
export function getCounter(name: string): NftMessage {
  checkName(name);
  return {
    type: nfacctType(NFNL_MSG_ACCT.GET),
    flags: NLM_F.ACK,
    family: 0,
    attributes: [stringAttr(NFACCT.NAME, name)],
  };
}

/**
 * The counter in one reply message (`nlmsghdr` + `nfgenmsg` + attributes of an nfacct NEW
 * message, which is how the kernel answers a GET), or null when it is not one.
 */
export function parseCounter(message: Uint8Array): NfacctCounter | null {
  if (message.length < MESSAGE_HEADER_BYTES) return null;
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  if (view.getUint16(4, true) !== nfacctType(NFNL_MSG_ACCT.NEW)) return null;
  let name: string | null = null;
  let packets: bigint | null = null;
  let bytes: bigint | null = null;
  const body = message.subarray(MESSAGE_HEADER_BYTES, view.getUint32(0, true));
  for (const a of parseAttributes(body)) {
    const v = new DataView(a.payload.buffer, a.payload.byteOffset, a.payload.byteLength);
    if (a.type === NFACCT.NAME) {
      name = new TextDecoder().decode(a.payload).replace(/\0+$/, "");
    } else if (a.type === NFACCT.PKTS && a.payload.length === 8) packets = v.getBigUint64(0, false);
    else if (a.type === NFACCT.BYTES && a.payload.length === 8) bytes = v.getBigUint64(0, false);
  }
  return name === null || packets === null || bytes === null ? null : { name, packets, bytes };
}
