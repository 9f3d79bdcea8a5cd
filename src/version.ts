/**
 * kproxy's version, and the git commit a compiled binary was built from.
 *
 * The version is deno.json's `version`. The commit comes from `src/_build_info.json`, which
 * `deno task compile` writes just before `deno compile` (so the file is embedded in the binary)
 * and removes right after; it is git-ignored. Without it (`deno run` from a checkout) the commit
 * reads "unknown".
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };

/** kproxy's version (the `version` field of deno.json). */
export const KPROXY_VERSION: string = denoJson.version;

/** The commit reported when no build info was embedded. */
export const UNKNOWN_COMMIT = "unknown";

/** Name of the build info file `deno task compile` writes next to this module. */
export const BUILD_INFO_FILE = "_build_info.json";

/** What `deno task compile` records about a build in {@link BUILD_INFO_FILE}. */
export interface BuildInfo {
  /** Full git commit hash, with `-dirty` appended when the work tree had changes. */
  readonly commit: string;
}

/** What `kproxy version` reports. */
export interface VersionInfo {
  /** kproxy's version. */
  readonly version: string;
  /** The Deno runtime version running kproxy. */
  readonly deno: string;
  /** The git commit the binary was built from, or "unknown". */
  readonly commit: string;
  /** The platform kproxy runs on, e.g. `x86_64-unknown-linux-gnu`. */
  readonly target: string;
}

/** Reads a build info object, or null when `value` is not one. */
export function parseBuildInfo(value: unknown): BuildInfo | null {
  if (typeof value !== "object" || value === null) return null;
  const commit = (value as Record<string, unknown>).commit;
  if (typeof commit !== "string" || !/^[0-9a-f]{7,64}(-dirty)?$/.test(commit)) return null;
  return { commit };
}

async function loadBuildInfo(): Promise<BuildInfo | null> {
  try {
    // A literal specifier: `deno compile` embeds the file when it exists, and loading it then
    // needs no read permission. A checkout without the file lands in the catch.
    const module = await import("./_build_info.json", { with: { type: "json" } });
    return parseBuildInfo(module.default);
  } catch {
    return null;
  }
}

const BUILD_INFO = await loadBuildInfo();

/** kproxy's version, the Deno version and the commit of this build. */
export function versionInfo(): VersionInfo {
  return {
    version: KPROXY_VERSION,
    deno: Deno.version.deno,
    commit: BUILD_INFO?.commit ?? UNKNOWN_COMMIT,
    target: Deno.build.target,
  };
}

/** The text `kproxy version` prints: `kproxy 0.1.0 (commit 1a2b3c4d5e6f, deno 2.9.6, x86_64-unknown-linux-gnu)`. */
export function formatVersion(info: VersionInfo = versionInfo()): string {
  const commit = info.commit === UNKNOWN_COMMIT ? info.commit : shortCommit(info.commit);
  return `kproxy ${info.version} (commit ${commit}, deno ${info.deno}, ${info.target})`;
}

function shortCommit(commit: string): string {
  const dirty = commit.endsWith("-dirty");
  const hash = dirty ? commit.slice(0, -"-dirty".length) : commit;
  return hash.slice(0, 12) + (dirty ? "-dirty" : "");
}
