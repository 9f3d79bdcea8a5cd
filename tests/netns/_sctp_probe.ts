/**
 * SCTP probes and an SCTP pod server over raw sockets (libc, Deno FFI), for kernels without
 * SCTP sockets: the prober sends an INIT and waits for the INIT ACK (whose cookie names the pod,
 * the client address it saw and the port), an ABORT (closed port: refused) or an ICMP error (a
 * connected raw socket reports it as its error); the server answers every INIT to one of its
 * ports with an INIT ACK, and to other ports with an ABORT, as a kernel with SCTP would.
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
  formatIP,
  libc,
  MSG_DONTWAIT,
  parseIP,
  POLLERR,
  pollIn,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  sockaddr,
  socketError,
} from "./_libc_sockets.ts";
import {
  IPPROTO_SCTP,
  parseSctp,
  sctpAbort,
  sctpInit,
  sctpInitAck,
  type SctpPacket,
} from "./_sctp_packet.ts";

const SOCK_RAW = 3;

/** What one SCTP probe saw. */
export type SctpProbeOutcome =
  | { readonly kind: "reply"; readonly text: string; readonly localIP: string }
  | { readonly kind: "error"; readonly name: string }
  | { readonly kind: "timeout" };

function rawSocket(family: number): number {
  const fd = libc.symbols.socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_SCTP);
  if (fd < 0) throw new Error(`Cannot open a raw SCTP socket: ${errnoName(errno())}`);
  return fd;
}

/** The SCTP part and the source address of a datagram a raw socket received. */
function received(
  family: number,
  data: Uint8Array,
  from: Uint8Array,
): { packet: SctpPacket; source: string } | null {
  let sctp = data;
  let source: string;
  if (family === AF_INET) {
    // IPv4 raw sockets deliver the IP header too.
    const ihl = ((data[0] ?? 0) & 0x0f) * 4;
    sctp = data.subarray(ihl);
    source = formatIP(data.subarray(12, 16));
  } else {
    source = formatIP(from.subarray(8, 24));
  }
  const packet = parseSctp(sctp);
  return packet === null ? null : { packet, source };
}

function receive(fd: number, family: number): { packet: SctpPacket; source: string } | null {
  const buf = new Uint8Array(2048);
  const from = new Uint8Array(28);
  const fromLen = new Uint32Array([from.length]);
  const n = Number(
    libc.symbols.recvfrom(
      fd,
      buf,
      BigInt(buf.length),
      MSG_DONTWAIT,
      from,
      new Uint8Array(fromLen.buffer),
    ),
  );
  if (n < 0) return null;
  return received(family, buf.subarray(0, n), from);
}

/** Source ports go round 32768-60999 from a random start: concurrent probes never share one. */
let nextSourcePort = 32768 + (crypto.getRandomValues(new Uint32Array(1))[0]! % 28232);
function sourcePortOfNextProbe(): number {
  const port = nextSourcePort;
  nextSourcePort = port >= 60999 ? 32768 : port + 1;
  return port;
}

function random32(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]! || 1;
}

/**
 * A real SCTP stack sends the INIT again when no INIT ACK came within its retransmission timeout,
 * as TCP does its SYN (after 1 s): a probe does the same, so one packet lost to a loaded machine
 * is not read as a drop, while a path that drops INITs drops every copy.
 */
export const SCTP_INIT_RETRANSMIT_MS = 1000;

/**
 * Sends an INIT to `ip:port` from a connected raw socket (again every
 * {@link SCTP_INIT_RETRANSMIT_MS}, same ports and tag) and waits up to `timeoutMs` for the INIT
 * ACK of this association (matched by ports and verification tag), an ABORT, or an error.
 */
