/**
 * Removes what upstream kube-proxy installs, so a node can switch from kube-proxy to kproxy (and
 * back) without a reboot: `kproxy --cleanup --cleanup-kube-proxy`.
 *
 * - nftables mode: the tables `ip kube-proxy` and `ip6 kube-proxy`, when present, in one
 *   transaction.
 * - iptables mode and the iptables part of ipvs mode: in nat, filter and mangle of IPv4 and
 *   IPv6, through every iptables implementation that holds rules (iptables-nft and
 *   iptables-legacy), the chains kube-proxy creates (see {@link KUBE_PROXY_CHAINS} and
 *   {@link KUBE_PROXY_SERVICE_CHAIN_PREFIXES}) and every rule elsewhere that jumps into them —
 *   iptables-save, then one `iptables-restore --noflush` per table, so each table changes
 *   atomically.
 *
 * Nothing else is touched: kubelet's chains ({@link KUBELET_CHAINS}, e.g. KUBE-FIREWALL, which
 * kube-proxy's iptables mode also writes a copy of) stay, as upstream `kube-proxy --cleanup`
 * leaves them. ipvs virtual servers, ipsets and the kube-ipvs0 device are not removed.
 *
 * The planning ({@link kubeProxyCleanupRestore}) is pure; {@link cleanupKubeProxyRules} is the
 * I/O shell.
 */
import { parseSave, ruleChain, type SavedTable } from "../render/iptables/saved_rules.ts";
import { splitWords, targetOf } from "../render/iptables/restore_fake.ts";
import type { IPFamily } from "../snapshot/types.ts";
import { type RunToolOptions, runToolResult, type ToolResult } from "./run_tool.ts";

/** The iptables tables kube-proxy writes to. */
export type KubeProxyTable = "nat" | "filter" | "mangle";

/** The tables cleaned, in the order they are restored. */
export const KUBE_PROXY_TABLES: readonly KubeProxyTable[] = ["nat", "filter", "mangle"];

/**
 * The fixed chains upstream kube-proxy creates, per table: its iptables mode (including the
 * KUBE-PROXY-CANARY chains its rule monitor keeps in all three tables) and its ipvs mode.
 */
export const KUBE_PROXY_CHAINS: Readonly<Record<KubeProxyTable, readonly string[]>> = {
  nat: [
    "KUBE-SERVICES",
    "KUBE-NODEPORTS",
    "KUBE-POSTROUTING",
    "KUBE-MARK-MASQ",
    "KUBE-PROXY-CANARY",
    // ipvs mode
    "KUBE-NODE-PORT",
    "KUBE-LOAD-BALANCER",
  ],
  filter: [
    "KUBE-SERVICES",
    "KUBE-EXTERNAL-SERVICES",
    "KUBE-FORWARD",
    "KUBE-NODEPORTS",
    "KUBE-PROXY-FIREWALL",
    "KUBE-PROXY-CANARY",
    // ipvs mode
    "KUBE-NODE-PORT",
    "KUBE-SOURCE-RANGES-FIREWALL",
    "KUBE-IPVS-FILTER",
    "KUBE-IPVS-OUT-FILTER",
  ],
  mangle: ["KUBE-PROXY-CANARY"],
};

/**
 * Prefixes of kube-proxy's per-service nat chains: Cluster and Local policy, endpoint, external
 * and firewall chains, and KUBE-XLB- (the Local-policy chains of kube-proxy before 1.24).
 */
export const KUBE_PROXY_SERVICE_CHAIN_PREFIXES: readonly string[] = [
  "KUBE-SVC-",
  "KUBE-SVL-",
  "KUBE-SEP-",
  "KUBE-EXT-",
  "KUBE-FW-",
  "KUBE-XLB-",
];

/** kubelet's chains, which share the KUBE- prefix and are never removed. */
export const KUBELET_CHAINS: readonly string[] = [
  "KUBE-FIREWALL",
  "KUBE-KUBELET-CANARY",
  "KUBE-IPTABLES-HINT",
  "KUBE-MARK-DROP",
];

