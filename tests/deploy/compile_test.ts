/**
 * `deno task compile` (deploy/compile.ts): the pure helpers, then the task itself on its error
 * paths, as a user meets them on a machine that cannot download Deno's runtime (denort):
 * - no DENORT_BIN and no cached runtime: one line saying what is needed;
 * - DENORT_BIN is the full deno binary: refused before compiling (it would give a REPL);
 * - DENORT_BIN is a deno whose tell-tale text was patched away: compiled, then caught by running
 *   the result's `version`, and the bad binary deleted;
 * - DENORT_BIN for the wrong CPU, or not an executable at all.
 * With a real denort (KPROXY_TEST_DENORT_BIN, or denort in the Deno cache) it builds kproxy and
 * runs it; without one that test is skipped, saying so.
 *
 * No network: the download attempt goes to a closed port on 127.0.0.1 through HTTPS_PROXY.
 */

import assert from "node:assert/strict";
import {
  checkDenortBinary,
  checkVersionOutput,
  COMPILE_TARGETS,
  defaultOutput,
  denoCompileArgs,
  denoDirFromInfo,
  denortCachePath,
  elfTarget,
  firstErrorLine,
  fullDenoMarkerIndex,
  isRuntimeDownloadFailure,
  looksLikeFullDeno,
  parseCompileArgs,
  runtimeUnavailableMessage,
} from "../../deploy/compile.ts";
import { KPROXY_TOOLS } from "../../deploy/kproxy_permissions.ts";
import { KPROXY_VERSION } from "../../src/version.ts";
import { REPO_DIR } from "./_manifests.ts";
import { requirement, requiring } from "../requirements.ts";
import { KPROXY_V8_FLAGS } from "../../src/v8_flags.ts";

const X86 = "x86_64-unknown-linux-gnu";
const ARM = "aarch64-unknown-linux-gnu";

function elfHeader(machine: number): Uint8Array {
  const h = new Uint8Array(64);
  h.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  h[18] = machine & 0xff;
  h[19] = machine >> 8;
  return h;
}

// ---- pure helpers ----

Deno.test("parseCompileArgs: targets, output and usage errors", () => {
  const host = Deno.build.target;
  if ((COMPILE_TARGETS as readonly string[]).includes(host)) {
    assert.equal(parseCompileArgs([]).target, host);
  }
  const arm = parseCompileArgs(["--target", ARM]);
  assert.equal(arm.target, ARM);
  assert.equal(arm.output, defaultOutput(ARM));
  assert.match(arm.output, /\/\.cache\/dist\/kproxy-aarch64-unknown-linux-gnu$/);
  assert.equal(parseCompileArgs([`--target=${X86}`, "--output", "/x/kp"]).output, "/x/kp");
  assert.throws(() => parseCompileArgs(["--target", "x86_64-apple-darwin"]), (e: Error) => {
    assert.match(e.message, /--target x86_64-apple-darwin is not one of/);
    assert.equal((e as Error & { exitCode: number }).exitCode, 2);
    return true;
  });
  assert.throws(() => parseCompileArgs(["--frob"]), /Usage error: Unknown option '--frob'/);
});

Deno.test("denoCompileArgs: quiet, target, output, baked permissions, the CLI entry", () => {
  const args = denoCompileArgs({ target: ARM, output: "/o/kproxy", explain: false });
  assert.equal(args[0], "compile");
  assert.ok(args.includes("--quiet"));
  assert.ok(args.includes(`--target=${ARM}`));
  assert.ok(args.includes("--output=/o/kproxy"));
  assert.ok(args.includes(`--allow-run=${KPROXY_TOOLS.join(",")}`));
  assert.ok(args.includes(`--v8-flags=${KPROXY_V8_FLAGS.join(",")}`));
  assert.ok(!args.some((a) => a === "-A" || a === "--allow-all" || a === "--allow-run"));
  assert.equal(args.at(-1), `${REPO_DIR}/src/cli/main.ts`);
});

