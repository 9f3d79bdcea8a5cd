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

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_NETFILTER = 12;
const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_GETGEN = 16;
const NFT_MSG_NEWGEN = 15;
const NLM_F_REQUEST = 1;
const NFTA_GEN_ID = 1;
const HEADER_BYTES = 20; // struct nlmsghdr (16) + struct nfgenmsg (4)

const LIBC_SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
} as const;

/**
 * Where glibc lives on Debian/Ubuntu (x86_64, arm64), RHEL-likes and Arch. The compiled binary may
 * load only these (deploy/kproxy_permissions.ts); the first that opens is used.
 */
export const LIBC_PATHS: readonly string[] = Object.freeze([
  "/lib/x86_64-linux-gnu/libc.so.6",
  "/lib/aarch64-linux-gnu/libc.so.6",
  "/lib64/libc.so.6",
  "/usr/lib/libc.so.6",
]);

type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];
let libc: Libc | null | undefined;

function openLibc(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  for (const path of LIBC_PATHS) {
    try {
      if (Deno.permissions.querySync({ name: "ffi", path }).state !== "granted") continue;
      libc = Deno.dlopen(path, LIBC_SYMBOLS).symbols;
      break;
    } catch { /* not there, or not glibc: try the next */ }
  }
  return libc;
}

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

/** This namespace's nf_tables generation now, or null when it cannot be read. */
export function readNftGeneration(): number | null {
  const c = openLibc();
  if (c === null) return null;
  const fd = c.socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) return null;
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
