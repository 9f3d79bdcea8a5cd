/**
 * The nftables applier: the I/O shell that pipes rendered transactions to `nft -f -`.
 *
 * The first sync (and the first after a failure) recreates both `kproxy` tables from scratch in
 * one transaction. Later full syncs flush the tables and write them again in one transaction,
 * keeping session-affinity state. Partial syncs send only the chains, sets and map elements of
 * the changed service ports, planned against the applier's memory of what is live. nft applies
 * a transaction all-or-nothing, so a failure leaves the previous rules and makes the next sync
 * a from-scratch one. Stale UDP conntrack entries are then deleted (conntrack.ts).
 */
import {
  type FamilyTable,
  fullTableText,
  planIncremental,
  renderFamily,
  ruleCount,
  servicePortObjects,
} from "../render/nftables/table_plan.ts";
import { TABLE_NAME } from "../render/nftables/names.ts";
import type { IPFamily, ProxySnapshot } from "../snapshot/types.ts";
import type { Applier, SyncRequest, SyncResult } from "./applier.ts";
import { registerApplier } from "./appliers.ts";
import { conntrackCleanupRequired, reconcileConntrack } from "./conntrack.ts";
import { runTool, runToolResult } from "./run_tool.ts";
import { nextGeneration, readNftGeneration } from "./nft_generation.ts";
import { compileScript } from "./netlink/compile_script.ts";
import { UnsupportedNftText } from "./netlink/compile_values.ts";
import { type CommitTiming, NftablesSocket } from "./netlink/socket.ts";

/** Options of {@link NftablesApplier}. */
export interface NftablesApplierOptions {
  /** Run nft and conntrack inside this network namespace (tests and benches). */
  readonly netns?: string;
  /** The nft binary (default `nft`). */
  readonly nftPath?: string;
  /** The conntrack binary (default `conntrack`). */
  readonly conntrackPath?: string;
  /** Log sink. */
  readonly log?: (line: string) => void;
  /** Delete stale UDP conntrack entries after syncs that change UDP services (default true). */
  readonly conntrackCleanup?: boolean;
  /** The families to program (default both; IPv4 only on hosts without IPv6). */
  readonly families?: readonly IPFamily[];
  /**
   * Reads the namespace's nf_tables generation (default: by netlink when nft runs in this
   * process's namespace; never with `netns`). Null means unknown: resyncs rewrite everything.
   */
  readonly generation?: () => number | null;
  /**
   * Send incremental syncs as nf_tables netlink batches instead of through `nft -f` (default:
   * on with the real `nft`, off when `nftPath` names another program, as tests' fakes do). The
   * first load, recovery and cleanup always go through `nft -f`.
   */
  readonly netlink?: boolean;
}
const NFT_TIMEOUT_MS = 120_000;
/** Each this many characters of script add 1 ms to the timeout (a 10k-service load: +5 min). */
const NFT_TIMEOUT_CHARS_PER_MS = 50;

/** The kind of transaction a sync sends. */
export type NftablesSyncKind = "scratch" | "flush" | "partial";

/** How a sync's transaction reached the kernel. */
export type NftablesTransport = "nft" | "netlink";

/**
 * The transaction that rewrites a family's table completely. `live` (what this process last
 * made live, with the same fixed part) lets it flush instead of delete, which keeps affinity
 * sets and their state; without it the table is deleted and recreated.
 */
export function fullTransaction(next: FamilyTable, live: FamilyTable | null): string[] {
  const t = `${next.tableFamily} ${TABLE_NAME}`;
  const lines = [`add table ${t}`];
  if (live === null) {
    lines.push(`delete table ${t}`);
  } else {
    lines.push(`flush table ${t}`);
    for (const s of next.fixed.sets) {
      if (s.declaration.startsWith("typeof ")) {
        // nft 1.0.6 cannot add a rule that uses an existing `typeof … : ip daddr . th dport` map
        // ("conflicting protocols specified: ip vs. th"): such maps (kproxy's endpoint maps,
        // which hold no state) are deleted and declared anew, after the flush unbound them.
        lines.push(`delete ${s.kind} ${t} ${s.name}`);
        continue;
      }
      lines.push(`add ${s.kind} ${t} ${s.name} { ${s.declaration} }`);
      lines.push(`flush ${s.kind} ${t} ${s.name}`);
    }
    const before = servicePortObjects(live);
    const after = servicePortObjects(next);
    for (const name of before.chains.keys()) {
      if (!after.chains.has(name)) lines.push(`delete chain ${t} ${name}`);
    }
    for (const [name, s] of before.sets) {
      if (after.sets.get(name)?.declaration !== s.declaration) {
        lines.push(`delete set ${t} ${name}`);
      }
    }
  }
  lines.push(fullTableText(next).trimEnd());
  return lines;
}

