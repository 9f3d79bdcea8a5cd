/**
 * Reading iptables-save output (pure): which chains exist, which jump rules are present, what
 * is stale, and the restore input that removes everything kproxy owns.
 */
import { isServiceChainName } from "./chain_names.ts";
import { dropChainStages } from "./full_restore.ts";
import { splitWords, targetOf } from "./restore_fake.ts";
import { KUBE_FIREWALL } from "./service_rules.ts";
import { FILTER_CHAINS, type JumpRule, NAT_CHAINS } from "./table_layout.ts";

/** One table of iptables-save output. */
export interface SavedTable {
  /** Chain names in declaration order. */
  readonly chains: readonly string[];
  /** `-A` lines, as saved. */
  readonly rules: readonly string[];
}

/** Parses iptables-save output into its tables (comments and counters dropped). */
export function parseSave(text: string): Map<string, SavedTable> {
  const tables = new Map<string, { chains: string[]; rules: string[] }>();
  let current: { chains: string[]; rules: string[] } | null = null;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("*")) {
      current = { chains: [], rules: [] };
      tables.set(line.slice(1), current);
    } else if (current === null || line === "" || line.startsWith("#")) continue;
    else if (line.startsWith(":")) current.chains.push(line.slice(1).split(/\s+/)[0] as string);
    else if (line.startsWith("-A ")) current.rules.push(line);
    else if (line === "COMMIT") current = null;
  }
  return tables;
}

/** The chain a saved `-A chain ...` line belongs to. */
export function ruleChain(line: string): string {
  return line.slice(3).split(" ", 1)[0] as string;
}

/** True when `saved` already holds `jump` (same chain, target and comment). */
export function hasJumpRule(saved: SavedTable | undefined, jump: JumpRule): boolean {
  if (saved === undefined) return false;
  for (const line of saved.rules) {
    if (ruleChain(line) !== jump.from || !line.endsWith(` -j ${jump.to}`)) continue;
    if (jump.comment === "") {
      if (!line.includes("--comment")) return true;
      continue;
    }
    const words = splitWords(line);
    const i = words.indexOf("--comment");
    if (i >= 0 && words[i + 1] === jump.comment) return true;
  }
  return false;
}

/** The jump rules of `wanted` missing from the saved tables. */
export function missingJumpRules(
  saved: ReadonlyMap<string, SavedTable>,
  wanted: readonly JumpRule[],
): JumpRule[] {
  return wanted.filter((j) => !hasJumpRule(saved.get(j.table), j));
}

/** Service chains in the saved nat table that `keep` does not name (to flush and delete). */
export function staleServiceChains(
  saved: ReadonlyMap<string, SavedTable>,
  keep: ReadonlySet<string>,
): string[] {
  return (saved.get("nat")?.chains ?? []).filter((c) => isServiceChainName(c) && !keep.has(c));
}

/** The chains kproxy owns in `table`, of those present in the saved table. */
export function ownedChains(
  saved: SavedTable | undefined,
  table: string,
  ownsKubeFirewall: boolean,
): string[] {
  if (saved === undefined) return [];
  const fixed = new Set(table === "nat" ? NAT_CHAINS : table === "filter" ? FILTER_CHAINS : []);
  if (table === "filter" && ownsKubeFirewall) fixed.add(KUBE_FIREWALL);
  return saved.chains.filter((c) => fixed.has(c) || (table === "nat" && isServiceChainName(c)));
}

/**
 * Restore input that removes kproxy's chains and every rule elsewhere that jumps to them
 * (kproxy's jump rules from the built-in chains), touching nothing else: one stage, or with
 * `chainsPerStage` (iptables-nft, many chains) the jump rules and shared chains first, then the
 * service chains flushed and deleted in batches, then the shared chains deleted. Empty when
 * nothing of kproxy's is left.
 */
export function cleanupStages(
  saved: ReadonlyMap<string, SavedTable>,
  ownsKubeFirewall: boolean,
  chainsPerStage = Infinity,
): string[] {
  const first: string[] = [];
  const last: string[] = [];
  let serviceChains: string[] = [];
  for (const table of ["filter", "nat"]) {
    const t = saved.get(table);
    const owned = new Set(ownedChains(t, table, ownsKubeFirewall));
    if (t === undefined || owned.size === 0) continue;
    const services = [...owned].filter(isServiceChainName);
    const staged = table === "nat" && services.length > chainsPerStage;
    const now = staged ? [...owned].filter((c) => !isServiceChainName(c)) : [...owned];
    first.push(`*${table}`);
    for (const c of now) first.push(`:${c} - [0:0]`);
    for (const line of t.rules) {
      const chain = ruleChain(line);
      if (owned.has(chain)) continue;
      const target = targetOf(splitWords(line));
      if (target !== null && owned.has(target)) first.push(`-D ${line.slice(3)}`);
    }
    if (staged) {
      serviceChains = services;
      last.push("*nat", ...now.map((c) => `-X ${c}`), "COMMIT");
    } else {
      for (const c of now) first.push(`-X ${c}`);
    }
    first.push("COMMIT");
  }
  if (first.length === 0) return [];
  const text = (lines: readonly string[]) => lines.join("\n") + "\n";
  const stages = [text(first), ...dropChainStages(serviceChains, chainsPerStage)];
  if (last.length > 0) stages.push(text(last));
  return stages;
}

/** iptables-save output cut down to the KUBE-* chains and the rules that jump into them. */
export function kubeRulesOnly(text: string): string {
  const out: string[] = [];
  for (const [table, t] of parseSave(text)) {
    const kube = t.chains.filter((c) => c.startsWith("KUBE-"));
    const rules = t.rules.filter((line) => {
      if (ruleChain(line).startsWith("KUBE-")) return true;
      return targetOf(splitWords(line))?.startsWith("KUBE-") ?? false;
    });
    if (kube.length === 0 && rules.length === 0) continue;
    out.push(`*${table}`, ...kube.map((c) => `:${c} - [0:0]`), ...rules, "COMMIT");
  }
  return out.length === 0 ? "" : out.join("\n") + "\n";
}
