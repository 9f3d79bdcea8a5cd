/**
 * `deno task compile [--target TARGET] [--output PATH] [--explain]`: builds the standalone
 * `kproxy` binary with `deno compile`, for Linux x86_64 or arm64, with the permissions of
 * deploy/kproxy_permissions.ts baked in and the git commit embedded (see src/version.ts).
 *
 * `deno compile` glues the program onto `denort`, Deno's runtime-only binary. It takes it from
 * `$DENORT_BIN` when set, else from `$DENO_DIR/dl/release/v<deno version>/denort-<target>.zip`,
 * downloading that zip on first use. Offline, one of the two must be provided; this script says
 * so in one line instead of a stack trace, refuses a `$DENORT_BIN` that is the full `deno`
 * binary (the result would start a REPL instead of kproxy) or is built for another CPU, and runs
 * the finished binary's `version` to prove it is kproxy.
 *
 * Exit codes: 0 built, 1 cannot build (one line on stderr), 2 usage error.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { kproxyPermissionArgs, kproxyPermissionFlags } from "./kproxy_permissions.ts";
import { BUILD_INFO_FILE, type BuildInfo, KPROXY_VERSION } from "../src/version.ts";
import { v8FlagsArg } from "../src/v8_flags.ts";

/** The targets kproxy ships for. */
export const COMPILE_TARGETS = ["x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"] as const;

/** One of {@link COMPILE_TARGETS}. */
export type CompileTarget = typeof COMPILE_TARGETS[number];

const REPO_DIR = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

/** The CLI entry point that becomes the binary, relative to the repository. */
export const ENTRY_POINT = "src/cli/main.ts";

/** What `deno task compile` was asked to do. */
export interface CompileOptions {
  /** The target triple. */
  readonly target: CompileTarget;
  /** Where the binary goes. */
  readonly output: string;
  /** Only print the permission flags and why, then exit. */
  readonly explain: boolean;
}

/** A reason the build cannot go on: printed as one line. */
export class CompileError extends Error {
  /** The exit code to leave with (1 cannot build, 2 usage). */
  readonly exitCode: number;
  /** Output of the failed tool worth showing above the one line (type errors), or "". */
  readonly detail: string;
  /** Makes an error with its exit code. */
  constructor(message: string, exitCode = 1, detail = "") {
    super(message);
    this.name = "CompileError";
    this.exitCode = exitCode;
    this.detail = detail;
  }
}

/** The default output path for a target: `.cache/dist/kproxy-<target>` (git-ignored). */
export function defaultOutput(target: CompileTarget): string {
  return `${REPO_DIR}/.cache/dist/kproxy-${target}`;
}

/** The target this machine runs, when it is one kproxy ships for. */
export function hostTarget(): CompileTarget | null {
  return (COMPILE_TARGETS as readonly string[]).includes(Deno.build.target)
    ? Deno.build.target as CompileTarget
    : null;
}

/** Parses the task's arguments; throws a usage {@link CompileError}. */
export function parseCompileArgs(args: readonly string[]): CompileOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        target: { type: "string" },
        output: { type: "string", short: "o" },
        explain: { type: "boolean" },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (e) {
    const message = e instanceof Error ? e.message.split("\n")[0] ?? "" : String(e);
    throw new CompileError(`Usage error: ${message.replace(/\.$/, "")}`, 2);
  }
  const target = parsed.values.target ?? hostTarget();
  if (target === null) {
    throw new CompileError(
      `Usage error: this machine is ${Deno.build.target}; pass --target ${
        COMPILE_TARGETS.join(" or ")
      }`,
      2,
    );
  }
  if (!(COMPILE_TARGETS as readonly string[]).includes(target)) {
    throw new CompileError(
      `Usage error: --target ${target} is not one of ${COMPILE_TARGETS.join(", ")}`,
      2,
    );
  }
  const t = target as CompileTarget;
  return {
    target: t,
    output: parsed.values.output ?? defaultOutput(t),
    explain: parsed.values.explain ?? false,
  };
}

/** The `deno compile` arguments that build kproxy. */
export function denoCompileArgs(options: CompileOptions): string[] {
  return [
    "compile",
    // Quiet also lowers the binary's own log level, so a tool missing from PATH (say
    // iptables-legacy) does not make every kproxy run print an --allow-run notice.
    "--quiet",
    `--target=${options.target}`,
    `--output=${options.output}`,
    v8FlagsArg(),
    ...kproxyPermissionArgs(),
    `${REPO_DIR}/${ENTRY_POINT}`,
  ];
}

