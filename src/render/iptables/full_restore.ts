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
  KUBE_MARK_MASQ,
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
  /** Cut rulesets with more chains than this into stages (see {@link renderFamilyRestore}). */
  readonly chainsPerStage?: number;
}

/** One family's full restore input and what it makes live. */
export interface FamilyRuleset {
  /** The family. */
  readonly family: IPFamily;
  /** iptables-restore input (filter then nat), ending in a newline; all stages joined. */
  readonly text: string;
  /** The restore inputs to run in order (one, unless the ruleset was cut into stages). */
  readonly stages: readonly string[];
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

/** Splits `items` into runs whose `weight` adds up to about `limit` (never an empty run). */
export function chunkByWeight<T>(
  items: readonly T[],
  weight: (item: T) => number,
  limit: number,
): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let sum = 0;
  for (const item of items) {
    const w = weight(item);
    if (current.length > 0 && sum + w > limit) {
      out.push(current);
      current = [];
      sum = 0;
    }
    current.push(item);
    sum += w;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Restore input of one `*nat` table (empty when there is nothing to say). */
function natStage(lines: readonly string[]): string {
  return lines.length === 0 ? "" : ["*nat", ...lines, "COMMIT"].join("\n") + "\n";
}

/** Stages that flush, then delete, `chains` (unreferenced but for each other) in batches. */
export function dropChainStages(chains: readonly string[], limit: number): string[] {
  const batches = chunkByWeight(chains, () => 1, limit);
  return [
    ...batches.map((b) => natStage(b.map((c) => `:${c} - [0:0]`))),
    ...batches.map((b) => natStage(b.map((c) => `-X ${c}`))),
  ];
}

function lineCount(stages: readonly string[]): number {
  let n = 0;
  for (const s of stages) for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) === 10) n++;
  return n;
}

/**
 * The full iptables-restore input of `family` (kube-proxy's layout, deterministic).
 *
 * With `chainsPerStage`, a ruleset with more chains than that is cut into stages, because
 * iptables-nft's `--noflush` restore slows down with the square of the chains one input
 * creates: first the service ports' own chains in batches (each batch moves whole service ports
 * at once; nothing references a new chain yet), then one stage with every shared chain and the
 * jump rules, then the stale chains, flushed and deleted in batches. Each stage is atomic; the
 * whole is not, but no stage leaves a jump to a missing chain or a half-written service port.
 */
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
  let ruleCount = 0;
  let chainCount = stale.length;
  for (const { hash, rules } of rendered) {
    const live = liveServicePort(hash, rules);
    ruleCount += live.ruleCount;
    chainCount += rules.chains.length;
    services.set(rules.id, live);
  }

  const filter: string[] = ["*filter"];
  for (const c of FILTER_CHAINS) filter.push(`:${c} - [0:0]`);
  if (kubeFirewall) filter.push(`:${KUBE_FIREWALL} - [0:0]`);
  const filterHead = filterHeadRules(ctx);
  filter.push(...filterHead);
  for (const { rules } of rendered) {
    for (const r of rules.topRules) {
      if (r.table === "filter") filter.push(`-A ${r.chain} ${r.spec}`);
    }
  }
  const filterTail = filterTailRules(ctx);
  filter.push(...filterTail);
  for (const j of jumps) if (j.table === "filter") filter.push(`-I ${j.from} 1 ${jumpRuleSpec(j)}`);
  filter.push("COMMIT");
  const natHead = natHeadRules(ctx);
  const natTail = natTailRules(ctx, nodePortDestinations(ctx));
  ruleCount += filterHead.length + filterTail.length + natHead.length + natTail.length;
  const natJumps = jumps.filter((j) => j.table === "nat").map((j) =>
    `-I ${j.from} 1 ${jumpRuleSpec(j)}`
  );
  const fixedDecls = NAT_CHAINS.map((c) => `:${c} - [0:0]`);

  const limit = options.chainsPerStage ?? Infinity;
  if (chainCount <= limit) {
    const nat: string[] = ["*nat", ...fixedDecls];
    for (const { rules } of rendered) for (const c of rules.chains) nat.push(`:${c.name} - [0:0]`);
    for (const name of stale) nat.push(`:${name} - [0:0]`);
    nat.push(...natHead);
    for (const { rules } of rendered) {
      for (const r of rules.topRules) if (r.table === "nat") nat.push(`-A ${r.chain} ${r.spec}`);
      for (const c of rules.chains) for (const spec of c.rules) nat.push(`-A ${c.name} ${spec}`);
    }
    nat.push(...natTail);
    for (const name of stale) nat.push(`-X ${name}`);
    nat.push(...natJumps, "COMMIT");
    const out = [...filter, ...nat];
    const text = out.join("\n") + "\n";
    return {
      family,
      text,
      stages: [text],
      lines: out.length,
      ruleCount,
      kubeFirewall,
      services,
    };
  }

  // Service chains jump to KUBE-MARK-MASQ, so it comes first (flushed and refilled at once).
  const isMarkMasq = (line: string) => line.startsWith(`-A ${KUBE_MARK_MASQ} `);
  const stages: string[] = [
    natStage([`:${KUBE_MARK_MASQ} - [0:0]`, ...natHead.filter(isMarkMasq)]),
  ];
  const withChains = rendered.filter((r) => r.rules.chains.length > 0);
  for (const batch of chunkByWeight(withChains, (r) => r.rules.chains.length, limit)) {
    const lines: string[] = [];
    for (const { rules } of batch) for (const c of rules.chains) lines.push(`:${c.name} - [0:0]`);
    for (const { rules } of batch) {
      for (const c of rules.chains) for (const spec of c.rules) lines.push(`-A ${c.name} ${spec}`);
    }
    stages.push(natStage(lines));
  }
  const top: string[] = [
    ...NAT_CHAINS.filter((c) => c !== KUBE_MARK_MASQ).map((c) => `:${c} - [0:0]`),
    ...natHead.filter((line) => !isMarkMasq(line)),
  ];
  for (const { rules } of rendered) {
    for (const r of rules.topRules) if (r.table === "nat") top.push(`-A ${r.chain} ${r.spec}`);
  }
  top.push(...natTail, ...natJumps);
  stages.push(filter.join("\n") + "\n" + natStage(top));
  stages.push(...dropChainStages(stale, limit));
  return {
    family,
    text: stages.join(""),
    stages,
    lines: lineCount(stages),
    ruleCount,
    kubeFirewall,
    services,
  };
}

/** The nat KUBE-SERVICES chain gets new service rules inserted above its NodePort tail rule. */
export function insertsAtTop(rule: TopRule): boolean {
  return rule.table === "nat" && rule.chain === KUBE_SERVICES;
}
