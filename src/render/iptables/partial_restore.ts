/**
 * A partial sync (pure): only the service ports that changed are rewritten. Their owned chains
 * are flushed and refilled, chains they no longer use are deleted, and their rules in the shared
 * chains are replaced rule by rule (`-D` the old text, then `-I`/`-A` the new), so the restore
 * input is O(changed) however many services the node has. kube-proxy (since 1.27) rewrites its
 * shared chains in full on every sync; kproxy edits them in place.
 */
import type { IPFamily } from "../../model/ip.ts";
import type { ProxySnapshot, ServicePortSnapshot } from "../../snapshot/types.ts";
import { familyContext, type FamilyContextOptions } from "./family_context.ts";
import {
  cachedServicePortRules,
  chunkByWeight,
  dropChainStages,
  insertsAtTop,
  type LiveServicePort,
  liveServicePort,
} from "./full_restore.ts";
import type { ServicePortRules, TopRule } from "./service_rules.ts";

/** What a partial sync sends and what it changes in kproxy's memory. */
export interface PartialRestore {
  /** iptables-restore input, or empty when nothing changed (all stages joined). */
  readonly text: string;
  /** The restore inputs to run in order (none when nothing changed). */
  readonly stages: readonly string[];
  /** Lines in `text`. */
  readonly lines: number;
  /** Memory updates to make once the restore succeeded (null: the port is gone). */
  readonly updates: ReadonlyMap<string, LiveServicePort | null>;
  /** Ids of the service ports rewritten. */
  readonly rewritten: readonly string[];
}

function sameTopRules(a: readonly TopRule[], b: readonly TopRule[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as TopRule;
    const y = b[i] as TopRule;
    if (x.table !== y.table || x.chain !== y.chain || x.spec !== y.spec) return false;
  }
  return true;
}

/** Binary search of the id-sorted service ports. */
function findServicePort(
  ports: readonly ServicePortSnapshot[],
  id: string,
): ServicePortSnapshot | undefined {
  let lo = 0;
  let hi = ports.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const sp = ports[mid] as ServicePortSnapshot;
    if (sp.id === id) return sp;
    if (sp.id < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/** The ids whose rules may differ from what is live: the given ones plus any hash mismatch. */
export function changedIds(
  snapshot: ProxySnapshot,
  family: IPFamily,
  live: ReadonlyMap<string, LiveServicePort>,
  hinted: readonly string[],
): string[] {
  const ids = new Set(hinted);
  const present = new Set<string>();
  for (const sp of snapshot.servicePorts) {
    if (!sp.families.some((f) => f.family === family)) continue;
    present.add(sp.id);
    if (live.get(sp.id)?.hash !== sp.hash) ids.add(sp.id);
  }
  for (const id of live.keys()) if (!present.has(id)) ids.add(id);
  return [...ids].sort();
}

/** Options of {@link renderPartialRestore}. */
export interface PartialRestoreOptions extends FamilyContextOptions {
  /** Cut into stages when more chains than this are written or deleted (iptables-nft). */
  readonly chainsPerStage?: number;
}

/**
 * The restore input that turns the `live` rules of `family` into those of `snapshot`: one
 * stage, or — when many chains change at once and `chainsPerStage` is set — the changed ports'
 * own chains in batches, then the shared-chain edits, then the dropped chains (flushed, then
 * deleted), as {@link renderFamilyRestore} does for a full sync.
 */
export function renderPartialRestore(
  snapshot: ProxySnapshot,
  family: IPFamily,
  live: ReadonlyMap<string, LiveServicePort>,
  hinted: readonly string[],
  options: PartialRestoreOptions = {},
): PartialRestore {
  const ctx = familyContext(snapshot, family, options);
  const updates = new Map<string, LiveServicePort | null>();
  const rewritten: string[] = [];
  const filterRules: string[] = [];
  const natTop: string[] = [];
  const written: ServicePortRules[] = [];
  const dropped: string[] = [];

  const ids = changedIds(snapshot, family, live, hinted);
  for (const id of ids) {
    const before = live.get(id) ?? null;
    const sp = findServicePort(snapshot.servicePorts, id);
    const fam = sp?.families.find((f) => f.family === family);
    const after: ServicePortRules | null = sp !== undefined && fam !== undefined
      ? cachedServicePortRules(sp, fam, ctx)
      : null;
    if (before === null && after === null) continue;
    rewritten.push(id);
    updates.set(
      id,
      after === null ? null : liveServicePort((sp as ServicePortSnapshot).hash, after),
    );

    const oldTop = before?.topRules ?? [];
    const newTop = after?.topRules ?? [];
    if (!sameTopRules(oldTop, newTop)) {
      for (const r of oldTop) {
        (r.table === "filter" ? filterRules : natTop).push(`-D ${r.chain} ${r.spec}`);
      }
      // Inserting at position 1 in reverse keeps this port's rules in their rendered order.
      for (const r of [...newTop].reverse()) {
        if (insertsAtTop(r)) natTop.push(`-I ${r.chain} 1 ${r.spec}`);
      }
      for (const r of newTop) {
        if (insertsAtTop(r)) continue;
        (r.table === "filter" ? filterRules : natTop).push(`-A ${r.chain} ${r.spec}`);
      }
    }
    const keep = new Set<string>();
    if (after !== null) {
      written.push(after);
      for (const c of after.chains) keep.add(c.name);
    }
    for (const name of before?.chains ?? []) if (!keep.has(name)) dropped.push(name);
  }

  const filterText = filterRules.length === 0
    ? ""
    : ["*filter", ...filterRules, "COMMIT"].join("\n") + "\n";
  const chainDecls = (ports: readonly ServicePortRules[]) =>
    ports.flatMap((p) => p.chains.map((c) => `:${c.name} - [0:0]`));
  const chainRules = (ports: readonly ServicePortRules[]) =>
    ports.flatMap((p) => p.chains.flatMap((c) => c.rules.map((spec) => `-A ${c.name} ${spec}`)));
  let chainCount = dropped.length;
  for (const p of written) chainCount += p.chains.length;

  const stages: string[] = [];
  if (chainCount <= (options.chainsPerStage ?? Infinity)) {
    const nat = [
      ...chainDecls(written),
      ...dropped.map((c) => `:${c} - [0:0]`),
      ...natTop,
      ...chainRules(written),
      ...dropped.map((c) => `-X ${c}`),
    ];
    const text = filterText +
      (nat.length === 0 ? "" : ["*nat", ...nat, "COMMIT"].join("\n") + "\n");
    if (text !== "") stages.push(text);
  } else {
    const limit = options.chainsPerStage as number;
    for (const batch of chunkByWeight(written, (p) => p.chains.length, limit)) {
      if (chainDecls(batch).length === 0) continue;
      stages.push(["*nat", ...chainDecls(batch), ...chainRules(batch), "COMMIT"].join("\n") + "\n");
    }
    const nat = natTop.length === 0 ? "" : ["*nat", ...natTop, "COMMIT"].join("\n") + "\n";
    if (filterText + nat !== "") stages.push(filterText + nat);
    stages.push(...dropChainStages(dropped, limit));
  }
  const text = stages.join("");
  let lines = 0;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) lines++;
  return { text, stages, lines, updates, rewritten };
}
