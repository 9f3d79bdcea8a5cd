// IP plan: pods 198.18.1.0/24, services 198.18.128.0/17.
import assert from "node:assert/strict";
import type { RuleRenderer } from "../apply/applier.ts";
import { DEFAULT_PROXY_CONFIG } from "../config/proxy_config.ts";
import { build, ep, slice, webSvc } from "../snapshot/fixtures_test.ts";
import type { ProxySnapshot } from "../snapshot/types.ts";
import {
  diffSnapshots,
  formatDiffReport,
  formatSnapshot,
  ManifestError,
  reportDiffers,
  snapshotFromManifests,
} from "./offline_commands.ts";

/** A renderer that writes one line per endpoint in use. */
const fakeRenderer: RuleRenderer = {
  mode: "fake",
  render(snapshot: ProxySnapshot): string {
    const lines = [`# ${snapshot.node.name}`];
    for (const sp of snapshot.servicePorts) {
      for (const f of sp.families) {
        for (const e of f.clusterEndpoints) lines.push(`${sp.id} -> ${e.ip}:${e.port}`);
      }
    }
    return lines.join("\n") + "\n";
  },
};

const before = build([webSvc(), slice("s1", "web", [ep("198.18.1.2")])]);
const after = build([webSvc(), slice("s1", "web", [ep("198.18.1.2"), ep("198.18.1.7")])]);

Deno.test("offline: snapshot from a manifest folder; bad objects are all reported", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kproxy-offline-" });
  try {
    await Deno.writeTextFile(
      `${dir}/web.yaml`,
      "kind: Service\nmetadata: { name: web }\nspec: { clusterIP: 198.18.128.10, ports: [{ name: http, port: 80 }] }\n",
    );
    const snap = await snapshotFromManifests(dir, DEFAULT_PROXY_CONFIG, "node-a");
    assert.deepEqual(snap.servicePorts.map((p) => p.id), ["default/web:http"]);
    assert.equal(snap.node.name, "node-a");
    await Deno.writeTextFile(
      `${dir}/bad.yaml`,
      "kind: Service\nmetadata: { name: a }\nspec: { clusterIP: x }\n---\nkind: Node\nmetadata: { name: B }\n",
    );
    const error = await snapshotFromManifests(dir, DEFAULT_PROXY_CONFIG, "node-a").then(
      () => null,
      (e) => e,
    );
    assert.ok(error instanceof ManifestError);
    assert.deepEqual(error.lines, [
      `${dir}/bad.yaml: Cannot read Service default/a: spec.clusterIP is not an IP address`,
      `${dir}/bad.yaml: Cannot read Node B: metadata.name is not a valid Kubernetes name`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("offline: formatSnapshot json and table", () => {
  assert.deepEqual(JSON.parse(formatSnapshot(before, "json")), JSON.parse(JSON.stringify(before)));
  assert.match(
    formatSnapshot(before, "table"),
    /^node node-a · snapshot [0-9a-f]{32} · 1 service ports\n/,
  );
  assert.throws(() => formatSnapshot(before, "yaml"), {
    name: "UsageError",
    message: '-o must be json or table, not "yaml"',
  });
});

Deno.test("offline: diff report as text, JSON and Markdown", () => {
  const report = diffSnapshots(before, after, fakeRenderer);
  assert.ok(reportDiffers(report));
  assert.equal(report.mode, "fake");
  assert.match(report.rules, /^\+default\/web:http -> 198\.18\.1\.7:8080$/m);
  const text = formatDiffReport(report, "text").split("\n");
  assert.deepEqual(text.slice(0, 2), [
    `snapshot ${before.hash} → ${after.hash}`,
    "default/web:http +endpoint 198.18.1.7:8080 (ready)",
  ]);
  assert.ok(text.includes("+default/web:http -> 198.18.1.7:8080"));
  const json = JSON.parse(formatDiffReport(report, "json"));
  assert.equal(json.equal, false);
  assert.deepEqual(json.changed, ["default/web:http"]);
  assert.deepEqual(json.lines, ["default/web:http +endpoint 198.18.1.7:8080 (ready)"]);
  assert.equal(json.mode, "fake");
  const md = formatDiffReport(report, "markdown");
  assert.match(md, /^### kproxy: 0 added, 0 removed, 1 changed service ports\n/);
  assert.match(md, /^- `default\/web:http \+endpoint 198\.18\.1\.7:8080 \(ready\)`$/m);
  assert.match(md, /<details><summary>fake rule diff<\/summary>\n\n```diff\n/);
  assert.throws(() => formatDiffReport(report, "html"), { name: "UsageError" });
});

Deno.test("offline: equal snapshots and lost endpoints", () => {
  const same = diffSnapshots(before, before, fakeRenderer);
  assert.equal(reportDiffers(same), false);
  assert.equal(same.rules, "");
  assert.equal(formatDiffReport(same, "text"), `no changes (snapshot ${before.hash})`);
  assert.equal(formatDiffReport(same, "markdown"), "**kproxy:** no changes to the proxy rules.");
  assert.equal(JSON.parse(formatDiffReport(same, "json")).equal, true);
  const lost = diffSnapshots(before, build([webSvc()]), null);
  assert.deepEqual(lost.diff.lostAllEndpoints, ["default/web:http"]);
  assert.equal(lost.rules, "", "no renderer, no rule diff");
  assert.equal(lost.mode, null);
  assert.match(
    formatDiffReport(lost, "markdown"),
    /^> \*\*Warning:\*\* `default\/web:http` lose all endpoints\.$/m,
  );
});
