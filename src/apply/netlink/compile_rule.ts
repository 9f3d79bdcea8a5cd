/**
 * One nft rule, as kproxy's renderer writes it, compiled to nf_tables expressions exactly as nft
 * 1.0.x compiles it (register choice, shortened prefix loads, the `meta l4proto` dependency of a
 * port match), so that `nft list` reads back the same rule. Pure.
 *
 * The vocabulary is the renderer's, no more: address, prefix and set matches on `ip[6] saddr|daddr`,
 * `tcp|udp|sctp dport`, `meta l4proto`, `numgen random mod N V`, `fib saddr type local`,
 * `update @set { ip saddr }`, `iifname [!=] "name"` / `"prefix*"`, `dnat to A:P`, `dnat ip addr . port to numgen random mod N map {…}`
 * and the verdicts. Anything else throws {@link UnsupportedNftText}.
 *
 * @module
 */
import {
  addressBytes,
  bigintBytes,
  cidrParts,
  concatTypeId,
  encodeFields,
  FIELD_TYPES,
  INTEGER32,
  protocolNumber,
  UnsupportedNftText,
} from "./compile_values.ts";
import {
  CMP_OP,
  DYNSET_OP,
  type Expression,
  FIB_FLAG,
  FIB_RESULT,
  META_KEY,
  NAT_RANGE,
  NAT_TYPE,
  NUMGEN_TYPE,
  PAYLOAD_BASE,
  VERDICT,
} from "./expressions.ts";
import type { SetElement } from "./element.ts";
import { BYTEORDER, SET_FLAG, type SetDefinition, setUserdata } from "./set.ts";
import { NFPROTO } from "./message.ts";

/** An anonymous set a rule brings with it (created and filled in the same batch). */
export interface AnonymousSet {
  /** The set. */
  readonly definition: SetDefinition;
  /** Its elements. */
  readonly elements: readonly SetElement[];
}

/** A compiled rule. */
export interface CompiledRule {
  /** The expressions, in order. */
  readonly expressions: readonly Expression[];
  /** Anonymous sets to create before the rule. */
  readonly anonymousSets: readonly AnonymousSet[];
}

/** What a rule is compiled for. */
export interface RuleContext {
  /** Table family. */
  readonly family: "ip" | "ip6";
  /** Table name (for anonymous sets). */
  readonly table: string;
  /** A fresh transaction-local set id. */
  readonly nextSetId: () => number;
}

const REG_1 = 1;
const REG_2 = 2;
const REG32_01 = 9;
const RTN_LOCAL = 2;

/** Splits rule text into words, with `{ } , :` as words of their own (but not inside `[v6]:p`). */
export function tokenize(text: string): string[] {
  const out: string[] = [];
  for (const word of text.trim().split(/\s+/)) {
    if (word === "") continue;
    let rest = word;
    while (rest !== "") {
      const m = /^([{},]|:(?!\d))/.exec(rest);
      if (m !== null) {
        out.push(m[1] as string);
        rest = rest.slice(1);
        continue;
      }
      const end = rest.search(/[{},]/);
      if (end < 0) {
        out.push(rest);
        rest = "";
      } else {
        out.push(rest.slice(0, end));
        rest = rest.slice(end);
      }
    }
  }
  return out;
}

function u32Host(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n, true);
  return out;
}

/** Compiles one rule (pure). */
export function compileRule(text: string, ctx: RuleContext): CompiledRule {
  // A numgen map with thousands of elements: split its body at once (the general tokenizer
  // walks it word by word); the words before it go the usual way, with a one-element stand-in.
  const mapAt = text.indexOf(" map { ");
  if (mapAt >= 0 && text.endsWith(" }")) {
    const standIn = ctx.family === "ip6" ? "0 : 0::1 . 0" : "0 : 0.0.0.0 . 0";
    const head = compileWords(tokenize(`${text.slice(0, mapAt)} map { ${standIn} }`), text, ctx);
    return withMapElements(head, text.slice(mapAt + 7, -2), ctx);
  }
  return compileWords(tokenize(text), text, ctx);
}

