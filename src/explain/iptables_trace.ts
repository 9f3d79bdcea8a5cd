/**
 * The iptables side of explain: kproxy's `nat` and `filter` chains as the renderer writes them
 * (the jump rules of the built-in chains, the fixed chains, and the rules of the service ports
 * that matter), compiled for the tracer.
 *
 * @module
 */
import { familyContext } from "../render/iptables/family_context.ts";
import { nodePortDestinations } from "../render/iptables/family_context.ts";
import { renderServicePort } from "../render/iptables/service_rules.ts";
import {
  filterHeadRules,
  filterTailRules,
  JUMP_RULES,
  jumpRuleSpec,
  KUBE_FIREWALL_JUMP_RULES,
  natHeadRules,
  natTailRules,
  writesKubeFirewall,
} from "../render/iptables/table_layout.ts";
import type { IPFamily, ProxySnapshot } from "../snapshot/types.ts";
import type { FamilyPort } from "./candidates.ts";
import { compileIptablesRule, type IptablesLookups } from "./iptables_rules.ts";
import type { Hook, HookChain, TracedChain, TraceRuleset } from "./trace_engine.ts";

/** What the view needs beyond the snapshot. */
export interface IptablesViewOptions {
  /** True when an address is this node's own. */
  readonly isLocal: (ip: string) => boolean;
  /** Affinity state: `-m recent` list (the KUBE-SEP chain name) → source addresses in it. */
  readonly affinity?: ReadonlyMap<string, readonly string[]>;
}

/** The built-in chains the tracer runs, per hook, in the kernel's table order. */
const HOOK_CHAINS: Readonly<Record<Hook, readonly { table: "nat" | "filter"; chain: string }[]>> = {
  prerouting: [{ table: "nat", chain: "PREROUTING" }],
  input: [{ table: "filter", chain: "INPUT" }],
  forward: [{ table: "filter", chain: "FORWARD" }],
  output: [{ table: "nat", chain: "OUTPUT" }, { table: "filter", chain: "OUTPUT" }],
  postrouting: [{ table: "nat", chain: "POSTROUTING" }],
};

/** Splits `-A CHAIN spec` into its chain and spec. */
function splitAppend(line: string): { chain: string; spec: string } {
  const m = /^-A (\S+) (.*)$/.exec(line);
  if (m === null) throw new Error(`Cannot trace: not an -A line: ${line}`);
  return { chain: m[1] as string, spec: m[2] as string };
}

/** Builds the view of `family`'s iptables rules for the given service ports. */
export function iptablesView(
  snapshot: ProxySnapshot,
  family: IPFamily,
  ports: readonly FamilyPort[],
  options: IptablesViewOptions,
): TraceRuleset {
  const ctx = familyContext(snapshot, family);
  const specs = { nat: new Map<string, string[]>(), filter: new Map<string, string[]>() };
  const add = (table: "nat" | "filter", chain: string, spec: string) => {
    const list = specs[table].get(chain) ?? [];
    list.push(spec);
    specs[table].set(chain, list);
  };
  // Each jump rule is inserted at the top of its built-in chain, so the last one runs first.
  const jumps = writesKubeFirewall(ctx) ? [...JUMP_RULES, ...KUBE_FIREWALL_JUMP_RULES] : JUMP_RULES;
  for (const j of [...jumps].reverse()) add(j.table, j.from, jumpRuleSpec(j));
  for (const line of filterHeadRules(ctx)) {
    const { chain, spec } = splitAppend(line);
    add("filter", chain, spec);
  }
  for (const line of natHeadRules(ctx)) {
    const { chain, spec } = splitAppend(line);
    add("nat", chain, spec);
  }
  for (const { sp, fam } of ports) {
    const rules = renderServicePort(sp, fam, ctx);
    for (const r of rules.topRules) add(r.table, r.chain, r.spec);
    for (const c of rules.chains) {
      specs.nat.set(c.name, [...c.rules]);
    }
  }
  for (const line of natTailRules(ctx, nodePortDestinations(ctx))) {
    const { chain, spec } = splitAppend(line);
    add("nat", chain, spec);
  }
  for (const line of filterTailRules(ctx)) {
    const { chain, spec } = splitAppend(line);
    add("filter", chain, spec);
  }
  const affinity = options.affinity ?? new Map<string, readonly string[]>();
  const compiled = { nat: new Map<string, TracedChain>(), filter: new Map<string, TracedChain>() };
  const declared = {
    nat: new Set(["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"]),
    filter: new Set([
      "KUBE-SERVICES",
      "KUBE-EXTERNAL-SERVICES",
      "KUBE-FORWARD",
      "KUBE-NODEPORTS",
      "KUBE-PROXY-FIREWALL",
      "KUBE-FIREWALL",
    ]),
  };
  const chainIn = (table: "nat" | "filter", name: string): TracedChain | null => {
    const hit = compiled[table].get(name);
    if (hit !== undefined) return hit;
    const list = specs[table].get(name);
    if (list === undefined && !declared[table].has(name)) return null;
    const lookups: IptablesLookups = {
      isLocal: options.isLocal,
      inRecent: (list, source) => (affinity.get(list) ?? []).includes(source),
      isChain: (chain) => specs[table].has(chain) || declared[table].has(chain),
    };
    const chain: TracedChain = {
      table,
      name,
      rules: (list ?? []).map((spec) => compileIptablesRule(spec, lookups)),
    };
    compiled[table].set(name, chain);
    return chain;
  };
  const byHook = new Map<Hook, HookChain[]>();
  for (const [hook, list] of Object.entries(HOOK_CHAINS) as [Hook, typeof HOOK_CHAINS[Hook]][]) {
    byHook.set(
      hook,
      list.map((h) => ({
        chain: chainIn(h.table, h.chain) ?? { table: h.table, name: h.chain, rules: [] },
        type: h.table,
      })),
    );
  }
  return {
    chain: (name, from) => chainIn(from.table as "nat" | "filter", name),
    hookChains: (hook) => byHook.get(hook) ?? [],
  };
}
