/**
 * The packet tracer both backends share: a packet's state, chains of compiled rules, and the
 * walk through netfilter's hooks (prerouting → input | forward → postrouting for a packet that
 * arrives; output → postrouting for one the node sends itself).
 *
 * Like kube-proxy's own test tracer, it runs the rules a renderer emitted, not a second model of
 * them: each backend compiles its rule text into {@link CompiledRule}s and fails on a rule shape
 * it does not know. A random pick (`numgen random mod N`, `-m statistic`) forks the walk, so the
 * result is every way the packet can go, each with its probability.
 *
 * @module
 */
import type { Protocol } from "../snapshot/types.ts";

/** Where a destination NAT sent the packet. */
export interface DnatTarget {
  /** Endpoint address. */
  readonly ip: string;
  /** Endpoint port. */
  readonly port: number;
  /** The chain whose rule did the DNAT. */
  readonly chain: string;
}

/** What the tracer knows of the packet at one point of its way. */
export interface PacketState {
  /** Protocol. */
  readonly protocol: Protocol;
  /** Source address (never rewritten before postrouting). */
  readonly source: string;
  /** Destination address, rewritten by DNAT. */
  readonly destination: string;
  /** Destination port, rewritten by DNAT. */
  readonly port: number;
  /**
   * The interface the packet arrived on (`iifname`, `-i`); null for a packet the node itself
   * sends (the output path has no input interface).
   */
  readonly inputInterface: string | null;
  /** The masquerade mark is set. */
  readonly marked: boolean;
  /** The DNAT done to the packet, if any. */
  readonly dnat: DnatTarget | null;
  /** The packet was masqueraded (source NAT to the node's address). */
  readonly masqueraded: boolean;
  /** The destination NAT chains have run for this connection (prerouting or output). */
  readonly dstNatDone: boolean;
  /** The source NAT chains have run for this connection (postrouting). */
  readonly srcNatDone: boolean;
}

/** One event of a packet's way through the rules, as a kernel trace would show it. */
export type PathEvent =
  | {
    /** The packet enters a chain (a base chain at its hook, or by jump/goto/vmap). */
    readonly kind: "enter";
    /** nftables: `ip kproxy`; iptables: `nat` or `filter`. */
    readonly table: string;
    /** The chain. */
    readonly chain: string;
  }
  | {
    /** A rule matched (and what it did). */
    readonly kind: "rule";
    /** The table. */
    readonly table: string;
    /** The chain the rule is in. */
    readonly chain: string;
    /** The rule's text, as rendered. */
    readonly rule: string;
    /** What it did in words: `jump X`, `dnat to A`, `drop`, … */
    readonly effect: string;
  };

/** A way the packet can go: its state, its probability, and its path so far. */
export interface Branch {
  /** The packet now. */
  readonly state: PacketState;
  /** Probability of this way (1 without random picks). */
  readonly probability: number;
  /** Events so far. */
  readonly path: readonly PathEvent[];
}

/** What a matched rule does next. */
export type Control =
  | { readonly kind: "continue" }
  | { readonly kind: "jump"; readonly chain: string }
  | { readonly kind: "goto"; readonly chain: string }
  | { readonly kind: "return" }
  | { readonly kind: "accept" }
  | { readonly kind: "drop" }
  | { readonly kind: "reject" };

/** The outcome of a matched rule: the new packet state and where to go. */
export interface RuleEffect {
  /** The packet after the rule. */
  readonly state: PacketState;
  /** Control flow. */
  readonly control: Control;
  /** The effect in words (default: from `control`). */
  readonly describe?: string;
}

/** One rule, compiled from a renderer's text by a backend. */
export interface CompiledRule {
  /** The rule text, as rendered. */
  readonly text: string;
  /** The probability that the rule matches `state`: 0, 1, or a random pick's share. */
  matches(state: PacketState): number;
  /** What the rule does to a packet it matched. */
  apply(state: PacketState): RuleEffect;
}

/** A rule shape explain does not understand (the renderer changed, explain did not follow). */
export class RuleShapeError extends Error {
  /** Makes the error. */
  constructor(backend: "nftables" | "iptables", rule: string, detail: string) {
    super(`kproxy explain does not understand the ${backend} rule "${rule}": ${detail}`);
    this.name = "RuleShapeError";
  }
}

/** A rule condition: the probability that it holds for a packet (0, 1, or a pick's share). */
export type Condition = (state: PacketState) => number;

/** The probability that every one of `conditions` holds. */
export function allOf(conditions: readonly Condition[]): Condition {
  return (state) => {
    let p = 1;
    for (const c of conditions) {
      p *= c(state);
      if (p === 0) return 0;
    }
    return p;
  };
}

/** The packet after a DNAT to `to` (the tracer fills in the chain). */
export function dnatState(state: PacketState, to: { ip: string; port: number }): PacketState {
  return { ...state, destination: to.ip, port: to.port, dnat: { ...to, chain: "" } };
}

