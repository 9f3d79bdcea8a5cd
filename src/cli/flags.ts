/** kube-proxy's command-line flags → ProxyConfig, merged over a KubeProxyConfiguration file. */
import { parseArgs } from "node:util";
import { parseCIDR } from "../model/ip.ts";
import { parseDuration } from "../config/duration.ts";
import { parseKubeProxyConfiguration } from "../config/kube_proxy_configuration.ts";
import {
  type ConntrackConfig,
  DEFAULT_PROXY_CONFIG,
  detectLocalProblem,
  type ProxyConfig,
} from "../config/proxy_config.ts";

/** A command-line mistake: one line, exit code 2. */
export class UsageError extends Error {
  /** Makes a usage error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Flag definitions: name → [kind, help]. Boolean flags also take `=true`/`=false`. */
export const PROXY_FLAGS = {
  "proxy-mode": ["string", "Which backend to use: nftables (default) or iptables"],
  "dry-run": ["boolean", "Print rule diffs instead of programming the kernel"],
  "nftables-netlink": [
    "boolean",
    "Send incremental nftables changes as netlink batches (default true; false: nft -f)",
  ],
  "kubeconfig": ["string", "Path to a kubeconfig file (default: in-cluster config)"],
  "master": ["string", "The address of the Kubernetes API server (overrides the kubeconfig)"],
  "manifests": ["string", "Read Services/EndpointSlices/Nodes from this YAML/JSON file or folder"],
  "hostname-override": ["string", "The name of this node (default: the host name)"],
  "cluster-cidr": ["string", "Comma-separated pod CIDRs; traffic from outside them is masqueraded"],
  "detect-local-mode": [
    "string",
    "How pod traffic is told from the rest: ClusterCIDR (default), NodeCIDR, BridgeInterface or InterfaceNamePrefix",
  ],
  "pod-bridge-interface": [
    "string",
    "With --detect-local-mode=BridgeInterface: the bridge pod traffic arrives on",
  ],
  "pod-interface-name-prefix": [
    "string",
    "With --detect-local-mode=InterfaceNamePrefix: the name prefix of the pods' interfaces",
  ],
  "masquerade-all": ["boolean", "SNAT all traffic sent to service cluster IPs"],
  "iptables-masquerade-bit": ["string", "The fwmark bit (0-31) that marks packets to masquerade"],
  "iptables-localhost-nodeports": [
    "boolean",
    "Accept NodePort connections on localhost (iptables)",
  ],
  "nodeport-addresses": ["string", "Comma-separated CIDRs (or 'primary') NodePorts listen on"],
  "healthz-bind-address": ["string", "host:port of the health server (default 0.0.0.0:10256)"],
  "metrics-bind-address": [
    "string",
    "host:port of the metrics/API server (default 127.0.0.1:10249)",
  ],
  "sync-period": ["string", "Maximum interval between full resyncs (default 30s)"],
  "min-sync-period": ["string", "Minimum interval between syncs (default 10ms)"],
  "iptables-sync-period": ["string", "Alias of --sync-period (kube-proxy compatibility)"],
  "iptables-min-sync-period": ["string", "Alias of --min-sync-period (kube-proxy compatibility)"],
  "kube-api-qps": ["string", "QPS to use while talking with the API server"],
  "kube-api-burst": ["string", "Burst to use while talking with the API server"],
  "conntrack-max-per-core": [
    "string",
    "Maximum number of NAT connections to track per CPU core (0 to leave the limit as-is and ignore conntrack-min; default 32768)",
  ],
  "conntrack-min": [
    "string",
    "Minimum number of conntrack entries to allocate, regardless of conntrack-max-per-core (default 131072)",
  ],
  "conntrack-tcp-timeout-established": [
    "string",
    "Idle timeout for established TCP connections (0 to leave as-is; default 24h)",
  ],
  "conntrack-tcp-timeout-close-wait": [
    "string",
    "NAT timeout for TCP connections in the CLOSE_WAIT state (0 to leave as-is; default 1h)",
  ],
  "conntrack-tcp-be-liberal": [
    "boolean",
    "Enable liberal mode for tracking TCP packets by setting nf_conntrack_tcp_be_liberal to 1",
  ],
  "conntrack-udp-timeout": [
    "string",
    "Idle timeout for UNREPLIED UDP connections (0 to leave as-is)",
  ],
  "conntrack-udp-timeout-stream": [
    "string",
    "Idle timeout for ASSURED UDP connections (0 to leave as-is)",
  ],
  "config": ["string", "Path to a KubeProxyConfiguration file; flags override it"],
  "cleanup": ["boolean", "Remove kproxy's rules and exit"],
  "cleanup-kube-proxy": ["boolean", "With --cleanup, also remove upstream kube-proxy's rules"],
  "v": ["string", "Log verbosity (accepted for compatibility)"],
  "help": ["boolean", "Show this help"],
} as const;

/** The parsed flags, all as text (booleans as "true"/"false"). */
export type FlagValues = Partial<Record<keyof typeof PROXY_FLAGS, string>>;

const BOOLEAN_FLAGS = new Set(
  Object.entries(PROXY_FLAGS).filter(([, [kind]]) => kind === "boolean").map(([name]) => name),
);

/**
 * Parses argv with kube-proxy's flag names; extra flags for a subcommand can be added.
 * Arguments that are not flags are a {@link UsageError}, as in kube-proxy.
 */
export function parseFlags(
  argv: readonly string[],
  extra: Readonly<Record<string, readonly [string, string]>> = {},
): { values: Record<string, string>; positionals: string[] } {
  const all: Record<string, readonly [string, string]> = { ...PROXY_FLAGS, ...extra };
  const normalized = argv.map((arg) => arg === "-h" ? "--help" : arg).map((arg) => {
    const name = arg.replace(/^--?/, "");
    if (arg.startsWith("-") && (all[name]?.[0] === "boolean")) return `--${name}=true`;
    return arg;
  });
  const options: Record<string, { type: "string"; short?: string }> = {};
  for (const name of Object.keys(all)) options[name] = { type: "string" };
  options["output"] = { type: "string", short: "o" };
  try {
    const { values, positionals } = parseArgs({
      args: normalized,
      options,
      allowPositionals: true,
      strict: true,
    });
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(values)) if (typeof v === "string") out[k] = v;
    for (const name of Object.keys(out)) {
      if (BOOLEAN_FLAGS.has(name) || all[name]?.[0] === "boolean") {
        if (out[name] !== "true" && out[name] !== "false") {
          throw new UsageError(`--${name} takes true or false, not ${JSON.stringify(out[name])}`);
        }
      }
    }
    // Like kube-proxy, no arguments: `--masquerade-all false` must not silently mean true.
    const [extra] = positionals;
    if (extra !== undefined) {
      throw new UsageError(
        `unexpected argument ${JSON.stringify(extra)} (boolean flags take --name=false)`,
      );
    }
    return { values: out, positionals };
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const msg = e instanceof Error ? e.message.split("\n")[0] ?? "" : String(e);
    throw new UsageError(msg.replace(/\. To specify .*$/, ""));
  }
}

