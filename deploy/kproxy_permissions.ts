/**
 * The Deno permissions a compiled kproxy binary runs with: the narrowest set that still lets it
 * do its job. `deno task compile` bakes them into the binary (a compiled binary cannot widen
 * them at run time), and tests/deploy/permissions_test.ts runs the CLI under exactly these flags
 * and checks that every tool, environment variable and system call in src/ is covered.
 *
 * @module
 */
import { LIBC_PATHS } from "../src/apply/nft_generation.ts";

/**
 * Programs kproxy runs (by name, resolved on PATH when the binary starts): `nft` (nftables
 * mode), `iptables` (only `--version`, to tell iptables-nft from iptables-legacy), the
 * save/restore tools of both flavours and both families (iptables mode), `sysctl` (the
 * conntrack sysctls at start, and route_localnet=1 in iptables mode, as kube-proxy sets them;
 * Deno opens /proc/sys to no process without --allow-all) and `conntrack` (stale UDP flows). `ip` is not here: only tests and benches run tools inside network namespaces.
 */
export const KPROXY_TOOLS: readonly string[] = Object.freeze([
  "nft",
  "iptables",
  ...["iptables", "ip6tables"].flatMap((base) =>
    ["nft", "legacy"].flatMap((flavour) =>
      ["save", "restore"].map((verb) => `${base}-${flavour}-${verb}`)
    )
  ),
  "sysctl",
  "conntrack",
]);

/**
 * Environment variables kproxy reads: the in-cluster API server address (src/source/
 * kube_client.ts; client-node reads the same two) and PATH. Every other variable reads as undefined
 * (`--ignore-env`) instead of throwing, so a dependency probing an optional variable (DEBUG,
 * HOME, ...) cannot crash kproxy. kproxy never calls client-node's loadFromDefault(), so
 * KUBECONFIG and HOME are not needed: the kubeconfig comes from --kubeconfig or the config file.
 */
export const KPROXY_ENV: readonly string[] = Object.freeze([
  "KUBERNETES_SERVICE_HOST",
  "KUBERNETES_SERVICE_PORT",
  // `--cleanup-kube-proxy` looks on PATH for the iptables flavours that are installed.
  "PATH",
]);

/** System information kproxy asks for: the node name and the addresses NodePorts listen on. */
export const KPROXY_SYS: readonly string[] = Object.freeze(["hostname", "networkInterfaces"]);

/** One permission flag of the compiled binary and why it is as wide as it is. */
export interface PermissionFlag {
  /** The flag as `deno compile` takes it. */
  readonly flag: string;
  /** Why kproxy needs it. */
  readonly reason: string;
}

/** The permission flags, each with its reason (printed by `deno task compile --explain`). */
export function kproxyPermissionFlags(): readonly PermissionFlag[] {
  return [
    {
      flag: `--allow-run=${KPROXY_TOOLS.join(",")}`,
      reason:
        "the netfilter tools the appliers run (and sysctl for conntrack and route_localnet); " +
        "nothing else can be started",
    },
    {
      flag: "--allow-net",
      reason: "the API server can be any host, and the health and metrics servers listen",
    },
    {
      flag: "--allow-read",
      reason: "--config, --kubeconfig, --manifests and `diff --from/--to` name arbitrary paths; " +
        "in-cluster credentials are under /var/run/secrets/kubernetes.io",
    },
    {
      flag: `--allow-env=${KPROXY_ENV.join(",")}`,
      reason: "in-cluster config (the API server address); PATH to find installed tools",
    },
    { flag: "--ignore-env", reason: "other variables read as undefined instead of throwing" },
    {
      flag: `--allow-sys=${KPROXY_SYS.join(",")}`,
      reason: "default node name and --nodeport-addresses matching",
    },
    {
      flag: `--allow-ffi=${LIBC_PATHS.join(",")}`,
      reason: "libc only, for one netlink request that reads the nf_tables generation, so a " +
        "periodic resync skips rewriting rules nobody touched (src/apply/nft_generation.ts)",
    },
    { flag: "--no-prompt", reason: "a daemon must fail, not ask" },
  ];
}

/** Just the flags of {@link kproxyPermissionFlags}, ready for `deno compile` or `deno run`. */
export function kproxyPermissionArgs(): string[] {
  return kproxyPermissionFlags().map((p) => p.flag);
}
