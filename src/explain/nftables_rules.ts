/**
 * Compiles the nftables rule text kproxy's renderer emits into rules the tracer can run.
 *
 * It understands exactly the shapes `src/render/nftables/` writes (base chain jumps, verdict
 * map dispatch, the firewall, masquerade, affinity and endpoint-picking rules) and throws on
 * anything else, so a renderer change that explain does not follow fails its tests instead of
 * explaining the wrong thing.
 *
 * @module
 */
import type { Protocol } from "../snapshot/types.ts";
import {
  allOf,
  type CompiledRule,
  type Condition,
  type Control,
  dnatState,
  interfaceMatches,
  type PacketState,
  type RuleEffect,
  RuleShapeError,
} from "./trace_engine.ts";
import { addressMatcher } from "./packet.ts";

/** The sets and maps a rule may look packets up in, and the node's own addresses. */
export interface NftLookups {
  /**
   * The value text of `key` in map `map`, or null: a verdict (`goto X`, `drop`, …) in a verdict
   * map, an endpoint (`198.18.1.5 . 8080`) in an endpoint map.
   */
  mapVerdict(map: string, key: string): string | null;
  /** True when `key` is an element of set `set` (intervals included). */
  inSet(set: string, key: string): boolean;
  /** True when `ip` is one of this node's addresses (`fib … type local`). */
  isLocal(ip: string): boolean;
}

const PROTO_WORD: Readonly<Record<Protocol, string>> = { TCP: "tcp", UDP: "udp", SCTP: "sctp" };

/** Splits rule text into words; `{ … }` is one word (its inside, trimmed). */
export function nftWords(text: string): string[] {
  const out: string[] = [];
  const raw = text.trim().split(/\s+/);
  for (let i = 0; i < raw.length; i++) {
    const w = raw[i] as string;
    if (w !== "{") {
      out.push(w);
      continue;
    }
    const inner: string[] = [];
    let depth = 1;
    for (i++; i < raw.length; i++) {
      const x = raw[i] as string;
      if (x === "{") depth++;
      if (x === "}" && --depth === 0) break;
      inner.push(x);
    }
    out.push(`{${inner.join(" ")}}`);
  }
  return out;
}

/** `ip:port` or `[ip6]:port` → parts. */
export function parseHostPort(text: string): { ip: string; port: number } | null {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  return m === null ? null : { ip: m[1] as string, port: Number(m[2]) };
}

function parseMark(text: string | undefined): number | null {
  if (text === undefined || !/^0x[0-9a-f]+$/i.test(text)) return null;
  return Number.parseInt(text, 16);
}

function keyOf(state: PacketState, parts: readonly string[]): string {
  return parts.map((p) => {
    switch (p) {
      case "daddr":
        return state.destination;
      case "saddr":
        return state.source;
      case "l4proto":
        return PROTO_WORD[state.protocol];
      case "dport":
        return String(state.port);
      default:
        return p;
    }
  }).join(" . ");
}

