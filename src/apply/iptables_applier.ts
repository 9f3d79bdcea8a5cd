/**
 * The iptables applier: the I/O shell that pipes rendered restore input to
 * `iptables-restore --noflush -w` and `ip6tables-restore`, through iptables-nft or
 * iptables-legacy.
 *
 * A full sync (the first, one asked for, one after any failure, and any sync where node or
 * options changed) reads `iptables-save`, then writes kproxy's chains in full, deletes service
 * chains nobody uses any more (including an earlier kube-proxy's, whose chain names are the same
 * by design) and inserts missing jump rules — all in one restore per family. Partial syncs send
 * only the changed service ports' chains and their rules in the shared chains, planned against
 * the applier's memory of what is live. A restore that fails leaves the old rules (each table
 * commits atomically), throws, and makes the next sync full. Stale UDP conntrack entries are then
 * deleted (conntrack.ts).
 */
import type { IPFamily } from "../model/ip.ts";
import {
  familyContext,
  type FamilyContextOptions,
  INVALID_DROPPED_COUNTER,
  LOCALHOST_NODEPORTS_COUNTER,
} from "../render/iptables/family_context.ts";
import { NfacctClient } from "./nfacct.ts";
import {
  type LiveServicePort,
  renderFamilyRestore,
  renderServicePorts,
} from "../render/iptables/full_restore.ts";
import { renderPartialRestore } from "../render/iptables/partial_restore.ts";
import {
  cleanupStages,
  kubeRulesOnly,
  missingJumpRules,
  parseSave,
  staleServiceChains,
} from "../render/iptables/saved_rules.ts";
import { KUBE_FIREWALL } from "../render/iptables/service_rules.ts";
import {
  JUMP_RULES,
  KUBE_FIREWALL_JUMP_RULES,
  writesKubeFirewall,
} from "../render/iptables/table_layout.ts";
import type { ProxySnapshot } from "../snapshot/types.ts";
import type { Applier, SyncRequest, SyncResult } from "./applier.ts";
import { registerApplier } from "./appliers.ts";
import {
  conntrackCleanupRequired,
  type ConntrackReconcileReport,
  reconcileConntrack,
} from "./conntrack.ts";
import { type RunToolOptions, runToolResult, ToolError, type ToolResult } from "./run_tool.ts";
import { nextGeneration, readNftGeneration } from "./nft_generation.ts";

/** Which iptables implementation programs the kernel. */
export type IptablesVariant = "nft" | "legacy";

/** The binaries the applier runs. */
export interface IptablesTools {
  /** `iptables-restore` for IPv4. */
  readonly restore4: string;
  /** `ip6tables-restore` for IPv6. */
  readonly restore6: string;
  /** `iptables-save` for IPv4. */
  readonly save4: string;
  /** `ip6tables-save` for IPv6. */
  readonly save6: string;
  /** `sysctl`, for route_localnet. */
  readonly sysctl: string;
  /** `conntrack`. */
  readonly conntrack: string;
}

/** Runs one tool (tests substitute a fake). */
export type ToolRunner = (
  tool: string,
  args: readonly string[],
  options: RunToolOptions,
) => Promise<ToolResult>;