function durationFlag(name: string, text: string): number {
  const ms = parseDuration(text);
  if (ms === null) {
    throw new UsageError(`--${name} ${JSON.stringify(text)} is not a duration like 30s`);
  }
  return ms;
}

function numberFlag(name: string, text: string, min: number, max: number, whole = true): number {
  const n = text.trim() === "" ? NaN : Number(text);
  if (!Number.isFinite(n) || n < min || n > max || (whole && !Number.isInteger(n))) {
    throw new UsageError(
      `--${name} must be a ${whole ? "whole " : ""}number from ${min} to ${max}, not ${
        JSON.stringify(text)
      }`,
    );
  }
  return n;
}

function cidrList(name: string, text: string, allowPrimary: boolean): string[] {
  const items = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const item of items) {
    if (allowPrimary && item === "primary") continue;
    if (parseCIDR(item) === null) {
      throw new UsageError(`--${name}: ${JSON.stringify(item)} is not a CIDR`);
    }
  }
  return items;
}

const INT32_MAX = 2 ** 31 - 1;

function conntrackFromFlags(v: Record<string, string>, base: ConntrackConfig): ConntrackConfig {
  const c: { -readonly [K in keyof ConntrackConfig]: ConntrackConfig[K] } = { ...base };
  const int = (name: string) => numberFlag(name, v[name] as string, 0, INT32_MAX);
  const ms = (name: string) => durationFlag(name, v[name] as string);
  if (v["conntrack-max-per-core"] !== undefined) c.maxPerCore = int("conntrack-max-per-core");
  if (v["conntrack-min"] !== undefined) c.min = int("conntrack-min");
  if (v["conntrack-tcp-timeout-established"] !== undefined) {
    c.tcpEstablishedTimeoutMs = ms("conntrack-tcp-timeout-established");
  }
  if (v["conntrack-tcp-timeout-close-wait"] !== undefined) {
    c.tcpCloseWaitTimeoutMs = ms("conntrack-tcp-timeout-close-wait");
  }
  if (v["conntrack-tcp-be-liberal"] !== undefined) {
    c.tcpBeLiberal = v["conntrack-tcp-be-liberal"] === "true";
  }
  if (v["conntrack-udp-timeout"] !== undefined) c.udpTimeoutMs = ms("conntrack-udp-timeout");
  if (v["conntrack-udp-timeout-stream"] !== undefined) {
    c.udpStreamTimeoutMs = ms("conntrack-udp-timeout-stream");
  }
  return Object.freeze(c);
}

/**
 * Builds the effective ProxyConfig: defaults, then the `--config` file, then flags.
 * `readFile` is injected so this stays testable; it reads the config file's text.
 */
