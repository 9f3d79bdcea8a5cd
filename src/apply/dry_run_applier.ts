/** The dry-run applier: prints what a sync would change and touches nothing. */
import { unifiedDiff } from "../diff/unified_diff.ts";
import { describeSnapshotDiff } from "../snapshot/snapshot_diff.ts";
import type { ProxySnapshot } from "../snapshot/types.ts";
import type { Applier, RuleRenderer, SyncRequest, SyncResult } from "./applier.ts";

/** Options of {@link DryRunApplier}. */
export interface DryRunApplierOptions {
  /** Renders the backend's rule text, for the rule diff (none: only the word diff). */
  readonly renderer?: RuleRenderer | null;
  /** Where the report goes (default: stdout). */
  readonly print?: (text: string) => void;
}

/** Keeps the last snapshot and prints the word diff and the rule diff of every sync. */
export class DryRunApplier implements Applier {
  /** Always `dry-run`. */
  readonly name = "dry-run";
  #last: ProxySnapshot | null = null;
  #lastRules = "";
  readonly #renderer: RuleRenderer | null;
  readonly #print: (text: string) => void;

  /** Makes a dry-run applier. */
  constructor(options: DryRunApplierOptions = {}) {
    this.#renderer = options.renderer ?? null;
    this.#print = options.print ?? ((text) => console.log(text));
  }

  /** Prints what changed since the previous sync; never fails. */
  sync(request: SyncRequest): Promise<SyncResult> {
    const next = request.snapshot;
    const rules = this.#renderer?.render(next) ?? "";
    const out: string[] = [];
    if (this.#last === null) {
      out.push(
        `dry-run: first sync, snapshot ${next.hash}: ${next.servicePorts.length} service ports`,
      );
      for (const sp of next.servicePorts) out.push(`+service ${sp.id}`);
    } else if (this.#last.hash !== next.hash) {
      const diff = describeSnapshotDiff(this.#last, next);
      out.push(`dry-run: snapshot ${diff.fromHash} → ${diff.toHash}`, ...diff.lines);
    }
    if (this.#renderer !== null && rules !== this.#lastRules) {
      const text = unifiedDiff(this.#lastRules, rules, {
        fromLabel: `${this.#renderer.mode} ${this.#last?.hash ?? "(empty)"}`,
        toLabel: `${this.#renderer.mode} ${next.hash}`,
      });
      if (text !== "") out.push(text.trimEnd());
    }
    if (out.length > 0) this.#print(out.join("\n"));
    const lines = rules === "" ? 0 : rules.replace(/\n$/, "").split("\n").length;
    this.#last = next;
    this.#lastRules = rules;
    return Promise.resolve({
      full: request.full,
      linesSent: 0,
      ruleCount: lines,
      conntrackCleared: 0,
    });
  }

  /** The rule text the last snapshot renders to. */
  liveRules(): Promise<string> {
    return Promise.resolve(this.#lastRules);
  }

  /** Nothing to remove: dry-run never touches the kernel. */
  cleanup(): Promise<void> {
    this.#print("dry-run: cleanup would remove kproxy's rules; nothing touched");
    return Promise.resolve();
  }
}