/** Options of {@link IptablesApplier}. */
export interface IptablesApplierOptions {
  /** Run every tool inside this network namespace (tests and benches). */
  readonly netns?: string;
  /** iptables-nft or iptables-legacy; detected with `iptables --version` when absent. */
  readonly variant?: IptablesVariant;
  /** Log sink. */
  readonly log?: (line: string) => void;
  /** Families to program (default both). */
  readonly families?: readonly IPFamily[];
  /** Binaries to use instead of the variant's (tests: a restore that always fails). */
  readonly tools?: Partial<IptablesTools>;
  /** Delete stale UDP conntrack entries after syncs that change UDP services (default true). */
  readonly conntrackCleanup?: boolean;
  /** Add `--random-fully` to MASQUERADE (default true; iptables ≥ 1.6.2). */
  readonly randomFully?: boolean;
  /**
   * Makes sure kube-proxy's nfacct counters exist and returns the names that do (default: through
   * netlink in the tools' namespace with the default runner; none with a test runner). Counters
   * that cannot be made are logged once and left out of the rules, as upstream does.
   */
  readonly ensureNfacctCounters?: (names: readonly string[]) => string[];
  /** Kill a restore after this long (default 30 minutes: big nft loads are slow). */
  readonly restoreTimeoutMs?: number;
  /** Runs the tools (default: {@link runToolResult}). */
  readonly runner?: ToolRunner;
  /**
   * Reads the namespace's nf_tables generation (default: by netlink when the tools run in this
   * process's namespace with the default runner). iptables-nft commits one nf_tables transaction
   * per table section that changes something; iptables-legacy commits none, so with it the
   * generation never vouches for kproxy's rules and every resync rewrites them.
   */
  readonly generation?: () => number | null;
  /**
   * Restores that would create or delete more chains than this are cut into stages. Default
   * with iptables-nft, whose `--noflush` restore time grows with the square of the chains in
   * one input: 500, or 4 × √(rules in the table) when larger. Unlimited with iptables-legacy,
   * which rewrites the whole table on every restore anyway.
   */
  readonly chainsPerStage?: number;
}

/** The binaries of a variant (`iptables-nft-restore`, `ip6tables-legacy-save`, ...). */
export function iptablesTools(variant: IptablesVariant): IptablesTools {
  return {
    restore4: `iptables-${variant}-restore`,
    restore6: `ip6tables-${variant}-restore`,
    save4: `iptables-${variant}-save`,
    save6: `ip6tables-${variant}-save`,
    sysctl: "sysctl",
    conntrack: "conntrack",
  };
}

/** The variant `iptables --version` reports (`iptables v1.8.9 (nf_tables)` → nft). */
export function parseIptablesVariant(versionText: string): IptablesVariant {
  if (/nf_tables/.test(versionText)) return "nft";
  if (/legacy/.test(versionText) || /^iptables v1\.[0-7]\./.test(versionText)) return "legacy";
  throw new Error(`Cannot tell the iptables variant from ${JSON.stringify(versionText.trim())}`);
}

/** What the applier remembers of one live family. */
interface FamilyLive {
  /** The family context the rules were written for; a change forces a full sync. */
  readonly contextKey: string;
  /** Per service port: its shared-chain rules and owned chains. */
  readonly services: Map<string, LiveServicePort>;
  /** Rules kproxy owns in this family. */
  ruleCount: number;
}

const FAMILIES: readonly IPFamily[] = ["IPv4", "IPv6"];
const SAVE_TIMEOUT_MS = 300_000;
const ROUTE_LOCALNET = "net.ipv4.conf.all.route_localnet";
const BE_LIBERAL = "net.netfilter.nf_conntrack_tcp_be_liberal";
const NFACCT_COUNTERS: readonly string[] = [INVALID_DROPPED_COUNTER, LOCALHOST_NODEPORTS_COUNTER];

/**
 * kube-proxy's nfacct counters through netlink in `netns` (this process's namespace without):
 * the ones that exist after creating the missing. Without nfacct, says so once and gives none.
 */
function nfacctEnsurer(
  netns: string | undefined,
  log: (line: string) => void,
): (names: readonly string[]) => string[] {
  let client: NfacctClient | null | undefined;
  const failed = new Set<string>();
  return (names) => {
    if (client === undefined) {
      try {
        client = NfacctClient.open(netns === undefined ? {} : { netns });
      } catch (e) {
        client = null;
        log(
          `iptables: ${e instanceof Error ? e.message : e}; the nfacct metrics ` +
            "(kubeproxy_iptables_*_packets_total) are not available",
        );
      }
    }
    if (client === null) return [];
    const c = client;
    return names.filter((name) => {
      try {
        c.ensure(name);
        failed.delete(name);
        return true;
      } catch (e) {
        if (!failed.has(name)) {
          failed.add(name);
          log(
            `iptables: cannot create nfacct counter ${name}: ${e instanceof Error ? e.message : e}`,
          );
        }
        return false;
      }
    });
  };
}
/** iptables 1.8.9: 1,100-chain batches load 2,000 services × 10 in 1.4 s, one input in 38 s. */
const NFT_CHAINS_PER_STAGE = 500;