/** Compiles one rule of a kproxy nftables chain. */
export function compileNftRule(text: string, lookups: NftLookups): CompiledRule {
  const w = nftWords(text);
  const conditions: Condition[] = [];
  let effect: ((s: PacketState) => RuleEffect) | null = null;
  let vmap: { map: string; key: string[] } | null = null;
  let markChange: { op: "or" | "xor"; mark: number } | null = null;
  /** The last concatenation looked up in a set (named in the rule's effect, key and all). */
  let setLookup: { set: string; key: string[] } | null = null;
  let i = 0;
  const fail = (detail: string): never => {
    throw new RuleShapeError("nftables", text, detail);
  };
  const at = (k: number) => w[i + k];
  const settle = (control: Control, describe?: string) => {
    if (effect !== null) fail("two verdicts");
    const lookup = setLookup;
    effect = (s) => {
      const text = describe ??
        (lookup === null
          ? undefined
          : `@${lookup.set}[${keyOf(s, lookup.key)}] → ${controlWords(control)}`);
      return { state: s, control, ...(text === undefined ? {} : { describe: text }) };
    };
  };
  while (i < w.length) {
    const word = w[i] as string;
    if (word === "ct" && at(1) === "state" && at(2) === "new") {
      // The tracer follows the first packet of a connection.
      i += 3;
    } else if (word === "ct" && at(1) === "status" && at(2) === "dnat") {
      conditions.push((s) => (s.dnat !== null ? 1 : 0));
      i += 3;
    } else if ((word === "ip" || word === "ip6") && (at(1) === "saddr" || at(1) === "daddr")) {
      const field = at(1) as "saddr" | "daddr";
      if (at(2) === ".") {
        // A concatenation: `ip daddr . meta l4proto . th dport vmap @m` or `ip saddr . ip daddr @s`.
        const parts: string[] = [field];
        i += 2;
        while (w[i] === ".") {
          const a = w[i + 1];
          const b = w[i + 2];
          if ((a === "ip" || a === "ip6") && (b === "saddr" || b === "daddr")) parts.push(b);
          else if (a === "meta" && b === "l4proto") parts.push("l4proto");
          else if (a === "th" && b === "dport") parts.push("dport");
          else fail(`unknown concatenation part ${a} ${b}`);
          i += 3;
        }
        const next = w[i] ?? "";
        if (next === "vmap" && w[i + 1]?.startsWith("@")) {
          vmap = { map: (w[i + 1] as string).slice(1), key: parts };
          i += 2;
        } else if (next.startsWith("@")) {
          const set = next.slice(1);
          conditions.push((s) => (lookups.inSet(set, keyOf(s, parts)) ? 1 : 0));
          setLookup = { set, key: parts };
          i += 1;
        } else fail(`a concatenation must be looked up, not followed by ${next}`);
        continue;
      }
      let negate = false;
      let v = at(2);
      let used = 3;
      if (v === "!=") {
        negate = true;
        v = at(3);
        used = 4;
      }
      if (v === undefined) fail("an address match without a value");
      const value = v as string;
      const get = (s: PacketState) => (field === "saddr" ? s.source : s.destination);
      let test: (ip: string) => boolean;
      if (value.startsWith("@")) {
        const set = value.slice(1);
        test = (ip) => lookups.inSet(set, ip);
      } else test = addressMatcher(value);
      conditions.push((s) => (test(get(s)) !== negate ? 1 : 0));
      i += used;
    } else if (word === "iifname") {
      // The local detector's interface modes: `iifname [!=] "br0"` / `"veth*"`.
      const negate = at(1) === "!=";
      const operand = at(negate ? 2 : 1) ?? fail("iifname without a name");
      const pattern = operand.replace(/^"(.*)"$/, "$1");
      conditions.push((s) => (interfaceMatches(s.inputInterface, pattern) !== negate ? 1 : 0));
      i += negate ? 3 : 2;
    } else if (word === "meta" && at(1) === "l4proto") {
      if (at(2) === ".") {
        if (at(3) !== "th" || at(4) !== "dport") fail("unknown meta l4proto concatenation");
        const parts = ["l4proto", "dport"];
        if (at(5) === "vmap" && at(6)?.startsWith("@")) {
          vmap = { map: (at(6) as string).slice(1), key: parts };
          i += 7;
        } else if (at(5)?.startsWith("@")) {
          const set = (at(5) as string).slice(1);
          conditions.push((s) => (lookups.inSet(set, keyOf(s, parts)) ? 1 : 0));
          setLookup = { set, key: parts };
          i += 6;
        } else fail("a concatenation must be looked up");
        continue;
      }
      const proto = at(2);
      if (proto !== "tcp" && proto !== "udp" && proto !== "sctp") fail(`unknown protocol ${proto}`);
      conditions.push((s) => (PROTO_WORD[s.protocol] === proto ? 1 : 0));
      i += 3;
    } else if ((word === "tcp" || word === "udp" || word === "sctp") && at(1) === "dport") {
      const port = Number(at(2));
      if (!Number.isInteger(port)) fail(`bad port ${at(2)}`);
      conditions.push((s) => (PROTO_WORD[s.protocol] === word && s.port === port ? 1 : 0));
      i += 3;
    } else if (word === "fib" && at(2) === "type" && at(3) === "local") {
      const field = at(1);
      if (field !== "saddr" && field !== "daddr") fail(`unknown fib ${field}`);
      conditions.push((s) => lookups.isLocal(field === "saddr" ? s.source : s.destination) ? 1 : 0);
      i += 4;
    } else if (word === "numgen" && at(1) === "random" && at(2) === "mod" && at(4) === "0") {
      const mod = Number(at(3));
      if (!(mod >= 1)) fail(`bad numgen modulus ${at(3)}`);
      conditions.push(() => 1 / mod);
      i += 5;
    } else if (word === "update" && at(1)?.startsWith("@") && at(2)?.startsWith("{")) {
      // Records the source in an affinity set: state the tracer does not need.
      i += 3;
    } else if (word === "meta" && at(1) === "mark" && at(2) === "&" && at(4) === "==") {
      const mark = parseMark(at(3));
      if (mark === null || at(5) !== "0") fail("unknown mark test");
      conditions.push((s) => (s.marked ? 0 : 1));
      i += 6;
    } else if (word === "meta" && at(1) === "mark" && at(2) === "set") {
      if (at(3) !== "meta" || at(4) !== "mark") fail("unknown mark statement");
      const op = at(5) === "|"
        ? "or"
        : at(5) === "^"
        ? "xor"
        : fail(`unknown mark operator ${at(5)}`);
      const mark = parseMark(at(6));
      if (mark === null) fail(`bad mark ${at(6)}`);
      markChange = { op, mark: mark as number };
      i += 7;
    } else if (word === "jump" || word === "goto") {
      const chain = at(1) ?? fail(`${word} without a chain`);
      settle({ kind: word, chain: chain as string });
      i += 2;
    } else if (word === "return") {
      settle({ kind: "return" });
      i += 1;
    } else if (word === "drop") {
      settle({ kind: "drop" });
      i += 1;
    } else if (word === "reject") {
      const withReset = at(1) === "with" && at(2) === "tcp" && at(3) === "reset";
      settle({ kind: "reject" }, withReset ? "reject with tcp reset" : "reject");
      i += withReset ? 4 : 1;
    } else if (word === "masquerade") {
      if (effect !== null) fail("two verdicts");
      effect = (s) => ({
        state: { ...s, masqueraded: true },
        control: { kind: "accept" },
        describe: "masquerade (source NAT to the node's address)",
      });
      i += at(1) === "fully-random" ? 2 : 1;
    } else if (word === "dnat" && at(1) === "to") {
      const targetText = at(2) ?? "";
      const to = parseHostPort(targetText) ?? fail(`bad dnat target ${targetText}`);
      if (effect !== null) fail("two verdicts");
      effect = (s) => dnatEffect(s, to, `dnat to ${targetText}`);
      i += 3;
    } else if (word === "dnat" && (at(1) === "ip" || at(1) === "ip6") && at(2) === "to") {
      // dnat ip to ip daddr . meta l4proto . th dport . numgen random mod N offset O map @m:
      // the endpoint maps, keyed by the way in and a uniform draw in [O, O+N).
      const parts: string[] = [];
      let k = 3;
      for (;;) {
        const a = w[i + k];
        const b = w[i + k + 1];
        if (a === "numgen") break;
        if ((a === "ip" || a === "ip6") && b === "daddr") parts.push("daddr");
        else if (a === "meta" && b === "l4proto") parts.push("l4proto");
        else if (a === "th" && b === "dport") parts.push("dport");
        else fail(`unknown part ${a} ${b} of an endpoint map key`);
        if (w[i + k + 2] !== ".") fail("an endpoint map key must end with numgen");
        k += 3;
      }
      const [ng, random, mod, nText, offsetWord, oText, mapWord, mapRef, ...rest] = w.slice(i + k);
      if (
        ng !== "numgen" || random !== "random" || mod !== "mod" || offsetWord !== "offset" ||
        mapWord !== "map" || !mapRef?.startsWith("@") || rest.length > 0
      ) fail("unknown endpoint map dnat");
      const n = Number(nText);
      const offset = Number(oText);
      if (!(n >= 1) || !Number.isInteger(offset)) fail("bad numgen modulus or offset");
      const map = (mapRef as string).slice(1);
      const targetAt = (s: PacketState, index: number) => {
        const value = lookups.mapVerdict(map, `${keyOf(s, parts)} . ${offset + index}`);
        const m = value === null ? null : /^(\S+) \. (\d+)$/.exec(value);
        return m === null ? null : { ip: m[1] as string, port: Number(m[2]) };
      };
      return mapFanRule(text, conditions, n, targetAt);
    } else if (
      word === "dnat" && (at(1) === "ip" || at(1) === "ip6") && at(2) === "addr" &&
      at(3) === "." && at(4) === "port" && at(5) === "to" && at(6) === "numgen" &&
      at(7) === "random" && at(8) === "mod" && at(10) === "map" && at(11)?.startsWith("{")
    ) {
      const mod = Number(at(9));
      const inner = (at(11) as string).slice(1, -1);
      const targets = inner.split(",").map((e) => {
        const m = /^\s*(\d+)\s*:\s*(\S+)\s*\.\s*(\d+)\s*$/.exec(e) ?? fail(`bad map element ${e}`);
        return { index: Number(m[1]), ip: m[2] as string, port: Number(m[3]) };
      });
      if (targets.length !== mod) fail(`numgen mod ${mod} with ${targets.length} elements`);
      // One rule, N equally likely targets: the compiled rule is a fan of N alternatives.
      return fanRule(text, conditions, targets);
    } else {
      fail(`unknown word ${JSON.stringify(word)}`);
    }
  }
  if (vmap !== null) {
    if (effect !== null) fail("a verdict map and a verdict");
    const { map, key } = vmap;
    return {
      text,
      matches: (s) => {
        for (const c of conditions) if (c(s) === 0) return 0;
        return lookups.mapVerdict(map, keyOf(s, key)) === null ? 0 : 1;
      },
      apply: (s) => {
        const k = keyOf(s, key);
        const verdict = lookups.mapVerdict(map, k) as string;
        return {
          state: s,
          control: verdictControl(verdict, text),
          describe: `@${map}[${k}] → ${verdict}`,
        };
      },
    };
  }
  const finalEffect = effect as ((s: PacketState) => RuleEffect) | null;
  const change = markChange as { op: "or" | "xor"; mark: number } | null;
  return {
    text,
    matches: allOf(conditions),
    apply: (s) => {
      let state = s;
      if (change !== null) {
        state = change.op === "or" ? { ...s, marked: true } : { ...s, marked: !s.marked };
      }
      if (finalEffect === null) {
        return {
          state,
          control: { kind: "continue" },
          describe: change === null
            ? "continue"
            : change.op === "or"
            ? "set the masquerade mark"
            : "clear the masquerade mark",
        };
      }
      return finalEffect(state);
    },
  };
}

