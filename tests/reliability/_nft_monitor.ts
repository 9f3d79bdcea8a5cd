/**
 * `nft -a monitor` in a namespace, split into committed generations (transactions), with a model
 * of how many rules each chain holds after every generation. This sees what a packet could see:
 * nftables commits a transaction at once, so a ruleset that is complete after every generation
 * was never absent or empty in between. iptables-nft writes through the same API, so its chains
 * (`ip nat KUBE-SERVICES`, ...) show up here too.
 *
 * @module
 */
import { runTool, runToolResult } from "../../src/apply/run_tool.ts";

/** One committed transaction as `nft monitor` reports it. */
export interface Generation {
  /** The generation number. */
  readonly number: number;
  /** Name of the process that committed it (`nft`, `iptables-nft-re`, ...). */
  readonly process: string;
  /** When this test process read its last line, ms since epoch. */
  readonly receivedAt: number;
  /** The change lines of the transaction. */
  readonly events: readonly string[];
  /** Rules per `family table` → chain, after this generation. */
  readonly rules: ReadonlyMap<string, ReadonlyMap<string, number>>;
}

/** A running monitor. */
export interface NftMonitor {
  /** Rules per `family table` → chain when the monitor started. */
  readonly initialRules: ReadonlyMap<string, ReadonlyMap<string, number>>;
  /** Generations seen so far (after the start marker). */
  generations(): readonly Generation[];
  /** Waits until a generation matching `test` arrives; returns it. */
  waitFor(test: (g: Generation) => boolean, timeoutMs: number): Promise<Generation>;
  /** Stops the monitor; returns every generation. */
  stop(): Promise<readonly Generation[]>;
}

/** Rule handles per `family table` → chain. */
type RuleModel = Map<string, Map<string, Set<number>>>;

/** Reads `nft -a list ruleset` into rule handles per table and chain. */
export function parseRuleset(listing: string): RuleModel {
  const model: RuleModel = new Map();
  let table: Map<string, Set<number>> | null = null;
  let chain: Set<number> | null = null;
  let depth = 0;
  for (const raw of listing.split("\n")) {
    const line = raw.replace(/"[^"]*"/g, '""').trim();
    const opens = (line.match(/\{/g) ?? []).length;
    const closes = (line.match(/\}/g) ?? []).length;
    const t = /^table (\S+) (\S+) \{/.exec(line);
    const c = /^chain (\S+) \{/.exec(line);
    if (depth === 0 && t !== null) {
      table = new Map();
      model.set(`${t[1]} ${t[2]}`, table);
    } else if (depth === 1 && c !== null && table !== null) {
      chain = new Set();
      table.set(c[1] as string, chain);
    } else if (depth === 2 && chain !== null) {
      const h = /# handle (\d+)$/.exec(line);
      if (h !== null) chain.add(Number(h[1]));
    }
    depth += opens - closes;
    if (depth <= 1) chain = null;
    if (depth === 0) table = null;
  }
  return model;
}

function applyEvent(model: RuleModel, line: string): void {
  let m = /^add table (\S+) (\S+)/.exec(line);
  if (m !== null) {
    const key = `${m[1]} ${m[2]}`;
    if (!model.has(key)) model.set(key, new Map());
    return;
  }
  m = /^delete table (\S+) (\S+)/.exec(line);
  if (m !== null) {
    model.delete(`${m[1]} ${m[2]}`);
    return;
  }
  m = /^(?:add|create) chain (\S+) (\S+) (\S+)/.exec(line);
  if (m !== null) {
    const table = model.get(`${m[1]} ${m[2]}`);
    if (table !== undefined && !table.has(m[3] as string)) table.set(m[3] as string, new Set());
    return;
  }
  m = /^delete chain (\S+) (\S+) (\S+)/.exec(line);
  if (m !== null) {
    model.get(`${m[1]} ${m[2]}`)?.delete(m[3] as string);
    return;
  }
  m = /^add rule (\S+) (\S+) (\S+) .*# handle (\d+)$/.exec(line);
  if (m !== null) {
    const table = model.get(`${m[1]} ${m[2]}`);
    if (table === undefined) return;
    let chain = table.get(m[3] as string);
    if (chain === undefined) table.set(m[3] as string, chain = new Set());
    chain.add(Number(m[4]));
    return;
  }
  m = /^delete rule (\S+) (\S+) (\S+) handle (\d+)/.exec(line);
  if (m !== null) model.get(`${m[1]} ${m[2]}`)?.get(m[3] as string)?.delete(Number(m[4]));
}

function counts(model: RuleModel): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const [table, chains] of model) {
    out.set(table, new Map([...chains].map(([c, rules]) => [c, rules.size])));
  }
  return out;
}