/** Table sections of a restore input that change something (each is one nf_tables commit). */
export function changingSections(restoreInput: string): number {
  let count = 0;
  let lines = 0;
  for (const line of restoreInput.split("\n")) {
    if (line.startsWith("*")) lines = 0;
    else if (line === "COMMIT") {
      if (lines > 0) count++;
    } else if (line !== "" && !line.startsWith("#")) lines++;
  }
  return count;
}

/** Programs snapshots as kube-proxy-shaped iptables rules. */
export class IptablesApplier implements Applier {
  /** Always `iptables`. */
  readonly name = "iptables";
  readonly #netns: string | undefined;
  readonly #log: (line: string) => void;
  readonly #families: readonly IPFamily[];
  readonly #toolOverrides: Partial<IptablesTools>;
  readonly #conntrackCleanup: boolean;
  readonly #randomFully: boolean;
  readonly #ensureNfacct: (names: readonly string[]) => string[];
  /** nf_conntrack_tcp_be_liberal, read once at the first sync (as upstream at start). */
  #conntrackTCPLiberal: boolean | null = null;
  /** The nfacct counters that exist, as of the last full sync. */
  #nfacctCounters: readonly string[] = [];
  readonly #restoreTimeoutMs: number;
  readonly #run: ToolRunner;
  readonly #chainsPerStageOption: number | undefined;
  #variant: IptablesVariant | null;
  #tools: IptablesTools | null = null;
  /** What is live, per family; null before the first sync and after any failure. */
  #live: Map<IPFamily, FamilyLive> | null = null;
  /** Families whose KUBE-FIREWALL chain kproxy created (so cleanup may remove it). */
  readonly #ownsKubeFirewall = new Set<IPFamily>();
  #lastSnapshot: ProxySnapshot | null = null;
  #lastFull = false;
  readonly #readGeneration: () => number | null;
  /** The nf_tables generation right after this applier's last restore, when it vouches for it. */
  #generation: number | null = null;
  /** During a sync: the generation the next restore must start from ("any" for a full sync). */
  #custody: number | "any" | null = null;

