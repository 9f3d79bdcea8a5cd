/**
 * The test task: `deno fmt --check`, `deno lint`, `deno check`, then every test, ending with the
 * plain line `N passed, N failed, N skipped`.
 *
 * Counting: fmt, lint and check are one test each; every `Deno.test` counts once, whatever its
 * steps (a failed step fails its test; a skipped step counts as a skip). Skipped and failed tests
 * are listed by name above the closing line. Under `CI=true` a test whose requirements are
 * missing fails instead of skipping (tests/requirements.ts).
 *
 * Arguments: `--filter=PATTERN` (or `--filter PATTERN`) runs only the tests whose name matches
 * (deno test's `--filter`: a substring, or `/regex/`) and skips fmt/lint/check; tests it leaves
 * out are not counted, and a filter that matches nothing fails; other arguments
 * are test files or folders. `--soak` also runs the long churn tests (KPROXY_SOAK=1).
 */
import { parseArgs } from "node:util";
import { countJunit, filterMatcher, summaryLine } from "./test_count.ts";
import { underCi } from "./requirements.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { filter: { type: "string" }, soak: { type: "boolean", default: false } },
  allowPositionals: true,
});
const filter = values.filter;
const partial = filter !== undefined || positionals.length > 0;

let passed = 0;
let failed = 0;
const failures: string[] = [];

async function step(
  name: string,
  argv: string[],
  env: Record<string, string> = {},
): Promise<boolean> {
  console.log(`\n=== ${name}: ${argv.join(" ")}`);
  const [cmd, ...args] = argv as [string, ...string[]];
  try {
    const child = new Deno.Command(cmd, { args, env, stdout: "inherit", stderr: "inherit" });
    return (await child.spawn().status).success;
  } catch (e) {
    console.log(`${name}: cannot run ${cmd}: ${(e as Error).message}`);
    return false;
  }
}

async function check(name: string, argv: string[]): Promise<void> {
  if (await step(name, argv)) passed++;
  else {
    failed++;
    failures.push(name);
  }
}

const deno = Deno.execPath();
if (underCi()) {
  console.log("CI=true: tests whose requirements are missing fail instead of skipping");
}

if (!partial) {
  await check("fmt", [deno, "fmt", "--check"]);
  await check("lint", [deno, "lint"]);
  await check("check", [deno, "check", "."]);
}

// The API-server tests need the Go fixtures; build them when Go is here (a no-op when built).
const path = `${Deno.env.get("PATH") ?? ""}:/usr/local/go/bin`;
const haveGo = path.split(":").some((d) => {
  try {
    return d !== "" && Deno.statSync(`${d}/go`).isFile;
  } catch {
    return false;
  }
});
if (!haveGo) {
  console.log(
    "\n!!! Go is missing: the Go fixtures cannot be built; tests that need them skip !!!",
  );
} else if (
  !(await step("fixtures", ["bash", "tests/fixtures/build_fixtures.sh"], { PATH: path }))
) {
  console.log("\n!!! building the Go fixtures failed; tests that need them skip !!!\n");
}

const junit = await Deno.makeTempFile({ suffix: ".xml" });
const testArgs = [deno, "test", "--allow-all", `--junit-path=${junit}`];
if (filter !== undefined) testArgs.push(`--filter=${filter}`);
testArgs.push(...positionals);
const ok = await step("test", testArgs, values.soak ? { KPROXY_SOAK: "1" } : {});
const counts = countJunit(
  await Deno.readTextFile(junit).catch(() => ""),
  filter === undefined ? undefined : filterMatcher(filter),
);
await Deno.remove(junit).catch(() => {});
passed += counts.passed;
failed += counts.failed;
failures.push(...counts.failedNames);
if (!ok && counts.failed === 0) {
  failed++;
  failures.push("deno test (exited with an error before reporting a failing test)");
}
if (filter !== undefined && counts.passed + counts.failed + counts.skipped === 0) {
  failed++;
  failures.push(`--filter ${filter}: no test has a name that matches`);
}
if (counts.skippedNames.length > 0) {
  console.log(`\nSkipped:\n${counts.skippedNames.map((s) => `  - ${s}`).join("\n")}`);
}
if (failures.length > 0) console.log(`\nFailed:\n${failures.map((f) => `  - ${f}`).join("\n")}`);
console.log(`\n${summaryLine({ passed, failed, skipped: counts.skipped })}`);
Deno.exit(failed === 0 ? 0 : 1);