export async function sctpProbe(
  ip: string,
  port: number,
  timeoutMs: number,
): Promise<SctpProbeOutcome> {
  const target = parseIP(ip);
  if (target === null) throw new Error(`Cannot probe ${ip}: not an IP address`);
  const fd = rawSocket(target.family);
  try {
    const remote = sockaddr(target.family, target.bytes, 0);
    if (libc.symbols.connect(fd, remote, remote.length) !== 0) {
      return { kind: "error", name: errnoName(errno()) };
    }
    const sourcePort = sourcePortOfNextProbe();
    const tag = random32();
    const init = sctpInit(sourcePort, port, tag);
    if (libc.symbols.send(fd, init, BigInt(init.length), 0) < 0) {
      return { kind: "error", name: errnoName(errno()) };
    }
    const deadline = performance.now() + timeoutMs;
    let retransmitAt = performance.now() + SCTP_INIT_RETRANSMIT_MS;
    while (true) {
      const now = performance.now();
      const left = deadline - now;
      if (left <= 0) return { kind: "timeout" };
      if (now >= retransmitAt) {
        libc.symbols.send(fd, init, BigInt(init.length), 0);
        retransmitAt = now + SCTP_INIT_RETRANSMIT_MS;
      }
      const revents = await pollIn(fd, Math.min(left, retransmitAt - now));
      if (revents === 0) continue;
      if (revents & POLLERR) {
        const code = socketError(fd);
        if (code !== 0) return { kind: "error", name: errnoName(code) };
      }
      for (let got = receive(fd, target.family); got !== null; got = receive(fd, target.family)) {
        const { packet } = got;
        if (
          packet.sourcePort !== port || packet.destinationPort !== sourcePort ||
          packet.verificationTag !== tag
        ) continue;
        if (packet.chunk === "ABORT") return { kind: "error", name: "ABORT" };
        if (packet.chunk === "INIT ACK") {
          const [pod = "", client = "", served = ""] = packet.cookie.split(" ");
          return {
            kind: "reply",
            text: `${pod} ${client} ${served}`,
            localIP: localAddressTowards(target.family, target.bytes),
          };
        }
      }
      const code = errno();
      if (code !== EAGAIN && code !== 0) return { kind: "error", name: errnoName(code) };
    }
  } finally {
    libc.symbols.close(fd);
  }
}

/** The source address this namespace uses towards `bytes` (a connected UDP socket's). */
function localAddressTowards(family: number, bytes: Uint8Array): string {
  const fd = libc.symbols.socket(family, 2 | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  try {
    const remote = sockaddr(family, bytes, 9);
    if (libc.symbols.connect(fd, remote, remote.length) !== 0) return "";
    const buf = new Uint8Array(28);
    const len = new Uint32Array([buf.length]);
    if (libc.symbols.getsockname(fd, buf, new Uint8Array(len.buffer)) !== 0) return "";
    return formatIP(family === AF_INET ? buf.subarray(4, 8) : buf.subarray(8, 24));
  } finally {
    libc.symbols.close(fd);
  }
}

/**
 * Serves SCTP on `ports` until the process ends: every INIT to one of them gets an INIT ACK
 * whose state cookie is `<name> <clientIP> <port>`; an INIT to any other port gets an ABORT.
 */
export function serveSctp(name: string, ports: readonly number[]): void {
  for (const family of [AF_INET, AF_INET6]) {
    const fd = rawSocket(family);
    (async () => {
      while (true) {
        await pollIn(fd, 60_000);
        for (let got = receive(fd, family); got !== null; got = receive(fd, family)) {
          const { packet, source } = got;
          if (packet.chunk !== "INIT" || !packet.checksumOk) continue;
          const reply = ports.includes(packet.destinationPort)
            ? sctpInitAck(packet, random32(), `${name} ${source} ${packet.destinationPort}`)
            : sctpAbort(packet);
          const bytes = parseIP(source)?.bytes ?? null;
          if (bytes === null) continue;
          const to = sockaddr(family, bytes, 0);
          libc.symbols.sendto(fd, reply, BigInt(reply.length), 0, to, to.length);
        }
      }
    })();
  }
}
