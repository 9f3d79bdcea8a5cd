/**
 * An in-memory iptables that applies iptables-restore input the way the real tool does, for
 * fast tests: `--noflush` or flush semantics, per-table all-or-nothing COMMIT, and the kernel's
 * refusals (a jump to a missing chain, deleting a rule that is not there, deleting a chain that
 * is still used or not empty). `save()` prints iptables-save style text, so an applier can run
 * against it unchanged. Rule specs are kept as written (iptables-save would normalise them).
 */

/** A restore input the fake refused: names the line, like iptables-restore does. */
export class RestoreError extends Error {
  /** 1-based line of the restore input. */
  readonly line: number;
  /** Makes an error for `line`. */
  constructor(line: number, message: string) {
    super(`line ${line}: ${message}`);
    this.name = "RestoreError";
    this.line = line;
  }
}

const BUILTIN_CHAINS: Readonly<Record<string, readonly string[]>> = {
  filter: ["INPUT", "FORWARD", "OUTPUT"],
  nat: ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
  mangle: ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
  raw: ["PREROUTING", "OUTPUT"],
};

/** Targets that are not chains. */
export const BUILTIN_TARGETS: ReadonlySet<string> = new Set([
  "ACCEPT",
  "DROP",
  "REJECT",
  "RETURN",
  "MARK",
  "DNAT",
  "SNAT",
  "MASQUERADE",
  "LOG",
  "CONNMARK",
  "NOTRACK",
]);

