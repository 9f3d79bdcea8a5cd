/** Runs the kproxy CLI as a subprocess for the CLI tests (private to tests/cli). */

/** The repository root. */
export const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** The example manifests. */
export const EXAMPLES = `${ROOT}/deploy/examples`;

/** What a kproxy run printed and returned. */
export interface KproxyRun {
  /** Exit code. */
  readonly code: number;
  /** Standard output. */
  readonly stdout: string;
  /** Standard error. */
  readonly stderr: string;
}

/** Runs `deno run -A src/cli/main.ts ...args` in the repository root. */
export async function kproxy(...args: string[]): Promise<KproxyRun> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}/src/cli/main.ts`, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Copies deploy/examples to a temp dir, runs `fn`, removes the copy. */
export async function withExamplesCopy(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kproxy-cli-" });
  try {
    for await (const entry of Deno.readDir(EXAMPLES)) {
      if (entry.isFile) await Deno.copyFile(`${EXAMPLES}/${entry.name}`, `${dir}/${entry.name}`);
    }
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Replaces `from` by `to` in a file; throws when `from` is not there. */
export async function edit(path: string, from: string, to: string): Promise<void> {
  const text = await Deno.readTextFile(path);
  if (!text.includes(from)) throw new Error(`${path} does not contain ${JSON.stringify(from)}`);
  await Deno.writeTextFile(path, text.replace(from, to));
}

/** The non-empty lines of a text. */
export function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}
