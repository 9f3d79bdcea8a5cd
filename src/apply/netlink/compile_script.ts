/**
 * An nft script of single commands — what the nftables applier plans for an incremental sync
 * (`add|delete element`, `add|flush|delete chain`, `add rule`, `add|delete set`) — compiled to
 * the netlink messages nft would send for it, one command after the other. Pure. A command
 * outside that vocabulary throws {@link UnsupportedNftText}: the applier then sends the script
 * with `nft -f` as before, so a renderer change can slow a sync down but never break it.
 *
 * @module
 */
import { deleteChain, newChain } from "./chain.ts";
import { compileRule } from "./compile_rule.ts";
import {
  bigintBytes,
  cidrParts,
  concatTypeId,
  encodeField,
  encodeFields,
  fieldsLength,
  parseSetDeclaration,
  parseVerdict,
  type SetType,
  UnsupportedNftText,
  VERDICT_DATATYPE,
} from "./compile_values.ts";
import { addElements, deleteElements, type SetElement } from "./element.ts";
import { NFPROTO, type NftMessage } from "./message.ts";
import { appendRule, flushChain } from "./rule.ts";
import { deleteSet, newSet, SET_FLAG, setUserdata } from "./set.ts";

/** What the compiler must know of the tables the script talks to. */
export interface ScriptContext {
  /**
   * The declaration of a set that exists already (`type … ; flags …;`), by table family and name,
   * or undefined when there is none. Sets the script itself adds are known from the script.
   */
  readonly setDeclaration: (family: "ip" | "ip6", name: string) => string | undefined;
  /** First transaction-local set id to hand out (default 1). */
  readonly firstSetId?: number;
}

/** A compiled script: the messages, and which command each came from. */
export interface CompiledScript {
  /** Messages, in order. */
  readonly messages: readonly NftMessage[];
  /** For each message, the command it came from (for error messages). */
  readonly commands: readonly string[];
  /**
   * True when the kernel may validate the whole table at commit: a chain, rule or set changes,
   * or an element jumps to a chain. False: elements only, committed in microseconds.
   */
  readonly validates: boolean;
}

const COMMAND = /^(add|delete|flush) (element|chain|rule|set|map) (ip6?) (\S+) (\S+)(?: (.*))?$/;