/** Total rules of a table after a generation (-1 when the table does not exist). */
export function tableRules(g: Generation, table: string): number {
  const chains = g.rules.get(table);
  if (chains === undefined) return -1;
  let n = 0;
  for (const c of chains.values()) n += c;
  return n;
}

/** Rules of one chain after a generation (-1 when it does not exist). */
export function chainRules(g: Generation, table: string, chain: string): number {
  return g.rules.get(table)?.get(chain) ?? -1;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Starts `nft -a monitor` in `netns` and returns once it is listening (a marker transaction that
 * adds and deletes a scratch table has been seen). The rule model starts from `nft -a list
 * ruleset` taken right after the marker.
 */
export async function startNftMonitor(netns: string): Promise<NftMonitor> {
  const child = new Deno.Command("ip", {
    args: ["netns", "exec", netns, "nft", "-a", "monitor"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const generations: Generation[] = [];
  let model: RuleModel | null = null;
  let pendingEvents: string[] = [];
  let marked = false;
  let stderr = "";
  type Raw = { number: number; process: string; events: string[] };
  const early: Raw[] = [];
  let initialRules = new Map<string, Map<string, number>>();
  const record = (m: RuleModel, raw: Raw) => {
    for (const e of raw.events) applyEvent(m, e);
    generations.push({ ...raw, receivedAt: Date.now(), rules: counts(m) });
  };
  const marker = `kpmon${Math.floor(Math.random() * 1e9).toString(36)}`;
  const reading = (async () => {
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of child.stdout) {
      buffer += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        const gen = /^# new generation (\d+) by process \d+ \((.*)\)/.exec(line);
        if (gen === null) {
          if (line.trim() !== "") pendingEvents.push(line);
          continue;
        }
        const events = pendingEvents;
        pendingEvents = [];
        if (!marked) {
          if (events.some((e) => e.includes(marker))) marked = true;
          continue;
        }
        const raw = { number: Number(gen[1]), process: gen[2] ?? "", events };
        if (model === null) early.push(raw);
        else record(model, raw);
      }
    }
  })();
  const stderrDone = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) stderr += decoder.decode(chunk, { stream: true });
  })();
  const stop = async () => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
    await Promise.allSettled([reading, stderrDone]);
    return generations;
  };
  try {
    const deadline = Date.now() + 10_000;
    while (!marked) {
      if (Date.now() > deadline) {
        throw new Error(`nft monitor in ${netns} did not start: ${stderr}`);
      }
      await runTool("nft", ["-f", "-"], {
        netns,
        stdin: `add table inet ${marker}\ndelete table inet ${marker}\n`,
      });
      await sleep(50);
    }
    // Events committed between the marker and this listing are applied on top: adding a handle
    // twice or deleting a missing one is harmless in the model.
    const listing = await runToolResult("nft", ["-a", "list", "ruleset"], { netns });
    const listed = parseRuleset(listing.stdout);
    initialRules = counts(listed);
    for (const raw of early.splice(0)) record(listed, raw);
    model = listed;
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    initialRules,
    generations: () => generations,
    waitFor: async (test, timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const g = generations.find(test);
        if (g !== undefined) return g;
        if (Date.now() > deadline) throw new Error(`nft monitor: no such generation in time`);
        await sleep(10);
      }
    },
    stop,
  };
}