Deno.test("deno task kproxy runs with the V8 flags the binary bakes in", async () => {
  const config = JSON.parse(await Deno.readTextFile(`${REPO_DIR}/deno.json`));
  const task: string = config.tasks.kproxy;
  assert.ok(task.includes(` --v8-flags=${KPROXY_V8_FLAGS.join(",")} `), task);
});

Deno.test("elfTarget reads the CPU of an ELF header", () => {
  assert.equal(elfTarget(elfHeader(0x3e)), X86);
  assert.equal(elfTarget(elfHeader(0xb7)), ARM);
  assert.equal(elfTarget(elfHeader(0x28)), "other-elf");
  assert.equal(elfTarget(new TextEncoder().encode("PK\x03\x04 a zip file, not an ELF")), null);
  assert.equal(elfTarget(new Uint8Array(4)), null);
  const self = new Uint8Array(64);
  using file = Deno.openSync(Deno.execPath());
  assert.equal(file.readSync(self), 64);
  assert.equal(elfTarget(self), Deno.build.target);
});

Deno.test("looksLikeFullDeno finds deno's compile help text, and only that", () => {
  const text = (s: string) => new TextEncoder().encode(s);
  assert.ok(looksLikeFullDeno(text("..Compile the script into a self contained executable..")));
  assert.ok(!looksLikeFullDeno(text("Compile the script into a self contained")));
  assert.ok(!looksLikeFullDeno(text("CCCompile the script into a self-contained executable")));
  assert.equal(
    fullDenoMarkerIndex(text("xxCompile the script into a self contained executable")),
    2,
  );
});

Deno.test("checkDenortBinary: not ELF, wrong CPU, full deno", () => {
  const zip = new TextEncoder().encode("PK\x03\x04".padEnd(64, "\0"));
  assert.match(checkDenortBinary("/d.zip", zip, X86) ?? "", /is not a Linux executable \(unzip/);
  assert.match(
    checkDenortBinary("/d", elfHeader(0xb7), X86) ?? "",
    /is built for aarch64-unknown-linux-gnu, not for --target x86_64/,
  );
  assert.equal(checkDenortBinary("/d", elfHeader(0xb7), ARM), null);
});

Deno.test("failure translation and version checks", () => {
  const stderr =
    "\x1b[1m\x1b[31merror\x1b[0m: Writing deno compile executable to temporary file\n" +
    "Caused by:\n    0: Setting up base binary.\n    1: error sending request for url " +
    "(https://dl.deno.land/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip)\n";
  assert.ok(isRuntimeDownloadFailure(stderr));
  assert.ok(!isRuntimeDownloadFailure('error: Module not found "file:///x.ts".'));
  assert.equal(firstErrorLine(stderr), "error: Writing deno compile executable to temporary file");
  const message = runtimeUnavailableMessage(X86, "2.9.6");
  assert.ok(!message.includes("\n"));
  assert.match(message, /DENORT_BIN/);
  assert.equal(checkVersionOutput("kproxy 0.1.0 (commit abc, deno 2.9.6, x)\n", "0.1.0"), null);
  assert.match(checkVersionOutput("", "0.1.0") ?? "", /printed nothing/);
  assert.match(checkVersionOutput("Deno 2.9.6\nexit using ctrl+d\n", "0.1.0") ?? "", /Deno 2/);
  assert.equal(
    denortCachePath("/c", "2.9.6", X86),
    "/c/dl/release/v2.9.6/denort-x86_64-unknown-linux-gnu.zip",
  );
  assert.equal(denoDirFromInfo('{"denoDir":"/root/.cache/deno"}'), "/root/.cache/deno");
  assert.equal(denoDirFromInfo("not json"), null);
});

// ---- the task ----

interface TaskRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** A local port nothing listens on: a proxy there refuses at once, so nothing leaves the host. */
function closedLoopbackPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function compileTask(args: string[], env: Record<string, string | null>): Promise<TaskRun> {
  const base = Deno.env.toObject();
  delete base["DENORT_BIN"];
  const proxy = `http://127.0.0.1:${closedLoopbackPort()}`;
  const merged: Record<string, string> = {
    ...base,
    HTTPS_PROXY: proxy,
    https_proxy: proxy,
    NO_PROXY: "",
    no_proxy: "",
    NO_COLOR: "1",
  };
  for (const [k, v] of Object.entries(env)) {
    if (v === null) delete merged[k];
    else merged[k] = v;
  }
  const started = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "compile", ...args],
    cwd: REPO_DIR,
    clearEnv: true,
    env: merged,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    ms: performance.now() - started,
  };
}

