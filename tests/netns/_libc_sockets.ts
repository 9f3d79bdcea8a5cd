/**
 * The libc socket calls (Deno FFI) the netns harness's probes need where Deno has no API:
 * connected UDP sockets that see ICMP errors, and raw SCTP sockets. Linux x86_64/aarch64 only;
 * private to the netns harness (runs inside `_agent_main.ts`).
 *
 * @module
 */

/** `AF_INET`. */
export const AF_INET = 2;
/** `AF_INET6`. */
export const AF_INET6 = 10;
/** `SOCK_DGRAM`. */
export const SOCK_DGRAM = 2;
/** `SOCK_NONBLOCK`. */
export const SOCK_NONBLOCK = 0o4000;
/** `SOCK_CLOEXEC`. */
export const SOCK_CLOEXEC = 0o2000000;
/** `SOL_SOCKET`. */
export const SOL_SOCKET = 1;
/** `SO_REUSEADDR`. */
export const SO_REUSEADDR = 2;
/** `SO_ERROR`. */
export const SO_ERROR = 4;
/** `POLLIN`. */
export const POLLIN = 1;
/** `POLLERR`. */
export const POLLERR = 8;
/** `MSG_DONTWAIT`. */
export const MSG_DONTWAIT = 0x40;
/** `EAGAIN`. */
export const EAGAIN = 11;

/** Linux errno names the probe reports. */
export const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: "EPERM",
  101: "ENETUNREACH",
  111: "ECONNREFUSED",
  113: "EHOSTUNREACH",
};

/** libc, for the socket calls Deno has no API for. */
export const libc = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  recvfrom: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"],
    result: "isize",
  },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
});

/** The calling thread's errno. */
export function errno(): number {
  const ptr = libc.symbols.__errno_location();
  return ptr === null ? 0 : new Deno.UnsafePointerView(ptr).getInt32();
}

/** `ECONNREFUSED`, `EPERM`, ... or `errno N`. */
export function errnoName(code: number): string {
  return ERRNO_NAMES[code] ?? `errno ${code}`;
}

/** The 4 bytes of an IPv4 address, or null. */
export function parseIPv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (const [i, p] of parts.entries()) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    out[i] = Number(p);
  }
  return out;
}

/** The 16 bytes of an IPv6 address, or null. */
export function parseIPv6(text: string): Uint8Array | null {
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const group = (s: string) => (s === "" ? [] : s.split(":"));
  const head = group(halves[0] ?? "");
  const tail = halves.length === 2 ? group(halves[1] ?? "") : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail];
  const out = new Uint8Array(16);
  for (const [i, g] of groups.entries()) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  }
  return out;
}

/** A `sockaddr_in` / `sockaddr_in6` for `ip:port` (the wildcard address when ip is null). */
export function sockaddr(family: number, ip: Uint8Array | null, port: number): Uint8Array {
  const buf = new Uint8Array(family === AF_INET ? 16 : 28);
  const view = new DataView(buf.buffer);
  view.setUint16(0, family, true);
  view.setUint16(2, port, false);
  if (ip !== null) buf.set(ip, family === AF_INET ? 4 : 8);
  return buf;
}

/** The local address a socket is bound to. */
export function localIPOf(fd: number, family: number): string {
  const buf = new Uint8Array(28);
  const len = new Uint32Array([buf.length]);
  if (libc.symbols.getsockname(fd, buf, new Uint8Array(len.buffer)) !== 0) return "";
  if (family === AF_INET) return [...buf.subarray(4, 8)].join(".");
  const view = new DataView(buf.buffer);
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(view.getUint16(8 + i * 2, false).toString(16));
  return compressIPv6(groups);
}

/** Text of an IPv6 address from its eight hex groups, with the longest zero run as `::`. */
export function compressIPv6(groups: readonly string[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < groups.length;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === "0") j++;
    if (j - i > bestLen && j - i > 1) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  if (bestStart < 0) return groups.join(":");
  return `${groups.slice(0, bestStart).join(":")}::${groups.slice(bestStart + bestLen).join(":")}`;
}

/** A socket's pending error (`SO_ERROR`), 0 when none. */
export function socketError(fd: number): number {
  const value = new Int32Array(1);
  const len = new Uint32Array([4]);
  const rc = libc.symbols.getsockopt(
    fd,
    SOL_SOCKET,
    SO_ERROR,
    new Uint8Array(value.buffer),
    new Uint8Array(len.buffer),
  );
  return rc === 0 ? value[0] ?? 0 : errno();
}

/** `ip`'s bytes and family, or null when it is not an IP address. */
export function parseIP(ip: string): { bytes: Uint8Array; family: number } | null {
  const v4 = parseIPv4(ip);
  if (v4 !== null) return { bytes: v4, family: AF_INET };
  const v6 = parseIPv6(ip);
  return v6 === null ? null : { bytes: v6, family: AF_INET6 };
}

/** Text of an address from its 4 or 16 bytes. */
export function formatIP(bytes: Uint8Array): string {
  if (bytes.length === 4) return [...bytes].join(".");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(view.getUint16(i * 2, false).toString(16));
  return compressIPv6(groups);
}

/** Waits up to `timeoutMs` for `fd` to be readable (or in error); returns the poll revents. */
export async function pollIn(fd: number, timeoutMs: number): Promise<number> {
  const pfd = new Uint8Array(8);
  const view = new DataView(pfd.buffer);
  view.setInt32(0, fd, true);
  view.setInt16(4, POLLIN, true);
  const ready = await libc.symbols.poll(pfd, 1n, Math.max(0, Math.ceil(timeoutMs)));
  return ready <= 0 ? 0 : view.getInt16(6, true);
}
