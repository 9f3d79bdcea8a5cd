/**
 * A UDP probe on a *connected* socket, through libc (Deno FFI): Deno's own UDP sockets are not
 * connected, so they never see the ICMP port unreachable that a REJECT rule sends back. A
 * connected socket does (`SO_ERROR` = ECONNREFUSED), which lets probes report "refused".
 *
 * Private to the netns harness; runs inside `_agent_main.ts`. Linux x86_64/aarch64 only.
 *
 * @module
 */
import {
  AF_INET,
  AF_INET6,
  EAGAIN,
  errno,
  errnoName,
  libc,
  localIPOf,
  MSG_DONTWAIT,
  parseIPv4,
  parseIPv6,
  POLLERR,
  POLLIN,
  SO_REUSEADDR,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  sockaddr,
  socketError,
  SOL_SOCKET,
} from "./_libc_sockets.ts";

/** What one UDP probe saw. */
export type UdpProbeOutcome =
  | { readonly kind: "reply"; readonly text: string; readonly localIP: string }
  | { readonly kind: "error"; readonly errno: number; readonly name: string }
  | { readonly kind: "timeout" };

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
