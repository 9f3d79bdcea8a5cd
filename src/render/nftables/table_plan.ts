/**
 * Whole-table text and incremental transactions for one family's table (pure).
 *
 * {@link renderFamily} turns a snapshot into a {@link FamilyTable}: the typed pieces plus who
 * claims each shared map element. {@link fullTableText} writes it as a declarative nft block;
 * {@link planIncremental} writes the commands that turn a live table into the next one for a
 * few changed service ports, so its size follows the change, not the cluster.
 */
import type { IPFamily, ProxySnapshot, ServicePortSnapshot } from "../../snapshot/types.ts";
import { familyContext, type FixedRules, fixedRules } from "./fixed_rules.ts";
import type { ChainSpec, ElementSpec, FamilyContext, ServicePortRules, SetSpec } from "./model.ts";
import { TABLE_NAME } from "./names.ts";
import { renderServicePort } from "./service_port_rules.ts";

/**
 * The claims on one key of a shared set or map: almost always one service port (kept as a small
 * object; a Map per key cost ~10 MiB at 10k services), a Map of port id → value when several
 * ports claim the same key.
 */
export type KeyClaims =
  | { readonly id: string; readonly value: string | null }
  | Map<string, string | null>;

/** Claims on shared elements: set → key → who claims it, with what value. */
export type ElementClaims = Map<string, Map<string, KeyClaims>>;

/** One family's table as kproxy means it to be (also its memory of what is live). */
export interface FamilyTable {
  /** `ip` or `ip6`. */
  readonly tableFamily: "ip" | "ip6";
  /** Render context. */
  readonly ctx: FamilyContext;
  /**
   * Fixed part. Its element-only sets' elements may differ from those the key was made of; an
   * incremental sync that changes them replaces this with the next table's fixed part.
   */
  fixed: FixedRules;
  /**
   * Canonical text of the fixed part without the elements of element-only sets; when it
   * changes the table is rewritten.
   */
  readonly fixedKey: string;
  /** Per service port pieces, by id. */
  readonly ports: Map<string, ServicePortRules>;
  /** Element claims. */
  readonly claims: ElementClaims;
}

/** An incremental transaction and how to record it once it is live. */
export interface IncrementalPlan {
  /** nft commands, one per line. */
  readonly commands: readonly string[];
  /** How many rules the table gains (negative: loses) once the plan is live. */
  readonly ruleDelta: number;
  /** Updates the table memory to the new state (call only after the commands succeeded). */
  commit(): void;
}

/** The `[port id, value]` pairs of a key's claims. */
function claimEntries(claims: KeyClaims | undefined): Array<[string, string | null]> {
  if (claims === undefined) return [];
  return claims instanceof Map ? [...claims] : [[claims.id, claims.value]];
}

/** The claim that wins a key: the smallest service port id (deterministic). */
function winningClaim(
  claims: KeyClaims | Map<string, string | null> | undefined,
): { readonly id: string; readonly value: string | null } | null {
  if (claims === undefined) return null;
  if (!(claims instanceof Map)) return claims;
  let best: string | null = null;
  for (const id of claims.keys()) if (best === null || id < best) best = id;
  return best === null ? null : { id: best, value: claims.get(best) ?? null };
}

function addClaims(claims: ElementClaims, id: string, elements: readonly ElementSpec[]): void {
  for (const el of elements) {
    let byKey = claims.get(el.set);
    if (byKey === undefined) claims.set(el.set, byKey = new Map());
    const held = byKey.get(el.key);
    if (held === undefined) byKey.set(el.key, { id, value: el.value });
    else if (held instanceof Map) {
      if (!held.has(id)) held.set(id, el.value);
    } else if (held.id !== id) {
      byKey.set(el.key, new Map([[held.id, held.value], [id, el.value]]));
    }
  }
}