function dnatEffect(
  s: PacketState,
  to: { ip: string; port: number },
  describe: string,
): RuleEffect {
  return {
    state: dnatState(s, to),
    control: { kind: "accept" },
    describe,
  };
}

/** A verdict map value (`goto X`, `jump X`, `drop`, `accept`, `return`) as control flow. */
export function verdictControl(verdict: string, rule: string): Control {
  const [word, arg] = verdict.trim().split(/\s+/);
  if ((word === "goto" || word === "jump") && arg !== undefined) return { kind: word, chain: arg };
  if (word === "drop") return { kind: "drop" };
  if (word === "accept") return { kind: "accept" };
  if (word === "return") return { kind: "return" };
  throw new RuleShapeError(
    "nftables",
    rule,
    `unknown verdict map value ${JSON.stringify(verdict)}`,
  );
}

/**
 * `dnat … to numgen random mod N map { 0 : A, 1 : B, … }`: compiled as a rule whose `matches`
 * is 1 and whose `apply` is never called; the tracer sees it through {@link expandFans}.
 */
function fanRule(
  text: string,
  conditions: readonly Condition[],
  targets: readonly { index: number; ip: string; port: number }[],
): CompiledRule & { readonly fan: readonly { ip: string; port: number }[] } {
  const n = targets.length;
  return {
    text,
    fan: targets.map((t) => ({ ip: t.ip, port: t.port })),
    matches: (s) => {
      for (const c of conditions) if (c(s) === 0) return 0;
      return 1;
    },
    apply: () => {
      throw new Error(`Cannot trace: the map rule "${text}" must be expanded (${n} targets)`);
    },
  };
}