/** A chain as the tracer sees it. */
export interface TracedChain {
  /** Table (as shown in paths). */
  readonly table: string;
  /** Name. */
  readonly name: string;
  /** Rules, in order. */
  readonly rules: readonly CompiledRule[];
}

/** The netfilter hooks. */
export type Hook = "prerouting" | "input" | "forward" | "output" | "postrouting";

/** A base chain (or built-in chain) registered at a hook. */
export interface HookChain {
  /** The chain. */
  readonly chain: TracedChain;
  /** `nat` chains run once per connection and manipulation; `filter` chains always. */
  readonly type: "nat" | "filter";
}

/** How a backend lays its rules out: the chains by name and the base chains of each hook. */
export interface TraceRuleset {
  /** A chain by name (in the table of `from`), or null when there is none. */
  chain(name: string, from: TracedChain): TracedChain | null;
  /** The base chains of a hook, in the order the kernel runs them. */
  hookChains(hook: Hook): readonly HookChain[];
}

/** How a chain was left. */
interface ChainExit {
  readonly branch: Branch;
  readonly kind: "fallthrough" | "return" | "accept" | "drop" | "reject";
  /** The rule that dropped or rejected, for those. */
  readonly by?: { readonly table: string; readonly chain: string; readonly rule: string };
}

/** A way the packet ends. */
export interface TraceOutcome {
  /** The branch at its end. */
  readonly branch: Branch;
  /**
   * `delivered`: to a socket on this node; `forwarded`: routed on (to a pod or out of the node);
   * `sent`: a packet of the node itself left it; `dropped`/`rejected`: by a rule.
   */
  readonly kind: "delivered" | "forwarded" | "sent" | "dropped" | "rejected";
  /** The rule that dropped or rejected the packet. */
  readonly by?: { readonly table: string; readonly chain: string; readonly rule: string };
}

/** A packet's start: where it comes from decides its hooks. */
export interface TraceStart {
  /** The packet. */
  readonly packet: {
    readonly protocol: Protocol;
    readonly source: string;
    readonly destination: string;
    readonly port: number;
  };
  /** True when this node itself sends the packet (its source is a node address). */
  readonly fromNode: boolean;
  /** True when an address is this node's own (routing delivers it locally). */
  readonly isLocal: (ip: string) => boolean;
  /**
   * The interface an arriving packet comes in on (ignored for the node's own packets); default
   * {@link OTHER_INTERFACE}.
   */
  readonly inputInterface?: string;
}

/** The input interface of an arriving packet nothing says more of: neither a bridge nor a pod's. */
export const OTHER_INTERFACE = "(other)";

/** True when an interface name matches an `iifname` / `-i` operand (`veth*`, `veth+`, `br0`). */
export function interfaceMatches(name: string | null, pattern: string): boolean {
  const actual = name ?? "";
  const wildcard = pattern.endsWith("*") || pattern.endsWith("+");
  return wildcard ? actual.startsWith(pattern.slice(0, -1)) : actual === pattern;
}

const MAX_DEPTH = 32;

function describeControl(c: Control): string {
  return c.kind === "jump" || c.kind === "goto" ? `${c.kind} ${c.chain}` : c.kind;
}

function runFrom(
  rs: TraceRuleset,
  chain: TracedChain,
  start: number,
  branch: Branch,
  depth: number,
): ChainExit[] {
  if (depth > MAX_DEPTH) {
    throw new Error(`Cannot trace: more than ${MAX_DEPTH} nested chains at ${chain.name}`);
  }
  const exits: ChainExit[] = [];
  let current = branch;
  for (let i = start; i < chain.rules.length; i++) {
    const rule = chain.rules[i] as CompiledRule;
    const p = rule.matches(current.state);
    if (p <= 0) continue;
    if (p < 1) {
      exits.push(
        ...runFrom(
          rs,
          chain,
          i + 1,
          { ...current, probability: current.probability * (1 - p) },
          depth,
        ),
      );
    }
    const effect = rule.apply(current.state);
    let state = effect.state;
    if (state.dnat !== null && state.dnat.chain === "") {
      state = { ...state, dnat: { ...state.dnat, chain: chain.name } };
    }
    const taken: Branch = {
      state,
      probability: current.probability * p,
      path: [...current.path, {
        kind: "rule",
        table: chain.table,
        chain: chain.name,
        rule: rule.text,
        effect: effect.describe ?? describeControl(effect.control),
      }],
    };
    const c = effect.control;
    switch (c.kind) {
      case "continue":
        current = taken;
        continue;
      case "jump": {
        for (const e of runChain(rs, c.chain, chain, taken, depth + 1)) {
          if (e.kind === "fallthrough" || e.kind === "return") {
            exits.push(...runFrom(rs, chain, i + 1, e.branch, depth));
          } else exits.push(e);
        }
        return exits;
      }
      case "goto": {
        for (const e of runChain(rs, c.chain, chain, taken, depth + 1)) {
          exits.push(e.kind === "fallthrough" ? { ...e, kind: "return" } : e);
        }
        return exits;
      }
      case "return":
        exits.push({ branch: taken, kind: "return" });
        return exits;
      case "accept":
        exits.push({ branch: taken, kind: "accept" });
        return exits;
      case "drop":
      case "reject":
        exits.push({
          branch: taken,
          kind: c.kind,
          by: { table: chain.table, chain: chain.name, rule: rule.text },
        });
        return exits;
    }
  }
  exits.push({ branch: current, kind: "fallthrough" });
  return exits;
}

