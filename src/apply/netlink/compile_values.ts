/**
 * nft's data types as the netlink room needs them: a set declaration (`type ipv4_addr . inet_proto
 * . inet_service : verdict; flags dynamic,timeout; timeout 600s;`) read into typed fields, and
 * element keys and data (`198.19.0.10 . tcp . 80`, `goto service-…`) encoded the way nft encodes
 * them. Pure. Text outside kproxy's vocabulary throws {@link UnsupportedNftText}, so callers can
 * fall back to `nft -f`.
 *
 * @module
 */
import { parseCIDR, parseIP } from "../../model/ip.ts";
import { VERDICT, type Verdict } from "./expressions.ts";
import { BYTEORDER } from "./set.ts";

/** Text the netlink compiler does not speak (the caller then uses `nft -f`). */
export class UnsupportedNftText extends Error {
  /** Makes the error for `what`. */
  constructor(what: string) {
    super(`The netlink compiler does not handle ${what}`);
    this.name = "UnsupportedNftText";
  }
}

/** One nft data type. */
export interface FieldType {
  /** nft's name (`ipv4_addr`). */
  readonly name: string;
  /** nft's datatype id (`enum datatypes`). */
  readonly id: number;
  /** Length in bytes. */
  readonly len: number;
  /** Byte order of its values. */
  readonly byteorder: number;
}

/** The data types kproxy's tables use. */
export const FIELD_TYPES: Readonly<Record<string, FieldType>> = Object.freeze({
  ipv4_addr: { name: "ipv4_addr", id: 7, len: 4, byteorder: BYTEORDER.BIG_ENDIAN },
  ipv6_addr: { name: "ipv6_addr", id: 8, len: 16, byteorder: BYTEORDER.BIG_ENDIAN },
  inet_proto: { name: "inet_proto", id: 12, len: 1, byteorder: BYTEORDER.BIG_ENDIAN },
  inet_service: { name: "inet_service", id: 13, len: 2, byteorder: BYTEORDER.BIG_ENDIAN },
  mark: { name: "mark", id: 19, len: 4, byteorder: BYTEORDER.HOST },
});

/** The integer type of `numgen` (a host-endian u32). */
export const INTEGER32: FieldType = Object.freeze({
  name: "integer",
  id: 4,
  len: 4,
  byteorder: BYTEORDER.HOST,
});

/** The kernel's datatype of verdict data (`NFT_DATA_VERDICT`). */
export const VERDICT_DATATYPE = 0xffffff00;

/** A set or map declaration, read. */
export interface SetType {
  /** Key fields (more than one: a concatenation). */
  readonly key: readonly FieldType[];
  /** Data fields of a data map, `verdict` for a verdict map, null for a set. */
  readonly data: readonly FieldType[] | "verdict" | null;
  /** `flags interval`. */
  readonly interval: boolean;
  /** `flags timeout`. */
  readonly timeout: boolean;
  /** `flags dynamic`. */
  readonly dynamic: boolean;
  /** `timeout Ns`, in seconds. */
  readonly timeoutSeconds: number | null;
}

/** The data type of a `typeof` expression kproxy declares maps with. */
function typeofField(expr: string): FieldType {
  const e = expr.trim();
  if (/^ip [sd]addr$/.test(e)) return FIELD_TYPES.ipv4_addr as FieldType;
  if (/^ip6 [sd]addr$/.test(e)) return FIELD_TYPES.ipv6_addr as FieldType;
  if (e === "meta l4proto") return FIELD_TYPES.inet_proto as FieldType;
  if (e === "th dport") return FIELD_TYPES.inet_service as FieldType;
  if (/^numgen random mod \d+$/.test(e)) return INTEGER32;
  throw new UnsupportedNftText(`the typeof expression "${e}"`);
}

function fieldsOf(text: string): FieldType[] {
  return text.split(".").map((part) => {
    const t = FIELD_TYPES[part.trim()];
    if (t === undefined) throw new UnsupportedNftText(`the data type "${part.trim()}"`);
    return t;
  });
}

/** Reads a set or map declaration body (pure). */
export function parseSetDeclaration(declaration: string): SetType {
  let key: FieldType[] | null = null;
  let data: FieldType[] | "verdict" | null = null;
  let interval = false;
  let timeout = false;
  let dynamic = false;
  let timeoutSeconds: number | null = null;
  for (const raw of declaration.split(";")) {
    const part = raw.trim();
    if (part === "") continue;
    let m: RegExpExecArray | null;
    if ((m = /^type (.+?)(?: : (.+))?$/.exec(part)) !== null) {
      key = fieldsOf(m[1] as string);
      if (m[2] !== undefined) data = m[2].trim() === "verdict" ? "verdict" : fieldsOf(m[2]);
    } else if ((m = /^typeof (.+?)(?: : (.+))?$/.exec(part)) !== null) {
      key = (m[1] as string).split(" . ").map(typeofField);
      if (m[2] !== undefined) data = m[2].split(" . ").map(typeofField);
    } else if ((m = /^flags ([a-z,]+)$/.exec(part)) !== null) {
      for (const f of (m[1] as string).split(",")) {
        if (f === "interval") interval = true;
        else if (f === "timeout") timeout = true;
        else if (f === "dynamic") dynamic = true;
        else throw new UnsupportedNftText(`the set flag "${f}"`);
      }
    } else if ((m = /^timeout (\d+)s$/.exec(part)) !== null) {
      timeoutSeconds = Number(m[1]);
    } else {
      throw new UnsupportedNftText(`the set declaration "${part}"`);
    }
  }
  if (key === null) throw new UnsupportedNftText(`a set declaration without a type`);
  return { key, data, interval, timeout, dynamic, timeoutSeconds };
}