function removeClaims(claims: ElementClaims, id: string, elements: readonly ElementSpec[]): void {
  for (const el of elements) {
    const byKey = claims.get(el.set);
    const held = byKey?.get(el.key);
    if (byKey === undefined || held === undefined) continue;
    if (!(held instanceof Map)) {
      if (held.id === id) byKey.delete(el.key);
      continue;
    }
    held.delete(id);
    const left = [...held];
    if (left.length === 0) byKey.delete(el.key);
    else if (left.length === 1) {
      const [only, value] = left[0] as [string, string | null];
      byKey.set(el.key, { id: only, value });
    }
  }
}

/** The service port with `id` in a snapshot (its ports are sorted by id), by binary search. */
export function findServicePort(snapshot: ProxySnapshot, id: string): ServicePortSnapshot | null {
  const list = snapshot.servicePorts;
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const sp = list[mid] as ServicePortSnapshot;
    if (sp.id === id) return sp;
    if (sp.id < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return null;
}

/**
 * Renders the table of one family for a snapshot; with `only`, just those service ports (what
 * an incremental sync needs: its cost follows the change, not the cluster).
 */
export function renderFamily(
  snapshot: ProxySnapshot,
  family: IPFamily,
  only?: readonly string[],
): FamilyTable {
  const ctx = familyContext(snapshot, family);
  const fixed = fixedRules(snapshot, ctx);
  const ports = new Map<string, ServicePortRules>();
  const claims: ElementClaims = new Map();
  const list = only === undefined
    ? snapshot.servicePorts
    : only.map((id) => findServicePort(snapshot, id)).filter((sp) => sp !== null);
  for (const sp of list) {
    const rules = renderServicePort(sp, ctx);
    if (rules === null) continue;
    ports.set(sp.id, rules);
    addClaims(claims, sp.id, rules.elements);
  }
  return {
    tableFamily: ctx.ipX,
    ctx,
    fixed,
    fixedKey: fixedKeyOf(fixed),
    ports,
    claims,
  };
}

/** The fixed part as text, element-only sets without their elements. */
function fixedKeyOf(fixed: FixedRules): string {
  return JSON.stringify({
    ...fixed,
    sets: fixed.sets.map((s) => s.elementsOnly === true ? { ...s, fixedElements: [] } : s),
  });
}

/**
 * `add`/`delete element` commands that take the element-only sets of `live` to those of `next`
 * (the two share a fixed key, so they have the same sets).
 */
function fixedElementCommands(
  live: FamilyTable,
  next: FamilyTable,
): { deletes: string[]; adds: string[] } {
  const t = `${live.tableFamily} ${TABLE_NAME}`;
  const deletes: string[] = [];
  const adds: string[] = [];
  for (const s of next.fixed.sets) {
    if (s.elementsOnly !== true) continue;
    const before = live.fixed.sets.find((o) => o.name === s.name)?.fixedElements ?? [];
    const after = new Set(s.fixedElements);
    const gone = before.filter((e) => !after.has(e));
    const come = s.fixedElements.filter((e) => !before.includes(e));
    if (gone.length > 0) deletes.push(`delete element ${t} ${s.name} { ${gone.join(", ")} }`);
    if (come.length > 0) adds.push(`add element ${t} ${s.name} { ${come.join(", ")} }`);
  }
  return { deletes, adds };
}

function elementText(key: string, value: string | null): string {
  return value === null ? key : `${key} : ${value}`;
}

/** The live elements of each shared set, in service port order (then fixed ones first). */
function liveElements(table: FamilyTable): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const s of table.fixed.sets) out.set(s.name, [...s.fixedElements]);
  for (const [id, rules] of table.ports) {
    for (const el of rules.elements) {
      const win = winningClaim(table.claims.get(el.set)?.get(el.key));
      // Emit once, from the winning claimant.
      if (win === null || win.id !== id) continue;
      out.get(el.set)?.push(elementText(el.key, win.value));
    }
  }
  return out;
}

function chainBlock(name: string, header: string | null, rules: readonly string[]): string[] {
  const lines = [`\tchain ${name} {`];
  if (header !== null) lines.push(`\t\t${header}`);
  for (const r of rules) lines.push(`\t\t${r}`);
  lines.push("\t}");
  return lines;
}

