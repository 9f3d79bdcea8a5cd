/**
 * The test task: `deno fmt --check`, `deno lint`, `deno check`, then every test, ending with the
 * plain line `N passed, N failed`. `--soak` also runs the long churn tests (KPROXY_SOAK=1).
 */

const soak = Deno.args.includes("--soak");
const filter = Deno.args.find((a) => a.startsWith("--filter="))?.slice("--filter=".length);
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
  const status = await new Deno.Command(cmd, { args, env, stdout: "inherit", stderr: "inherit" })
    .spawn().status;
  return status.success;
}

async function check(name: string, argv: string[]): Promise<void> {
  if (await step(name, argv)) passed++;
  else {
    failed++;
    failures.push(name);
  }
}

function countJUnit(xml: string): { passed: number; failed: number; names: string[] } {
  let p = 0;
  let f = 0;
  const names: string[] = [];
  const re = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    const body = m[3] ?? "";
    const name = /name="([^"]*)"/.exec(m[1] ?? "")?.[1] ?? "?";
    if (/<skipped/.test(body)) continue;
    if (/<failure|<error/.test(body)) {
      f++;
      names.push(name);
    } else p++;
  }
  return { passed: p, failed: f, names };
}

const deno = Deno.execPath();

if (!filter) {
  await check("fmt", [deno, "fmt", "--check"]);
  await check("lint", [deno, "lint"]);
  await check("check", [deno, "check", "."]);
}

// The API-server integration tests need the Go fixtures; build them when Go is here.
const goPath = ["/usr/local/go/bin/go", "/usr/bin/go"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});
if (
  goPath === undefined && !Deno.env.get("PATH")?.split(":").some((d) => {
    try {
      return Deno.statSync(`${d}/go`).isFile;
    } catch {
      return false;
    }
  })
) {
  console.log(
    "\n!!! Go is missing: the kube-apiserver/etcd fixtures cannot be built; " +
      "the API-server integration tests will be SKIPPED !!!\n",
  );
} else {
  const path = `${Deno.env.get("PATH") ?? ""}:/usr/local/go/bin`;
  if (!(await step("fixtures", ["bash", "tests/fixtures/build_fixtures.sh"], { PATH: path }))) {
    console.log("\n!!! building the Go fixtures failed; integration tests will be skipped !!!\n");
  }
}

const junit = await Deno.makeTempFile({ suffix: ".xml" });
const testArgs = [deno, "test", "--allow-all", `--junit-path=${junit}`];
if (filter) testArgs.push(filter);
const ok = await step("test", testArgs, soak ? { KPROXY_SOAK: "1" } : {});
const counts = countJUnit(await Deno.readTextFile(junit).catch(() => ""));
await Deno.remove(junit).catch(() => {});
passed += counts.passed;
failed += counts.failed;
failures.push(...counts.names);
if (!ok && counts.failed === 0) {
  failed++;
  failures.push("deno test (exited with an error before reporting a failing test)");
}
if (failures.length > 0) console.log(`\nFailed:\n${failures.map((f) => `  - ${f}`).join("\n")}`);
console.log(`\n${passed} passed, ${failed} failed`);
Deno.exit(failed === 0 ? 0 : 1);
