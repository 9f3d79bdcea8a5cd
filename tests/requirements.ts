/**
 * What a test needs from the machine, and what happens when it is missing.
 *
 * A test that needs root, `ip netns`, the Go fixtures, Chromium, `kubectl`, `systemd-analyze` or
 * another tool registers through {@link requiring}:
 *
 * ```ts
 * Deno.test(requiring([netns, goFixtures], { name: "…", async fn() { … } }));
 * ```
 *
 * Without the requirement the test is skipped (counted and named as skipped by the test task).
 * Under `CI=true` (or `1`) a missing requirement that `.ci/run` is meant to provide does not skip:
 * the test runs a body that fails and says what was missing, so CI cannot go green while whole
 * classes of tests did not run. A requirement made with `ciOptional: true` (a real `denort`, which
 * these machines cannot download) stays a skip everywhere.
 *
 * @module
 */
import { fixtureBinary, fixturesAvailable } from "./fixtures/_build.ts";

/** Something a test needs from the machine. */
export interface Requirement {
  /** Short name, as printed in skip and failure messages (`root`, `ip netns`, `chromium`). */
  readonly name: string;
  /** Why it is not here, or null when it is. Evaluated once. */
  missing(): string | null;
  /** True when `.ci/run` does not provide it, so CI may skip tests that need it. */
  readonly ciOptional: boolean;
}

/** True when the test task runs under CI (`CI=true` or `CI=1`). */
export function underCi(): boolean {
  const ci = Deno.env.get("CI")?.toLowerCase();
  return ci === "true" || ci === "1";
}

/** Options of {@link requirement}. */
export interface RequirementOptions {
  /** `.ci/run` does not provide it: a skip even under CI. */
  readonly ciOptional?: boolean;
}

/** A requirement from a check that returns why it is missing (or null); the check runs once. */
export function requirement(
  name: string,
  check: () => string | null,
  options: RequirementOptions = {},
): Requirement {
  let cached: { reason: string | null } | null = null;
  return {
    name,
    ciOptional: options.ciOptional ?? false,
    missing() {
      if (cached === null) {
        try {
          cached = { reason: check() };
        } catch (e) {
          cached = { reason: `${name} check failed: ${(e as Error).message}` };
        }
      }
      return cached.reason;
    },
  };
}

/** The first executable called `name` on PATH (or at an absolute path), or null. */
export function findExecutable(name: string): string | null {
  const candidates = name.includes("/")
    ? [name]
    : (Deno.env.get("PATH") ?? "").split(":").filter((d) => d !== "").map((d) => `${d}/${name}`);
  for (const path of candidates) {
    try {
      const info = Deno.statSync(path);
      if (info.isFile && ((info.mode ?? 0o755) & 0o111) !== 0) return path;
    } catch {
      // not here
    }
  }
  return null;
}

/** A requirement that an executable is on PATH; `hint` says how to get it. */
export function tool(name: string, hint = `apt-get install ${name}`): Requirement {
  return requirement(
    name,
    () => findExecutable(name) === null ? `${name} is not on PATH (${hint})` : null,
  );
}

/** The tests run as root (uid 0). */
export const root: Requirement = requirement(
  "root",
  () => Deno.uid() === 0 ? null : `needs root (running as uid ${Deno.uid()})`,
);

/** Network namespaces can be made: Linux, root, and a working `ip netns`. */
export const netns: Requirement = requirement("ip netns", () => {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  const notRoot = root.missing();
  if (notRoot !== null) return `network namespace tests ${notRoot}`;
  if (findExecutable("ip") === null) return "ip is not on PATH (apt-get install iproute2)";
  const out = new Deno.Command("ip", { args: ["netns", "list"], stdout: "null", stderr: "piped" })
    .outputSync();
  return out.success
    ? null
    : `ip netns list failed: ${new TextDecoder().decode(out.stderr).trim()}`;
});

/** The Go fixtures (kube-apiserver, etcd, upstream kube-proxy) are built. */
export const goFixtures: Requirement = requirement(
  "Go fixtures",
  () =>
    fixturesAvailable()
      ? null
      : "the kube-apiserver/etcd/kube-proxy fixtures are not built (needs Go; run tests/fixtures/build_fixtures.sh)",
);

/** `nft` (nftables). */
export const nft: Requirement = tool("nft", "apt-get install nftables");
/** `iptables-restore` and friends. */
export const iptables: Requirement = tool("iptables", "apt-get install iptables");
/** `conntrack` (conntrack-tools). */
export const conntrack: Requirement = tool("conntrack", "apt-get install conntrack");
/** `kubectl`, built by tests/fixtures/build_fixtures.sh from the same Kubernetes module. */
export const kubectl: Requirement = requirement(
  "kubectl",
  () =>
    findExecutable(fixtureBinary("kubectl")) === null
      ? `${fixtureBinary("kubectl")} is not built (run tests/fixtures/build_fixtures.sh; needs Go)`
      : null,
);
/** `systemd-analyze` (Debian's systemd package). */
export const systemdAnalyze: Requirement = tool("systemd-analyze", "apt-get install systemd");

/** Error message of a test that could not run under CI. */
function cannotRunMessage(testName: string, reasons: readonly string[]): string {
  return `Cannot run "${testName}" under CI=true: ${reasons.join("; ")}`;
}

/** The reasons the given requirements are missing, each prefixed with its name. */
export function missingReasons(requirements: readonly Requirement[]): string[] {
  const out: string[] = [];
  for (const r of requirements) {
    const reason = r.missing();
    if (reason !== null) out.push(`${r.name}: ${reason}`);
  }
  return out;
}

const warned = new Set<string>();

/** A test or test-step definition that {@link requiring} can gate. */
export interface GatedDefinition {
  /** Test name. */
  readonly name: string;
  /** Skip it. */
  readonly ignore?: boolean;
}

/**
 * Gates a test (or step) definition on requirements. All present: the definition as given. Some
 * missing: skipped (`ignore: true`, with one warning per reason); under CI, unless every missing
 * one is `ciOptional`, the body is replaced by one that fails naming what was missing.
 */
export function requiring<T extends GatedDefinition & { fn: unknown }>(
  requirements: readonly Requirement[],
  definition: T,
): T {
  const missing = requirements.filter((r) => r.missing() !== null);
  if (missing.length === 0) return definition;
  const reasons = missingReasons(missing);
  const mustRun = underCi() && missing.some((r) => !r.ciOptional);
  if (mustRun) {
    const message = cannotRunMessage(definition.name, reasons);
    return {
      ...definition,
      ignore: false,
      sanitizeOps: false,
      sanitizeResources: false,
      fn() {
        throw new Error(message);
      },
    };
  }
  for (const reason of reasons) {
    if (!warned.has(reason)) {
      warned.add(reason);
      console.warn(`skipping tests that need ${reason}`);
    }
  }
  return { ...definition, ignore: true };
}