function runChain(
  rs: TraceRuleset,
  name: string,
  from: TracedChain,
  branch: Branch,
  depth: number,
): ChainExit[] {
  const chain = rs.chain(name, from);
  if (chain === null) {
    throw new Error(
      `Cannot trace: ${from.table} chain ${from.name} jumps to ${name}, which is not there`,
    );
  }
  const entered: Branch = {
    ...branch,
    path: [...branch.path, { kind: "enter", table: chain.table, chain: chain.name }],
  };
  return runFrom(rs, chain, 0, entered, depth);
}

/** Runs one hook's base chains; returns the branches that pass and the ones that end there. */
function runHook(
  rs: TraceRuleset,
  hook: Hook,
  branch: Branch,
): { passed: Branch[]; ended: TraceOutcome[] } {
  let alive: Branch[] = [branch];
  const ended: TraceOutcome[] = [];
  for (const hc of rs.hookChains(hook)) {
    const next: Branch[] = [];
    for (const b of alive) {
      const dstNat = hook === "prerouting" || hook === "output";
      if (hc.type === "nat" && (dstNat ? b.state.dstNatDone : b.state.srcNatDone)) {
        // NAT chains see only the first packet of a connection, once per manipulation.
        next.push(b);
        continue;
      }
      const entered: Branch = {
        ...b,
        path: [...b.path, { kind: "enter", table: hc.chain.table, chain: hc.chain.name }],
      };
      for (const e of runFrom(rs, hc.chain, 0, entered, 0)) {
        if (e.kind === "drop" || e.kind === "reject") {
          ended.push({
            branch: e.branch,
            kind: e.kind === "drop" ? "dropped" : "rejected",
            ...(e.by === undefined ? {} : { by: e.by }),
          });
          continue;
        }
        let state = e.branch.state;
        if (hc.type === "nat") {
          state = dstNat ? { ...state, dstNatDone: true } : { ...state, srcNatDone: true };
        }
        next.push({ ...e.branch, state });
      }
    }
    alive = next;
  }
  return { passed: alive, ended };
}

/** Every way `start`'s packet can go through `rs`, with probabilities adding up to 1. */
export function tracePacket(rs: TraceRuleset, start: TraceStart): TraceOutcome[] {
  const { packet } = start;
  const initial: Branch = {
    state: {
      protocol: packet.protocol,
      source: packet.source,
      destination: packet.destination,
      port: packet.port,
      inputInterface: start.fromNode ? null : start.inputInterface ?? OTHER_INTERFACE,
      marked: false,
      dnat: null,
      masqueraded: false,
      dstNatDone: false,
      srcNatDone: false,
    },
    probability: 1,
    path: [],
  };
  const outcomes: TraceOutcome[] = [];
  const through = (hooks: readonly Hook[], from: Branch[], end: TraceOutcome["kind"]) => {
    let alive = from;
    for (const hook of hooks) {
      const next: Branch[] = [];
      for (const b of alive) {
        const r = runHook(rs, hook, b);
        next.push(...r.passed);
        outcomes.push(...r.ended);
      }
      alive = next;
    }
    for (const b of alive) outcomes.push({ branch: b, kind: end });
  };
  if (start.fromNode) {
    const out = runHook(rs, "output", initial);
    outcomes.push(...out.ended);
    for (const b of out.passed) {
      if (start.isLocal(b.state.destination)) {
        // To the node itself: out through loopback and back in (prerouting sees it again).
        through(["postrouting", "prerouting", "input"], [b], "delivered");
      } else through(["postrouting"], [b], "sent");
    }
  } else {
    const pre = runHook(rs, "prerouting", initial);
    outcomes.push(...pre.ended);
    for (const b of pre.passed) {
      if (start.isLocal(b.state.destination)) through(["input"], [b], "delivered");
      else through(["forward", "postrouting"], [b], "forwarded");
    }
  }
  return outcomes;
}

/** The chains a path enters, in order, as `table chain` (what a kernel trace shows). */
export function enteredChains(path: readonly PathEvent[]): string[] {
  return path.filter((e) => e.kind === "enter").map((e) => `${e.table} ${e.chain}`);
}