function assertOneLine(run: TaskRun, pattern: RegExp): void {
  const lines = run.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${run.stderr}`);
  assert.match(lines[0] ?? "", pattern);
  assert.doesNotMatch(run.stderr, /Stack backtrace|Caused by/);
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kproxy-compile-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function currentDenoDir(): Promise<string> {
  const fromEnv = Deno.env.get("DENO_DIR");
  if (fromEnv) return fromEnv;
  const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], cwd: REPO_DIR })
    .output();
  const dir = denoDirFromInfo(new TextDecoder().decode(info.stdout));
  assert.ok(dir, "deno info names the DENO_DIR");
  return dir;
}

/**
 * A DENO_DIR like the current one (npm packages and modules stay cached, so the task itself
 * runs) but without `dl/`, where `deno compile` keeps the runtimes it downloaded.
 */
async function denoDirWithoutRuntime(path: string): Promise<string> {
  const real = await currentDenoDir();
  await Deno.mkdir(path, { recursive: true });
  for await (const entry of Deno.readDir(real)) {
    if (entry.name === "dl") continue;
    await Deno.symlink(`${real}/${entry.name}`, `${path}/${entry.name}`);
  }
  return path;
}

const host = (COMPILE_TARGETS as readonly string[]).includes(Deno.build.target)
  ? Deno.build.target
  : null;
/** This machine is one of the compile targets (so its own runtime can be asked for). */
const compileHost = requirement(
  "compile target",
  () => host === null ? `${Deno.build.target} is not a compile target` : null,
);

Deno.test({
  name: "compile without DENORT_BIN and no way to download denort: one clear line, fast",
  async fn() {
    await withTempDir(async (dir) => {
      const run = await compileTask(["--target", X86, "--output", `${dir}/kproxy`], {
        DENO_DIR: await denoDirWithoutRuntime(`${dir}/deno-dir`),
      });
      assert.equal(run.code, 1, run.stderr);
      assertOneLine(
        run,
        /^Cannot compile kproxy: the Deno runtime denort-x86_64-unknown-linux-gnu\.zip/,
      );
      assert.equal(run.stderr.trim(), runtimeUnavailableMessage(X86, Deno.version.deno));
      assert.equal(run.stdout, "");
      assert.ok(run.ms < 60_000, `took ${run.ms} ms`);
      await assert.rejects(Deno.stat(`${dir}/kproxy`));
    });
  },
});

Deno.test(requiring([compileHost], {
  name: "compile with DENORT_BIN = the full deno binary is refused before compiling",
  async fn() {
    await withTempDir(async (dir) => {
      const run = await compileTask(["--output", `${dir}/kproxy`], { DENORT_BIN: Deno.execPath() });
      assert.equal(run.code, 1, run.stderr);
      assertOneLine(
        run,
        /DENORT_BIN .* is the full deno binary, whose compiled output starts a REPL/,
      );
      await assert.rejects(Deno.stat(`${dir}/kproxy`));
    });
  },
}));

Deno.test({
  name: "compile with DENORT_BIN for another CPU, or not an executable, is refused",
  async fn() {
    await withTempDir(async (dir) => {
      const other = host === ARM ? X86 : ARM;
      const cpu = await compileTask(["--target", other, "--output", `${dir}/kproxy`], {
        DENORT_BIN: Deno.execPath(),
      });
      assert.equal(cpu.code, 1, cpu.stderr);
      assertOneLine(
        cpu,
        new RegExp(`is built for ${Deno.build.target}, not for --target ${other}`),
      );

      await Deno.writeFile(`${dir}/denort.zip`, new TextEncoder().encode("PK\x03\x04 zip"));
      const zip = await compileTask(["--target", X86, "--output", `${dir}/kproxy`], {
        DENORT_BIN: `${dir}/denort.zip`,
      });
      assert.equal(zip.code, 1, zip.stderr);
      assertOneLine(zip, /is not a Linux executable \(unzip denort-x86_64-unknown-linux-gnu\.zip/);

      const missing = await compileTask(["--target", X86], { DENORT_BIN: `${dir}/nothing` });
      assert.equal(missing.code, 1);
      assertOneLine(missing, /DENORT_BIN .*\/nothing cannot be read/);
    });
  },
});

Deno.test(requiring([compileHost], {
  name: "a deno disguised as denort is compiled, caught by `version`, and deleted",
  async fn() {
    await withTempDir(async (dir) => {
      // The full deno binary with its tell-tale help text altered: passes the static check.
      const binary = await Deno.readFile(Deno.execPath());
      const at = fullDenoMarkerIndex(binary);
      assert.ok(at > 0);
      binary[at] = "X".charCodeAt(0);
      assert.ok(!looksLikeFullDeno(binary));
      await Deno.writeFile(`${dir}/denort`, binary, { mode: 0o755 });

      const output = `${dir}/out/kproxy`;
      const run = await compileTask(["--output", output], { DENORT_BIN: `${dir}/denort` });
      assert.equal(run.code, 1, run.stderr);
      assertOneLine(
        run,
        /the built binary printed nothing instead of "kproxy .*" but answers as the deno CLI/,
      );
      await assert.rejects(Deno.stat(output), "the bad binary is deleted");
      await assert.rejects(
        Deno.stat(`${REPO_DIR}/src/_build_info.json`),
        "the build info file is removed after the build",
      );
    });
  },
}));

/** A real denort to build with: $KPROXY_TEST_DENORT_BIN, else the Deno cache's zip. */
async function realDenort(): Promise<Record<string, string> | null> {
  const explicit = Deno.env.get("KPROXY_TEST_DENORT_BIN");
  if (explicit) return { DENORT_BIN: explicit };
  if (host === null) return null;
  try {
    await Deno.stat(denortCachePath(await currentDenoDir(), Deno.version.deno, host));
    return {};
  } catch {
    return null;
  }
}

const denort = await realDenort();

/** A real denort, which these machines cannot download: a skip even under CI. */
const realDenortRequirement = requirement(
  "denort",
  () =>
    denort === null
      ? `no real denort (set KPROXY_TEST_DENORT_BIN or cache denort-${
        host ?? "<target>"
      }.zip for Deno ${Deno.version.deno})`
      : null,
  { ciOptional: true },
);

Deno.test(requiring([realDenortRequirement], {
  name: "compile with a real denort builds kproxy, which reports its version and commit",
  async fn() {
    await withTempDir(async (dir) => {
      const output = `${dir}/kproxy`;
      const run = await compileTask(["--output", output], denort ?? {});
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, new RegExp(`^Compiled kproxy ${KPROXY_VERSION}`));
      const version = await new Deno.Command(output, { args: ["version"] }).output();
      assert.match(
        new TextDecoder().decode(version.stdout),
        new RegExp(`^kproxy ${KPROXY_VERSION} \\(commit [0-9a-f]{12}(-dirty)?, deno `),
      );
    });
  },
}));
