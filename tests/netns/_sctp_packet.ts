/**
 * Just enough SCTP (RFC 9260) for a probe without kernel SCTP sockets: an INIT, the INIT ACK a
 * pod answers with (its state cookie carries `<name> <clientIP> <port>`, as the TCP and UDP
 * servers' answer line), an ABORT for a closed port, and CRC32c. Pure.
 *
 * Conntrack and NAT handle these packets like a real association's first exchange, so kube-proxy
 * rules for SCTP services can be tested on kernels built without `CONFIG_IP_SCTP`.
 *
 * @module
 */

/** SCTP's IP protocol number. */
export const IPPROTO_SCTP = 132;

const CHUNK_INIT = 1;
const CHUNK_INIT_ACK = 2;
const CHUNK_ABORT = 6;
const PARAM_STATE_COOKIE = 7;

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

/** CRC32c (Castagnoli) of `bytes`. */
export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) crc = CRC32C_TABLE[(crc ^ b) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** One decoded SCTP packet: the common header and its first chunk. */
export interface SctpPacket {
  /** Source port. */
  readonly sourcePort: number;
  /** Destination port. */
  readonly destinationPort: number;
  /** Verification tag. */
  readonly verificationTag: number;
  /** First chunk's type. */
  readonly chunk: "INIT" | "INIT ACK" | "ABORT" | "other";
  /** INIT / INIT ACK: the sender's initiate tag. */
  readonly initiateTag: number;
  /** INIT ACK: the state cookie's text. */
  readonly cookie: string;
  /** True when the CRC32c checks out. */
  readonly checksumOk: boolean;
}

function withChecksum(packet: Uint8Array): Uint8Array {
  const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  view.setUint32(8, 0);
  // The CRC goes on the wire least significant byte first (Linux: cpu_to_le32).
  view.setUint32(8, crc32c(packet), true);
  return packet;
}

function header(sourcePort: number, destinationPort: number, tag: number, size: number) {
  const packet = new Uint8Array(12 + size);
  const view = new DataView(packet.buffer);
  view.setUint16(0, sourcePort);
  view.setUint16(2, destinationPort);
  view.setUint32(4, tag >>> 0);
  return { packet, view };
}

function initChunk(view: DataView, offset: number, type: number, length: number, tag: number) {
  view.setUint8(offset, type);
  view.setUint8(offset + 1, 0);
  view.setUint16(offset + 2, length);
  view.setUint32(offset + 4, tag >>> 0); // initiate tag
  view.setUint32(offset + 8, 65536); // a_rwnd
  view.setUint16(offset + 12, 1); // outbound streams
  view.setUint16(offset + 14, 1); // inbound streams
  view.setUint32(offset + 16, tag >>> 0); // initial TSN
}

/** An INIT from `sourcePort` to `destinationPort` with `initiateTag` (verification tag 0). */
export function sctpInit(sourcePort: number, destinationPort: number, initiateTag: number) {
  const { packet, view } = header(sourcePort, destinationPort, 0, 20);
  initChunk(view, 12, CHUNK_INIT, 20, initiateTag);
  return withChecksum(packet);
}

/** The INIT ACK answering `init`, with `cookie` as its state cookie. */
export function sctpInitAck(init: SctpPacket, initiateTag: number, cookie: string): Uint8Array {
  const text = new TextEncoder().encode(cookie);
  const paramLength = 4 + text.length;
  const padded = paramLength + ((4 - (paramLength % 4)) % 4);
  const { packet, view } = header(
    init.destinationPort,
    init.sourcePort,
    init.initiateTag,
    20 + padded,
  );
  initChunk(view, 12, CHUNK_INIT_ACK, 20 + paramLength, initiateTag);
  view.setUint16(32, PARAM_STATE_COOKIE);
  view.setUint16(34, paramLength);
  packet.set(text, 36);
  return withChecksum(packet);
}

/** The ABORT answering `init` (no listener on its port). */
export function sctpAbort(init: SctpPacket): Uint8Array {
  const { packet, view } = header(init.destinationPort, init.sourcePort, init.initiateTag, 4);
  view.setUint8(12, CHUNK_ABORT);
  view.setUint16(14, 4);
  return withChecksum(packet);
}

/** Decodes an SCTP packet (from its common header on), or null when it is too short. */
export function parseSctp(bytes: Uint8Array): SctpPacket | null {
  if (bytes.length < 16) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = view.getUint8(12);
  const chunkLength = view.getUint16(14);
  const stored = view.getUint32(8, true);
  const copy = bytes.slice();
  new DataView(copy.buffer).setUint32(8, 0);
  const chunk = type === CHUNK_INIT
    ? "INIT"
    : type === CHUNK_INIT_ACK
    ? "INIT ACK"
    : type === CHUNK_ABORT
    ? "ABORT"
    : "other";
  let initiateTag = 0;
  let cookie = "";
  if ((chunk === "INIT" || chunk === "INIT ACK") && bytes.length >= 32) {
    initiateTag = view.getUint32(16);
    for (let at = 32; at + 4 <= Math.min(bytes.length, 12 + chunkLength);) {
      const paramType = view.getUint16(at);
      const paramLength = view.getUint16(at + 2);
      if (paramLength < 4) break;
      if (paramType === PARAM_STATE_COOKIE) {
        cookie = new TextDecoder().decode(bytes.subarray(at + 4, at + paramLength));
      }
      at += paramLength + ((4 - (paramLength % 4)) % 4);
    }
  }
  return {
    sourcePort: view.getUint16(0),
    destinationPort: view.getUint16(2),
    verificationTag: view.getUint32(4),
    chunk,
    initiateTag,
    cookie,
    checksumOk: crc32c(copy) === stored,
  };
}