function compileWords(words: readonly string[], text: string, ctx: RuleContext): CompiledRule {
  const v6 = ctx.family === "ip6";
  const addrLen = v6 ? 16 : 4;
  const nfproto = v6 ? NFPROTO.IPV6 : NFPROTO.IPV4;
  const exprs: Expression[] = [];
  const anonymousSets: AnonymousSet[] = [];
  let l4proto: number | null = null;
  let i = 0;
  const peek = (k = 0) => words[i + k];
  const take = (what: string): string => {
    const w = words[i++];
    if (w === undefined) throw new UnsupportedNftText(`"${text}" (expected ${what})`);
    return w;
  };
  const expect = (word: string) => {
    const w = take(`"${word}"`);
    if (w !== word) throw new UnsupportedNftText(`"${text}" (expected "${word}", got "${w}")`);
  };
  const addressLoad = (field: "saddr" | "daddr", len: number) => {
    const offset = field === "saddr" ? (v6 ? 8 : 12) : (v6 ? 24 : 16);
    exprs.push({ kind: "payload", dreg: REG_1, base: PAYLOAD_BASE.NETWORK, offset, len });
  };
  const l4Dependency = (proto: number) => {
    if (l4proto === proto) return;
    if (l4proto !== null) throw new UnsupportedNftText(`"${text}" (two protocols)`);
    exprs.push({ kind: "meta", key: META_KEY.L4PROTO, dreg: REG_1 });
    exprs.push({ kind: "cmp", sreg: REG_1, op: CMP_OP.EQ, data: Uint8Array.of(proto) });
    l4proto = proto;
  };
  const verdictWords = new Set(["jump", "goto", "return", "drop", "accept"]);

  while (i < words.length) {
    const w = take("a statement");
    if (w === "ip" || w === "ip6") {
      if ((w === "ip6") !== v6) throw new UnsupportedNftText(`"${text}" in an ${ctx.family} table`);
      const field = take("saddr or daddr");
      if (field !== "saddr" && field !== "daddr") {
        if (field === "addr" || field === "to") throw new UnsupportedNftText(`"${text}"`);
        throw new UnsupportedNftText(`"${w} ${field}" in "${text}"`);
      }
      let op: number = CMP_OP.EQ;
      if (peek() === "!=") {
        op = CMP_OP.NEQ;
        i++;
      }
      const value = take("a value");
      if (value.startsWith("@")) {
        addressLoad(field, addrLen);
        exprs.push({
          kind: "lookup",
          set: value.slice(1),
          sreg: REG_1,
          ...(op === CMP_OP.NEQ ? { inverted: true } : {}),
        });
        continue;
      }
      const prefix = cidrParts(value);
      if (prefix === null || prefix.prefix === addrLen * 8) {
        addressLoad(field, addrLen);
        const bytes = prefix === null ? addressBytes(value, addrLen) : prefix.bytes;
        exprs.push({ kind: "cmp", sreg: REG_1, op, data: bytes });
      } else if (prefix.prefix % 8 === 0) {
        // A byte-aligned prefix: load only its bytes.
        const n = prefix.prefix / 8;
        if (n === 0) throw new UnsupportedNftText(`the prefix "${value}"`);
        addressLoad(field, n);
        exprs.push({ kind: "cmp", sreg: REG_1, op, data: prefix.bytes.slice(0, n) });
      } else {
        addressLoad(field, addrLen);
        const mask = bigintBytes(
          ((1n << BigInt(prefix.prefix)) - 1n) << BigInt(addrLen * 8 - prefix.prefix),
          addrLen,
        );
        exprs.push({
          kind: "bitwise",
          sreg: REG_1,
          dreg: REG_1,
          mask,
          xor: new Uint8Array(addrLen),
        });
        exprs.push({ kind: "cmp", sreg: REG_1, op, data: prefix.bytes });
      }
    } else if (w === "tcp" || w === "udp" || w === "sctp") {
      expect("dport");
      const port = Number(take("a port"));
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        throw new UnsupportedNftText(`"${text}" (port)`);
      }
      l4Dependency(protocolNumber(w));
      exprs.push({
        kind: "payload",
        dreg: REG_1,
        base: PAYLOAD_BASE.TRANSPORT,
        offset: 2,
        len: 2,
      });
      exprs.push({
        kind: "cmp",
        sreg: REG_1,
        op: CMP_OP.EQ,
        data: Uint8Array.of(port >> 8, port & 0xff),
      });
    } else if (w === "iifname") {
      // `iifname [!=] "br0"` compares the whole 16-byte name; `"veth*"` only the prefix.
      let op: number = CMP_OP.EQ;
      if (peek() === "!=") {
        op = CMP_OP.NEQ;
        i++;
      }
      const quoted = take("an interface name");
      const m = /^"([^"*]{1,15})(\*?)"$/.exec(quoted);
      if (m === null) throw new UnsupportedNftText(`the interface name ${quoted}`);
      const name = new TextEncoder().encode(m[1] as string);
      const data = m[2] === "*" ? name : new Uint8Array(16);
      if (m[2] !== "*") data.set(name);
      exprs.push({ kind: "meta", key: META_KEY.IIFNAME, dreg: REG_1 });
      exprs.push({ kind: "cmp", sreg: REG_1, op, data });
    } else if (w === "meta") {
      expect("l4proto");
      const proto = protocolNumber(take("a protocol"));
      exprs.push({ kind: "meta", key: META_KEY.L4PROTO, dreg: REG_1 });
      exprs.push({ kind: "cmp", sreg: REG_1, op: CMP_OP.EQ, data: Uint8Array.of(proto) });
      l4proto = proto;
    } else if (w === "numgen") {
      expect("random");
      expect("mod");
      const modulus = Number(take("a modulus"));
      const value = Number(take("a value"));
      if (!(modulus >= 1) || !Number.isInteger(value) || value < 0) {
        throw new UnsupportedNftText(`"${text}" (numgen)`);
      }
      exprs.push({ kind: "numgen", dreg: REG_1, modulus, type: NUMGEN_TYPE.RANDOM, offset: 0 });
      exprs.push({ kind: "cmp", sreg: REG_1, op: CMP_OP.EQ, data: u32Host(value) });
    } else if (w === "fib") {
      expect("saddr");
      expect("type");
      expect("local");
      exprs.push({
        kind: "fib",
        dreg: REG_1,
        result: FIB_RESULT.ADDRTYPE,
        flags: FIB_FLAG.SADDR,
      });
      exprs.push({ kind: "cmp", sreg: REG_1, op: CMP_OP.EQ, data: u32Host(RTN_LOCAL) });
    } else if (w === "update") {
      const set = take("a set");
      if (!set.startsWith("@")) throw new UnsupportedNftText(`"${text}" (update)`);
      expect("{");
      expect(ctx.family);
      expect("saddr");
      expect("}");
      addressLoad("saddr", addrLen);
      exprs.push({ kind: "dynset", set: set.slice(1), op: DYNSET_OP.UPDATE, sregKey: REG_1 });
    } else if (w === "dnat") {
      compileDnat();
    } else if (verdictWords.has(w)) {
      if (w === "jump" || w === "goto") {
        const chain = take("a chain");
        exprs.push({
          kind: "verdict",
          verdict: { code: w === "jump" ? VERDICT.JUMP : VERDICT.GOTO, chain },
        });
      } else {
        const code = w === "drop" ? VERDICT.DROP : w === "accept" ? VERDICT.ACCEPT : VERDICT.RETURN;
        exprs.push({ kind: "verdict", verdict: { code } });
      }
      if (i < words.length) throw new UnsupportedNftText(`"${text}" (words after the verdict)`);
    } else {
      throw new UnsupportedNftText(`"${w}" in "${text}"`);
    }
  }
  return { expressions: exprs, anonymousSets };

  function compileDnat(): void {
    if (peek() === "to") {
      i++;
      const target = take("a target");
      const m = v6 ? /^\[([0-9a-f:.]+)\]:(\d+)$/.exec(target) : /^([0-9.]+):(\d+)$/.exec(target);
      if (m === null) throw new UnsupportedNftText(`the dnat target "${target}"`);
      const port = Number(m[2]);
      exprs.push({ kind: "immediate", dreg: REG_1, data: addressBytes(m[1] as string, addrLen) });
      exprs.push({ kind: "immediate", dreg: REG_2, data: Uint8Array.of(port >> 8, port & 0xff) });
      exprs.push({
        kind: "nat",
        type: NAT_TYPE.DNAT,
        family: nfproto,
        regAddrMin: REG_1,
        regProtoMin: REG_2,
        flags: NAT_RANGE.PROTO_SPECIFIED,
      });
      return;
    }
    // dnat ip addr . port to numgen random mod N map { 0 : A . P, … }
    expect(ctx.family);
    expect("addr");
    expect(".");
    expect("port");
    expect("to");
    expect("numgen");
    expect("random");
    expect("mod");
    const modulus = Number(take("a modulus"));
    expect("map");
    expect("{");
    const addr = v6 ? FIELD_TYPES.ipv6_addr! : FIELD_TYPES.ipv4_addr!;
    const service = FIELD_TYPES.inet_service!;
    const elements: SetElement[] = [];
    for (;;) {
      const key = take("a key");
      expect(":");
      const value: string[] = [take("an address")];
      while (peek() === ".") {
        i++;
        value.push(take("a port"));
      }
      elements.push({
        key: encodeFields([INTEGER32], key),
        data: encodeFields([addr, service], value.join(" . ")),
      });
      const sep = take("',' or '}'");
      if (sep === "}") break;
      if (sep !== ",") throw new UnsupportedNftText(`"${text}" (map elements)`);
    }
    if (!(modulus >= 1)) throw new UnsupportedNftText(`"${text}" (numgen modulus)`);
    const id = ctx.nextSetId();
    const definition: SetDefinition = {
      family: nfproto,
      table: ctx.table,
      name: "__map%d",
      flags: SET_FLAG.ANONYMOUS | SET_FLAG.CONSTANT | SET_FLAG.MAP,
      keyType: INTEGER32.id,
      keyLen: INTEGER32.len,
      dataType: concatTypeId([addr, service]),
      dataLen: ((addr.len + 3) & ~3) + 4,
      id,
      size: elements.length,
      userdata: setUserdata({
        keyByteorder: BYTEORDER.HOST,
        dataByteorder: BYTEORDER.INVALID,
        dataInterval: false,
      }),
    };
    anonymousSets.push({ definition, elements });
    exprs.push({ kind: "numgen", dreg: REG_1, modulus, type: NUMGEN_TYPE.RANDOM, offset: 0 });
    exprs.push({ kind: "lookup", set: "__map%d", sreg: REG_1, dreg: REG_1, setId: id });
    exprs.push({
      kind: "nat",
      type: NAT_TYPE.DNAT,
      family: nfproto,
      regAddrMin: REG_1,
      // The port follows the address: NFT_REG32_01 after 4 bytes, NFT_REG_2 after 16.
      regProtoMin: v6 ? REG_2 : REG32_01,
    });
  }
}

/** `rule` (compiled with a one-element stand-in map) with the map elements of `body` instead. */
function withMapElements(rule: CompiledRule, body: string, ctx: RuleContext): CompiledRule {
  const anon = rule.anonymousSets[0];
  if (anon === undefined || rule.anonymousSets.length !== 1) {
    throw new UnsupportedNftText(`the map in "${body.slice(0, 60)}…"`);
  }
  const addr = ctx.family === "ip6" ? FIELD_TYPES.ipv6_addr! : FIELD_TYPES.ipv4_addr!;
  const service = FIELD_TYPES.inet_service!;
  const elements: SetElement[] = body.split(", ").map((el) => {
    const m = /^(\d+) : (\S+) \. (\d+)$/.exec(el);
    if (m === null) throw new UnsupportedNftText(`the map element "${el}"`);
    return {
      key: encodeFields([INTEGER32], m[1] as string),
      data: encodeFields([addr, service], `${m[2]} . ${m[3]}`),
    };
  });
  return {
    expressions: rule.expressions,
    anonymousSets: [{ definition: { ...anon.definition, size: elements.length }, elements }],
  };
}