/** Compiles `lines` (one command each; blank lines skipped). */
export function compileScript(lines: readonly string[], ctx: ScriptContext): CompiledScript {
  const messages: NftMessage[] = [];
  const commands: string[] = [];
  let validates = false;
  const added = new Map<string, SetType>();
  let setId = ctx.firstSetId ?? 1;
  const nextSetId = () => setId++;
  const setType = (family: "ip" | "ip6", name: string): SetType => {
    const own = added.get(`${family} ${name}`);
    if (own !== undefined) return own;
    const decl = ctx.setDeclaration(family, name);
    if (decl === undefined) throw new UnsupportedNftText(`elements of the unknown set ${name}`);
    return parseSetDeclaration(decl);
  };
  const push = (m: NftMessage, line: string) => {
    messages.push(m);
    commands.push(line);
  };

  for (const raw of lines) {
    const line = raw.trim();
    if (line === "") continue;
    const m = COMMAND.exec(line);
    if (m === null) throw new UnsupportedNftText(`the command "${line}"`);
    const [, verb, object, tableFamily, table, name, rest] = m as unknown as [
      string,
      string,
      string,
      "ip" | "ip6",
      string,
      string,
      string | undefined,
    ];
    const family = tableFamily === "ip" ? NFPROTO.IPV4 : NFPROTO.IPV6;
    const ref = { family, table, chain: name };
    const body = rest === undefined ? null : /^\{ (.*) \}$/.exec(rest)?.[1] ?? null;
    if (object !== "element") validates = true;
    if (object === "chain" && rest === undefined) {
      if (verb === "add") push(newChain(ref), line);
      else if (verb === "flush") push(flushChain(ref), line);
      else push(deleteChain(ref), line);
    } else if (object === "rule" && verb === "add" && rest !== undefined) {
      const rule = compileRule(rest, { family: tableFamily, table, nextSetId });
      for (const anon of rule.anonymousSets) {
        push(newSet(anon.definition), line);
        push(
          addElements(
            { family, table, set: anon.definition.name, setId: anon.definition.id },
            anon.elements,
          ),
          line,
        );
      }
      push(appendRule(ref, rule.expressions), line);
    } else if ((object === "set" || object === "map") && verb === "delete" && rest === undefined) {
      push(deleteSet(family, table, name), line);
    } else if ((object === "set" || object === "map") && verb === "add" && body !== null) {
      const t = parseSetDeclaration(body);
      if (t.interval) throw new UnsupportedNftText(`interval sets ("${line}")`);
      // kproxy adds only per-endpoint affinity sets on the way: one address field, no data.
      if (t.key.length > 1 || t.data !== null) {
        throw new UnsupportedNftText(`adding concatenated sets or maps ("${line}")`);
      }
      if ((t.data !== null) !== (object === "map")) throw new UnsupportedNftText(`"${line}"`);
      added.set(`${tableFamily} ${name}`, t);
      const keyByteorder = (t.key[0] as { byteorder: number }).byteorder;
      push(
        newSet({
          family,
          table,
          name,
          flags: (t.data !== null ? SET_FLAG.MAP : 0) |
            (t.timeout || t.timeoutSeconds !== null ? SET_FLAG.TIMEOUT : 0) |
            (t.dynamic ? SET_FLAG.EVAL : 0) | (t.key.length > 1 ? SET_FLAG.CONCAT : 0),
          keyType: concatTypeId(t.key),
          keyLen: fieldsLength(t.key),
          ...(t.data === "verdict"
            ? { dataType: VERDICT_DATATYPE, dataLen: 0 }
            : t.data !== null
            ? { dataType: concatTypeId(t.data), dataLen: fieldsLength(t.data) }
            : {}),
          ...(t.timeoutSeconds !== null ? { timeoutMs: BigInt(t.timeoutSeconds) * 1000n } : {}),
          id: nextSetId(),
          userdata: setUserdata({ keyByteorder }),
        }),
        line,
      );
    } else if (object === "element" && body !== null && (verb === "add" || verb === "delete")) {
      const t = setType(tableFamily, name);
      const setRef = { family, table, set: name };
      if (t.interval) {
        const elements = splitElements(body).flatMap((text) => intervalElements(t, text));
        push(
          verb === "add" ? addElements(setRef, elements) : deleteElements(setRef, elements),
          line,
        );
        continue;
      }
      const elements = splitElements(body).map((text) => {
        const colon = text.indexOf(" : ");
        const keyText = colon < 0 ? text : text.slice(0, colon);
        const valueText = colon < 0 ? null : text.slice(colon + 3);
        if (verb === "delete" || t.data === null) {
          if (verb === "add" && valueText !== null) throw new UnsupportedNftText(`"${line}"`);
          return { key: encodeFields(t.key, keyText) };
        }
        if (valueText === null) throw new UnsupportedNftText(`a map element without a value`);
        if (t.data === "verdict") {
          const verdict = parseVerdict(valueText);
          if (verdict.chain !== undefined) validates = true;
          return { key: encodeFields(t.key, keyText), verdict };
        }
        return { key: encodeFields(t.key, keyText), data: encodeFields(t.data, valueText) };
      });
      push(verb === "add" ? addElements(setRef, elements) : deleteElements(setRef, elements), line);
    } else {
      throw new UnsupportedNftText(`the command "${line}"`);
    }
  }
  return { messages, commands, validates };
}

/**
 * An element of an interval set of addresses (`198.18.0.0/16` or one address) as nft sends it:
 * its first address, then the first address past it flagged as the interval's end. A range that
 * runs to the last address (nft marks it open in the element's userdata) is left to nft.
 */
function intervalElements(t: SetType, text: string): SetElement[] {
  const field = t.key[0];
  if (t.key.length !== 1 || t.data !== null || field === undefined) {
    throw new UnsupportedNftText(`elements of interval sets of ${t.key.length} fields or maps`);
  }
  if (field.name !== "ipv4_addr" && field.name !== "ipv6_addr") {
    throw new UnsupportedNftText(`interval sets of ${field.name}`);
  }
  const bits = field.len * 8;
  const parts = cidrParts(text);
  const start = parts === null ? encodeField(field, text) : parts.bytes;
  const prefix = parts === null ? bits : parts.prefix;
  const end = bytesValue(start) + (1n << BigInt(bits - prefix));
  if (end >= 1n << BigInt(bits)) throw new UnsupportedNftText(`the open interval "${text}"`);
  return [{ key: start }, { key: bigintBytes(end, field.len), intervalEnd: true }];
}

function bytesValue(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

/** `a, b, c` → elements (kproxy's keys and values never contain a comma). */
function splitElements(body: string): string[] {
  return body.split(",").map((e) => e.trim()).filter((e) => e !== "");
}