/** The kernel's datatype id of a (concatenated) type: 6 bits per field, first field highest. */
export function concatTypeId(fields: readonly FieldType[]): number {
  let id = 0;
  for (const f of fields) id = id * 64 + f.id;
  return id;
}

/** The length of a key or data made of `fields`: a lone field as is, concatenated ones padded. */
export function fieldsLength(fields: readonly FieldType[]): number {
  if (fields.length === 1) return (fields[0] as FieldType).len;
  return fields.reduce((n, f) => n + ((f.len + 3) & ~3), 0);
}

const PROTOCOLS: Readonly<Record<string, number>> = Object.freeze({ tcp: 6, udp: 17, sctp: 132 });

/** The IP protocol number of `tcp`, `udp` or `sctp`. */
export function protocolNumber(name: string): number {
  const n = PROTOCOLS[name];
  if (n === undefined) throw new UnsupportedNftText(`the protocol "${name}"`);
  return n;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Network-order bytes of an address of `len` bytes (4 or 16). */
export function addressBytes(text: string, len: number): Uint8Array {
  if (len === 4) {
    // The common case, thousands of times for a big service: no BigInt on the way.
    const m = IPV4.exec(text);
    if (m !== null) {
      const out = Uint8Array.of(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]));
      if (out.every((b, i) => b === Number(m[i + 1]) && !/^0\d/.test(m[i + 1] as string))) {
        return out;
      }
    }
  }
  const ip = parseIP(text);
  if (ip === null || (ip.family === "IPv4" ? 4 : 16) !== len) {
    throw new UnsupportedNftText(`the address "${text}"`);
  }
  return bigintBytes(ip.value, len);
}

/** `value` as `len` big-endian bytes. */
export function bigintBytes(value: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  let v = value;
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** A CIDR's network bytes and prefix length, or null when `text` is no CIDR. */
export function cidrParts(text: string): { bytes: Uint8Array; prefix: number } | null {
  if (!text.includes("/")) return null;
  const c = parseCIDR(text);
  if (c === null) throw new UnsupportedNftText(`the prefix "${text}"`);
  return { bytes: bigintBytes(c.network.value, c.family === "IPv4" ? 4 : 16), prefix: c.prefix };
}

/** One value of field type `t` from its text (pure). */
export function encodeField(t: FieldType, text: string): Uint8Array {
  switch (t.name) {
    case "ipv4_addr":
    case "ipv6_addr":
      return addressBytes(text, t.len);
    case "inet_proto":
      return Uint8Array.of(/^\d+$/.test(text) ? Number(text) : protocolNumber(text));
    case "inet_service": {
      const port = Number(text);
      if (!/^\d+$/.test(text) || port > 65535) throw new UnsupportedNftText(`the port "${text}"`);
      return Uint8Array.of(port >> 8, port & 0xff);
    }
    case "mark":
    case "integer": {
      if (!/^(\d+|0x[0-9a-f]+)$/.test(text)) throw new UnsupportedNftText(`the integer "${text}"`);
      const out = new Uint8Array(4);
      new DataView(out.buffer).setUint32(0, Number(text), true);
      return out;
    }
  }
  throw new UnsupportedNftText(`values of type ${t.name}`);
}

/** A key or data `a . b . c` of `fields`, concatenated and padded as the kernel wants it. */
export function encodeFields(fields: readonly FieldType[], text: string): Uint8Array {
  const parts = text.split(" . ").map((p) => p.trim());
  if (parts.length !== fields.length) {
    throw new UnsupportedNftText(`"${text}" as ${fields.map((f) => f.name).join(" . ")}`);
  }
  if (fields.length === 1) return encodeField(fields[0] as FieldType, parts[0] as string);
  const out = new Uint8Array(fieldsLength(fields));
  let at = 0;
  fields.forEach((f, i) => {
    out.set(encodeField(f, parts[i] as string), at);
    at += (f.len + 3) & ~3;
  });
  return out;
}

/** A verdict from its text: `drop`, `accept`, `return`, `jump C`, `goto C`. */
export function parseVerdict(text: string): Verdict {
  const [word, chain, extra] = text.trim().split(/\s+/);
  if (extra !== undefined) throw new UnsupportedNftText(`the verdict "${text}"`);
  switch (word) {
    case "drop":
    case "accept":
    case "return":
      if (chain !== undefined) break;
      return {
        code: word === "drop" ? VERDICT.DROP : word === "accept" ? VERDICT.ACCEPT : VERDICT.RETURN,
      };
    case "jump":
    case "goto":
      if (chain === undefined) break;
      return { code: word === "jump" ? VERDICT.JUMP : VERDICT.GOTO, chain };
  }
  throw new UnsupportedNftText(`the verdict "${text}"`);
}