/** Where `deno compile` caches the runtime zip for `target` in `denoDir`. */
export function denortCachePath(denoDir: string, denoVersion: string, target: string): string {
  return `${denoDir}/dl/release/v${denoVersion}/denort-${target}.zip`;
}

const ELF_MACHINES: Readonly<Record<number, CompileTarget>> = {
  0x3e: "x86_64-unknown-linux-gnu",
  0xb7: "aarch64-unknown-linux-gnu",
};

/** The target an ELF executable was built for, "other-elf", or null when it is not ELF. */
export function elfTarget(header: Uint8Array): CompileTarget | "other-elf" | null {
  if (header.length < 20) return null;
  if (header[0] !== 0x7f || header[1] !== 0x45 || header[2] !== 0x4c || header[3] !== 0x46) {
    return null;
  }
  const littleEndian = header[5] === 1;
  const machine = littleEndian
    ? (header[18] ?? 0) | ((header[19] ?? 0) << 8)
    : ((header[18] ?? 0) << 8) | (header[19] ?? 0);
  return ELF_MACHINES[machine] ?? "other-elf";
}

/**
 * Text only the full `deno` binary carries (the help of its `compile` subcommand); `denort` has
 * no subcommands. A binary holding it would run as the deno CLI (a REPL), not as kproxy.
 */
const FULL_DENO_MARKER = "Compile the script into a self contained executable";

/** Where the full-deno marker text starts in `binary`, or -1. */
export function fullDenoMarkerIndex(binary: Uint8Array): number {
  const marker = new TextEncoder().encode(FULL_DENO_MARKER);
  const first = marker[0] ?? 0;
  outer: for (let i = binary.indexOf(first); i !== -1; i = binary.indexOf(first, i + 1)) {
    if (i + marker.length > binary.length) return -1;
    for (let j = 1; j < marker.length; j++) {
      if (binary[i + j] !== marker[j]) continue outer;
    }
    return i;
  }
  return -1;
}

/** True when `binary` looks like the full deno CLI rather than denort. */
export function looksLikeFullDeno(binary: Uint8Array): boolean {
  return fullDenoMarkerIndex(binary) !== -1;
}

/** Checks a `$DENORT_BIN` file for `target`; returns why it cannot be used, or null. */
export function checkDenortBinary(
  path: string,
  binary: Uint8Array,
  target: CompileTarget,
): string | null {
  const elf = elfTarget(binary.subarray(0, 64));
  if (elf === null) {
    return `DENORT_BIN ${path} is not a Linux executable (unzip denort-${target}.zip first)`;
  }
  if (elf !== target) {
    return `DENORT_BIN ${path} is built for ${elf}, not for --target ${target}`;
  }
  if (looksLikeFullDeno(binary)) {
    return `DENORT_BIN ${path} is the full deno binary, whose compiled output starts a REPL ` +
      `instead of kproxy; point DENORT_BIN at denort (from denort-${target}.zip)`;
  }
  return null;
}

/** The one line said when the runtime is neither cached, nor downloadable, nor in DENORT_BIN. */
export function runtimeUnavailableMessage(target: string, denoVersion: string): string {
  return `Cannot compile kproxy: the Deno runtime denort-${target}.zip (Deno ${denoVersion}) ` +
    `must be downloadable from dl.deno.land, or DENORT_BIN must name an unpacked denort binary`;
}

/** True when `deno compile`'s stderr says it could not get the runtime. */
export function isRuntimeDownloadFailure(stderr: string): boolean {
  return /Setting up base binary|denort-[a-z0-9_-]+\.zip/.test(stderr);
}

