/**
 * Kept seeds still build the clusters that caught their divergence, and every deliberate
 * difference the comparator accepts is a row of the README's "Differences from kube-proxy".
 */
import assert from "node:assert/strict";
import { DELIBERATE_DIFFERENCES } from "./deliberate.ts";
import { generateCase } from "./generator.ts";
import { REGRESSION_SEEDS } from "./regression_seeds.ts";

Deno.test("regression seeds still generate the cluster that caught their divergence", () => {
  for (const r of REGRESSION_SEEDS) {
    assert.ok(
      generateCase(r.seed).rounds.some(r.covers),
      `seed ${r.seed} no longer builds what found: ${r.found}; pick a new seed`,
    );
  }
});

Deno.test("every deliberate difference the comparator accepts is a row of the README table", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const table = readme.split("## Differences from kube-proxy")[1]?.split("\n## ")[0] ?? "";
  const rows = table.split("\n").filter((l) => l.startsWith("|")).map((l) =>
    l.split("|")[1]?.trim() ?? ""
  );
  for (const d of DELIBERATE_DIFFERENCES.filter((x) => !x.pending)) {
    assert.ok(rows.includes(d.readmeRow), `README has no row "${d.readmeRow}" (${d.id})`);
  }
});
