/**
 * nf_tables netlink messages: `struct nlmsghdr` + `struct nfgenmsg` + attributes. A message is a
 * typed value ({@link NftMessage}); {@link encodeMessages} lays a run of them out with sequence
 * numbers, as libnftnl does. Pure.
 *
 * @module
 */
import { attributesSize, type NetlinkAttribute, writeAttributes } from "./attributes.ts";

/** `NFNL_SUBSYS_NFTABLES`: the high byte of every nf_tables message type. */
export const NFNL_SUBSYS_NFTABLES = 10;

/** nf_tables message numbers (`enum nf_tables_msg_types`). */
export const NFT_MSG = Object.freeze({
  NEWTABLE: 0,
  GETTABLE: 1,
  DELTABLE: 2,
  NEWCHAIN: 3,
  GETCHAIN: 4,
  DELCHAIN: 5,
  NEWRULE: 6,
  GETRULE: 7,
  DELRULE: 8,
  NEWSET: 9,
  GETSET: 10,
  DELSET: 11,
  NEWSETELEM: 12,
  GETSETELEM: 13,
  DELSETELEM: 14,
  NEWGEN: 15,
  GETGEN: 16,
});

/** nfnetlink batch delimiters (`NFNL_MSG_BATCH_BEGIN`, `NFNL_MSG_BATCH_END`). */
export const NFNL_MSG_BATCH_BEGIN = 16;
/** End of a batch: the kernel commits everything since BEGIN, or nothing. */
export const NFNL_MSG_BATCH_END = 17;

/** `NLMSG_ERROR`: an error or (error 0) an acknowledgement. */
export const NLMSG_ERROR = 2;
/** `NLMSG_DONE`. */
export const NLMSG_DONE = 3;

/** `nlmsg_flags` bits. */
export const NLM_F = Object.freeze({
  REQUEST: 0x1,
  MULTI: 0x2,
  ACK: 0x4,
  ECHO: 0x8,
  REPLACE: 0x100,
  NONREC: 0x100,
  EXCL: 0x200,
  CREATE: 0x400,
  APPEND: 0x800,
});

/** Protocol families of nf_tables tables (`NFPROTO_*`). */
export const NFPROTO = Object.freeze({ UNSPEC: 0, INET: 1, IPV4: 2, ARP: 3, NETDEV: 5, IPV6: 10 });

/** The `NFPROTO_*` of an nft table family keyword. */
export function tableFamilyNumber(family: "ip" | "ip6" | "inet"): number {
  return family === "ip" ? NFPROTO.IPV4 : family === "ip6" ? NFPROTO.IPV6 : NFPROTO.INET;
}

/** One message, before it has a sequence number. */
export interface NftMessage {
  /** Full `nlmsg_type` (subsystem in the high byte). */
  readonly type: number;
  /** `nlmsg_flags` (`NLM_F_REQUEST` is always added). */
  readonly flags: number;
  /** `nfgen_family`. */
  readonly family: number;
  /** `res_id` (network byte order on the wire); 0 but for batch delimiters. */
  readonly resId?: number;
  /** Attributes. */
  readonly attributes: readonly NetlinkAttribute[];
}

/** The `nlmsg_type` of nf_tables message `msg`. */
export function nftType(msg: number): number {
  return (NFNL_SUBSYS_NFTABLES << 8) | msg;
}

/** Header bytes: `nlmsghdr` (16) + `nfgenmsg` (4). */
export const MESSAGE_HEADER_BYTES = 20;

/** The encoded size of one message. */
export function messageSize(message: NftMessage): number {
  return MESSAGE_HEADER_BYTES + attributesSize(message.attributes);
}

/**
 * Lays `messages` out back to back; message i gets sequence number `firstSeq + i`.
 * `portId` is 0: the kernel.
 */
export function encodeMessages(messages: readonly NftMessage[], firstSeq: number): Uint8Array {
  let total = 0;
  for (const m of messages) total += messageSize(m);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  messages.forEach((m, i) => {
    const start = at;
    view.setUint16(at + 4, m.type, true);
    view.setUint16(at + 6, m.flags | NLM_F.REQUEST, true);
    view.setUint32(at + 8, (firstSeq + i) >>> 0, true);
    view.setUint32(at + 12, 0, true);
    view.setUint8(at + 16, m.family);
    view.setUint8(at + 17, 0); // NFNETLINK_V0
    view.setUint16(at + 18, m.resId ?? 0, false);
    at = writeAttributes(view, at + MESSAGE_HEADER_BYTES, m.attributes);
    view.setUint32(start, at - start, true);
  });
  return out;
}