/** The first meaningful line of a deno error output, without colours. */
export function firstErrorLine(stderr: string): string {
  // deno-lint-ignore no-control-regex
  const lines = stderr.replace(/\x1b\[[0-9;]*m/g, "").split("\n").map((l) => l.trim());
  return lines.find((l) => l.startsWith("error:")) ?? lines.find((l) => l !== "") ?? "";
}

/** Checks `<binary> version` output; returns why it is not kproxy's, or null. */
export function checkVersionOutput(stdout: string, version: string): string | null {
  const first = stdout.split("\n")[0]?.trim() ?? "";
  if (first.startsWith(`kproxy ${version} `)) return null;
  const shown = first === "" ? "nothing" : JSON.stringify(first.slice(0, 80));
  return `printed ${shown} instead of "kproxy ${version} (...)"`;
}

/** Parses `deno info --json` output for the DENO_DIR in use. */
export function denoDirFromInfo(json: string): string | null {
  try {
    const dir = (JSON.parse(json) as { denoDir?: unknown }).denoDir;
    return typeof dir === "string" && dir !== "" ? dir : null;
  } catch {
    return null;
  }
}

// ---- I/O shell ----

interface Output {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function run(
  cmd: string,
  args: readonly string[],
  options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<Output> {
  const child = new Deno.Command(cmd, {
    args: [...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(options.env === undefined ? {} : { env: options.env }),
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  }).spawn();
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, options.timeoutMs);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    return {
      code: out.signal === null ? out.code : -1,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
    };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function denoDir(): Promise<string> {
  const fromEnv = Deno.env.get("DENO_DIR");
  if (fromEnv) return fromEnv;
  const info = await run(Deno.execPath(), ["info", "--json"], { cwd: REPO_DIR });
  const dir = denoDirFromInfo(info.stdout);
  if (dir === null) throw new CompileError("Cannot compile kproxy: `deno info` names no DENO_DIR");
  return dir;
}

async function gitCommit(): Promise<string | null> {
  try {
    const head = await run("git", ["rev-parse", "HEAD"], { cwd: REPO_DIR });
    if (head.code !== 0) return null;
    const status = await run("git", ["status", "--porcelain", "--untracked-files=no"], {
      cwd: REPO_DIR,
    });
    return head.stdout.trim() + (status.code === 0 && status.stdout.trim() !== "" ? "-dirty" : "");
  } catch {
    return null;
  }
}

/**
 * Makes sure `deno compile` will find a runtime: a usable `$DENORT_BIN`, the cached zip, or a
 * successful download (tried by compiling a one-line probe, which caches the zip, so that an
 * offline machine fails in a second instead of after type-checking all of kproxy).
 */
async function ensureRuntime(target: CompileTarget): Promise<string> {
  const denortBin = Deno.env.get("DENORT_BIN");
  if (denortBin !== undefined && denortBin !== "") {
    let binary: Uint8Array;
    try {
      binary = await Deno.readFile(denortBin);
    } catch {
      throw new CompileError(`Cannot compile kproxy: DENORT_BIN ${denortBin} cannot be read`);
    }
    const problem = checkDenortBinary(denortBin, binary, target);
    if (problem !== null) throw new CompileError(`Cannot compile kproxy: ${problem}`);
    return `DENORT_BIN ${denortBin}`;
  }
  const cached = denortCachePath(await denoDir(), Deno.version.deno, target);
  if (await exists(cached)) return cached;
  const probeDir = await Deno.makeTempDir({ prefix: "kproxy-compile-probe-" });
  try {
    await Deno.writeTextFile(`${probeDir}/probe.ts`, "export {};\n");
    const probe = await run(Deno.execPath(), [
      "compile",
      "--quiet",
      "--no-config",
      `--target=${target}`,
      `--output=${probeDir}/probe`,
      `${probeDir}/probe.ts`,
    ], { cwd: probeDir, timeoutMs: 600_000 });
    if (probe.code !== 0) {
      if (isRuntimeDownloadFailure(probe.stderr)) {
        throw new CompileError(runtimeUnavailableMessage(target, Deno.version.deno));
      }
      throw new CompileError(`Cannot compile kproxy: ${firstErrorLine(probe.stderr)}`);
    }
  } finally {
    await Deno.remove(probeDir, { recursive: true }).catch(() => {});
  }
  return `${cached} (downloaded)`;
}

async function writeBuildInfo(path: string, info: BuildInfo): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(info, null, 2) + "\n");
}

/** Builds kproxy as asked; returns the lines to print. Throws {@link CompileError}. */
export async function compileKproxy(options: CompileOptions): Promise<string[]> {
  if (options.explain) {
    return kproxyPermissionFlags().map((p) => `${p.flag}\n    ${p.reason}`);
  }
  if (!(await exists(`${REPO_DIR}/${ENTRY_POINT}`))) {
    throw new CompileError(`Cannot compile kproxy: the entry point ${ENTRY_POINT} does not exist`);
  }
  const runtime = await ensureRuntime(options.target);
  const commit = await gitCommit();
  const buildInfoPath = `${REPO_DIR}/src/${BUILD_INFO_FILE}`;
  const outputDir = options.output.includes("/")
    ? options.output.slice(0, options.output.lastIndexOf("/"))
    : ".";
  await Deno.mkdir(outputDir || "/", { recursive: true });
  let compiled: Output;
  try {
    if (commit !== null) await writeBuildInfo(buildInfoPath, { commit });
    compiled = await run(Deno.execPath(), denoCompileArgs(options), { cwd: REPO_DIR });
  } finally {
    await Deno.remove(buildInfoPath).catch(() => {});
  }
  if (compiled.code !== 0) {
    if (isRuntimeDownloadFailure(compiled.stderr)) {
      throw new CompileError(runtimeUnavailableMessage(options.target, Deno.version.deno));
    }
    throw new CompileError(
      `Cannot compile kproxy: ${firstErrorLine(compiled.stderr)}`,
      1,
      compiled.stderr.trimEnd(),
    );
  }
  const verified = await verifyBinary(options);
  const size = (await Deno.stat(options.output)).size;
  return [
    `Compiled kproxy ${KPROXY_VERSION} (commit ${commit ?? "unknown"}) for ${options.target}`,
    `  output:  ${options.output} (${(size / 1024 / 1024).toFixed(1)} MiB)`,
    `  runtime: ${runtime}`,
    `  check:   ${verified}`,
  ];
}

/** Proves the output is kproxy (runs `version` when the CPU matches); deletes it if not. */
async function verifyBinary(options: CompileOptions): Promise<string> {
  const header = new Uint8Array(64);
  const file = await Deno.open(options.output);
  try {
    await file.read(header);
  } finally {
    file.close();
  }
  const elf = elfTarget(header);
  let problem: string | null = elf === options.target
    ? null
    : `is built for ${elf ?? "no known CPU"}, not for ${options.target}`;
  let verified = `ELF ${options.target}; not run (this machine is ${Deno.build.target})`;
  if (problem === null && options.target === hostTarget()) {
    // No stdin and a timeout: if this is the deno CLI after all, its REPL must not hang us.
    const out = await run(options.output, ["version"], { timeoutMs: 30_000 });
    problem = checkVersionOutput(out.stdout, KPROXY_VERSION);
    if (
      problem !== null && /unrecognized subcommand|Deno \d+\.\d+\.\d+\s*$|REPL/m.test(
        out.stdout + out.stderr,
      )
    ) {
      problem += " but answers as the deno CLI (a REPL without arguments), not as kproxy";
    } else if (problem !== null && out.code !== 0 && out.stderr.trim() !== "") {
      problem += ` (stderr: ${firstErrorLine(out.stderr).slice(0, 120)})`;
    }
    verified = `\`kproxy version\` → ${out.stdout.split("\n")[0]?.trim()}`;
  }
  if (problem !== null) {
    await Deno.remove(options.output).catch(() => {});
    throw new CompileError(
      `Cannot compile kproxy: the built binary ${problem}; it was deleted (is DENORT_BIN the ` +
        `denort of Deno ${Deno.version.deno}?)`,
    );
  }
  return verified;
}

/** Resolves a relative `--output` against the folder `deno task` was started from. */
function absoluteOutput(options: CompileOptions): CompileOptions {
  if (options.output.startsWith("/")) return options;
  const base = Deno.env.get("INIT_CWD") ?? Deno.cwd();
  return { ...options, output: `${base}/${options.output}` };
}

async function main(): Promise<number> {
  try {
    const lines = await compileKproxy(absoluteOutput(parseCompileArgs(Deno.args)));
    console.log(lines.join("\n"));
    return 0;
  } catch (e) {
    if (e instanceof CompileError) {
      if (e.detail !== "") console.error(e.detail);
      console.error(e.message);
      return e.exitCode;
    }
    console.error(`Cannot compile kproxy: ${e instanceof Error ? e.message : String(e)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main());