/** One rule kube-proxy keeps in a built-in chain to send packets into its own chains. */
export interface KubeProxyJumpRule {
  /** The table. */
  readonly table: KubeProxyTable;
  /** The built-in chain holding the rule. */
  readonly from: string;
  /** kube-proxy's chain it jumps to. */
  readonly to: string;
  /** The rule's comment, kube-proxy's exact words. */
  readonly comment: string;
}

/**
 * The jump rules of kube-proxy's iptables and ipvs modes, as its own clean-up knows them. The
 * clean-up removes every rule that jumps into a removed chain; these are the expected ones, any
 * other is reported.
 */
export const KUBE_PROXY_JUMP_RULES: readonly KubeProxyJumpRule[] = [
  // iptables mode
  jump(
    "filter",
    "INPUT",
    "KUBE-EXTERNAL-SERVICES",
    "kubernetes externally-visible service portals",
  ),
  jump(
    "filter",
    "FORWARD",
    "KUBE-EXTERNAL-SERVICES",
    "kubernetes externally-visible service portals",
  ),
  jump("filter", "INPUT", "KUBE-NODEPORTS", "kubernetes health check service ports"),
  jump("filter", "FORWARD", "KUBE-SERVICES", "kubernetes service portals"),
  jump("filter", "OUTPUT", "KUBE-SERVICES", "kubernetes service portals"),
  jump("filter", "FORWARD", "KUBE-FORWARD", "kubernetes forwarding rules"),
  jump("filter", "INPUT", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall"),
  jump("filter", "OUTPUT", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall"),
  jump("filter", "FORWARD", "KUBE-PROXY-FIREWALL", "kubernetes load balancer firewall"),
  jump("nat", "OUTPUT", "KUBE-SERVICES", "kubernetes service portals"),
  jump("nat", "PREROUTING", "KUBE-SERVICES", "kubernetes service portals"),
  jump("nat", "POSTROUTING", "KUBE-POSTROUTING", "kubernetes postrouting rules"),
  // ipvs mode (its nat jumps and KUBE-FORWARD are the same as above)
  jump("filter", "INPUT", "KUBE-NODE-PORT", "kubernetes health check rules"),
  jump("filter", "INPUT", "KUBE-PROXY-FIREWALL", "kube-proxy firewall rules"),
  jump("filter", "FORWARD", "KUBE-PROXY-FIREWALL", "kube-proxy firewall rules"),
  jump("filter", "INPUT", "KUBE-IPVS-FILTER", "kubernetes ipvs access filter"),
  jump("filter", "OUTPUT", "KUBE-IPVS-OUT-FILTER", "kubernetes ipvs access filter"),
];

function jump(table: KubeProxyTable, from: string, to: string, comment: string): KubeProxyJumpRule {
  return { table, from, to, comment };
}

/** True when `chain` is one kube-proxy creates in `table`. */
export function isKubeProxyChain(table: KubeProxyTable, chain: string): boolean {
  if (KUBE_PROXY_CHAINS[table].includes(chain)) return true;
  return table === "nat" && KUBE_PROXY_SERVICE_CHAIN_PREFIXES.some((p) => chain.startsWith(p));
}

/** What removing kube-proxy's rules from one table takes. */
export interface TableCleanup {
  /** The table. */
  readonly table: KubeProxyTable;
  /** kube-proxy's chains present in the table (flushed, then deleted). */
  readonly chains: readonly string[];
  /** Saved `-A` lines elsewhere that jump into those chains and match a known jump rule. */
  readonly jumpRules: readonly string[];
  /** Saved `-A` lines elsewhere that jump into those chains but are not kube-proxy's own. */
  readonly otherReferences: readonly string[];
  /** `iptables-restore --noflush` input removing all of the above in one commit. */
  readonly restore: string;
}

function isKnownJump(table: KubeProxyTable, line: string, target: string): boolean {
  const chain = ruleChain(line);
  const words = splitWords(line);
  const i = words.indexOf("--comment");
  const comment = i >= 0 ? words[i + 1] : undefined;
  return KUBE_PROXY_JUMP_RULES.some((j) =>
    j.table === table && j.from === chain && j.to === target && j.comment === comment
  );
}

function tableCleanup(table: KubeProxyTable, saved: SavedTable | undefined): TableCleanup | null {
  if (saved === undefined) return null;
  const chains = saved.chains.filter((c) => isKubeProxyChain(table, c));
  if (chains.length === 0) return null;
  const owned = new Set(chains);
  const jumpRules: string[] = [];
  const otherReferences: string[] = [];
  for (const line of saved.rules) {
    if (owned.has(ruleChain(line))) continue;
    const target = targetOf(splitWords(line));
    if (target === null || !owned.has(target)) continue;
    (isKnownJump(table, line, target) ? jumpRules : otherReferences).push(line);
  }
  const lines = [
    `*${table}`,
    // With --noflush, declaring an existing chain flushes it: no rule of ours references
    // another of ours after this, so every chain can then be deleted in any order.
    ...chains.map((c) => `:${c} - [0:0]`),
    ...[...jumpRules, ...otherReferences].map((line) => `-D ${line.slice(3)}`),
    ...chains.map((c) => `-X ${c}`),
    "COMMIT",
  ];
  return {
    table,
    chains,
    jumpRules,
    otherReferences,
    restore: lines.join("\n") + "\n",
  };
}

/**
 * Plans the removal of kube-proxy's iptables chains and jump rules from one family's
 * `iptables-save` output: one entry per table that holds any of kube-proxy's chains (none for a
 * clean ruleset). Pure.
 */
export function kubeProxyCleanupRestore(savedText: string): TableCleanup[] {
  const saved = parseSave(savedText);
  const out: TableCleanup[] = [];
  for (const table of KUBE_PROXY_TABLES) {
    const cleanup = tableCleanup(table, saved.get(table));
    if (cleanup !== null) out.push(cleanup);
  }
  return out;
}

/** Tables iptables-nft-save says it cannot show (written by nft directly in an iptables table). */
export function incompatibleTables(savedText: string): string[] {
  return [...savedText.matchAll(/^# Table `(\w+)' is incompatible/gm)].map((m) => m[1] as string);
}

/** The nftables tables upstream kube-proxy creates (`family name`). */
export const KUBE_PROXY_NFT_TABLES: readonly string[] = ["ip kube-proxy", "ip6 kube-proxy"];

/** kube-proxy's nftables tables among `nft list tables` output. */
export function kubeProxyNftTables(listing: string): string[] {
  const present = new Set(
    listing.split("\n").map((l) => l.trim()).filter((l) => l.startsWith("table "))
      .map((l) => l.slice("table ".length)),
  );
  return KUBE_PROXY_NFT_TABLES.filter((t) => present.has(t));
}

/** The nft script deleting `tables`; `add` first, so a table gone meanwhile is no error. */
export function nftDeleteScript(tables: readonly string[]): string {
  return tables.flatMap((t) => [`add table ${t}`, `delete table ${t}`]).join("\n") + "\n";
}

/** Runs one tool (tests substitute a fake). */
export type CleanupToolRunner = (
  tool: string,
  args: readonly string[],
  options: RunToolOptions,
) => Promise<ToolResult>;

/** Options of {@link cleanupKubeProxyRules}. */
export interface KubeProxyCleanupOptions {
  /** Run every tool inside this network namespace (tests and benches). */
  readonly netns?: string;
  /** Log sink. */
  readonly log?: (line: string) => void;
  /** Runs the tools (default: {@link runToolResult}). */
  readonly runner?: CleanupToolRunner;
  /** Whether a binary is installed (default: looked up on PATH). */
  readonly hasTool?: (name: string) => boolean;
}

/** What one iptables implementation and family had removed, per table. */
export interface IptablesCleanupReport {
  /** `nft` (iptables-nft) or `legacy` (iptables-legacy). */
  readonly variant: "nft" | "legacy";
  /** The family. */
  readonly family: IPFamily;
  /** The tables changed. */
  readonly tables: readonly TableCleanup[];
}

/** What {@link cleanupKubeProxyRules} removed. */
export interface KubeProxyCleanupResult {
  /** nftables tables deleted (`ip kube-proxy`, `ip6 kube-proxy`). */
  readonly nftablesTables: readonly string[];
  /** iptables changes, per implementation and family that had any. */
  readonly iptables: readonly IptablesCleanupReport[];
}

/** True when an executable `name` is in one of PATH's folders. */
export function onPath(name: string): boolean {
  const dirs = (Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(":");
  for (const dir of dirs) {
    if (dir === "") continue;
    try {
      const info = Deno.statSync(`${dir}/${name}`);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return true;
    } catch { /* not here */ }
  }
  return false;
}

const TOOL_TIMEOUT_MS = 300_000;
const VARIANTS = ["nft", "legacy"] as const;
const FAMILIES: readonly IPFamily[] = ["IPv4", "IPv6"];

function failure(argv: readonly string[], r: ToolResult): string {
  const detail = r.stderr.trim().split("\n").slice(0, 3).join(" | ");
  return `${argv.join(" ")} exited with ${r.code}${detail ? `: ${detail}` : ""}`;
}

/**
 * Removes upstream kube-proxy's nftables tables and iptables chains (every mode's), leaving
 * everything else. Tries every part even when one fails, then throws one error naming each
 * failure. A clean node is a no-op; running twice is the same as running once.
 */
export async function cleanupKubeProxyRules(
  options: KubeProxyCleanupOptions = {},
): Promise<KubeProxyCleanupResult> {
  const log = options.log ?? (() => {});
  const run = options.runner ?? runToolResult;
  const hasTool = options.hasTool ?? onPath;
  const where = options.netns !== undefined ? { netns: options.netns } : {};
  const tool = (name: string, args: readonly string[], stdin?: string) =>
    run(name, args, {
      ...where,
      ...(stdin !== undefined ? { stdin } : {}),
      timeoutMs: TOOL_TIMEOUT_MS,
    });
  const errors: string[] = [];

  // nftables mode.
  const nftablesTables: string[] = [];
  if (hasTool("nft")) {
    const listed = await tool("nft", ["list", "tables"]);
    if (listed.code !== 0) errors.push(failure(["nft", "list", "tables"], listed));
    else {
      const present = kubeProxyNftTables(listed.stdout);
      if (present.length > 0) {
        const r = await tool("nft", ["-f", "-"], nftDeleteScript(present));
        if (r.code !== 0) errors.push(failure(["nft", "-f", "-"], r));
        else {
          nftablesTables.push(...present);
          log(`cleanup: deleted kube-proxy's nftables tables ${present.join(", ")}`);
        }
      }
    }
  }

  // iptables and ipvs modes, through every iptables implementation installed.
  const iptables: IptablesCleanupReport[] = [];
  for (const variant of VARIANTS) {
    for (const family of FAMILIES) {
      const prefix = family === "IPv4" ? "iptables" : "ip6tables";
      const save = `${prefix}-${variant}-save`;
      const restore = `${prefix}-${variant}-restore`;
      if (!hasTool(save) || !hasTool(restore)) continue;
      const saved = await tool(save, []);
      if (saved.code !== 0) {
        errors.push(failure([save], saved));
        continue;
      }
      for (const t of incompatibleTables(saved.stdout)) {
        log(`cleanup: ${save} cannot read table ${t} (written by nft directly); left alone`);
      }
      const done: TableCleanup[] = [];
      for (const plan of kubeProxyCleanupRestore(saved.stdout)) {
        const args = ["--noflush", "-w"];
        const r = await tool(restore, args, plan.restore);
        if (r.code !== 0) {
          errors.push(failure([restore, ...args, `(table ${plan.table})`], r));
          continue;
        }
        done.push(plan);
        log(
          `cleanup: ${prefix}-${variant} ${plan.table}: deleted ${plan.chains.length} ` +
            `kube-proxy chains and ${plan.jumpRules.length} jump rules`,
        );
        for (const line of plan.otherReferences) {
          log(
            `cleanup: ${prefix}-${variant} ${plan.table}: deleted a rule jumping into a ` +
              `kube-proxy chain that kube-proxy did not write: ${line}`,
          );
        }
      }
      if (done.length > 0) iptables.push({ variant, family, tables: done });
    }
  }

  if (errors.length > 0) {
    throw new Error(`Cannot remove upstream kube-proxy's rules: ${errors.join("; ")}`);
  }
  if (nftablesTables.length === 0 && iptables.length === 0) {
    log("cleanup: no upstream kube-proxy rules found");
  }
  return { nftablesTables, iptables };
}
