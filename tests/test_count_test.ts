/**
 * The test task's count: a real `deno test --junit-path` report of a file with plain, ignored,
 * stepped, failing and step-skipping tests is counted once per test, with skips named.
 */
import assert from "node:assert/strict";
import { countJunit, filterMatcher, summaryLine } from "./test_count.ts";

const SAMPLE = `
Deno.test("plain", () => {});
Deno.test({ name: "ignored one", ignore: true, fn() {} });
Deno.test("with steps", async (t) => {
  await t.step("s1", () => {});
  await t.step("s3 > not a child marker", async (t2) => { await t2.step("nested", () => {}); });
});
Deno.test("a > b is a plain name", () => {});
Deno.test("failing step", async (t) => {
  await t.step("bad", () => { throw new Error("x"); });
  await t.step("good", () => {});
});
Deno.test("partly skipped", async (t) => {
  await t.step({ name: "not here", ignore: true, fn() {} });
});
Deno.test("throws", () => { throw new Error("y"); });
`;

Deno.test("countJunit: deno's own report, each test once, skips and failures named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kproxy-junit-" });
  try {
    await Deno.writeTextFile(`${dir}/sample_test.ts`, SAMPLE);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["test", "--no-check", "--junit-path=report.xml", "sample_test.ts"],
      cwd: dir,
      stdout: "null",
      stderr: "null",
    }).output();
    assert.equal(out.code, 1, "the sample has failing tests");
    const count = countJunit(await Deno.readTextFile(`${dir}/report.xml`));
    assert.deepEqual(count, {
      passed: 4,
      failed: 2,
      skipped: 2,
      failedNames: [
        "sample_test.ts: failing step",
        "sample_test.ts: throws",
        "sample_test.ts: failing step > bad",
      ],
      skippedNames: [
        "sample_test.ts: ignored one",
        "sample_test.ts: partly skipped > not here",
      ],
    });
    assert.equal(summaryLine(count), "4 passed, 2 failed, 2 skipped");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("countJunit: tests --filter leaves out are not counted as skipped", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kproxy-junit-" });
  try {
    await Deno.writeTextFile(`${dir}/sample_test.ts`, SAMPLE);
    for (
      const [filter, expected] of [
        ["step", { passed: 1, failed: 1, skipped: 0 }],
        ["/^(plain|partly)/", { passed: 2, failed: 0, skipped: 1 }],
        ["nothing has this name", { passed: 0, failed: 0, skipped: 0 }],
      ] as const
    ) {
      await new Deno.Command(Deno.execPath(), {
        args: [
          "test",
          "--no-check",
          "--junit-path=report.xml",
          `--filter=${filter}`,
          "sample_test.ts",
        ],
        cwd: dir,
        stdout: "null",
        stderr: "null",
      }).output();
      const count = countJunit(await Deno.readTextFile(`${dir}/report.xml`), filterMatcher(filter));
      assert.deepEqual(
        { passed: count.passed, failed: count.failed, skipped: count.skipped },
        expected,
        filter,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("filterMatcher: a substring, or /regex/ as deno test reads it", () => {
  assert.equal(filterMatcher("web")("nftables: web service"), true);
  assert.equal(filterMatcher("web")("nftables: dns"), false);
  assert.equal(filterMatcher("/^nft.*dns$/")("nftables: dns"), true);
  assert.equal(filterMatcher("/^dns/")("nftables: dns"), false);
});

Deno.test("countJunit: an empty or missing report counts nothing", () => {
  assert.deepEqual(countJunit(""), {
    passed: 0,
    failed: 0,
    skipped: 0,
    failedNames: [],
    skippedNames: [],
  });
});
