/**
 * A check on rendered nft text: every `jump`/`goto` names a chain and every `@name` a set or
 * map defined in the same table (as knftables' fake does). Used by the tests.
 */

/** Problems found: one sentence each, naming the table and the missing object. */
export function checkReferences(script: string): string[] {
  const problems: string[] = [];
  let table: string | null = null;
  let chains = new Set<string>();
  let sets = new Set<string>();
  let refs: { kind: "chain" | "set"; name: string; line: number }[] = [];
  const finish = () => {
    if (table === null) return;
    for (const r of refs) {
      const known = r.kind === "chain" ? chains.has(r.name) : sets.has(r.name);
      if (!known) {
        problems.push(`table ${table} line ${r.line}: ${r.kind} ${r.name} is not defined`);
      }
    }
  };
  script.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    const t = /^table (ip6?|inet) (\S+) \{$/.exec(line);
    if (t) {
      finish();
      table = `${t[1]} ${t[2]}`;
      chains = new Set();
      sets = new Set();
      refs = [];
      return;
    }
    const def = /^(chain|set|map) (\S+) \{/.exec(line);
    if (def) {
      if (def[1] === "chain") chains.add(def[2] as string);
      else sets.add(def[2] as string);
    }
    for (const m of line.matchAll(/\b(?:jump|goto) ([A-Za-z_.][A-Za-z0-9_./-]*)/g)) {
      refs.push({ kind: "chain", name: m[1] as string, line: i + 1 });
    }
    for (const m of line.matchAll(/@([A-Za-z_.][A-Za-z0-9_./-]*)/g)) {
      refs.push({ kind: "set", name: m[1] as string, line: i + 1 });
    }
  });
  finish();
  return problems;
}