/** Programs snapshots into the `ip kproxy` and `ip6 kproxy` tables with nft. */
export class NftablesApplier implements Applier {
  /** Always `nftables`. */
  readonly name = "nftables";
  readonly #netns: string | undefined;
  readonly #nft: string;
  readonly #conntrack: string;
  readonly #log: (line: string) => void;
  readonly #conntrackCleanup: boolean;
  readonly #families: readonly IPFamily[];
  /** What is live, per family; null before the first sync and after a failure. */
  #live: FamilyTable[] | null = null;
  #lastSnapshot: ProxySnapshot | null = null;
  #lastKind: NftablesSyncKind | null = null;
  readonly #readGeneration: () => number | null;
  /** The nf_tables generation right after this applier's last transaction, when known. */
  #generation: number | null = null;
  /** The netlink socket of the fast path: undefined until first used, null when unavailable. */
  #socket: NftablesSocket | null | undefined;
  #lastTransport: NftablesTransport | null = null;
  #lastCommit: CommitTiming | null = null;
  /** Rules in the live tables (kept up to date by each sync, never counted afresh after one). */
  #ruleCount = 0;

  /** Makes an applier; nothing runs until the first sync. */
  constructor(options: NftablesApplierOptions = {}) {
    this.#netns = options.netns;
    this.#nft = options.nftPath ?? "nft";
    this.#conntrack = options.conntrackPath ?? "conntrack";
    this.#log = options.log ?? (() => {});
    this.#conntrackCleanup = options.conntrackCleanup ?? true;
    this.#families = options.families ?? ["IPv4", "IPv6"];
    const netns = options.netns;
    this.#readGeneration = options.generation ?? (() => readNftGeneration(netns));
    if (!(options.netlink ?? options.nftPath === undefined)) this.#socket = null;
  }

  /** Bytes and kernel time of the last netlink batch (for benches: the kernel's floor). */
  get lastNetlinkCommit(): CommitTiming | null {
    return this.#lastCommit;
  }

  /** How the last successful sync reached the kernel (for tests, benches and logs). */
  get lastTransport(): NftablesTransport | null {
    return this.#lastTransport;
  }

  /** The fast path's socket, opened on first use; null when netlink cannot be used. */
  #netlink(): NftablesSocket | null {
    if (this.#socket !== undefined) return this.#socket;
    try {
      this.#socket = NftablesSocket.open(this.#netns !== undefined ? { netns: this.#netns } : {});
    } catch (error) {
      this.#log(`nftables: incremental syncs go through nft -f: ${(error as Error).message}`);
      this.#socket = null;
    }
    return this.#socket;
  }