/** Splits a restore line into words; a double-quoted word may hold spaces. */
export function splitWords(line: string): string[] {
  const out: string[] = [];
  let word = "";
  let inWord = false;
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] as string;
    if (quoted) {
      if (ch === "\\" && line[i + 1] === '"') {
        word += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else word += ch;
    } else if (ch === '"') {
      quoted = true;
      inWord = true;
    } else if (ch === " " || ch === "\t") {
      if (inWord) out.push(word);
      word = "";
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (quoted) throw new Error(`unterminated quote in ${JSON.stringify(line)}`);
  if (inWord) out.push(word);
  return out;
}

/** The `-j`/`-g` target of a rule's words, or null. */
export function targetOf(words: readonly string[]): string | null {
  for (let i = 0; i < words.length - 1; i++) {
    if (words[i] === "-j" || words[i] === "-g") return words[i + 1] as string;
  }
  return null;
}

function quoteIfNeeded(word: string): string {
  return /[\s"]/.test(word) || word === "" ? `"${word.replaceAll('"', '\\"')}"` : word;
}

/** Canonical spec text: words re-joined, quoting only where needed (like iptables-save). */
export function canonicalSpec(words: readonly string[]): string {
  return words.map(quoteIfNeeded).join(" ");
}

interface Table {
  readonly chains: Map<string, string[][]>;
}

function cloneTable(t: Table): Table {
  return { chains: new Map([...t.chains].map(([k, v]) => [k, v.map((r) => [...r])])) };
}

function sameWords(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((w, i) => w === b[i]);
}

/** The fake: tables of chains of rules (each rule its words, chain name excluded). */
export class IptablesFake {
  readonly #tables = new Map<string, Table>();
  /** Every restore input applied, in order (including refused ones). */
  readonly inputs: string[] = [];

  #table(name: string): Table {
    let t = this.#tables.get(name);
    if (t === undefined) {
      const builtins = BUILTIN_CHAINS[name];
      if (builtins === undefined) throw new Error(`unknown table ${name}`);
      t = { chains: new Map(builtins.map((c) => [c, []])) };
      this.#tables.set(name, t);
    }
    return t;
  }

  /** Applies restore input; throws {@link RestoreError} after committing earlier tables. */
  restore(text: string, options: { readonly noflush?: boolean } = {}): void {
    this.inputs.push(text);
    const lines = text.split("\n");
    let tableName: string | null = null;
    let work: Table | null = null;
    for (let i = 0; i < lines.length; i++) {
      const n = i + 1;
      const line = (lines[i] as string).trim();
      if (line === "" || line.startsWith("#")) continue;
      if (line.startsWith("*")) {
        if (work !== null) throw new RestoreError(n, "table started before COMMIT");
        tableName = line.slice(1);
        work = cloneTable(this.#table(tableName));
        if (!options.noflush) {
          const builtins = BUILTIN_CHAINS[tableName] ?? [];
          work.chains.clear();
          for (const c of builtins) work.chains.set(c, []);
        }
        continue;
      }
      if (work === null || tableName === null) throw new RestoreError(n, "rule outside a table");
      if (line === "COMMIT") {
        this.#tables.set(tableName, work);
        work = null;
        tableName = null;
        continue;
      }
      if (line.startsWith(":")) {
        const [name, policy] = line.slice(1).split(/\s+/) as [string, string | undefined];
        const builtin = (BUILTIN_CHAINS[tableName] ?? []).includes(name);
        if (builtin !== (policy !== "-")) throw new RestoreError(n, `bad chain line for ${name}`);
        if (!builtin) work.chains.set(name, []);
        continue;
      }
      this.#command(work, splitWords(line), n);
    }
    if (work !== null) throw new RestoreError(lines.length, "no COMMIT at end of input");
  }

  #command(t: Table, words: string[], n: number): void {
    const [verb, chain, ...rest] = words;
    if (chain === undefined) throw new RestoreError(n, `${verb} needs a chain`);
    const rules = t.chains.get(chain);
    const needChain = () => {
      if (rules === undefined) throw new RestoreError(n, `no chain ${chain}`);
      return rules;
    };
    const checkTarget = (spec: readonly string[]) => {
      const target = targetOf(spec);
      if (target !== null && !BUILTIN_TARGETS.has(target) && !t.chains.has(target)) {
        throw new RestoreError(n, `couldn't load target ${target}`);
      }
    };
    switch (verb) {
      case "-A":
        checkTarget(rest);
        needChain().push(rest);
        return;
      case "-I": {
        const list = needChain();
        let pos = 1;
        let spec = rest;
        if (rest[0] !== undefined && /^[0-9]+$/.test(rest[0])) {
          pos = Number(rest[0]);
          spec = rest.slice(1);
        }
        if (pos < 1 || pos > list.length + 1) throw new RestoreError(n, `index ${pos} too big`);
        checkTarget(spec);
        list.splice(pos - 1, 0, spec);
        return;
      }
      case "-D": {
        const list = needChain();
        if (rest.length === 1 && /^[0-9]+$/.test(rest[0] as string)) {
          const idx = Number(rest[0]) - 1;
          if (idx < 0 || idx >= list.length) throw new RestoreError(n, "index out of range");
          list.splice(idx, 1);
          return;
        }
        const idx = list.findIndex((r) => sameWords(r, rest));
        if (idx < 0) throw new RestoreError(n, `bad rule (no matching rule in ${chain})`);
        list.splice(idx, 1);
        return;
      }
      case "-F":
        needChain().length = 0;
        return;
      case "-N":
        if (rules !== undefined) throw new RestoreError(n, `chain ${chain} already exists`);
        t.chains.set(chain, []);
        return;
      case "-X": {
        const list = needChain();
        if (list.length > 0) throw new RestoreError(n, `chain ${chain} is not empty`);
        for (const [other, otherRules] of t.chains) {
          if (otherRules.some((r) => targetOf(r) === chain)) {
            throw new RestoreError(n, `chain ${chain} is still used by ${other}`);
          }
        }
        t.chains.delete(chain);
        return;
      }
      default:
        throw new RestoreError(n, `unsupported command ${verb}`);
    }
  }

  /** iptables-save style text of one table, or of every table that was touched. */
  save(table?: string): string {
    const names = table !== undefined ? [table] : [...this.#tables.keys()].sort();
    const out: string[] = ["# Generated by kproxy's IptablesFake"];
    for (const name of names) {
      const t = this.#table(name);
      const builtins = BUILTIN_CHAINS[name] ?? [];
      out.push(`*${name}`);
      for (const c of builtins) out.push(`:${c} ACCEPT [0:0]`);
      const user = [...t.chains.keys()].filter((c) => !builtins.includes(c)).sort();
      for (const c of user) out.push(`:${c} - [0:0]`);
      for (const c of [...builtins, ...user]) {
        for (const r of t.chains.get(c) ?? []) out.push(`-A ${c} ${canonicalSpec(r)}`);
      }
      out.push("COMMIT");
    }
    return out.join("\n") + "\n";
  }

  /** The chains of a table with their rules as canonical text (tests compare these). */
  chains(table: string): Map<string, string[]> {
    const t = this.#table(table);
    return new Map([...t.chains].map(([k, v]) => [k, v.map(canonicalSpec)]));
  }
}

/**
 * Checks restore input on its own: every `-j` names a built-in target or a chain declared
 * (`:NAME`) in the same table and not deleted there, and every `-A` goes to a declared chain
 * (built-in chains excepted). Returns problems as sentences; empty means fine.
 */
export function undeclaredJumps(text: string): string[] {
  const problems: string[] = [];
  let table = "";
  let declared = new Set<string>();
  let deleted = new Set<string>();
  let uses: { chain: string; target: string | null; line: number }[] = [];
  const finish = () => {
    const builtins = BUILTIN_CHAINS[table] ?? [];
    for (const u of uses) {
      const known = (c: string) => builtins.includes(c) || (declared.has(c) && !deleted.has(c));
      if (!known(u.chain)) problems.push(`line ${u.line}: ${table} chain ${u.chain} not declared`);
      if (u.target !== null && !BUILTIN_TARGETS.has(u.target) && !known(u.target)) {
        problems.push(`line ${u.line}: ${table} jump to undeclared chain ${u.target}`);
      }
    }
  };
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line.startsWith("*")) {
      table = line.slice(1);
      declared = new Set();
      deleted = new Set();
      uses = [];
    } else if (line.startsWith(":")) declared.add(line.slice(1).split(/\s+/)[0] as string);
    else if (line.startsWith("-X ")) deleted.add(line.slice(3).trim());
    else if (line.startsWith("-A ") || line.startsWith("-I ")) {
      const words = splitWords(line);
      uses.push({ chain: words[1] as string, target: targetOf(words), line: i + 1 });
    } else if (line === "COMMIT") finish();
  });
  return problems;
}
