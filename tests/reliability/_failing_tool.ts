/**
 * Tools that fail on demand: a folder of small wrapper scripts put first on kproxy's PATH. Each
 * wrapper runs the real binary unless the flag file exists; then a write (`nft -f`, any
 * `*-restore`) exits 1 with a message on stderr, without reading its input. (The wrappers are a
 * test fixture; kproxy itself never runs anything through a shell.)
 *
 * @module
 */

/** A folder of wrappers and the flag that makes them fail. */
export interface FailingTools {
  /** The folder to put first on PATH. */
  readonly dir: string;
  /** The PATH value with the folder first. */
  readonly path: string;
  /** Makes writes fail (true) or pass through again (false). */
  setFailing(failing: boolean): Promise<void>;
  /** Removes the folder. */
  remove(): Promise<void>;
}

function which(tool: string): string {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/sbin", "/sbin"])) {
    try {
      if (Deno.statSync(`${dir}/${tool}`).isFile) return `${dir}/${tool}`;
    } catch { /* not here */ }
  }
  throw new Error(`Cannot find ${tool} on PATH`);
}

function quote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * Wrappers for `tools` (e.g. `["nft"]` or `["iptables-nft-restore", "ip6tables-nft-restore"]`).
 * For `nft`, only `-f` (a transaction) fails; listing keeps working.
 */
export async function failingTools(tools: readonly string[]): Promise<FailingTools> {
  const dir = await Deno.makeTempDir({ prefix: "kproxy-failing-tools-" });
  const flag = `${dir}/FAIL`;
  for (const tool of tools) {
    const real = which(tool);
    const writes = tool === "nft"
      ? `case " $* " in *" -f "*) ;; *) exec ${quote(real)} "$@";; esac\n`
      : "";
    const script = "#!/bin/sh\n" + writes +
      `if [ -e ${quote(flag)} ]; then\n` +
      `  echo "${tool}: injected failure (kproxy reliability test)" >&2\n  exit 1\nfi\n` +
      `exec ${quote(real)} "$@"\n`;
    await Deno.writeTextFile(`${dir}/${tool}`, script, { mode: 0o755 });
  }
  return {
    dir,
    path: `${dir}:${Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin"}`,
    setFailing: async (failing) => {
      if (failing) await Deno.writeTextFile(flag, "");
      else await Deno.remove(flag).catch(() => {});
    },
    remove: () => Deno.remove(dir, { recursive: true }).catch(() => {}),
  };
}
