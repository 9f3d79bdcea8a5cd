/**
 * The test count tells the whole truth: a missing requirement skips (named and counted) or, under
 * CI=true, fails; no test skips any other way. The end-to-end cases run the real test task on
 * tests/netns/harness_test.ts with `ip` hidden from PATH.
 */
import assert from "node:assert/strict";
import { requirement, requiring, underCi } from "./requirements.ts";

const REPO_DIR = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

/** Runs `fn` with CI set to `value` (or unset), restoring it afterwards. */
function withCi<T>(value: string | undefined, fn: () => T): T {
  const before = Deno.env.get("CI");
  if (value === undefined) Deno.env.delete("CI");
  else Deno.env.set("CI", value);
  try {
    return fn();
  } finally {
    if (before === undefined) Deno.env.delete("CI");
    else Deno.env.set("CI", before);
  }
}

const present = requirement("present", () => null);
const absent = requirement("absent", () => "it is not here");
const optional = requirement("optional", () => "cannot be had here", { ciOptional: true });
const body = () => {};

/** A plain test definition to gate. */
function def(): Deno.TestDefinition {
  return { name: "t", fn: body };
}

Deno.test("requiring: present requirements leave the test as it is", () => {
  const plain = def();
  assert.equal(withCi("true", () => requiring([present], plain)), plain);
  assert.equal(withCi(undefined, () => requiring([present], plain)), plain);
});

Deno.test("requiring: a missing requirement skips outside CI, fails naming it under CI", () => {
  const outside = withCi(undefined, () => requiring([present, absent], def()));
  assert.equal(outside.ignore, true);
  assert.equal(outside.fn, body);
  for (const ci of ["true", "1", "TRUE"]) {
    const inside = withCi(ci, () => requiring([present, absent], def()));
    assert.notEqual(inside.ignore, true);
    assert.throws(
      () => (inside.fn as () => void)(),
      { message: 'Cannot run "t" under CI=true: absent: it is not here' },
    );
  }
  const off = withCi("false", () => requiring([absent], def()));
  assert.equal(off.ignore, true, "CI=false is not CI");
});

Deno.test("requiring: a CI-optional requirement stays a skip under CI, unless others miss", () => {
  const onlyOptional = withCi("true", () => requiring([optional], def()));
  assert.equal(onlyOptional.ignore, true);
  const both = withCi("true", () => requiring([optional, absent], def()));
  assert.throws(
    () => (both.fn as () => void)(),
    /absent: it is not here; optional|optional.*absent/,
  );
});

Deno.test("requirement: the check runs once, and a check that throws is a reason", () => {
  let calls = 0;
  const counted = requirement("counted", () => {
    calls++;
    return null;
  });
  counted.missing();
  counted.missing();
  assert.equal(calls, 1);
  const broken = requirement("broken", () => {
    throw new Error("boom");
  });
  assert.equal(broken.missing(), "broken check failed: boom");
  assert.equal(withCi("1", underCi), true);
  assert.equal(withCi(undefined, underCi), false);
});

/** Test sources (and their private helpers) under src/, tests/ and bench/. */
function testSources(dir: string): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory && entry.name !== "golden" && !entry.name.startsWith(".")) {
      out.push(...testSources(path));
    } else if (entry.isFile && entry.name.endsWith(".ts")) {
      out.push({ path: path.slice(REPO_DIR.length + 1), text: Deno.readTextFileSync(path) });
    }
  }
  return out;
}

Deno.test("no test skips except through tests/requirements.ts", () => {
  const files = ["src", "tests", "bench"].flatMap((d) => testSources(`${REPO_DIR}/${d}`))
    .filter((f) => f.path !== "tests/requirements.ts" && f.path !== "tests/requirements_test.ts");
  const offenders: string[] = [];
  for (const { path, text } of files) {
    const lines = text.split("\n");
    lines.forEach((line, i) => {
      const where = `${path}:${i + 1}: ${line.trim()}`;
      // `ignore: …` / `ignore,` in a test or step definition, or Deno.test.ignore / t.step.ignore.
      if (/^\s*ignore\s*(:|,)/.test(line) || /\bDeno\.test\.ignore\(|\.step\.ignore\(/.test(line)) {
        offenders.push(where);
      }
      // A `return` right after a line that says it skips: an early return that passes unchecked.
      if (/^\s*return;?\s*$/.test(line) && /skip/i.test(lines[i - 1] ?? "")) offenders.push(where);
    });
  }
  assert.deepEqual(offenders, [], "gate tests with requiring([...], def) instead");
});

/** A PATH holding only `bash`: `ip` (and every other tool) is hidden. */
async function pathWithoutIp(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kproxy-path-" });
  await Deno.symlink("/bin/bash", `${dir}/bash`);
  return dir;
}

/** Runs the test task on tests/netns/harness_test.ts with `ip` hidden. */
async function testTaskWithoutIp(
  ci: boolean,
): Promise<{ code: number; out: string; last: string }> {
  const path = await pathWithoutIp();
  try {
    const env: Record<string, string> = { PATH: path, CI: ci ? "true" : "false" };
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "tests/run_all.ts", "tests/netns/harness_test.ts"],
      cwd: REPO_DIR,
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(run.stdout);
    const out = stdout + new TextDecoder().decode(run.stderr);
    return { code: run.code, out, last: stdout.trimEnd().split("\n").at(-1) ?? "" };
  } finally {
    await Deno.remove(path, { recursive: true });
  }
}

Deno.test("the test task without `ip`: skips counted and named; under CI=true it fails", async () => {
  const skipped = await testTaskWithoutIp(false);
  assert.equal(skipped.code, 0, skipped.out);
  assert.match(skipped.last, /^0 passed, 0 failed, ([1-9]\d*) skipped$/);
  assert.match(skipped.out, /Skipped:\n {2}- tests\/netns\/harness_test\.ts: /);

  const ci = await testTaskWithoutIp(true);
  assert.equal(ci.code, 1, ci.out);
  const count = /^0 passed, ([1-9]\d*) failed, 0 skipped$/.exec(ci.last);
  assert.ok(count, ci.out);
  assert.equal(count[1], /(\d+) skipped$/.exec(skipped.last)?.[1]);
  assert.match(ci.out, /Cannot run "[^"]+" under CI=true: ip netns: ip is not on PATH/);
  assert.match(ci.out, /Failed:\n {2}- tests\/netns\/harness_test\.ts: /);
});
