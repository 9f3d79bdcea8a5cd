/**
 * A whole family's ruleset as iptables-restore input (pure): what a full sync sends and what
 * `kproxy render` prints. Also returns, per service port, what a later partial sync needs to
 * know about the rules now live (its shared-chain rules and the chains it owns).
 */
import type { IPFamily } from "../../model/ip.ts";
import type {
  ProxySnapshot,
  ServicePortFamily,
  ServicePortSnapshot,
} from "../../snapshot/types.ts";
import {
  type FamilyContext,
  familyContext,
  type FamilyContextOptions,
  nodePortDestinations,
} from "./family_context.ts";
import {
  countRules,
  KUBE_FIREWALL,
  KUBE_SERVICES,
  renderServicePort,
  type ServicePortRules,
  type TopRule,
} from "./service_rules.ts";
import {
  FILTER_CHAINS,
  filterHeadRules,
  filterTailRules,
  type JumpRule,
  jumpRuleSpec,
  NAT_CHAINS,
  natHeadRules,
  natTailRules,
  writesKubeFirewall,
} from "./table_layout.ts";

/** What kproxy remembers about one live service port of one family. */
export interface LiveServicePort {
  /** The snapshot entry's content hash when these rules were written. */
  readonly hash: string;
  /** Its rules in shared chains, exactly as written (needed to delete them later). */
  readonly topRules: readonly TopRule[];
  /** The nat chains it owns. */
  readonly chains: readonly string[];
  /** Its rule count. */
  readonly ruleCount: number;
}

/** Extra work a full sync folds into the same restore transaction. */
export interface FullRestoreOptions extends FamilyContextOptions {
  /** Service chains that exist in the kernel but are no longer rendered: flushed and deleted. */
  readonly staleNatChains?: readonly string[];
  /** Jump rules missing from the built-in chains: inserted at the top, kube-proxy's order. */
  readonly insertJumps?: readonly JumpRule[];
}

/** One family's full restore input and what it makes live. */
export interface FamilyRuleset {
  /** The family. */
  readonly family: IPFamily;
  /** iptables-restore input (filter then nat), ending in a newline. */
  readonly text: string;
  /** Lines in `text`. */
  readonly lines: number;
  /** Rules kproxy owns after it is applied (jump rules excluded). */
  readonly ruleCount: number;
  /** True when the ruleset writes KUBE-FIREWALL. */
  readonly kubeFirewall: boolean;
  /** The live state per service port id. */
  readonly services: ReadonlyMap<string, LiveServicePort>;
}

/** Memory kept for a rendered service port. */
export function liveServicePort(hash: string, rules: ServicePortRules): LiveServicePort {
  return {
    hash,
    topRules: rules.topRules,
    chains: rules.chains.map((c) => c.name),
    ruleCount: countRules(rules),
  };
}

// Snapshot entries are frozen and shared between snapshots while unchanged, so their rendered
// rules can be reused by the next full render (keyed by the context they were rendered in).
const ruleCache = new WeakMap<ServicePortSnapshot, Map<string, ServicePortRules>>();

/** The rules of `sp` in `fam`, from the cache when this entry was rendered in `ctx` before. */
export function cachedServicePortRules(
  sp: ServicePortSnapshot,
  fam: ServicePortFamily,
  ctx: FamilyContext,
): ServicePortRules {
  const key = contextKey(ctx);
  let perCtx = ruleCache.get(sp);
  const hit = perCtx?.get(key);
  if (hit !== undefined) return hit;
  const rules = renderServicePort(sp, fam, ctx);
  if (perCtx === undefined) {
    perCtx = new Map();
    ruleCache.set(sp, perCtx);
  }
  if (perCtx.size > 4) perCtx.clear();
  perCtx.set(key, rules);
  return rules;
}

const contextKeys = new WeakMap<FamilyContext, string>();

function contextKey(ctx: FamilyContext): string {
  let key = contextKeys.get(ctx);
  if (key === undefined) {
    key = JSON.stringify(ctx);
    contextKeys.set(ctx, key);
  }
  return key;
}

/** Renders every service port of `family` in snapshot order. */
export function renderServicePorts(
  snapshot: ProxySnapshot,
  family: IPFamily,
  options: FamilyContextOptions = {},
): { readonly hash: string; readonly rules: ServicePortRules }[] {
  const ctx = familyContext(snapshot, family, options);
  const out: { hash: string; rules: ServicePortRules }[] = [];
  for (const sp of snapshot.servicePorts) {
    const fam = sp.families.find((f) => f.family === family);
    if (fam === undefined) continue;
    out.push({ hash: sp.hash, rules: cachedServicePortRules(sp, fam, ctx) });
  }
  return out;
}

/** The full iptables-restore input of `family` (kube-proxy's layout, deterministic). */
export function renderFamilyRestore(
  snapshot: ProxySnapshot,
  family: IPFamily,
  options: FullRestoreOptions = {},
): FamilyRuleset {
  const ctx = familyContext(snapshot, family, options);
  const rendered = renderServicePorts(snapshot, family, options);
  const kubeFirewall = writesKubeFirewall(ctx);
  const services = new Map<string, LiveServicePort>();
  const jumps = options.insertJumps ?? [];
  const stale = options.staleNatChains ?? [];

  const out: string[] = ["*filter"];
  for (const c of FILTER_CHAINS) out.push(`:${c} - [0:0]`);
  if (kubeFirewall) out.push(`:${KUBE_FIREWALL} - [0:0]`);
  let ruleCount = 0;
  const filterHead = filterHeadRules(ctx);
  out.push(...filterHead);
  ruleCount += filterHead.length;
  for (const { rules } of rendered) {
    for (const r of rules.topRules) {
      if (r.table === "filter") out.push(`-A ${r.chain} ${r.spec}`);
    }
  }
  const filterTail = filterTailRules(ctx);
  out.push(...filterTail);
  ruleCount += filterTail.length;
  for (const j of jumps) if (j.table === "filter") out.push(`-I ${j.from} 1 ${jumpRuleSpec(j)}`);
  out.push("COMMIT", "*nat");
  for (const c of NAT_CHAINS) out.push(`:${c} - [0:0]`);
  for (const { rules } of rendered) for (const c of rules.chains) out.push(`:${c.name} - [0:0]`);
  for (const name of stale) out.push(`:${name} - [0:0]`);
  const natHead = natHeadRules(ctx);
  out.push(...natHead);
  ruleCount += natHead.length;
  for (const { hash, rules } of rendered) {
    for (const r of rules.topRules) if (r.table === "nat") out.push(`-A ${r.chain} ${r.spec}`);
    for (const c of rules.chains) for (const spec of c.rules) out.push(`-A ${c.name} ${spec}`);
    const live = liveServicePort(hash, rules);
    ruleCount += live.ruleCount;
    services.set(rules.id, live);
  }
  const natTail = natTailRules(ctx, nodePortDestinations(ctx));
  out.push(...natTail);
  ruleCount += natTail.length;
  for (const name of stale) out.push(`-X ${name}`);
  for (const j of jumps) if (j.table === "nat") out.push(`-I ${j.from} 1 ${jumpRuleSpec(j)}`);
  out.push("COMMIT");
  return {
    family,
    text: out.join("\n") + "\n",
    lines: out.length,
    ruleCount,
    kubeFirewall,
    services,
  };
}

/** The nat KUBE-SERVICES chain gets new service rules inserted above its NodePort tail rule. */
export function insertsAtTop(rule: TopRule): boolean {
  return rule.table === "nat" && rule.chain === KUBE_SERVICES;
}
