// Golden tests of `kproxy snapshot` on deploy/examples. Rewrite them with UPDATE_GOLDEN=1.
// IP plan (of deploy/examples): node 198.18.0.10, pods 198.18.1.0/24 and fd00::1:0/112,
// services 198.18.128.0/17 and fd00::/112, external 198.18.200.1, LoadBalancer 198.18.250.1,
// clients 198.19.0.0/24.
import assert from "node:assert/strict";
import { EXAMPLES, kproxy, ROOT } from "./_kproxy.ts";

const GOLDEN = `${ROOT}/tests/golden/snapshot`;
const UPDATE = Deno.env.get("UPDATE_GOLDEN") === "1";

async function checkGolden(name: string, actual: string): Promise<void> {
  const path = `${GOLDEN}/${name}`;
  if (UPDATE) {
    await Deno.writeTextFile(path, actual);
    return;
  }
  let expected: string;
  try {
    expected = await Deno.readTextFile(path);
  } catch {
    throw new Error(`${path} is missing; run with UPDATE_GOLDEN=1 to write it`);
  }
  assert.equal(
    actual,
    expected,
    `${name} differs from the golden file (UPDATE_GOLDEN=1 rewrites it)`,
  );
}

const args = ["snapshot", "--manifests", EXAMPLES, "--hostname-override", "node-a"];

Deno.test("golden: kproxy snapshot -o json on deploy/examples", async () => {
  const run = await kproxy(...args, "-o", "json");
  assert.equal(run.stderr, "");
  assert.equal(run.code, 0);
  await checkGolden("examples.json", run.stdout);
  const snapshot = JSON.parse(run.stdout);
  assert.equal(snapshot.version, 1);
  assert.match(snapshot.hash, /^[0-9a-f]{32}$/);
});

Deno.test("golden: kproxy snapshot -o table on deploy/examples", async () => {
  const run = await kproxy(...args, "-o", "table");
  assert.equal(run.stderr, "");
  assert.equal(run.code, 0);
  await checkGolden("examples.table.txt", run.stdout);
  assert.equal((await kproxy(...args)).stdout, run.stdout, "table is the default output");
});

Deno.test("golden: the output does not depend on the path the examples are read from", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kproxy-golden-" });
  try {
    // Another folder layout and file order: the same objects, the same bytes.
    await Deno.mkdir(`${dir}/z/nested`, { recursive: true });
    const names: string[] = [];
    for await (const e of Deno.readDir(EXAMPLES)) if (e.isFile) names.push(e.name);
    for (const [i, name] of names.sort().reverse().entries()) {
      await Deno.copyFile(`${EXAMPLES}/${name}`, `${dir}/${i % 2 ? "z/nested/" : ""}${i}-${name}`);
    }
    const moved = await kproxy(
      "snapshot",
      "--manifests",
      dir,
      "--hostname-override",
      "node-a",
      "-o",
      "json",
    );
    const original = await kproxy(...args, "-o", "json");
    assert.equal(moved.code, 0);
    assert.equal(moved.stdout, original.stdout);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
