/**
 * The Deno permissions a compiled kproxy binary runs with: the narrowest set that still lets it
 * do its job. `deno task compile` bakes them into the binary (a compiled binary cannot widen
 * them at run time), and tests/deploy/permissions_test.ts runs the CLI under exactly these flags
 * and checks that every tool, environment variable and system call in src/ is covered.
 *
 * @module
 */

/**
 * Programs kproxy runs (by name, resolved on PATH when the binary starts). The iptables family
 * comes in a `-nft` and a `-legacy` flavour; kube-proxy's image ships both and picks one by
 * probing, so both are allowed.
 */
export const KPROXY_TOOLS: readonly string[] = Object.freeze([
  "nft",
  ...["iptables", "ip6tables"].flatMap((base) =>
    ["", "-nft", "-legacy"].flatMap((flavour) =>
      ["", "-save", "-restore"].map((verb) => `${base}${flavour}${verb}`)
    )
  ),
  "conntrack",
]);

/**
 * Environment variables kproxy reads. Every other variable reads as undefined (`--ignore-env`)
 * instead of throwing, so a dependency probing an optional variable cannot crash kproxy.
 */
export const KPROXY_ENV: readonly string[] = Object.freeze([
  // client-node's KubeConfig.loadFromDefault(): kubeconfig path and home folder.
  "KUBECONFIG",
  "HOME",
  // client-node's in-cluster config.
  "KUBERNETES_SERVICE_HOST",
  "KUBERNETES_SERVICE_PORT",
  // kproxy's own variables.
  "KPROXY_*",
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
      reason: "the netfilter tools the appliers run; nothing else can be started",
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
      reason: "kubeconfig discovery and in-cluster config",
    },
    { flag: "--ignore-env", reason: "other variables read as undefined instead of throwing" },
    {
      flag: `--allow-sys=${KPROXY_SYS.join(",")}`,
      reason: "default node name and --nodeport-addresses matching",
    },
    { flag: "--no-prompt", reason: "a daemon must fail, not ask" },
  ];
}

/** Just the flags of {@link kproxyPermissionFlags}, ready for `deno compile` or `deno run`. */
export function kproxyPermissionArgs(): string[] {
  return kproxyPermissionFlags().map((p) => p.flag);
}