/** Number of rules the table holds. */
export function ruleCount(table: FamilyTable): number {
  let n = 0;
  for (const c of table.fixed.baseChains) n += c.rules.length;
  for (const c of table.fixed.chains) n += c.rules.length;
  for (const p of table.ports.values()) for (const c of p.chains) n += c.rules.length;
  return n;
}

/** The whole table as one declarative nft block (deterministic). */
export function fullTableText(table: FamilyTable): string {
  const lines: string[] = [`table ${table.tableFamily} ${TABLE_NAME} {`];
  lines.push(`\tcomment "rules for kproxy"`);
  const elements = liveElements(table);
  for (const s of table.fixed.sets) {
    const els = elements.get(s.name) ?? [];
    lines.push(`\t${s.kind} ${s.name} {`);
    for (const part of s.declaration.split(";").map((p) => p.trim()).filter((p) => p !== "")) {
      lines.push(`\t\t${part}`);
    }
    if (els.length > 0) {
      lines.push("\t\telements = {");
      els.forEach((e, i) => lines.push(`\t\t\t${e}${i < els.length - 1 ? "," : ""}`));
      lines.push("\t\t}");
    }
    lines.push("\t}");
  }
  for (const p of table.ports.values()) {
    for (const s of p.sets) lines.push(`\tset ${s.name} { ${s.declaration} }`);
  }
  for (const bc of table.fixed.baseChains) {
    const header = `type ${bc.type} hook ${bc.hook} priority ${bc.priority}; policy accept;`;
    lines.push(...chainBlock(bc.name, header, bc.rules));
  }
  for (const c of table.fixed.chains) lines.push(...chainBlock(c.name, null, c.rules));
  for (const p of table.ports.values()) {
    for (const c of p.chains) lines.push(...chainBlock(c.name, null, c.rules));
  }
  lines.push("}");
  return lines.join("\n") + "\n";
}

/** The names of every per-service-port chain and set of a table. */
export function servicePortObjects(
  table: FamilyTable,
): { chains: Map<string, ChainSpec>; sets: Map<string, SetSpec> } {
  const chains = new Map<string, ChainSpec>();
  const sets = new Map<string, SetSpec>();
  for (const p of table.ports.values()) {
    for (const c of p.chains) chains.set(c.name, c);
    for (const s of p.sets) sets.set(s.name, s);
  }
  return { chains, sets };
}

function sameRules(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((r, i) => r === b[i]);
}

/**
 * The commands that turn `live` into the table `next` would be for the service ports `ids` and
 * the element-only fixed sets, touching nothing else. `next` must have the same fixed key as
 * `live`.
 */
