/**
 * Compiles the iptables rule specs kproxy's renderer emits (what follows `-A CHAIN`) into rules
 * the tracer can run. It knows the matches and targets `src/render/iptables/` writes and throws
 * on anything else.
 *
 * @module
 */
import { splitWords } from "../render/iptables/restore_fake.ts";
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
import { parseHostPort } from "./nftables_rules.ts";

/** What iptables matches need to know beyond the packet. */
export interface IptablesLookups {
  /** True when an address is this node's own (`-m addrtype --… LOCAL`). */
  isLocal(ip: string): boolean;
  /** True when `source` is in the `-m recent` list `name` (ClientIP affinity state). */
  inRecent(name: string, source: string): boolean;
  /** True when `name` is a chain of the same table (a jump target). */
  isChain(name: string): boolean;
}

/** Compiles one rule spec (the words after `-A CHAIN`). */
export function compileIptablesRule(spec: string, lookups: IptablesLookups): CompiledRule {
  const w = splitWords(spec);
  const conditions: Condition[] = [];
  let target: string | null = null;
  const targetArgs: string[] = [];
  const fail = (detail: string): never => {
    throw new RuleShapeError("iptables", spec, detail);
  };
  let negate = false;
  let i = 0;
  while (i < w.length) {
    const word = w[i] as string;
    const arg = w[i + 1];
    if (word === "!") {
      negate = true;
      i++;
      continue;
    }
    const neg = negate;
    negate = false;
    if (target !== null) {
      // Target options: `--to-destination X`, `--or-mark M`, `--random-fully`, …
      targetArgs.push(word);
      i++;
      continue;
    }
    switch (word) {
      case "-m":
        // Match modules only name what follows; their options are handled below.
        i += 2;
        break;
      case "--comment":
        i += 2;
        break;
      case "-p": {
        const proto = (arg ?? "").toUpperCase();
        conditions.push((s) => ((s.protocol === proto) !== neg ? 1 : 0));
        i += 2;
        break;
      }
      case "-s":
      case "-d": {
        const test = addressMatcher(arg ?? fail(`${word} without an address`));
        const get = word === "-s"
          ? (s: PacketState) => s.source
          : (s: PacketState) => s.destination;
        conditions.push((s) => (test(get(s)) !== neg ? 1 : 0));
        i += 2;
        break;
      }
      case "-i": {
        // The local detector's interface modes: `-i br0`, `! -i veth+`.
        const pattern = arg ?? fail("-i without an interface");
        conditions.push((s) => (interfaceMatches(s.inputInterface, pattern) !== neg ? 1 : 0));
        i += 2;
        break;
      }
      case "--dport": {
        const port = Number(arg);
        if (!Number.isInteger(port)) fail(`bad port ${arg}`);
        conditions.push((s) => ((s.port === port) !== neg ? 1 : 0));
        i += 2;
        break;
      }
      case "--src-type":
      case "--dst-type": {
        if (arg !== "LOCAL") fail(`unknown address type ${arg}`);
        const get = word === "--src-type"
          ? (s: PacketState) => s.source
          : (s: PacketState) => s.destination;
        conditions.push((s) => (lookups.isLocal(get(s)) !== neg ? 1 : 0));
        i += 2;
        break;
      }
      case "--mode":
        if (arg !== "random") fail(`unknown statistic mode ${arg}`);
        i += 2;
        break;
      case "--probability": {
        const p = Number(arg);
        if (!(p > 0 && p <= 1)) fail(`bad probability ${arg}`);
        conditions.push(() => p);
        i += 2;
        break;
      }
      case "--name": {
        // `-m recent --name X --rcheck …` is a test; `--set` only records the source.
        const name = arg ?? fail("--name without a list");
        const rest = w.slice(i + 2);
        if (rest[0] === "--rcheck") {
          conditions.push((s) => (lookups.inRecent(name as string, s.source) ? 1 : 0));
          i += 3;
          if (w[i] === "--seconds") i += 2;
          if (w[i] === "--reap") i += 1;
        } else if (rest[0] === "--set") i += 3;
        else fail(`unknown recent option ${rest[0]}`);
        break;
      }
      case "--ctstate": {
        const states = (arg ?? "").split(",");
        const known = ["NEW", "RELATED", "ESTABLISHED", "INVALID", "DNAT"];
        if (states.some((st) => !known.includes(st))) fail(`unknown conntrack state ${arg}`);
        // The first packet of a connection is NEW, and DNAT once a DNAT rule rewrote it.
        conditions.push((s) => {
          const has = states.includes("NEW") || (states.includes("DNAT") && s.dnat !== null);
          return has !== neg ? 1 : 0;
        });
        i += 2;
        break;
      }
      case "--mark":
        conditions.push((s) => (s.marked !== neg ? 1 : 0));
        i += 2;
        break;
      case "-j":
        target = arg ?? fail("-j without a target");
        i += 2;
        break;
      default:
        fail(`unknown word ${JSON.stringify(word)}`);
    }
  }
  const effect = targetEffect(target, targetArgs, lookups, fail);
  return { text: spec, matches: allOf(conditions), apply: effect };
}

function targetEffect(
  target: string | null,
  args: readonly string[],
  lookups: IptablesLookups,
  fail: (detail: string) => never,
): (s: PacketState) => RuleEffect {
  const plain = (control: Control, describe?: string) => (s: PacketState): RuleEffect => ({
    state: s,
    control,
    ...(describe === undefined ? {} : { describe }),
  });
  switch (target) {
    case null:
      // A rule without a target (kube-proxy's comment-only rule at the end of a KUBE-FW chain).
      return plain({ kind: "continue" }, "nothing (comment only)");
    case "ACCEPT":
      return plain({ kind: "accept" });
    case "DROP":
      return plain({ kind: "drop" });
    case "REJECT":
      return plain({ kind: "reject" });
    case "RETURN":
      return plain({ kind: "return" });
    case "DNAT": {
      if (args[0] !== "--to-destination") fail("DNAT without --to-destination");
      const to = parseHostPort(args[1] ?? "") ?? fail(`bad DNAT target ${args[1]}`);
      return (s) => ({
        state: dnatState(s, to),
        control: { kind: "accept" },
        describe: `DNAT to ${args[1]}`,
      });
    }
    case "MARK": {
      const op = args[0];
      if (op !== "--or-mark" && op !== "--xor-mark") fail(`unknown MARK option ${op}`);
      return (s) => ({
        state: { ...s, marked: op === "--or-mark" ? true : !s.marked },
        control: { kind: "continue" },
        describe: op === "--or-mark" ? "set the masquerade mark" : "clear the masquerade mark",
      });
    }
    case "MASQUERADE":
      if (args.some((a) => a !== "--random-fully")) fail(`unknown MASQUERADE option ${args[0]}`);
      return (s) => ({
        state: { ...s, masqueraded: true },
        control: { kind: "accept" },
        describe: "MASQUERADE (source NAT to the node's address)",
      });
    default:
      if (!lookups.isChain(target)) fail(`unknown target ${target}`);
      if (args.length > 0) fail(`options after a jump to ${target}`);
      return plain({ kind: "jump", chain: target });
  }
}
