/**
 * The packet `kproxy explain` reasons about: the first packet of a new connection (a TCP SYN,
 * or the first UDP/SCTP datagram of a flow), from a source address to a destination address and
 * port. Parsing of the `--to ADDR:PORT[/tcp|udp|sctp]` and `--from ADDR` texts lives here too.
 */
import { cidrContains, type IPFamily, parseCIDR, parseIP } from "../model/ip.ts";
import type { Protocol, ProxySnapshot } from "../snapshot/types.ts";

/** The first packet of a connection, in canonical form. */
export interface ExplainPacket {
  /** Transport protocol. */
  readonly protocol: Protocol;
  /** Source address (canonical). */
  readonly source: string;
  /** Destination address (canonical). */
  readonly destination: string;
  /** Destination port. */
  readonly port: number;
  /** The family of both addresses. */
  readonly family: IPFamily;
}

/** A destination parsed from `ADDR:PORT[/proto]`. */
export interface ExplainTarget {
  /** Canonical destination address. */
  readonly destination: string;
  /** Destination port. */
  readonly port: number;
  /** Protocol (default TCP). */
  readonly protocol: Protocol;
}

/** Bad `--to`/`--from` text: one line saying what is wrong. */
export class PacketSyntaxError extends Error {
  /** Makes the error. */
  constructor(message: string) {
    super(message);
    this.name = "PacketSyntaxError";
  }
}

const PROTOCOLS: Readonly<Record<string, Protocol>> = { tcp: "TCP", udp: "UDP", sctp: "SCTP" };

/** Options of {@link parseTarget}. */
export interface ParseTargetOptions {
  /** How errors name the text (default `--to`; the HTTP API says `to`). */
  readonly label?: string;
}

/**
 * Parses `ADDR:PORT[/tcp|udp|sctp]`; IPv6 addresses are written in brackets
 * (`[fd00::10]:80/udp`). The protocol defaults to TCP.
 */
export function parseTarget(text: string, options: ParseTargetOptions = {}): ExplainTarget {
  const label = options.label ?? "--to";
  const trimmed = text.trim();
  const slash = trimmed.lastIndexOf("/");
  let protocol: Protocol = "TCP";
  let hostPort = trimmed;
  if (slash >= 0) {
    const word = trimmed.slice(slash + 1).toLowerCase();
    const p = PROTOCOLS[word];
    if (p === undefined) {
      throw new PacketSyntaxError(
        `${label} ${JSON.stringify(text)}: the protocol must be tcp, udp or sctp, not ${
          JSON.stringify(word)
        }`,
      );
    }
    protocol = p;
    hostPort = trimmed.slice(0, slash);
  }
  let host: string;
  let portText: string;
  const bracket = /^\[([^\]]+)\]:([^:]*)$/.exec(hostPort);
  if (bracket !== null) {
    host = bracket[1] as string;
    portText = bracket[2] as string;
  } else {
    const colon = hostPort.lastIndexOf(":");
    if (colon < 0 || hostPort.indexOf(":") !== colon) {
      throw new PacketSyntaxError(
        `${label} ${JSON.stringify(text)} is not ADDR:PORT (write IPv6 as [ADDR]:PORT)`,
      );
    }
    host = hostPort.slice(0, colon);
    portText = hostPort.slice(colon + 1);
  }
  const ip = parseIP(host);
  if (ip === null) {
    throw new PacketSyntaxError(
      `${label} ${JSON.stringify(text)}: ${JSON.stringify(host)} is not an IP address`,
    );
  }
  const port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new PacketSyntaxError(
      `${label} ${JSON.stringify(text)}: the port must be a number from 1 to 65535, not ${
        JSON.stringify(portText)
      }`,
    );
  }
  return { destination: ip.text, port, protocol };
}

/** True for 127.0.0.0/8 and ::1, which are local on every node. */
export function isLoopback(ip: string): boolean {
  return ip === "::1" || ip.startsWith("127.");
}

/** The addresses explain treats as this node's own: given ones, or what the snapshot knows. */
export function nodeAddressesOf(
  snapshot: ProxySnapshot,
  given: readonly string[] | undefined,
): readonly string[] {
  const out = new Set<string>();
  for (const ip of snapshot.node.primaryIPs) out.add(ip);
  for (const ip of snapshot.node.nodePortIPs.IPv4 ?? []) out.add(ip);
  for (const ip of snapshot.node.nodePortIPs.IPv6 ?? []) out.add(ip);
  for (const raw of given ?? []) {
    const ip = parseIP(raw);
    if (ip !== null) out.add(ip.text);
  }
  return [...out];
}

/** True when `ip` is one of `addresses` or a loopback address. */
export function isNodeAddress(ip: string, addresses: readonly string[]): boolean {
  return isLoopback(ip) || addresses.includes(ip);
}

/** A test for an address or CIDR text as a rule writes it (`198.18.1.0/24`, `198.18.1.10`). */
export function addressMatcher(value: string): (ip: string) => boolean {
  if (value.includes("/")) return (ip) => inAnyCIDR(ip, [value]);
  return (ip) => ip === value;
}

/** True when `ip` lies in one of `cidrs` (canonical texts). */
export function inAnyCIDR(ip: string, cidrs: readonly string[]): boolean {
  const a = parseIP(ip);
  if (a === null) return false;
  return cidrs.some((c) => {
    const cidr = parseCIDR(c);
    return cidr !== null && cidrContains(cidr, a);
  });
}

/** Options of {@link packetOf}. */
export interface PacketOptions {
  /** The source address; default: this node's primary IP of the destination's family. */
  readonly from?: string | undefined;
  /** How errors name the source (default `--from`; the HTTP API says `from`). */
  readonly fromLabel?: string;
}

/**
 * The packet from a target and an optional source. Without one, the packet comes from this
 * node itself (its primary IP of the destination's family), as `curl` on the node would send it.
 */
export function packetOf(
  target: ExplainTarget,
  snapshot: ProxySnapshot,
  options: PacketOptions = {},
): ExplainPacket {
  const from = options.from;
  const fromLabel = options.fromLabel ?? "--from";
  const dst = parseIP(target.destination);
  if (dst === null) throw new PacketSyntaxError(`${target.destination} is not an IP address`);
  let source: string;
  if (from === undefined || from.trim() === "") {
    const primary = snapshot.node.primaryIPs.find((ip) => parseIP(ip)?.family === dst.family);
    source = primary ?? (dst.family === "IPv4" ? "127.0.0.1" : "::1");
  } else {
    const src = parseIP(from.trim());
    if (src === null) {
      throw new PacketSyntaxError(`${fromLabel} ${JSON.stringify(from)} is not an IP address`);
    }
    if (src.family !== dst.family) {
      throw new PacketSyntaxError(
        `${fromLabel} ${src.text} is ${src.family} but the destination ${dst.text} is ${dst.family}`,
      );
    }
    source = src.text;
  }
  return {
    protocol: target.protocol,
    source,
    destination: dst.text,
    port: target.port,
    family: dst.family,
  };
}

/** `ip:port`, with brackets for IPv6. */
export function hostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}