export function planIncremental(
  live: FamilyTable,
  next: FamilyTable,
  ids: readonly string[],
): IncrementalPlan {
  const t = `${live.tableFamily} ${TABLE_NAME}`;
  const deleteElements: string[] = [];
  const flushChains: string[] = [];
  const deleteObjects: string[] = [];
  const addObjects: string[] = [];
  const addRules: string[] = [];
  const addElements: string[] = [];

  // Element changes: recompute the winners of every key a changed port touches.
  const touched = new Map<string, Set<string>>();
  const touch = (els: readonly ElementSpec[]) => {
    for (const el of els) {
      let keys = touched.get(el.set);
      if (keys === undefined) touched.set(el.set, keys = new Set());
      keys.add(el.key);
    }
  };
  const updates: {
    id: string;
    before: ServicePortRules | null;
    after: ServicePortRules | null;
    /** The after elements by `set key`: one lookup per touched key, not a scan. */
    afterByKey: Map<string, ElementSpec>;
  }[] = [];
  for (const id of new Set(ids)) {
    const before = live.ports.get(id) ?? null;
    const after = next.ports.get(id) ?? null;
    if (before === null && after === null) continue;
    const afterByKey = new Map<string, ElementSpec>();
    for (const e of after?.elements ?? []) {
      const k = `${e.set} ${e.key}`;
      if (!afterByKey.has(k)) afterByKey.set(k, e);
    }
    updates.push({ id, before, after, afterByKey });
    if (before !== null) touch(before.elements);
    if (after !== null) touch(after.elements);
  }
  for (const [set, keys] of touched) {
    for (const key of keys) {
      const liveClaims = live.claims.get(set)?.get(key);
      const nextClaims = new Map(claimEntries(liveClaims));
      for (const u of updates) {
        nextClaims.delete(u.id);
        const el = u.afterByKey.get(`${set} ${key}`);
        if (el !== undefined) nextClaims.set(u.id, el.value);
      }
      const a = winningClaim(liveClaims);
      const b = winningClaim(nextClaims);
      if (a !== null && (b === null || a.value !== b.value)) {
        deleteElements.push(`delete element ${t} ${set} { ${key} }`);
      }
      if (b !== null && (a === null || a.value !== b.value)) {
        addElements.push(`add element ${t} ${set} { ${elementText(key, b.value)} }`);
      }
    }
  }

  // Chains and sets of the changed ports.
  for (const { before, after } of updates) {
    const oldChains = new Map((before?.chains ?? []).map((c) => [c.name, c]));
    const newChains = new Map((after?.chains ?? []).map((c) => [c.name, c]));
    const oldSets = new Map((before?.sets ?? []).map((s) => [s.name, s]));
    const newSets = new Map((after?.sets ?? []).map((s) => [s.name, s]));
    // Sets whose declaration changes are recreated, so the rules using them must go first.
    const recreated = [...oldSets.values()]
      .filter((s) => newSets.has(s.name) && newSets.get(s.name)?.declaration !== s.declaration)
      .map((s) => `@${s.name} `);
    const usesRecreated = (c: ChainSpec) =>
      recreated.some((ref) => c.rules.some((r) => `${r} `.includes(ref)));
    for (const [name, c] of oldChains) {
      const n = newChains.get(name);
      if (n === undefined) {
        flushChains.push(`flush chain ${t} ${name}`);
        deleteObjects.push(`delete chain ${t} ${name}`);
      } else if (!sameRules(c.rules, n.rules) || usesRecreated(c)) {
        flushChains.push(`flush chain ${t} ${name}`);
        for (const r of n.rules) addRules.push(`add rule ${t} ${name} ${r}`);
      }
    }
    for (const [name, c] of newChains) {
      if (oldChains.has(name)) continue;
      addObjects.push(`add chain ${t} ${name}`);
      for (const r of c.rules) addRules.push(`add rule ${t} ${name} ${r}`);
    }
    for (const [name, s] of oldSets) {
      const n = newSets.get(name);
      if (n === undefined || n.declaration !== s.declaration) {
        deleteObjects.push(`delete set ${t} ${name}`);
      }
    }
    for (const [name, s] of newSets) {
      const o = oldSets.get(name);
      if (o === undefined || o.declaration !== s.declaration) {
        addObjects.push(`add set ${t} ${name} { ${s.declaration} }`);
      }
    }
  }

  const fixedElements = fixedElementCommands(live, next);
  let ruleDelta = 0;
  for (const { before, after } of updates) {
    for (const c of before?.chains ?? []) ruleDelta -= c.rules.length;
    for (const c of after?.chains ?? []) ruleDelta += c.rules.length;
  }
  const commands = [
    ...fixedElements.deletes,
    ...deleteElements,
    ...flushChains,
    ...deleteObjects,
    ...addObjects,
    ...addRules,
    ...addElements,
    ...fixedElements.adds,
  ];
  return {
    commands,
    ruleDelta,
    commit() {
      live.fixed = next.fixed;
      for (const u of updates) {
        if (u.before !== null) removeClaims(live.claims, u.id, u.before.elements);
        if (u.after !== null) {
          addClaims(live.claims, u.id, u.after.elements);
          live.ports.set(u.id, u.after);
        } else live.ports.delete(u.id);
      }
    },
  };
}
