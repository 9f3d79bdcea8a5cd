/**
 * The permissions baked into the compiled binary (deploy/kproxy_permissions.ts) are enough and
 * no wider than needed:
 * - statically: every environment variable, system call and tool in src/ is granted, every
 *   grant is used, and src/ writes no files (the binary has no --allow-write);
 * - by running kproxy's CLI under exactly those flags (what `deno compile` bakes in), with PATH
 *   holding only stand-in tools that log their calls: offline commands, both backends' first
 *   sync, and --cleanup. Nothing touches the kernel: the stand-ins only record and answer.
 *
 * IP plan: health and metrics servers on 127.0.0.1 (free ports); manifests from deploy/examples
 * (198.18.0.0/15) are only rendered.
 */

import assert from "node:assert/strict";
import { iptablesTools } from "../../src/apply/iptables_applier.ts";
import {
  KPROXY_ENV,
  KPROXY_SYS,
  KPROXY_TOOLS,
  kproxyPermissionArgs,
} from "../../deploy/kproxy_permissions.ts";
import { LIBC_PATHS } from "../../src/apply/nft_generation.ts";
import { REPO_DIR } from "./_manifests.ts";
import { requirement, requiring, root } from "../requirements.ts";

/** Non-test TypeScript files of src/, with their text. */
function sourceFiles(dir = `${REPO_DIR}/src`): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) out.push(...sourceFiles(path));
    else if (
      entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts") &&
      !entry.name.startsWith("_test")
    ) {
      out.push({ path: path.slice(REPO_DIR.length + 1), text: Deno.readTextFileSync(path) });
    }
  }
  return out;
}

const sources = sourceFiles();

function matchesGrant(name: string, grants: readonly string[]): boolean {
  return grants.some((g) => g.endsWith("*") ? name.startsWith(g.slice(0, -1)) : g === name);
}

