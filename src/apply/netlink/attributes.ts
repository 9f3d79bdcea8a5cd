/**
 * Netlink attributes (TLVs): typed values and their encoding, the way libmnl lays them out.
 *
 * An attribute is `u16 length · u16 type · payload`, padded to 4 bytes; a nested attribute's
 * payload is more attributes and its type carries `NLA_F_NESTED`. nf_tables integers are in
 * network byte order. Pure: values in, bytes out.
 *
 * @module
 */

/** `NLA_F_NESTED`: the attribute holds attributes. */
export const NLA_F_NESTED = 0x8000;
/** `NLA_F_NET_BYTEORDER`. */
export const NLA_F_NET_BYTEORDER = 0x4000;
/** The bits of an attribute's type that are its number. */
export const NLA_TYPE_MASK = 0x3fff;

/** One attribute: raw bytes or nested attributes. */
export type NetlinkAttribute =
  | { readonly type: number; readonly bytes: Uint8Array }
  | { readonly type: number; readonly nested: readonly NetlinkAttribute[] };

/** Rounds `n` up to a multiple of 4 (`NLA_ALIGN`). */
export function align4(n: number): number {
  return (n + 3) & ~3;
}

const encoder = new TextEncoder();

/** A NUL-terminated string attribute. */
export function stringAttr(type: number, value: string): NetlinkAttribute {
  const text = encoder.encode(value);
  const bytes = new Uint8Array(text.length + 1);
  bytes.set(text);
  return { type, bytes };
}

/** A big-endian u32 attribute. */
export function u32Attr(type: number, value: number): NetlinkAttribute {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, value >>> 0, false);
  return { type, bytes };
}

/** A big-endian u64 attribute. */
export function u64Attr(type: number, value: bigint): NetlinkAttribute {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, value, false);
  return { type, bytes };
}

/** A big-endian u16 attribute. */
export function u16Attr(type: number, value: number): NetlinkAttribute {
  const bytes = new Uint8Array(2);
  new DataView(bytes.buffer).setUint16(0, value, false);
  return { type, bytes };
}

/** A one-byte attribute. */
export function u8Attr(type: number, value: number): NetlinkAttribute {
  return { type, bytes: Uint8Array.of(value) };
}

/** An attribute holding `bytes` as they are. */
export function bytesAttr(type: number, bytes: Uint8Array): NetlinkAttribute {
  return { type, bytes };
}

/** A nested attribute. */
export function nestAttr(type: number, nested: readonly NetlinkAttribute[]): NetlinkAttribute {
  return { type, nested };
}

/** The encoded size of attributes, padding included. */
export function attributesSize(attrs: readonly NetlinkAttribute[]): number {
  let n = 0;
  for (const a of attrs) {
    n += align4(4 + ("bytes" in a ? a.bytes.length : attributesSize(a.nested)));
  }
  return n;
}

/** Writes attributes into `view` at `offset`; returns the offset after them. */
export function writeAttributes(
  view: DataView,
  offset: number,
  attrs: readonly NetlinkAttribute[],
): number {
  const out = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  let at = offset;
  for (const a of attrs) {
    if ("bytes" in a) {
      view.setUint16(at, 4 + a.bytes.length, true);
      view.setUint16(at + 2, a.type, true);
      out.set(a.bytes, at + 4);
      at += align4(4 + a.bytes.length);
    } else {
      const end = writeAttributes(view, at + 4, a.nested);
      view.setUint16(at, end - at, true);
      view.setUint16(at + 2, a.type | NLA_F_NESTED, true);
      at = end;
    }
  }
  return at;
}

/** Attributes as bytes (for tests and single messages). */
export function encodeAttributes(attrs: readonly NetlinkAttribute[]): Uint8Array {
  const out = new Uint8Array(attributesSize(attrs));
  writeAttributes(new DataView(out.buffer), 0, attrs);
  return out;
}

/** One attribute read back: its number (flags masked off), flags, and payload. */
export interface ParsedAttribute {
  /** Type number without `NLA_F_*` flags. */
  readonly type: number;
  /** True when the type carried `NLA_F_NESTED`. */
  readonly nested: boolean;
  /** The payload (without padding). */
  readonly payload: Uint8Array;
}

/** Splits a run of attributes (pure; stops at the first malformed one). */
export function parseAttributes(bytes: Uint8Array): ParsedAttribute[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: ParsedAttribute[] = [];
  for (let at = 0; at + 4 <= bytes.length;) {
    const length = view.getUint16(at, true);
    const type = view.getUint16(at + 2, true);
    if (length < 4 || at + length > bytes.length) break;
    out.push({
      type: type & NLA_TYPE_MASK,
      nested: (type & NLA_F_NESTED) !== 0,
      payload: bytes.subarray(at + 4, at + length),
    });
    at += align4(length);
  }
  return out;
}
