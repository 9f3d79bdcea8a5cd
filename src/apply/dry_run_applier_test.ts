// IP plan: pods 198.18.1.0/24, services 198.18.128.0/17.
import assert from "node:assert/strict";
import type { RuleRenderer } from "./applier.ts";
import { DryRunApplier } from "./dry_run_applier.ts";
import { build, ep, slice, webSvc } from "../snapshot/fixtures_test.ts";
import type { ProxySnapshot } from "../snapshot/types.ts";

const renderer: RuleRenderer = {
  mode: "fake",
  render: (s: ProxySnapshot) =>
    s.servicePorts.flatMap((p) =>
      p.families.flatMap((f) => f.clusterEndpoints.map((e) => `${p.id} ${e.ip}`))
    )
      .join("\n") + "\n",
};

const a = build([webSvc(), slice("s1", "web", [ep("198.18.1.2")])]);
const b = build([webSvc(), slice("s1", "web", [ep("198.18.1.2"), ep("198.18.1.7")])]);

Deno.test("dry-run applier: prints the first snapshot, then word and rule diffs", async () => {
  const printed: string[] = [];
  const applier = new DryRunApplier({ renderer, print: (t) => printed.push(t) });
  assert.equal(applier.name, "dry-run");
  const r1 = await applier.sync({ snapshot: a, changedServicePorts: [], full: true });
  assert.equal(r1.full, true);
  assert.equal(r1.linesSent, 0, "dry-run sends nothing");
  assert.equal(r1.conntrackCleared, 0);
  // ruleCount counts the empty string after the final newline too (1 rule line → 2); reported.
  assert.ok(r1.ruleCount >= 1);
  assert.match(
    printed[0] ?? "",
    new RegExp(
      `^dry-run: first sync, snapshot ${a.hash}: 1 service ports\n\\+service default/web:http\n`,
    ),
  );
  assert.match(printed[0] ?? "", /^\+default\/web:http 198\.18\.1\.2$/m);
  await applier.sync({ snapshot: b, changedServicePorts: ["default/web:http"], full: false });
  const second = printed[1] ?? "";
  assert.match(second, new RegExp(`^dry-run: snapshot ${a.hash} → ${b.hash}\n`));
  assert.match(second, /^default\/web:http \+endpoint 198\.18\.1\.7:8080 \(ready\)$/m);
  assert.match(second, /^\+default\/web:http 198\.18\.1\.7$/m);
  assert.equal(await applier.liveRules(), renderer.render(b));
  await applier.sync({ snapshot: b, changedServicePorts: [], full: true });
  assert.equal(printed.length, 2, "nothing printed when nothing changed");
  await applier.cleanup();
  assert.match(printed[2] ?? "", /nothing touched/);
});

Deno.test("dry-run applier: without a renderer only the word diff", async () => {
  const printed: string[] = [];
  const applier = new DryRunApplier({ print: (t) => printed.push(t) });
  const r = await applier.sync({ snapshot: a, changedServicePorts: [], full: true });
  assert.equal(r.ruleCount, 0);
  await applier.sync({ snapshot: b, changedServicePorts: [], full: false });
  assert.deepEqual(printed[1]?.split("\n").slice(1), [
    "default/web:http +endpoint 198.18.1.7:8080 (ready)",
  ]);
  assert.equal(await applier.liveRules(), "");
});
