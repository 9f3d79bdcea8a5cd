/**
 * IP address and CIDR parsing with canonical text forms.
 *
 * Every address that reaches a rule passes through {@link parseIP}, so rule text only ever holds
 * canonical addresses (`198.18.0.1`, `fd00::1`), never user-supplied spellings.
 */

/** The two IP families Kubernetes knows, in its own spelling. */
export type IPFamily = "IPv4" | "IPv6";

/** A parsed IP address: its family, canonical text and numeric value. */
export interface ParsedIP {
  /** The address family. */
  readonly family: IPFamily;
  /** Canonical text: dotted quad for IPv4, RFC 5952 for IPv6. */
  readonly text: string;
  /** The address as a number (32 or 128 bits). */
  readonly value: bigint;
}

/** A parsed CIDR: network address (host bits cleared) and prefix length. */
export interface ParsedCIDR {
  /** The address family. */
  readonly family: IPFamily;
  /** Canonical `network/prefix` text. */
  readonly text: string;
  /** The network address. */
  readonly network: ParsedIP;
  /** The prefix length. */
  readonly prefix: number;
}

const IPV4_OCTET = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;

function parseIPv4(text: string): bigint | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    if (!IPV4_OCTET.test(part)) return null;
    value = (value << 8n) | BigInt(Number(part));
  }
  return value;
}

function parseIPv6(text: string): bigint | null {
  if (text.length > 45 || !/^[0-9a-fA-F:.]+$/.test(text)) return null;
  let head = text;
  let tailV4: bigint | null = null;
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".")) {
    tailV4 = parseIPv4(text.slice(lastColon + 1));
    if (tailV4 === null) return null;
    head = text.slice(0, lastColon + 1) + "0:0";
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const toGroups = (s: string): string[] | null => {
    if (s === "") return [];
    const groups = s.split(":");
    return groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g)) ? groups : null;
  };
  const left = toGroups(halves[0] ?? "");
  const right = halves.length === 2 ? toGroups(halves[1] ?? "") : [];
  if (left === null || right === null) return null;
  let groups: string[];
  if (halves.length === 2) {
    const missing = 8 - left.length - right.length;
    if (missing < 1) return null;
    groups = [...left, ...Array<string>(missing).fill("0"), ...right];
  } else {
    groups = left;
  }
  if (groups.length !== 8) return null;
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(parseInt(g, 16));
  if (tailV4 !== null) value = (value & ~0xffffffffn) | tailV4;
  return value;
}

function formatIPv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join(".");
}

function formatIPv6(value: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (length >= 2) of zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(":");
  const left = hex.slice(0, bestStart).join(":");
  const right = hex.slice(bestStart + bestLen).join(":");
  return `${left}::${right}`;
}

/** Parses an IPv4 or IPv6 address; returns null when `text` is not exactly one address. */
export function parseIP(text: string): ParsedIP | null {
  if (typeof text !== "string") return null;
  if (text.includes(":")) {
    const value = parseIPv6(text);
    return value === null
      ? null
      : { family: "IPv6", text: sameText(text, formatIPv6(value)), value };
  }
  const value = parseIPv4(text);
  return value === null ? null : { family: "IPv4", text: sameText(text, formatIPv4(value)), value };
}

/** `canonical`, as the `input` string itself when they are equal (one copy in memory, not two). */
function sameText(input: string, canonical: string): string {
  return input === canonical ? input : canonical;
}

/** Parses `network/prefix`; host bits are cleared in the canonical form. */
export function parseCIDR(text: string): ParsedCIDR | null {
  if (typeof text !== "string") return null;
  const slash = text.indexOf("/");
  if (slash < 0) return null;
  const ip = parseIP(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (ip === null || !/^[0-9]{1,3}$/.test(prefixText)) return null;
  const prefix = Number(prefixText);
  const bits = ip.family === "IPv4" ? 32 : 128;
  if (prefix > bits) return null;
  const hostBits = BigInt(bits - prefix);
  const value = (ip.value >> hostBits) << hostBits;
  const network: ParsedIP = {
    family: ip.family,
    value,
    text: ip.family === "IPv4" ? formatIPv4(value) : formatIPv6(value),
  };
  return { family: ip.family, network, prefix, text: `${network.text}/${prefix}` };
}

/** Canonical text of an IP address, or null when it is not one. */
export function canonicalIP(text: string): string | null {
  return parseIP(text)?.text ?? null;
}

/** The family of an address or CIDR text, or null when it is neither. */
export function familyOf(text: string): IPFamily | null {
  return (text.includes("/") ? parseCIDR(text) : parseIP(text))?.family ?? null;
}

/** True when `ip` lies inside `cidr` (both parsed, same family). */
export function cidrContains(cidr: ParsedCIDR, ip: ParsedIP): boolean {
  if (cidr.family !== ip.family) return false;
  const bits = BigInt((ip.family === "IPv4" ? 32 : 128) - cidr.prefix);
  return (ip.value >> bits) === (cidr.network.value >> bits);
}

/** Compares two canonical addresses numerically (IPv4 before IPv6). */
export function compareIPs(a: string, b: string): number {
  const pa = parseIP(a);
  const pb = parseIP(b);
  if (pa === null || pb === null) return a < b ? -1 : a > b ? 1 : 0;
  if (pa.family !== pb.family) return pa.family === "IPv4" ? -1 : 1;
  return pa.value < pb.value ? -1 : pa.value > pb.value ? 1 : 0;
}
