/**
 * A raw nf_tables event listener, run inside a bench namespace (`ip netns exec NS deno run -A
 * bench/_nf_listener.ts`): it joins the NFNLGRP_NFTABLES netlink group through libc (Deno FFI)
 * and looks for byte patterns in the kernel's notifications, without keeping any rule cache —
 * `nft monitor` first loads the whole ruleset, which takes minutes at 10k services.
 *
 * Every nf_tables transaction ends with a NEWGEN notification. Per watched pattern the listener
 * counts, within one transaction, the NEW (chain, rule, set element) and DEL notifications that
 * contain it; a watch for `appear` fires at the end of the first transaction with more NEWs than
 * DELs, one for `disappear` with more DELs than NEWs. So a full resync that deletes and re-adds
 * everything does not count, and the time is when the kernel committed the change.
 *
 * stdin: `watch ID appear|disappear HEX[,HEX...]`, `unwatch ID`.
 * stdout: `ready`, `armed ID`, `hit ID EPOCH_MS TX_MESSAGES`, `lost N` (receive overruns).
 *
 * @module
 */

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const NETLINK_NETFILTER = 12;
const NFNLGRP_NFTABLES = 7;
const SOL_SOCKET = 1;
const SO_RCVBUFFORCE = 33;
const NFNL_SUBSYS_NFTABLES = 10;
const MSG = { newChain: 3, delChain: 5, newRule: 6, delRule: 8, newElem: 12, delElem: 14, gen: 15 };

interface Watch {
  readonly id: string;
  readonly appear: boolean;
  readonly patterns: readonly Uint8Array[];
  news: number;
  dels: number;
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function contains(hay: Uint8Array, start: number, end: number, needle: Uint8Array): boolean {
  const first = needle[0] as number;
  const last = end - needle.length;
  for (let i = hay.indexOf(first, start); i !== -1 && i <= last; i = hay.indexOf(first, i + 1)) {
    let j = 1;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length) return true;
  }
  return false;
}

async function main(): Promise<void> {
  const libc = Deno.dlopen("libc.so.6", {
    socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
    bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
    setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
    calloc: { parameters: ["usize", "usize"], result: "pointer" },
    recvmmsg: {
      parameters: ["i32", "pointer", "u32", "i32", "pointer"],
      result: "i32",
      nonblocking: true,
    },
  });
  const fd = libc.symbols.socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
  if (fd < 0) throw new Error("Cannot open a netfilter netlink socket");
  const size = new Uint8Array(4);
  new DataView(size.buffer).setUint32(0, 256 * 1024 * 1024, true);
  libc.symbols.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, size, 4);
  const addr = new Uint8Array(12);
  const view = new DataView(addr.buffer);
  view.setUint16(0, AF_NETLINK, true);
  view.setUint32(8, 1 << (NFNLGRP_NFTABLES - 1), true);
  if (libc.symbols.bind(fd, addr, 12) < 0) throw new Error("Cannot join NFNLGRP_NFTABLES");

  const watches = new Map<string, Watch>();
  const enc = new TextEncoder();
  const out = (line: string) => Deno.stdout.writeSync(enc.encode(line + "\n"));
  (async () => {
    const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
    let rest = "";
    for await (const chunk of lines) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop() ?? "";
      for (const line of parts) {
        const [cmd, id, dir, hex] = line.trim().split(" ");
        if (cmd === "watch" && id !== undefined && hex !== undefined) {
          watches.set(id, {
            id,
            appear: dir === "appear",
            patterns: hex.split(",").map(hexBytes),
            news: 0,
            dels: 0,
          });
          out(`armed ${id}`);
        } else if (cmd === "unwatch" && id !== undefined) watches.delete(id);
      }
    }
    Deno.exit(0);
  })();
  out("ready");

  // recvmmsg: up to SLOTS notifications per call (one call per notification costs too much
  // when a proxy rewrites 100k+ rules). struct mmsghdr is 64 bytes on 64-bit Linux: msghdr
  // (name 8, namelen 4+4, iov 8, iovlen 8, control 8, controllen 8, flags 4+4) + msg_len 4+4.
  // The buffers live in C memory (calloc) so that nothing the kernel writes into can be moved
  // or freed by the JavaScript heap while a call is in flight on another thread.
  const SLOTS = 512;
  const SLOT_SIZE = 32 * 1024;
  const alloc = (size: number) => {
    const ptr = libc.symbols.calloc(BigInt(size), 1n);
    if (ptr === null) throw new Error(`Cannot allocate ${size} bytes for the listener`);
    return { ptr, bytes: new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(ptr, size)) };
  };
  const data = alloc(SLOTS * SLOT_SIZE);
  const iovs = alloc(SLOTS * 16);
  const hdrs = alloc(SLOTS * 64);
  const buf = data.bytes;
  const base = BigInt(Deno.UnsafePointer.value(data.ptr));
  const iovBase = BigInt(Deno.UnsafePointer.value(iovs.ptr));
  const iv = new DataView(iovs.bytes.buffer);
  const mv = new DataView(hdrs.bytes.buffer);
  for (let i = 0; i < SLOTS; i++) {
    iv.setBigUint64(i * 16, base + BigInt(i * SLOT_SIZE), true);
    iv.setBigUint64(i * 16 + 8, BigInt(SLOT_SIZE), true);
    mv.setBigUint64(i * 64 + 16, iovBase + BigInt(i * 16), true);
    mv.setBigUint64(i * 64 + 24, 1n, true);
  }
  const MSG_WAITFORONE = 0x10000;
  const dv = new DataView(buf.buffer);
  let txMessages = 0;
  let lost = 0;
  for (;;) {
    const count = await libc.symbols.recvmmsg(fd, hdrs.ptr, SLOTS, MSG_WAITFORONE, null);
    if (count < 0) {
      out(`lost ${++lost}`);
      continue;
    }
    for (let slot = 0; slot < count; slot++) {
      const start = slot * SLOT_SIZE;
      const n = start + Math.min(mv.getUint32(slot * 64 + 56, true), SLOT_SIZE);
      for (let off = start; off + 16 <= n;) {
        const len = dv.getUint32(off, true);
        const type = dv.getUint16(off + 4, true);
        if (len < 16 || off + len > n) break;
        if (type >> 8 === NFNL_SUBSYS_NFTABLES) {
          const msg = type & 0xff;
          if (msg === MSG.gen) {
            const at = performance.timeOrigin + performance.now();
            for (const w of watches.values()) {
              if (w.appear ? w.news > w.dels : w.dels > w.news) {
                out(`hit ${w.id} ${at.toFixed(3)} ${txMessages}`);
                watches.delete(w.id);
              }
              w.news = 0;
              w.dels = 0;
            }
            txMessages = 0;
          } else {
            txMessages++;
            const isNew = msg === MSG.newChain || msg === MSG.newRule || msg === MSG.newElem;
            const isDel = msg === MSG.delChain || msg === MSG.delRule || msg === MSG.delElem;
            if ((isNew || isDel) && watches.size > 0) {
              for (const w of watches.values()) {
                if (w.patterns.some((p) => contains(buf, off + 16, off + len, p))) {
                  if (isNew) w.news++;
                  else w.dels++;
                }
              }
            }
          }
        }
        off += (len + 3) & ~3;
      }
    }
  }
}

if (import.meta.main) await main();
