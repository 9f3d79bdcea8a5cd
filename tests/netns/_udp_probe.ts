/**
 * A UDP probe on a *connected* socket, through libc (Deno FFI): Deno's own UDP sockets are not
 * connected, so they never see the ICMP port unreachable that a REJECT rule sends back. A
 * connected socket does (`SO_ERROR` = ECONNREFUSED), which lets probes report "refused".
 *
 * Private to the netns harness; runs inside `_agent_main.ts`. Linux x86_64/aarch64 only.
 *
 * @module
 */

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_ERROR = 4;
const POLLIN = 1;
const POLLERR = 8;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;

/** Linux errno names the probe reports. */
const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: "EPERM",
  101: "ENETUNREACH",
  111: "ECONNREFUSED",
  113: "EHOSTUNREACH",
};

/** What one UDP probe saw. */
export type UdpProbeOutcome =
  | { readonly kind: "reply"; readonly text: string; readonly localIP: string }
  | { readonly kind: "error"; readonly errno: number; readonly name: string }
  | { readonly kind: "timeout" };

const libc = Deno.dlopen("libc.so.6", {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
});

function errno(): number {
  const ptr = libc.symbols.__errno_location();
  return ptr === null ? 0 : new Deno.UnsafePointerView(ptr).getInt32();
}

function errnoName(code: number): string {
  return ERRNO_NAMES[code] ?? `errno ${code}`;
}

function parseIPv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (const [i, p] of parts.entries()) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    out[i] = Number(p);
  }
  return out;
}

function parseIPv6(text: string): Uint8Array | null {
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
function sockaddr(family: number, ip: Uint8Array | null, port: number): Uint8Array {
  const buf = new Uint8Array(family === AF_INET ? 16 : 28);
  const view = new DataView(buf.buffer);
  view.setUint16(0, family, true);
  view.setUint16(2, port, false);
  if (ip !== null) buf.set(ip, family === AF_INET ? 4 : 8);
  return buf;
}

function localIPOf(fd: number, family: number): string {
  const buf = new Uint8Array(28);
  const len = new Uint32Array([buf.length]);
  if (libc.symbols.getsockname(fd, buf, new Uint8Array(len.buffer)) !== 0) return "";
  if (family === AF_INET) return [...buf.subarray(4, 8)].join(".");
  const view = new DataView(buf.buffer);
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(view.getUint16(8 + i * 2, false).toString(16));
  return compressIPv6(groups);
}

function compressIPv6(groups: readonly string[]): string {
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

function socketError(fd: number): number {
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

/**
 * Sends `payload` from a fresh connected UDP socket (bound to `sourcePort` when given) to
 * `ip:port` and waits up to `timeoutMs` for a reply or an ICMP error.
 */
export async function udpProbe(
  ip: string,
  port: number,
  options: { readonly timeoutMs: number; readonly sourcePort?: number; readonly payload: string },
): Promise<UdpProbeOutcome> {
  const v4 = parseIPv4(ip);
  const addr = v4 ?? parseIPv6(ip);
  if (addr === null) throw new Error(`Cannot probe ${ip}: not an IP address`);
  const family = v4 !== null ? AF_INET : AF_INET6;
  const fd = libc.symbols.socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error(`Cannot open a UDP socket: ${errnoName(errno())}`);
  try {
    if (options.sourcePort !== undefined) {
      const one = new Int32Array([1]);
      libc.symbols.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, new Uint8Array(one.buffer), 4);
      const local = sockaddr(family, null, options.sourcePort);
      if (libc.symbols.bind(fd, local, local.length) !== 0) {
        throw new Error(`Cannot bind UDP source port ${options.sourcePort}: ${errnoName(errno())}`);
      }
    }
    const remote = sockaddr(family, addr, port);
    if (libc.symbols.connect(fd, remote, remote.length) !== 0) {
      const code = errno();
      return { kind: "error", errno: code, name: errnoName(code) };
    }
    const data = new TextEncoder().encode(options.payload);
    if (libc.symbols.send(fd, data, BigInt(data.length), 0) < 0) {
      const code = errno();
      return { kind: "error", errno: code, name: errnoName(code) };
    }
    const deadline = performance.now() + options.timeoutMs;
    const buf = new Uint8Array(512);
    while (true) {
      const left = Math.ceil(deadline - performance.now());
      if (left <= 0) return { kind: "timeout" };
      const pfd = new Uint8Array(8);
      const pview = new DataView(pfd.buffer);
      pview.setInt32(0, fd, true);
      pview.setInt16(4, POLLIN, true);
      const ready = await libc.symbols.poll(pfd, 1n, left);
      if (ready <= 0) continue;
      const revents = pview.getInt16(6, true);
      if (revents & POLLERR) {
        const code = socketError(fd);
        if (code !== 0) return { kind: "error", errno: code, name: errnoName(code) };
      }
      const n = Number(libc.symbols.recv(fd, buf, BigInt(buf.length), MSG_DONTWAIT));
      if (n >= 0) {
        return {
          kind: "reply",
          text: new TextDecoder().decode(buf.subarray(0, n)),
          localIP: localIPOf(fd, family),
        };
      }
      const code = errno();
      if (code !== EAGAIN) return { kind: "error", errno: code, name: errnoName(code) };
    }
  } finally {
    libc.symbols.close(fd);
  }
}
