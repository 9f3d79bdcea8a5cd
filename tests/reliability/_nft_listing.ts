/**
 * `nft list` output in a canonical form, so two rulesets with the same meaning compare equal:
 * top-level objects (sets, maps, chains) sorted by header, set and map elements sorted, blank
 * lines and indentation dropped. Rule order inside a chain is kept: it matters.
 *
 * @module
 */

/** The canonical form of one or more `nft list table` outputs. */
export function canonicalNftListing(text: string): string {
  const tables: string[] = [];
  let header: string | null = null;
  let blocks: string[] = [];
  let current: string[] | null = null;
  let depth = 0;
  const flushTable = () => {
    if (header !== null) tables.push([header, ...blocks.sort()].join("\n"));
    header = null;
    blocks = [];
  };
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    const opens = (line.match(/\{/g) ?? []).length;
    const closes = (line.match(/\}/g) ?? []).length;
    if (depth === 0 && line.startsWith("table ")) {
      flushTable();
      header = line;
    } else if (depth === 1 && current === null && opens > 0) {
      current = [];
    } else if (depth === 1 && current === null) {
      blocks.push(line); // a table-level statement such as its comment
    }
    if (current !== null) current.push(line);
    depth += opens - closes;
    if (depth <= 1 && current !== null) {
      blocks.push(sortElements(current.join("\n")));
      current = null;
    }
  }
  flushTable();
  return tables.sort().join("\n");
}

function sortElements(block: string): string {
  return block.replace(/elements = \{([^}]*)\}/g, (_m, body: string) => {
    const elements = body.split(",").map((e) => e.trim()).filter((e) => e !== "").sort();
    return `elements = { ${elements.join(", ")} }`;
  });
}