  /** Makes an applier; nothing runs until the first sync. */
  constructor(options: IptablesApplierOptions = {}) {
    this.#netns = options.netns;
    this.#log = options.log ?? (() => {});
    this.#families = options.families ?? FAMILIES;
    this.#variant = options.variant ?? null;
    this.#toolOverrides = options.tools ?? {};
    this.#conntrackCleanup = options.conntrackCleanup ?? true;
    this.#randomFully = options.randomFully ?? true;
    this.#ensureNfacct = options.ensureNfacctCounters ??
      (options.runner === undefined ? nfacctEnsurer(options.netns, this.#log) : () => []);
    this.#restoreTimeoutMs = options.restoreTimeoutMs ?? 1_800_000;
    this.#run = options.runner ?? runToolResult;
    this.#chainsPerStageOption = options.chainsPerStage;
    this.#readGeneration = options.generation ??
      (options.netns === undefined && options.runner === undefined
        ? readNftGeneration
        : () => null);
  }

  /**
   * How many chains one restore may write (see {@link IptablesApplierOptions.chainsPerStage}).
   * With iptables-nft each restore first reads the table (≈ 0.2 s at 320,000 rules) and then
   * slows down with the square of the chains it writes, so the best batch grows with the table:
   * measured at 10,000 services × 10 endpoints, 500 chains per restore loaded an empty table in
   * 9.7 s and 2,000 rewrote the loaded one in 31 s (500: 56 s).
   */
  async #chainsPerStage(existingRules: number): Promise<number> {
    if (this.#chainsPerStageOption !== undefined) return this.#chainsPerStageOption;
    if ((await this.variant()) !== "nft") return Infinity;
    return Math.max(NFT_CHAINS_PER_STAGE, Math.round(4 * Math.sqrt(existingRules)));
  }

  /** True when the next sync will be full whatever it is asked (first, or after a failure). */
  get needsFullSync(): boolean {
    return this.#live === null;
  }

  /** True when the last successful sync was a full one. */
  get lastSyncWasFull(): boolean {
    return this.#lastFull;
  }

  /** The variant in use (detected on first use unless given). */
  async variant(): Promise<IptablesVariant> {
    if (this.#variant === null) {
      const r = await this.#tool("iptables", ["--version"]);
      if (r.code !== 0) {
        throw new Error(`Cannot run iptables --version: ${r.stderr.trim() || `exit ${r.code}`}`);
      }
      this.#variant = parseIptablesVariant(r.stdout + r.stderr);
      this.#log(`iptables: using iptables-${this.#variant}`);
    }
    return this.#variant;
  }

  async #toolsFor(): Promise<IptablesTools> {
    if (this.#tools === null) {
      this.#tools = { ...iptablesTools(await this.variant()), ...this.#toolOverrides };
    }
    return this.#tools;
  }

  #tool(tool: string, args: readonly string[], stdin?: string, timeoutMs = SAVE_TIMEOUT_MS) {
    return this.#run(tool, args, {
      ...(this.#netns !== undefined ? { netns: this.#netns } : {}),
      ...(stdin !== undefined ? { stdin } : {}),
      timeoutMs,
    });
  }

  async #save(family: IPFamily): Promise<string> {
    const tools = await this.#toolsFor();
    const tool = family === "IPv4" ? tools.save4 : tools.save6;
    const r = await this.#tool(tool, []);
    if (r.code !== 0) throw new ToolError([tool], r);
    return r.stdout;
  }

  async #restore(family: IPFamily, text: string): Promise<void> {
    const tools = await this.#toolsFor();
    const tool = family === "IPv4" ? tools.restore4 : tools.restore6;
    const args = ["--noflush", "-w"];
    const before = this.#readGeneration();
    const r = await this.#tool(tool, args, text, this.#restoreTimeoutMs);
    if (r.code !== 0) throw new ToolError([tool, ...args], r);
    // Still vouched for when this restore's transactions were the only ones since the last.
    const after = this.#readGeneration();
    const start = this.#custody;
    let expected = before;
    for (let i = 0; expected !== null && i < changingSections(text); i++) {
      expected = nextGeneration(expected);
    }
    this.#custody = (start === "any" || start === before) && before !== null &&
        after === expected && expected !== before
      ? after
      : null;
  }

  /** kube-proxy sets route_localnet=1 so NodePorts answer on 127.0.0.1; so does kproxy. */
  async #ensureRouteLocalnet(): Promise<void> {
    const tools = await this.#toolsFor();
    const r = await this.#tool(tools.sysctl, ["-n", ROUTE_LOCALNET]);
    if (r.code === 0 && r.stdout.trim() === "1") return;
    const w = await this.#tool(tools.sysctl, ["-w", `${ROUTE_LOCALNET}=1`]);
    if (w.code !== 0) throw new ToolError([tools.sysctl, "-w", `${ROUTE_LOCALNET}=1`], w);
    this.#log(`iptables: set ${ROUTE_LOCALNET}=1 for localhost NodePorts`);
  }

  /** What the rules depend on beyond the snapshot: host facts read by this applier. */
  #renderOptions(): FamilyContextOptions {
    return {
      randomFully: this.#randomFully,
      conntrackTCPLiberal: this.#conntrackTCPLiberal === true,
      nfacctCounters: this.#nfacctCounters,
    };
  }

  /** Reads nf_conntrack_tcp_be_liberal (once) and ensures the nfacct counters (full syncs). */
  async #readHostFacts(full: boolean): Promise<void> {
    if (this.#conntrackTCPLiberal === null) {
      const tools = await this.#toolsFor();
      const r = await this.#tool(tools.sysctl, ["-n", BE_LIBERAL]);
      this.#conntrackTCPLiberal = r.code === 0 && r.stdout.trim() !== "" &&
        r.stdout.trim() !== "0";
      if (this.#conntrackTCPLiberal) {
        this.#log("iptables: nf_conntrack_tcp_be_liberal set, no DROP rule for INVALID packets");
      }
    }
    if (full) this.#nfacctCounters = this.#ensureNfacct(NFACCT_COUNTERS);
  }

  /** Makes `request.snapshot` live; throws (old rules kept) when a restore fails. */
  async sync(request: SyncRequest): Promise<SyncResult> {
    const { snapshot } = request;
    await this.#readHostFacts(request.full || this.#live === null);
    const opts = this.#renderOptions();
    const contextKeys = new Map(
      this.#families.map((f) => [f, JSON.stringify(familyContext(snapshot, f, opts))]),
    );
    const live = this.#live;
    // A periodic resync when no nf_tables transaction was committed in this namespace since our
    // last restore: the kernel holds what we wrote, so only the changes need restoring.
    const untouched = request.full && request.resync === true && live !== null &&
      this.#generation !== null && this.#readGeneration() === this.#generation;
    const full = (request.full && !untouched) || live === null ||
      this.#families.some((f) => live.get(f)?.contextKey !== contextKeys.get(f));
    this.#custody = full ? "any" : this.#generation;
    const vouched = this.#generation;
    const next = new Map<IPFamily, FamilyLive>();
    let linesSent = 0;
    try {
      for (const family of this.#families) {
        const key = contextKeys.get(family) as string;
        if (full) {
          linesSent += await this.#fullSync(snapshot, family, key, next);
        } else {
          const before = (live as Map<IPFamily, FamilyLive>).get(family) as FamilyLive;
          const plan = renderPartialRestore(
            snapshot,
            family,
            before.services,
            request.changedServicePorts,
            { ...opts, chainsPerStage: await this.#chainsPerStage(before.ruleCount) },
          );
          for (const stage of plan.stages) await this.#restore(family, stage);
          linesSent += plan.lines;
          // Only now that the kernel took it: update the memory.
          for (const [id, after] of plan.updates) {
            before.ruleCount -= before.services.get(id)?.ruleCount ?? 0;
            if (after === null) before.services.delete(id);
            else {
              before.services.set(id, after);
              before.ruleCount += after.ruleCount;
            }
          }
          next.set(family, before);
        }
      }
    } catch (error) {
      // Each table commits atomically: what failed kept its old rules. Start over next time.
      this.#live = null;
      this.#generation = null;
      throw error;
    }
    // No restore ran: nothing changed hands. Otherwise the last restore's generation, if it
    // vouched and nothing was committed since.
    const custody = this.#custody;
    this.#generation = custody === (full ? "any" : vouched)
      ? vouched
      : typeof custody === "number" && this.#readGeneration() === custody
      ? custody
      : null;
    this.#live = next;
    this.#lastFull = full;
    const prev = this.#lastSnapshot;
    this.#lastSnapshot = snapshot;

    let conntrack: ConntrackReconcileReport[] = [];
    if (
      this.#conntrackCleanup &&
      conntrackCleanupRequired(prev, snapshot, full ? undefined : request.changedServicePorts)
    ) {
      const tools = await this.#toolsFor();
      conntrack = await reconcileConntrack(
        snapshot,
        this.#families,
        (args) => this.#tool(tools.conntrack, args, undefined, 60_000),
        { log: this.#log },
      );
    }
    let ruleCount = 0;
    for (const f of next.values()) ruleCount += f.ruleCount;
    const conntrackCleared = conntrack.reduce((n, r) => n + r.deleted, 0);
    return { full, linesSent, ruleCount, conntrackCleared, conntrack };
  }

  async #fullSync(
    snapshot: ProxySnapshot,
    family: IPFamily,
    contextKey: string,
    next: Map<IPFamily, FamilyLive>,
  ): Promise<number> {
    const saved = parseSave(await this.#save(family));
    const existing = (saved.get("nat")?.rules.length ?? 0) +
      (saved.get("filter")?.rules.length ?? 0);
    const opts = {
      ...this.#renderOptions(),
      chainsPerStage: await this.#chainsPerStage(existing),
    };
    const ctx = familyContext(snapshot, family, opts);
    const keep = new Set<string>();
    for (const { rules } of renderServicePorts(snapshot, family, opts)) {
      for (const c of rules.chains) keep.add(c.name);
    }
    const kubeFirewall = writesKubeFirewall(ctx);
    const wanted = kubeFirewall ? [...JUMP_RULES, ...KUBE_FIREWALL_JUMP_RULES] : JUMP_RULES;
    const staleNatChains = staleServiceChains(saved, keep);
    const insertJumps = missingJumpRules(saved, wanted);
    const ruleset = renderFamilyRestore(snapshot, family, { ...opts, staleNatChains, insertJumps });
    if (kubeFirewall && ctx.family === "IPv4") await this.#ensureRouteLocalnet();
    // KUBE-FIREWALL is kubelet's too: cleanup removes it only when kproxy created it.
    const firewallExisted = saved.get("filter")?.chains.includes(KUBE_FIREWALL) ?? false;
    if (kubeFirewall && !firewallExisted) this.#ownsKubeFirewall.add(family);
    for (const stage of ruleset.stages) await this.#restore(family, stage);
    if (ruleset.stages.length > 1) {
      this.#log(`iptables: ${family} full sync in ${ruleset.stages.length} restores`);
    }
    if (staleNatChains.length > 0) {
      this.#log(`iptables: ${family} deleted ${staleNatChains.length} stale service chains`);
    }
    next.set(family, {
      contextKey,
      services: new Map(ruleset.services),
      ruleCount: ruleset.ruleCount,
    });
    return ruleset.lines;
  }

  /** iptables-save of the KUBE-* chains and the rules that jump into them, per family. */
  async liveRules(): Promise<string> {
    const out: string[] = [];
    for (const family of this.#families) {
      const tools = await this.#toolsFor();
      const kube = kubeRulesOnly(await this.#save(family));
      out.push(`# ${family}: ${family === "IPv4" ? tools.save4 : tools.save6}\n${kube}`);
    }
    return out.join("");
  }

  /**
   * Removes kproxy's chains and the rules that jump into them, nothing else. kproxy's chain
   * names are kube-proxy's, so this also removes what an upstream kube-proxy left behind, as
   * `kube-proxy --cleanup` would. KUBE-FIREWALL (kubelet's) goes only if kproxy created it.
   */
  async cleanup(): Promise<void> {
    for (const family of this.#families) {
      const saved = parseSave(await this.#save(family));
      const existing = (saved.get("nat")?.rules.length ?? 0) +
        (saved.get("filter")?.rules.length ?? 0);
      const stages = cleanupStages(
        saved,
        this.#ownsKubeFirewall.has(family),
        await this.#chainsPerStage(existing),
      );
      for (const stage of stages) await this.#restore(family, stage);
      this.#ownsKubeFirewall.delete(family);
    }
    this.#live = null;
    this.#lastSnapshot = null;
  }
}

registerApplier("iptables", (options) => new IptablesApplier(options));
