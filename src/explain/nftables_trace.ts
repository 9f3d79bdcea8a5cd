/**
 * The nftables side of explain: the family's `kproxy` table as the renderer writes it (its
 * fixed part, and the chains and map elements of the service ports that matter), compiled for
 * the tracer.
 *
 * @module
 */
import { familyContext, fixedRules } from "../render/nftables/fixed_rules.ts";
import { TABLE_NAME, tableFamily } from "../render/nftables/names.ts";
import { renderServicePort } from "../render/nftables/service_port_rules.ts";
import type { IPFamily, ProxySnapshot } from "../snapshot/types.ts";
import type { FamilyPort } from "./candidates.ts";
import { compileNftRule, expandFans, type NftLookups } from "./nftables_rules.ts";
import { inAnyCIDR } from "./packet.ts";
import type { Hook, HookChain, TracedChain, TraceRuleset } from "./trace_engine.ts";

/** What the table view needs beyond the snapshot. */
export interface NftablesViewOptions {
  /** True when an address is this node's own. */
  readonly isLocal: (ip: string) => boolean;
  /** Affinity state: affinity set name → source addresses in it (read from the kernel). */
  readonly affinity?: ReadonlyMap<string, readonly string[]>;
}

/** One family's `kproxy` table, reduced to what a packet can meet, ready to trace. */
export interface NftablesView extends TraceRuleset {
  /** `ip kproxy` or `ip6 kproxy`. */
  readonly table: string;
  /** The service port that owns an element of a shared map or set, by `map|key`. */
  owner(map: string, key: string): string | null;
}

/** Builds the view of `family`'s table for the given service ports. */
export function nftablesView(
  snapshot: ProxySnapshot,
  family: IPFamily,
  ports: readonly FamilyPort[],
  options: NftablesViewOptions,
): NftablesView {
  const ctx = familyContext(snapshot, family);
  const fixed = fixedRules(snapshot, ctx);
  const table = `${tableFamily(family)} ${TABLE_NAME}`;
  const maps = new Map<string, Map<string, string>>();
  const sets = new Map<string, string[]>();
  const owners = new Map<string, string>();
  for (const s of fixed.sets) {
    if (s.kind === "set") sets.set(s.name, [...s.fixedElements]);
    else maps.set(s.name, new Map());
  }
  const chainTexts = new Map<string, readonly string[]>();
  for (const c of fixed.chains) chainTexts.set(c.name, c.rules);
  // Ports come sorted by id; the smallest id wins a key two ports claim, as in the renderer.
  for (const { sp } of ports) {
    const rules = renderServicePort(sp, ctx);
    if (rules === null) continue;
    for (const c of rules.chains) chainTexts.set(c.name, c.rules);
    for (const el of rules.elements) {
      const ownerKey = `${el.set}|${el.key}`;
      if (owners.has(ownerKey)) continue;
      owners.set(ownerKey, sp.id);
      if (el.value === null) {
        const list = sets.get(el.set) ?? [];
        list.push(el.key);
        sets.set(el.set, list);
      } else {
        const map = maps.get(el.set) ?? new Map<string, string>();
        map.set(el.key, el.value);
        maps.set(el.set, map);
      }
    }
    for (const s of rules.sets) sets.set(s.name, []);
  }
  const affinity = options.affinity ?? new Map<string, readonly string[]>();
  const lookups: NftLookups = {
    mapVerdict: (map, key) => maps.get(map)?.get(key) ?? null,
    inSet: (set, key) => {
      if (set.startsWith("affinity-")) return (affinity.get(set) ?? []).includes(key);
      const elements = sets.get(set);
      if (elements === undefined) return false;
      // Interval sets (cluster CIDRs, and any other set of prefixes) match by containment.
      return elements.includes(key) || inAnyCIDR(key, elements.filter((e) => e.includes("/")));
    },
    isLocal: options.isLocal,
  };
  const compiled = new Map<string, TracedChain>();
  const chainNamed = (name: string): TracedChain | null => {
    const hit = compiled.get(name);
    if (hit !== undefined) return hit;
    const texts = chainTexts.get(name);
    if (texts === undefined) return null;
    const chain: TracedChain = {
      table,
      name,
      rules: expandFans(texts.map((t) => compileNftRule(t, lookups))),
    };
    compiled.set(name, chain);
    return chain;
  };
  const baseChains = fixed.baseChains.map((bc) => {
    chainTexts.set(bc.name, bc.rules);
    return bc;
  });
  const byHook = new Map<Hook, HookChain[]>();
  for (const bc of [...baseChains].sort((a, b) => a.priority - b.priority)) {
    const list = byHook.get(bc.hook) ?? [];
    list.push({ chain: chainNamed(bc.name) as TracedChain, type: bc.type });
    byHook.set(bc.hook, list);
  }
  return {
    table,
    chain: (name) => chainNamed(name),
    hookChains: (hook) => byHook.get(hook) ?? [],
    owner: (map, key) => owners.get(`${map}|${key}`) ?? null,
  };
}