/** A control as the words a rule would use (`goto X`, `drop`, …). */
function controlWords(c: Control): string {
  return "chain" in c ? `${c.kind} ${c.chain}` : c.kind;
}

/**
 * `dnat … numgen random mod N offset O map @m`: like a numgen-map rule, a fan of N alternatives,
 * but its targets come from the map, for the packet's own key (none: the rule does not match).
 */
function mapFanRule(
  text: string,
  conditions: readonly Condition[],
  n: number,
  targetAt: (s: PacketState, index: number) => { ip: string; port: number } | null,
): CompiledRule & { readonly mapFan: typeof targetAt; readonly fanSize: number } {
  return {
    text,
    mapFan: targetAt,
    fanSize: n,
    matches: (s) => {
      for (const c of conditions) if (c(s) === 0) return 0;
      return targetAt(s, 0) === null ? 0 : 1;
    },
    apply: () => {
      throw new Error(`Cannot trace: the map rule "${text}" must be expanded (${n} targets)`);
    },
  };
}

/**
 * Replaces each numgen-map rule by N rules that pick target i with probability 1/(N-i), which
 * is exactly what one uniform pick among N does; each keeps the original rule text.
 */
export function expandFans(rules: readonly CompiledRule[]): CompiledRule[] {
  const out: CompiledRule[] = [];
  for (const rule of rules) {
    const fromMap = rule as {
      mapFan?: (s: PacketState, index: number) => { ip: string; port: number } | null;
      fanSize?: number;
    };
    if (fromMap.mapFan !== undefined && fromMap.fanSize !== undefined) {
      const targetAt = fromMap.mapFan;
      const n = fromMap.fanSize;
      for (let i = 0; i < n; i++) {
        out.push({
          text: rule.text,
          matches: (s) => rule.matches(s) === 0 || targetAt(s, i) === null ? 0 : 1 / (n - i),
          apply: (s) => {
            const t = targetAt(s, i) as { ip: string; port: number };
            const to = `${t.ip.includes(":") ? `[${t.ip}]` : t.ip}:${t.port}`;
            return dnatEffect(s, t, `dnat to ${to} (endpoint ${i + 1} of ${n})`);
          },
        });
      }
      continue;
    }
    const fan = (rule as { fan?: readonly { ip: string; port: number }[] }).fan;
    if (fan === undefined) {
      out.push(rule);
      continue;
    }
    const n = fan.length;
    fan.forEach((t, i) => {
      out.push({
        text: rule.text,
        matches: (s) => rule.matches(s) === 0 ? 0 : 1 / (n - i),
        apply: (s) =>
          dnatEffect(
            s,
            t,
            `dnat to ${t.ip.includes(":") ? `[${t.ip}]` : t.ip}:${t.port} (map element ${i})`,
          ),
      });
    });
  }
  return out;
}