Deno.test("every environment variable src/ reads is granted, and every grant is read", () => {
  const read = new Set<string>();
  for (const { path, text } of sources) {
    for (const m of text.matchAll(/Deno\.env\.(?:get|has)\(\s*["'`]([A-Za-z0-9_]+)["'`]/g)) {
      read.add(m[1] ?? "");
    }
    for (const m of text.matchAll(/process\.env(?:\.([A-Za-z0-9_]+)|\[["'`]([A-Za-z0-9_]+))/g)) {
      read.add(m[1] ?? m[2] ?? "");
    }
    assert.doesNotMatch(
      text,
      /Deno\.env\.toObject|Object\.(keys|entries)\(process\.env\)/,
      `${path} lists the whole environment, which --allow-env=<names> does not allow`,
    );
    assert.doesNotMatch(
      text,
      /Deno\.env\.get\(\s*[^"'`\s]/,
      `${path} reads an environment variable by a computed name; name it literally`,
    );
  }
  for (const name of read) {
    assert.ok(matchesGrant(name, KPROXY_ENV), `src/ reads $${name}: add it to KPROXY_ENV`);
  }
  for (const grant of KPROXY_ENV) {
    assert.ok([...read].some((n) => matchesGrant(n, [grant])), `KPROXY_ENV ${grant} is unused`);
  }
});

/** Deno APIs gated by --allow-sys, by the name the flag takes. */
const SYS_APIS: Readonly<Record<string, RegExp>> = {
  hostname: /Deno\.hostname\(|\bos\.hostname\(/,
  networkInterfaces: /Deno\.networkInterfaces\(|\bos\.networkInterfaces\(/,
  osRelease: /Deno\.osRelease\(|\bos\.release\(/,
  osUptime: /Deno\.osUptime\(|\bos\.uptime\(/,
  loadavg: /Deno\.loadavg\(|\bos\.loadavg\(/,
  systemMemoryInfo: /Deno\.systemMemoryInfo\(|\bos\.(freemem|totalmem)\(/,
  uid: /Deno\.uid\(/,
  gid: /Deno\.gid\(/,
  cpus: /\bos\.cpus\(/,
  userInfo: /\bos\.userInfo\(/,
};

Deno.test("every system API src/ calls is granted, and every grant is called", () => {
  const used = new Set<string>();
  for (const { text } of sources) {
    for (const [name, re] of Object.entries(SYS_APIS)) if (re.test(text)) used.add(name);
  }
  assert.deepEqual([...used].sort(), [...KPROXY_SYS].sort());
});

Deno.test("src/ writes no files: the binary has no --allow-write", () => {
  const writes =
    /Deno\.(writeFile|writeTextFile|mkdir|remove|rename|makeTempDir|makeTempFile|create|truncate|symlink|link|chmod|chown|copyFile)(Sync)?\(|\bwrite:\s*true/;
  for (const { path, text } of sources) {
    assert.doesNotMatch(text, writes, `${path} writes files: grant --allow-write for that path`);
  }
  assert.ok(!kproxyPermissionArgs().some((a) => a.startsWith("--allow-write")));
});

/** glibc at one of the paths the binary may open. */
const glibc = requirement("glibc", () => {
  const found = LIBC_PATHS.some((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  });
  return found ? null : `no glibc at ${LIBC_PATHS.join(", ")}`;
});

// nf_tables answers netlink requests only to CAP_NET_ADMIN.
Deno.test(requiring([root, glibc], {
  name: "the baked permissions open libc for the nf_tables generation, and nothing else",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kp-ffi-" });
    try {
      const script = `${dir}/probe.ts`;
      const module = new URL("../../src/apply/nft_generation.ts", import.meta.url).href;
      await Deno.writeTextFile(
        script,
        `import { readNftGeneration } from "${module}";\n` +
          `console.log(readNftGeneration());\n` +
          `try { Deno.dlopen("${dir}/other.so", {}); console.log("opened"); }\n` +
          `catch (e) { console.log(e.name); }\n`,
      );
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", ...kproxyPermissionArgs(), script],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const [generation, other] = new TextDecoder().decode(out.stdout).trim().split("\n");
      assert.match(generation ?? "", /^\d+$/, new TextDecoder().decode(out.stderr));
      assert.equal(other, "NotCapable", "no other library may be loaded");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
}));

Deno.test("every tool the appliers can run is granted, and every grant is runnable", () => {
  const runnable = new Set<string>(["nft", "iptables", "conntrack"]);
  for (const variant of ["nft", "legacy"] as const) {
    for (const tool of Object.values(iptablesTools(variant))) runnable.add(tool);
  }
  // Literal tool names anywhere in src/apply (defaults, version probes).
  const toolName = /^(nft|ip6?tables(-nft|-legacy)?(-save|-restore)?|conntrack|sysctl|modprobe)$/;
  for (const { path, text } of sources.filter((s) => s.path.startsWith("src/apply/"))) {
    const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
    for (const m of code.matchAll(/["']([a-z0-9-]+)["']/g)) {
      const name = m[1] ?? "";
      if (!toolName.test(name)) continue;
      // A prefix that names are built from (`${prefix}-${variant}-save`) is not a tool itself;
      // running it would fail in the runtime test below, which grants nothing more.
      if (!KPROXY_TOOLS.includes(name) && KPROXY_TOOLS.some((t) => t.startsWith(`${name}-`))) {
        continue;
      }
      assert.ok(KPROXY_TOOLS.includes(name), `${path} names tool ${name}: add it to KPROXY_TOOLS`);
      runnable.add(name);
    }
  }
  assert.deepEqual([...runnable].sort(), [...KPROXY_TOOLS].sort());
});

// ---- kproxy under exactly the baked permissions, with stand-in tools ----

/** One stand-in for every granted tool (and for `ip`, which must never be reachable). */
const STUB = `#!/bin/bash
# PATH holds only the stand-ins: use builtins.
name="\${0##*/}"
echo "$name $*" >>"$KPROXY_STUB_LOG"
[ -t 0 ] || while IFS= read -r _; do :; done
case "$name $*" in
  "iptables --version") echo "iptables v1.8.9 (nf_tables)" ;;
  "nft --version") echo "nftables v1.1.1" ;;
  "nft list tables") ;;
  "nft list table "*) echo "Error: No such file or directory" >&2; exit 1 ;;
  "sysctl -n "*) echo 0 ;;
  "sysctl -w "*) echo "\${*: -1}" ;;
esac
exit 0
`;

interface KproxyRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly calls: string[];
}

let cachedDenoDir: string | undefined;

/** The DENO_DIR this test runs with (so the child finds the npm packages already cached). */
async function denoDir(): Promise<string> {
  if (cachedDenoDir !== undefined) return cachedDenoDir;
  const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], cwd: REPO_DIR })
    .output();
  const dir = (JSON.parse(new TextDecoder().decode(info.stdout)) as { denoDir: string }).denoDir;
  cachedDenoDir = Deno.env.get("DENO_DIR") ?? dir;
  return cachedDenoDir;
}

function freeLoopbackPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function withStubs(fn: (bin: string, log: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kproxy-perm-" });
  try {
    await Deno.mkdir(`${dir}/bin`);
    await Deno.writeTextFile(`${dir}/stub`, STUB, { mode: 0o755 });
    for (const tool of [...KPROXY_TOOLS, "ip"]) {
      await Deno.symlink(`${dir}/stub`, `${dir}/bin/${tool}`);
    }
    await fn(`${dir}/bin`, `${dir}/calls.log`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Runs `kproxy args` with the baked permissions and PATH = only the stand-ins. With `untilLine`,
 * it is a daemon: stopped with SIGTERM once stderr shows that line (or after `timeoutMs`).
 */
async function kproxy(
  bin: string,
  log: string,
  args: string[],
  untilLine?: RegExp,
  timeoutMs = 30_000,
): Promise<KproxyRun> {
  await Deno.writeTextFile(log, "");
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...kproxyPermissionArgs(), `${REPO_DIR}/src/cli/main.ts`, ...args],
    cwd: REPO_DIR,
    clearEnv: true,
    env: {
      PATH: bin,
      KPROXY_STUB_LOG: log,
      NO_COLOR: "1",
      // Deno's own cache (npm packages): the same as this test's.
      DENO_DIR: await denoDir(),
      ...(Deno.env.get("HOME") === undefined ? {} : { HOME: Deno.env.get("HOME") ?? "" }),
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const dec = new TextDecoder();
  let stderr = "";
  const stderrDone = (async () => {
    for await (const chunk of child.stderr) {
      stderr += dec.decode(chunk, { stream: true });
      if (untilLine?.test(stderr)) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
      }
    }
  })();
  const stdoutText = new Response(child.stdout).text();
  const timer = setTimeout(() => {
    try {
      child.kill(untilLine ? "SIGTERM" : "SIGKILL");
    } catch { /* gone */ }
  }, timeoutMs);
  try {
    const status = await child.status;
    await stderrDone;
    const calls = (await Deno.readTextFile(log)).split("\n").filter((l) => l !== "");
    return { code: status.code, stdout: await stdoutText, stderr, calls };
  } finally {
    clearTimeout(timer);
  }
}

function assertNoPermissionError(run: KproxyRun): void {
  assert.doesNotMatch(
    run.stderr,
    /NotCapable|Requires (run|env|read|write|net|sys) access|PermissionDenied/,
    run.stderr,
  );
}

function toolsCalled(run: KproxyRun): string[] {
  return [...new Set(run.calls.map((c) => c.split(" ")[0] ?? ""))].sort();
}

Deno.test({
  name: "kproxy runs under exactly the baked permissions",
  async fn(t) {
    await withStubs(async (bin, log) => {
      const examples = `${REPO_DIR}/deploy/examples`;

      await t.step("version, snapshot and diff", async () => {
        const version = await kproxy(bin, log, ["version"]);
        assert.equal(version.code, 0, version.stderr);
        assert.match(version.stdout, /^kproxy /);
        const snapshot = await kproxy(bin, log, ["snapshot", "--manifests", examples]);
        assert.equal(snapshot.code, 0, snapshot.stderr);
        const diff = await kproxy(bin, log, ["diff", "--from", examples, "--to", examples]);
        assertNoPermissionError(diff);
        assert.equal(diff.code, 0, diff.stderr);
        assert.deepEqual(diff.calls, [], "offline commands run no tools");
      });

      for (const mode of ["nftables", "iptables"]) {
        await t.step(`the ${mode} daemon's first sync, then SIGTERM`, async () => {
          const run = await kproxy(bin, log, [
            `--proxy-mode=${mode}`,
            `--manifests=${examples}`,
            "--hostname-override=node-a",
            // This runs in the machine's own namespace: leave its conntrack sysctls alone
            // (tests/netns/conntrack_sysctls_test.ts sets them under these permissions in a
            // test namespace).
            "--conntrack-max-per-core=0",
            "--conntrack-tcp-timeout-established=0",
            "--conntrack-tcp-timeout-close-wait=0",
            `--healthz-bind-address=127.0.0.1:${freeLoopbackPort()}`,
            `--metrics-bind-address=127.0.0.1:${freeLoopbackPort()}`,
          ], /sync (ok|failed)|Cannot start/);
          assertNoPermissionError(run);
          assert.match(run.stderr, /sync ok/, run.stderr);
          const called = toolsCalled(run);
          assert.ok(called.length > 0, "the applier ran tools");
          for (const tool of called) {
            assert.ok(KPROXY_TOOLS.includes(tool), `ran ${JSON.stringify(tool)}: ${run.calls}`);
          }
          assert.ok(called.includes(mode === "nftables" ? "nft" : "iptables-nft-restore"));
        });

        await t.step(`--cleanup --cleanup-kube-proxy in ${mode} mode`, async () => {
          const run = await kproxy(bin, log, [
            `--proxy-mode=${mode}`,
            "--cleanup",
            "--cleanup-kube-proxy",
          ]);
          assertNoPermissionError(run);
          assert.equal(run.code, 0, run.stderr);
          for (const tool of toolsCalled(run)) {
            assert.ok(KPROXY_TOOLS.includes(tool), `ran ${tool}`);
          }
        });
      }
    });
  },
});
