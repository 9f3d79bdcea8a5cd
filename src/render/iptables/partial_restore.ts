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
  insertsAtTop,
  type LiveServicePort,
  liveServicePort,
} from "./full_restore.ts";
import type { ServicePortRules, TopRule } from "./service_rules.ts";

/** What a partial sync sends and what it changes in kproxy's memory. */
export interface PartialRestore {
  /** iptables-restore input, or empty when nothing changed. */
  readonly text: string;
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

/** The restore input that turns the `live` rules of `family` into those of `snapshot`. */
export function renderPartialRestore(
  snapshot: ProxySnapshot,
  family: IPFamily,
  live: ReadonlyMap<string, LiveServicePort>,
  hinted: readonly string[],
  options: FamilyContextOptions = {},
): PartialRestore {
  const ctx = familyContext(snapshot, family, options);
  const updates = new Map<string, LiveServicePort | null>();
  const rewritten: string[] = [];
  const filterRules: string[] = [];
  const natChains: string[] = [];
  const natRules: string[] = [];
  const natDeletes: string[] = [];

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
        (r.table === "filter" ? filterRules : natRules).push(`-D ${r.chain} ${r.spec}`);
      }
      // Inserting at position 1 in reverse keeps this port's rules in their rendered order.
      for (const r of [...newTop].reverse()) {
        if (insertsAtTop(r)) natRules.push(`-I ${r.chain} 1 ${r.spec}`);
      }
      for (const r of newTop) {
        if (insertsAtTop(r)) continue;
        (r.table === "filter" ? filterRules : natRules).push(`-A ${r.chain} ${r.spec}`);
      }
    }
    const keep = new Set<string>();
    for (const c of after?.chains ?? []) {
      keep.add(c.name);
      natChains.push(`:${c.name} - [0:0]`);
      for (const spec of c.rules) natRules.push(`-A ${c.name} ${spec}`);
    }
    for (const name of before?.chains ?? []) {
      if (keep.has(name)) continue;
      natChains.push(`:${name} - [0:0]`);
      natDeletes.push(`-X ${name}`);
    }
  }

  const out: string[] = [];
  if (filterRules.length > 0) out.push("*filter", ...filterRules, "COMMIT");
  if (natChains.length + natRules.length > 0) {
    out.push("*nat", ...natChains, ...natRules, ...natDeletes, "COMMIT");
  }
  return {
    text: out.length === 0 ? "" : out.join("\n") + "\n",
    lines: out.length,
    updates,
    rewritten,
  };
}