export function configFromFlags(
  values: Record<string, string>,
  readFile: (path: string) => string,
): ProxyConfig {
  let config: ProxyConfig = { ...DEFAULT_PROXY_CONFIG };
  let modeFromFile = false;
  if (values["config"]) {
    let text: string;
    try {
      text = readFile(values["config"]);
    } catch (e) {
      throw new UsageError(
        `Cannot read --config ${values["config"]}: ${e instanceof Error ? e.message : e}`,
      );
    }
    const flagMode = values["proxy-mode"];
    const fromFile = parseKubeProxyConfiguration(
      text,
      values["config"],
      flagMode === "iptables" || flagMode === "nftables" ? { mode: flagMode } : {},
    );
    modeFromFile = fromFile.mode !== undefined;
    config = { ...config, ...fromFile };
  }
  const c: { -readonly [K in keyof ProxyConfig]: ProxyConfig[K] } = { ...config };
  const v = values;
  if (v["proxy-mode"] !== undefined) {
    if (v["proxy-mode"] !== "iptables" && v["proxy-mode"] !== "nftables") {
      throw new UsageError(
        `--proxy-mode must be iptables or nftables, not ${JSON.stringify(v["proxy-mode"])}`,
      );
    }
    c.mode = v["proxy-mode"];
  } else if (!modeFromFile) c.mode = DEFAULT_PROXY_CONFIG.mode;
  if (v["dry-run"] !== undefined) c.dryRun = v["dry-run"] === "true";
  if (v["nftables-netlink"] !== undefined) c.nftablesNetlink = v["nftables-netlink"] === "true";
  if (v["kubeconfig"] !== undefined) c.kubeconfig = v["kubeconfig"];
  if (v["master"] !== undefined) c.master = v["master"];
  if (v["manifests"] !== undefined) c.manifests = v["manifests"];
  if (v["hostname-override"] !== undefined) c.hostnameOverride = v["hostname-override"];
  // kube-proxy trims and lower-cases the node name, from the flag or the config file alike.
  c.hostnameOverride = c.hostnameOverride.trim().toLowerCase();
  if (v["cluster-cidr"] !== undefined) {
    c.clusterCIDRs = cidrList("cluster-cidr", v["cluster-cidr"], false);
  }
  if (v["detect-local-mode"] !== undefined) {
    c.detectLocalMode = v["detect-local-mode"] as ProxyConfig["detectLocalMode"];
  }
  if (v["pod-bridge-interface"] !== undefined) c.podBridgeInterface = v["pod-bridge-interface"];
  if (v["pod-interface-name-prefix"] !== undefined) {
    c.podInterfaceNamePrefix = v["pod-interface-name-prefix"];
  }
  // As upstream: an empty mode means the default; the merged result is validated.
  if ((c.detectLocalMode as string) === "") c.detectLocalMode = "ClusterCIDR";
  const detectLocal = detectLocalProblem(c);
  if (detectLocal !== null) throw new UsageError(detectLocal);
  if (v["masquerade-all"] !== undefined) c.masqueradeAll = v["masquerade-all"] === "true";
  if (v["iptables-masquerade-bit"] !== undefined) {
    c.masqueradeBit = numberFlag("iptables-masquerade-bit", v["iptables-masquerade-bit"], 0, 31);
  }
  if (v["iptables-localhost-nodeports"] !== undefined) {
    c.localhostNodePorts = v["iptables-localhost-nodeports"] === "true";
  }
  if (v["nodeport-addresses"] !== undefined) {
    c.nodePortAddresses = cidrList("nodeport-addresses", v["nodeport-addresses"], true);
    // As upstream's validation: `primary` stands alone.
    if (c.nodePortAddresses.includes("primary") && c.nodePortAddresses.length > 1) {
      throw new UsageError("--nodeport-addresses: can't use both 'primary' and CIDRs");
    }
  }
  if (v["healthz-bind-address"] !== undefined) c.healthzBindAddress = v["healthz-bind-address"];
  if (v["metrics-bind-address"] !== undefined) c.metricsBindAddress = v["metrics-bind-address"];
  const sync = v["sync-period"] ?? v["iptables-sync-period"];
  if (sync !== undefined) c.syncPeriodMs = durationFlag("sync-period", sync);
  const minSync = v["min-sync-period"] ?? v["iptables-min-sync-period"];
  if (minSync !== undefined) c.minSyncPeriodMs = durationFlag("min-sync-period", minSync);
  if (v["kube-api-qps"] !== undefined) {
    c.kubeApiQps = numberFlag("kube-api-qps", v["kube-api-qps"], 0, 1e6, false);
  }
  if (v["kube-api-burst"] !== undefined) {
    c.kubeApiBurst = numberFlag("kube-api-burst", v["kube-api-burst"], 0, 1e6);
  }
  c.conntrack = conntrackFromFlags(v, c.conntrack);
  // nftables mode defaults to the node's primary IPs for NodePorts, as upstream does.
  if (c.mode === "nftables" && c.nodePortAddresses.length === 0) c.nodePortAddresses = ["primary"];
  return Object.freeze(c);
}

/** Help text for the flags, one per line. */
export function flagsHelp(): string {
  return Object.entries(PROXY_FLAGS)
    .map(([name, [kind, help]]) =>
      `  --${name}${kind === "string" ? " VALUE" : ""}`.padEnd(38) + help
    )
    .join("\n");
}