  /**
   * Sends a partial sync's commands as one netlink batch; false when the compiler does not
   * handle one of them (the caller then uses `nft -f`). Throws when the kernel refuses it.
   */
  async #sendNetlink(lines: readonly string[], live: readonly FamilyTable[]): Promise<boolean> {
    const socket = this.#netlink();
    if (socket === null) return false;
    let compiled;
    try {
      compiled = compileScript(lines, {
        setDeclaration: (family, name) =>
          live.find((t) => t.tableFamily === family)?.fixed.sets.find((s) => s.name === name)
            ?.declaration,
      });
    } catch (error) {
      if (!(error instanceof UnsupportedNftText)) throw error;
      this.#log(`nftables: this sync goes through nft -f: ${error.message}`);
      return false;
    }
    if (compiled.messages.length === 0) return true;
    this.#lastCommit = await socket.commit(
      compiled.messages,
      (i) => `"${compiled.commands[i] ?? "?"}"`,
      { quick: !compiled.validates },
    );
    return true;
  }

  /** The kind of the last successful sync (for tests and logs). */
  get lastSyncKind(): NftablesSyncKind | null {
    return this.#lastKind;
  }

  /** True when the next sync will be full whatever it is asked (first, or after a failure). */
  get needsFullSync(): boolean {
    return this.#live === null;
  }

  #toolOptions(stdin?: string) {
    return {
      ...(this.#netns !== undefined ? { netns: this.#netns } : {}),
      ...(stdin !== undefined ? { stdin } : {}),
      // A big load on a busy machine is slow, not stuck: killing it throws the work away and
      // the retry costs as much again (30 nodes' first loads at 10k services on 2 cores did).
      timeoutMs: NFT_TIMEOUT_MS + Math.ceil((stdin?.length ?? 0) / NFT_TIMEOUT_CHARS_PER_MS),
    };
  }

  /** Makes `request.snapshot` live; throws (old rules kept) when nft fails. */
  async sync(request: SyncRequest): Promise<SyncResult> {
    const { snapshot } = request;
    const live = this.#live;
    // A periodic resync when no nftables transaction at all was committed in this namespace
    // since ours: the kernel holds exactly what we wrote, so only the changes need sending.
    const untouched = request.full && request.resync === true && live !== null &&
      this.#generation !== null && this.#readGeneration() === this.#generation;
    const partialOK = (!request.full || untouched) && live !== null;
    let next: FamilyTable[];
    let kind: NftablesSyncKind;
    let lines: string[];
    let commit: () => void;
    const partial = partialOK
      ? this.#families.map((f) => renderFamily(snapshot, f, request.changedServicePorts))
      : null;
    if (
      partial !== null && live !== null &&
      partial.every((p, i) => p.fixedKey === live[i]?.fixedKey)
    ) {
      const plans = partial.map((p, i) =>
        planIncremental(live[i] as FamilyTable, p, request.changedServicePorts)
      );
      kind = "partial";
      lines = plans.flatMap((p) => p.commands);
      next = live;
      commit = () => {
        plans.forEach((p) => p.commit());
        this.#ruleCount += plans.reduce((n, p) => n + p.ruleDelta, 0);
      };
    } else {
      next = this.#families.map((f) => renderFamily(snapshot, f));
      const keep = live !== null && next.every((n, i) => n.fixedKey === live[i]?.fixedKey);
      kind = keep ? "flush" : "scratch";
      lines = next.flatMap((n, i) => fullTransaction(n, keep ? live[i] ?? null : null));
      commit = () => {
        this.#live = next;
        this.#ruleCount = next.reduce((n, t) => n + ruleCount(t), 0);
      };
    }

    const script = lines.join("\n") + "\n";
    const linesSent = lines.length === 0 ? 0 : script.split("\n").length - 1;
    let transport: NftablesTransport = "nft";
    if (lines.length > 0) {
      const before = this.#readGeneration();
      try {
        if (kind === "partial" && live !== null && await this.#sendNetlink(lines, live)) {
          transport = "netlink";
        } else {
          await runTool(this.#nft, ["-f", "-"], this.#toolOptions(script));
        }
      } catch (error) {
        // nft transactions are atomic: the old rules stay. Rewrite everything next time.
        this.#live = null;
        this.#generation = null;
        throw error;
      }
      // Trusted only when ours was the one transaction between the two reads and, for a partial
      // sync (which repairs nothing else), when nobody had committed since our last one either.
      const after = this.#readGeneration();
      const custody = kind !== "partial" || before === this.#generation;
      this.#generation = custody && before !== null && after === nextGeneration(before)
        ? after
        : null;
    }
    commit();
    this.#lastKind = kind;
    this.#lastTransport = transport;
    // Open the fast path's socket now, not on the first change (setns, libc): nothing waits yet.
    if (kind !== "partial") this.#netlink();
    const prev = this.#lastSnapshot;
    this.#lastSnapshot = snapshot;

    const conntrack = this.#conntrackCleanup &&
        conntrackCleanupRequired(
          prev,
          snapshot,
          kind === "partial" ? request.changedServicePorts : undefined,
        )
      ? await reconcileConntrack(
        snapshot,
        this.#families,
        (args) => runToolResult(this.#conntrack, args, this.#toolOptions()),
        { log: this.#log },
      )
      : [];
    return {
      full: kind !== "partial",
      linesSent,
      ruleCount: this.#ruleCount,
      conntrackCleared: conntrack.reduce((n, r) => n + r.deleted, 0),
      conntrack,
    };
  }

  /** `nft list table ip kproxy` and `ip6 kproxy`, as the kernel reports them. */
  async liveRules(): Promise<string> {
    const out: string[] = [];
    for (const family of ["ip", "ip6"]) {
      const result = await runToolResult(
        this.#nft,
        ["list", "table", family, TABLE_NAME],
        this.#toolOptions(),
      );
      if (result.code === 0) out.push(result.stdout);
      else if (!/No such file or directory/.test(result.stderr)) {
        throw new Error(`Cannot list table ${family} ${TABLE_NAME}: ${result.stderr.trim()}`);
      }
    }
    return out.join("");
  }

  /** Deletes both `kproxy` tables (and nothing else) in one transaction. */
  async cleanup(): Promise<void> {
    // Both families, whatever this applier programs: a previous run may have had the other.
    const script = ["ip", "ip6"]
      .flatMap((f) => [`add table ${f} ${TABLE_NAME}`, `delete table ${f} ${TABLE_NAME}`])
      .join("\n") + "\n";
    await runTool(this.#nft, ["-f", "-"], this.#toolOptions(script));
    this.#live = null;
    this.#lastSnapshot = null;
  }

  /** Closes the netlink socket (if one was opened); the applier opens a new one when needed. */
  close(): void {
    this.#socket?.close();
    if (this.#socket !== null) this.#socket = undefined;
  }
}

registerApplier("nftables", (options) => new NftablesApplier(options));
