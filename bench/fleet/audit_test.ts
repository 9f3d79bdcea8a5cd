/** Tallying the API server's audit log per fleet node. */
import assert from "node:assert/strict";
import { AuditLogReader, AuditTallies, tallyDelta } from "./audit.ts";

function line(
  id: string,
  stage: string,
  verb: string,
  user: string,
  code = 200,
  uri = "/api/v1/services",
): string {
  return JSON.stringify({
    kind: "Event",
    auditID: id,
    stage,
    verb,
    requestURI: uri,
    user: { username: user, groups: ["kproxy:fleet"] },
    responseStatus: { code },
  });
}

Deno.test("audit tallies count each request once and follow open watches", () => {
  const t = new AuditTallies();
  t.add(line("1", "ResponseComplete", "list", "n1"));
  t.add(line("2", "ResponseStarted", "watch", "n1"));
  t.add(
    line(
      "3",
      "ResponseStarted",
      "watch",
      "n1",
      200,
      "/api/v1/services?watch=1&sendInitialEvents=true",
    ),
  );
  t.add(line("4", "ResponseComplete", "list", "n2", 410));
  t.add(line("2", "ResponseComplete", "watch", "n1"));
  t.add(line("5", "ResponseComplete", "create", "n2", 429));
  t.add("not json");
  t.add("");
  const n1 = t.of("n1");
  assert.equal(n1.requests, 3);
  assert.deepEqual(n1.byVerb, { list: 1, watch: 2 });
  assert.equal(n1.openWatches, 1, "watch 2 ended, watch 3 is open");
  assert.equal(n1.watchLists, 1);
  const n2 = t.of("n2");
  assert.equal(n2.requests, 2);
  assert.equal(n2.gone, 1);
  assert.equal(n2.failed, 1);
  assert.equal(t.malformed, 1);
  assert.equal(t.of("nobody").requests, 0);
  assert.deepEqual(t.users().sort(), ["n1", "n2"]);
});

Deno.test("tallyDelta: what happened between two readings", () => {
  const t = new AuditTallies();
  t.add(line("1", "ResponseComplete", "list", "n1"));
  const a = t.of("n1");
  t.add(line("2", "ResponseStarted", "watch", "n1"));
  t.add(line("3", "ResponseComplete", "list", "n1", 410));
  const d = tallyDelta(a, t.of("n1"));
  assert.deepEqual(d, {
    requests: 2,
    byVerb: { watch: 1, list: 1 },
    watchLists: 0,
    gone: 1,
    failed: 0,
    openWatches: 1,
  });
});

Deno.test("AuditLogReader follows a growing file, lines split across reads included", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/audit.log`;
    const reader = new AuditLogReader(path);
    await reader.catchUp(); // no file yet
    const first = line("1", "ResponseComplete", "list", "n1");
    const second = line("2", "ResponseComplete", "get", "n1");
    await Deno.writeTextFile(path, first + "\n" + second.slice(0, 20));
    await reader.catchUp();
    assert.equal(reader.tallies.of("n1").requests, 1);
    await Deno.writeTextFile(path, second.slice(20) + "\n", { append: true });
    await reader.catchUp();
    assert.deepEqual(reader.tallies.of("n1").byVerb, { list: 1, get: 1 });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
