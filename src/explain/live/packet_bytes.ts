/**
 * The bytes of the one packet `kproxy explain --live` sends: an IPv4 or IPv6 header and a TCP
 * SYN, a UDP datagram, or an SCTP INIT, with correct checksums (conntrack checks them, and a
 * packet with a bad one would be INVALID and take another way). Pure.
 *
 * @module
 */
import { parseIP } from "../../model/ip.ts";
import type { Protocol } from "../../snapshot/types.ts";

/** The packet to build. */
export interface ProbePacket {
  /** Protocol. */
  readonly protocol: Protocol;
  /** Source address. */
  readonly source: string;
  /** Destination address (same family). */
  readonly destination: string;
  /** Source port. */
  readonly sourcePort: number;
  /** Destination port. */
  readonly port: number;
  /** IPv4 identification / TCP sequence / SCTP tags seed (default 0x6b70: "kp"). */
  readonly id?: number;
}

const PROTO_NUMBER: Readonly<Record<Protocol, number>> = { TCP: 6, UDP: 17, SCTP: 132 };
/** What a UDP probe carries, so a capture can tell it. */
const UDP_PAYLOAD = new TextEncoder().encode("kproxy explain\n");

function addressBytes(text: string): Uint8Array {
  const ip = parseIP(text);
  if (ip === null) throw new Error(`Cannot build a packet: ${text} is not an IP address`);
  const n = ip.family === "IPv4" ? 4 : 16;
  const out = new Uint8Array(n);
  let v = ip.value;
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** The Internet checksum (RFC 1071) of the given byte runs, as one sum. */
export function internetChecksum(...parts: readonly Uint8Array[]): number {
  let sum = 0;
  let odd: number | null = null;
  for (const p of parts) {
    for (const byte of p) {
      if (odd === null) odd = byte;
      else {
        sum += (odd << 8) | byte;
        odd = null;
      }
    }
  }
  if (odd !== null) sum += odd << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

let crcTable: Uint32Array | null = null;

/** CRC-32C (Castagnoli), as SCTP's checksum. */
export function crc32c(bytes: Uint8Array): number {
  if (crcTable === null) {
    crcTable = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      crcTable[i] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const b of bytes) crc = (crcTable[(crc ^ b) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function transport(p: ProbePacket, id: number): Uint8Array {
  switch (p.protocol) {
    case "TCP": {
      const t = new Uint8Array(20);
      const v = new DataView(t.buffer);
      v.setUint16(0, p.sourcePort);
      v.setUint16(2, p.port);
      v.setUint32(4, (id * 0x10001) >>> 0); // sequence number
      t[12] = 5 << 4; // data offset: 20 bytes, no options
      t[13] = 0x02; // SYN
      v.setUint16(14, 64240); // window
      return t;
    }
    case "UDP": {
      const t = new Uint8Array(8 + UDP_PAYLOAD.length);
      const v = new DataView(t.buffer);
      v.setUint16(0, p.sourcePort);
      v.setUint16(2, p.port);
      v.setUint16(4, t.length);
      t.set(UDP_PAYLOAD, 8);
      return t;
    }
    case "SCTP": {
      // Common header (12) + INIT chunk (20): what a new association starts with.
      const t = new Uint8Array(32);
      const v = new DataView(t.buffer);
      v.setUint16(0, p.sourcePort);
      v.setUint16(2, p.port);
      v.setUint32(4, 0); // verification tag: 0 in an INIT
      t[12] = 1; // INIT
      v.setUint16(14, 20); // chunk length
      v.setUint32(16, (id * 0x10001) >>> 0 || 1); // initiate tag (never 0)
      v.setUint32(20, 65535); // a_rwnd
      v.setUint16(24, 1); // outbound streams
      v.setUint16(26, 1); // inbound streams
      v.setUint32(28, id >>> 0); // initial TSN
      v.setUint32(8, 0);
      // CRC32c is stored little-endian (RFC 9260 appendix A).
      v.setUint32(8, crc32c(t), true);
      return t;
    }
  }
}

/** The full packet: IP header and transport header (and a short payload for UDP). */
export function buildProbePacket(p: ProbePacket): Uint8Array {
  const src = addressBytes(p.source);
  const dst = addressBytes(p.destination);
  if (src.length !== dst.length) {
    throw new Error(`Cannot build a packet from ${p.source} to ${p.destination}: two families`);
  }
  const id = (p.id ?? 0x6b70) & 0xffff;
  const proto = PROTO_NUMBER[p.protocol];
  const l4 = transport(p, id);
  const l4View = new DataView(l4.buffer);
  const length = new Uint8Array(4);
  new DataView(length.buffer).setUint32(0, l4.length);
  if (src.length === 4) {
    const pseudo = new Uint8Array([0, proto, length[2] as number, length[3] as number]);
    if (p.protocol === "TCP") l4View.setUint16(16, internetChecksum(src, dst, pseudo, l4));
    if (p.protocol === "UDP") l4View.setUint16(6, internetChecksum(src, dst, pseudo, l4) || 0xffff);
    const ip = new Uint8Array(20);
    const v = new DataView(ip.buffer);
    ip[0] = 0x45;
    v.setUint16(2, 20 + l4.length);
    v.setUint16(4, id);
    v.setUint16(6, 0x4000); // don't fragment
    ip[8] = 64; // TTL
    ip[9] = proto;
    ip.set(src, 12);
    ip.set(dst, 16);
    v.setUint16(10, internetChecksum(ip));
    const out = new Uint8Array(20 + l4.length);
    out.set(ip);
    out.set(l4, 20);
    return out;
  }
  const pseudo = new Uint8Array([...length, 0, 0, 0, proto]);
  if (p.protocol === "TCP") l4View.setUint16(16, internetChecksum(src, dst, pseudo, l4));
  if (p.protocol === "UDP") l4View.setUint16(6, internetChecksum(src, dst, pseudo, l4) || 0xffff);
  const ip = new Uint8Array(40);
  const v = new DataView(ip.buffer);
  v.setUint32(0, 0x60000000);
  v.setUint16(4, l4.length);
  ip[6] = proto;
  ip[7] = 64; // hop limit
  ip.set(src, 8);
  ip.set(dst, 24);
  const out = new Uint8Array(40 + l4.length);
  out.set(ip);
  out.set(l4, 40);
  return out;
}
