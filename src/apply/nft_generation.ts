/**
 * The nf_tables generation of this process's network namespace: a counter the kernel bumps on
 * every committed nftables transaction, whoever sends it (nft, iptables-nft, firewalld, a CNI
 * plugin). If it has not moved since kproxy's own last transaction, nobody has touched any table
 * since — kproxy's included — so a periodic resync has nothing to repair.
 *
 * Read with one NFT_MSG_GETGEN netlink request through libc (Deno FFI): a few microseconds, where
 * `nft` has no command that prints it. Null when it cannot be read (no FFI permission, no libc,
 * an error): callers then resync the long way.
 */
import { netlinkSocket, openLibc } from "./netlink/libc.ts";

const NETLINK_NETFILTER = 12;
const SOCK_NONBLOCK = 0o4000;
const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_GETGEN = 16;
const NFT_MSG_NEWGEN = 15;
const NLM_F_REQUEST = 1;
const NFTA_GEN_ID = 1;
const HEADER_BYTES = 20; // struct nlmsghdr (16) + struct nfgenmsg (4)

export { LIBC_PATHS } from "./netlink/libc.ts";

/** The GETGEN request (pure). */
export function generationRequest(seq: number): Uint8Array {
  const msg = new Uint8Array(HEADER_BYTES);
  const view = new DataView(msg.buffer);
  view.setUint32(0, HEADER_BYTES, true);
  view.setUint16(4, (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN, true);
  view.setUint16(6, NLM_F_REQUEST, true);
  view.setUint32(8, seq, true);
  return msg; // nfgenmsg: AF_UNSPEC, version 0, res_id 0
}

/** The generation id in a NEWGEN reply, or null when `reply` is not one (pure). */
export function parseGenerationReply(reply: Uint8Array): number | null {
  if (reply.length < HEADER_BYTES) return null;
  const view = new DataView(reply.buffer, reply.byteOffset, reply.byteLength);
  const length = Math.min(view.getUint32(0, true), reply.length);
  if (view.getUint16(4, true) !== ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN)) return null;
  for (let at = HEADER_BYTES; at + 4 <= length;) {
    const attrLength = view.getUint16(at, true);
    if (attrLength < 4) return null;
    const type = view.getUint16(at + 2, true) & 0x3fff;
    if (type === NFTA_GEN_ID && attrLength >= 8) return view.getUint32(at + 4, false);
    at += (attrLength + 3) & ~3;
  }
  return null;
}

/** The generation after `generation` and one more transaction (the kernel skips 0). */
export function nextGeneration(generation: number): number {
  return generation >= 0xffffffff ? 1 : generation + 1;
}

/**
 * The nf_tables generation of this process's network namespace (or of the named one) now, or
 * null when it cannot be read.
 */
export function readNftGeneration(netns?: string): number | null {
  const c = openLibc();
  if (c === null) return null;
  let fd: number;
  try {
    fd = netlinkSocket(c, NETLINK_NETFILTER, netns, SOCK_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const request = generationRequest(1);
    if (Number(c.send(fd, request, BigInt(request.length), 0)) !== request.length) return null;
    // The kernel answers GETGEN while it handles the send: the reply is already queued.
    const reply = new Uint8Array(256);
    const n = Number(c.recv(fd, reply, BigInt(reply.length), 0));
    return n > 0 ? parseGenerationReply(reply.subarray(0, n)) : null;
  } finally {
    c.close(fd);
  }
}
