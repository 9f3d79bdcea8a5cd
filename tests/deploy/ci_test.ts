/**
 * deploy/ci: the example workflows parse and call what exists, and kproxy-diff.sh, run in a
 * throw-away git repository against kproxy's CLI (under the compiled binary's permissions),
 * reports changes as Markdown and applies its policies with the documented exit codes.
 *
 * IP plan: services 198.18.128.0/17, endpoints 198.18.1.0/24 (manifests only; no traffic).
 */

import assert from "node:assert/strict";
import yaml from "js-yaml";
import { COMPILE_TARGETS } from "../../deploy/compile.ts";
import { kproxyPermissionArgs } from "../../deploy/kproxy_permissions.ts";
import { REPO_DIR } from "./_manifests.ts";

const CI_DIR = `${REPO_DIR}/deploy/ci`;
const SCRIPT = `${CI_DIR}/kproxy-diff.sh`;
/** kproxy's CLI, run as the compiled binary would be: with exactly its permissions. */
const KPROXY = [Deno.execPath(), "run", ...kproxyPermissionArgs(), `${REPO_DIR}/src/cli/main.ts`];

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function run(
  cmd: string,
  args: readonly string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<Run> {
  const out = await new Deno.Command(cmd, {
    args: [...args],
    cwd,
    env: { GIT_CONFIG_GLOBAL: "/dev/null", GITHUB_STEP_SUMMARY: "", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function git(cwd: string, ...args: string[]): Promise<void> {
  const r = await run("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], cwd);
  assert.equal(r.code, 0, `git ${args.join(" ")}: ${r.stderr}`);
}

function webManifest(ready: boolean): string {
  return `apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  type: ClusterIP
  clusterIP: 198.18.128.10
  clusterIPs: [198.18.128.10]
  ipFamilies: [IPv4]
  ports: [{ name: http, protocol: TCP, port: 80, targetPort: 8080 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc12
  namespace: default
  labels: { kubernetes.io/service-name: web }
addressType: IPv4
ports: [{ name: http, protocol: TCP, port: 8080 }]
endpoints:
  - addresses: [198.18.1.2]
    conditions: { ready: ${ready}, serving: ${ready}, terminating: false }
    nodeName: node-a
`;
}

/** A repository whose main branch has k8s/web.yaml with a ready endpoint, on branch change. */
async function makeRepo(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kproxy-ci-" });
  await git(dir, "init", "-q", "-b", "main");
  await Deno.mkdir(`${dir}/k8s`);
  await Deno.writeTextFile(`${dir}/k8s/web.yaml`, webManifest(true));
  await git(dir, "add", ".");
  await git(dir, "commit", "-qm", "base");
  await git(dir, "checkout", "-qb", "change");
  return dir;
}

async function diffScript(repo: string, args: string[], cwd = repo): Promise<Run> {
  return await run("bash", [SCRIPT, "--base", "main", ...args], cwd, {
    KPROXY: KPROXY.join(" "),
  });
}

/** Whether this kproxy renders rules (the default diff includes them). */
const rulesBuiltIn = await (async () => {
  const r = await run(KPROXY[0] ?? "", [
    ...KPROXY.slice(1),
    "render",
    "--manifests",
    `${REPO_DIR}/deploy/examples`,
  ], CI_DIR);
  return !/not built into this kproxy/.test(r.stderr);
})();
/** Extra flags when the rule diff cannot be rendered yet. */
const RULES = rulesBuiltIn ? [] : ["--", "--rules=false"];

Deno.test("the CI script is valid bash and documents itself", async () => {
  const syntax = await run("bash", ["-n", SCRIPT], CI_DIR);
  assert.equal(syntax.code, 0, syntax.stderr);
  const help = await run("bash", [SCRIPT, "--help"], CI_DIR);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--fail-on-lost-endpoints/);
  assert.match(help.stdout, /exits:/);
  const mode = (await Deno.stat(SCRIPT)).mode ?? 0;
  assert.ok((mode & 0o111) !== 0, "kproxy-diff.sh is executable");
});

Deno.test("the example workflows parse and call the script and the compile task", () => {
  const diff = yaml.load(Deno.readTextFileSync(`${CI_DIR}/github-kproxy-diff.yaml`)) as {
    on: { pull_request: unknown };
    jobs: Record<string, { steps: { run?: string; uses?: string }[] }>;
  };
  assert.ok(diff.on.pull_request);
  const steps = Object.values(diff.jobs).flatMap((j) => j.steps);
  const call = steps.find((s) => s.run?.includes("kproxy-diff.sh"))?.run ?? "";
  for (const flag of call.match(/--[a-z-]+/g) ?? []) {
    assert.ok(Deno.readTextFileSync(SCRIPT).includes(`${flag})`), `the script takes ${flag}`);
  }
  assert.ok(steps.some((s) => s.uses?.startsWith("actions/checkout")));

  const release = yaml.load(Deno.readTextFileSync(`${CI_DIR}/github-release.yaml`)) as {
    jobs: {
      compile: {
        strategy: { matrix: { include: { target: string }[] } };
        steps: { run?: string; with?: Record<string, string> }[];
      };
    };
  };
  const targets = release.jobs.compile.strategy.matrix.include.map((i) => i.target).sort();
  assert.deepEqual(targets, [...COMPILE_TARGETS].sort());
  const setup = release.jobs.compile.steps.find((s) => s.with?.["deno-version"]);
  assert.equal(setup?.with?.["deno-version"], Deno.version.deno);
  assert.ok(release.jobs.compile.steps.some((s) => s.run?.startsWith("deno task compile")));
});

Deno.test({
  name: "kproxy-diff.sh reports, and fails on policy only when asked",
  async fn(t) {
    const repo = await makeRepo();
    try {
      await t.step("no change: exit 0, says so", async () => {
        const r = await diffScript(repo, ["--manifests", "k8s", ...RULES]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /no changes/i);
      });

      await Deno.writeTextFile(`${repo}/k8s/web.yaml`, webManifest(false));
      await git(repo, "commit", "-qam", "endpoint not ready");

      await t.step("lost endpoints without a policy: exit 0, Markdown warning", async () => {
        const report = `${repo}/report.md`;
        const r = await diffScript(repo, ["--manifests", "k8s", "--report", report, ...RULES]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^<!-- kproxy diff [0-9a-f]{12}\.\.HEAD k8s -->$/m);
        assert.match(r.stdout, /^### kproxy: 0 added, 0 removed, 1 changed/m);
        assert.match(r.stdout, /`default\/web:http`/);
        assert.equal(await Deno.readTextFile(report), r.stdout);
        if (rulesBuiltIn) assert.match(r.stdout, /```diff/);
      });

      await t.step("--fail-on-lost-endpoints: exit 3 naming the service", async () => {
        const r = await diffScript(repo, [
          "--manifests",
          "k8s",
          "--fail-on-lost-endpoints",
          ...RULES,
        ]);
        assert.equal(r.code, 3, r.stderr);
        assert.match(r.stderr, /lost-endpoints.*default\/web:http/);
      });

      await t.step("--fail-on-change, run from inside the folder: exit 3", async () => {
        const r = await diffScript(repo, ["--fail-on-change", ...RULES], `${repo}/k8s`);
        assert.equal(r.code, 3, r.stderr);
        assert.match(r.stderr, /policy change failed/);
      });

      await t.step("a folder the base did not have: everything is added", async () => {
        await Deno.mkdir(`${repo}/new`);
        await Deno.writeTextFile(`${repo}/new/web.yaml`, webManifest(true));
        const r = await diffScript(repo, [
          "--manifests",
          "new",
          "--fail-on-lost-endpoints",
          ...RULES,
        ]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /1 added, 0 removed, 0 changed/);
      });

      await t.step("bad manifests and bad arguments: exit 2", async () => {
        await Deno.writeTextFile(`${repo}/new/bad.yaml`, "kind: Service\nmetadata: 3\n");
        const bad = await diffScript(repo, ["--manifests", "new", ...RULES]);
        assert.equal(bad.code, 2, bad.stdout);
        assert.match(bad.stderr, /kproxy diff failed with exit code 2/);
        const usage = await diffScript(repo, ["--frobnicate"]);
        assert.equal(usage.code, 2);
        assert.match(usage.stderr, /unknown argument --frobnicate/);
        const base = await run("bash", [SCRIPT, "--base", "no-such-ref"], repo, {
          KPROXY: KPROXY.join(" "),
        });
        assert.equal(base.code, 2);
        assert.match(base.stderr, /base no-such-ref is not a commit/);
      });
    } finally {
      await Deno.remove(repo, { recursive: true });
    }
  },
});
