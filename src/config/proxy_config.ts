/** The effective configuration of a kproxy process, with kube-proxy's defaults. */
import type { LocalMode } from "../snapshot/types.ts";

/** The rule backends kproxy can program. */
export type ProxyMode = "iptables" | "nftables";

/**
 * The conntrack settings kube-proxy owns (`--conntrack-*`, the config file's `conntrack:`),
 * with upstream's meaning: 0 leaves the kernel's value as it is.
 */
export interface ConntrackConfig {
  /** `--conntrack-max-per-core`: nf_conntrack_max per CPU (0: leave it, ignore `min`). */
  readonly maxPerCore: number;
  /** `--conntrack-min`: the floor of nf_conntrack_max. */
  readonly min: number;
  /** `--conntrack-tcp-timeout-established`, ms (0: leave it). */
  readonly tcpEstablishedTimeoutMs: number;
  /** `--conntrack-tcp-timeout-close-wait`, ms (0: leave it). */
  readonly tcpCloseWaitTimeoutMs: number;
  /** `--conntrack-tcp-be-liberal`: set nf_conntrack_tcp_be_liberal=1 (false: leave it). */
  readonly tcpBeLiberal: boolean;
  /** `--conntrack-udp-timeout`, ms (0: leave it). */
  readonly udpTimeoutMs: number;
  /** `--conntrack-udp-timeout-stream`, ms (0: leave it). */
  readonly udpStreamTimeoutMs: number;
}

/** Upstream's conntrack defaults (pkg/proxy/apis/config/v1alpha1/defaults.go). */
export const DEFAULT_CONNTRACK_CONFIG: ConntrackConfig = Object.freeze({
  maxPerCore: 32 * 1024,
  min: 128 * 1024,
  tcpEstablishedTimeoutMs: 24 * 3_600_000,
  tcpCloseWaitTimeoutMs: 3_600_000,
  tcpBeLiberal: false,
  udpTimeoutMs: 0,
  udpStreamTimeoutMs: 0,
});

/** Everything kproxy is configured with, after the config file and flags are merged. */
export interface ProxyConfig {
  /** Which backend programs the kernel. */
  readonly mode: ProxyMode;
  /** Print rule diffs instead of touching the kernel. */
  readonly dryRun: boolean;
  /** nftables: incremental syncs as netlink batches (`--nftables-netlink`, kproxy's own). */
  readonly nftablesNetlink: boolean;
  /** The name of this node (`--hostname-override`); defaults to the host name. */
  readonly hostnameOverride: string;
  /** Pod CIDRs of the cluster (`--cluster-cidr`), used to tell local from outside traffic. */
  readonly clusterCIDRs: readonly string[];
  /** How pod traffic is told from the rest (`--detect-local-mode`, config `detectLocalMode`). */
  readonly detectLocalMode: LocalMode;
  /** `--pod-bridge-interface` (config `detectLocal.bridgeInterface`), for BridgeInterface mode. */
  readonly podBridgeInterface: string;
  /**
   * `--pod-interface-name-prefix` (config `detectLocal.interfaceNamePrefix`), for
   * InterfaceNamePrefix mode.
   */
  readonly podInterfaceNamePrefix: string;
  /** Masquerade every packet sent to a service (`--masquerade-all`). */
  readonly masqueradeAll: boolean;
  /** The fwmark bit used to mark packets for masquerading (`--iptables-masquerade-bit`). */
  readonly masqueradeBit: number;
  /** `--nodeport-addresses`: CIDRs, `primary`, or empty for every local address. */
  readonly nodePortAddresses: readonly string[];
  /** Accept NodePort connections to 127.0.0.1 (iptables only, as kube-proxy). */
  readonly localhostNodePorts: boolean;
  /** `--healthz-bind-address`, `host:port`. */
  readonly healthzBindAddress: string;
  /** `--metrics-bind-address`, `host:port`. */
  readonly metricsBindAddress: string;
  /** Full resync interval in ms (`--sync-period`). */
  readonly syncPeriodMs: number;
  /** Minimum interval between syncs in ms (`--min-sync-period`). */
  readonly minSyncPeriodMs: number;
  /** Path of a kubeconfig file (`--kubeconfig`), or empty for in-cluster config. */
  readonly kubeconfig: string;
  /** API server URL overriding the kubeconfig's (`--master`). */
  readonly master: string;
  /** Client-side rate limit to the API server (`--kube-api-qps`). */
  readonly kubeApiQps: number;
  /** Client-side burst to the API server (`--kube-api-burst`). */
  readonly kubeApiBurst: number;
  /** A path of YAML/JSON manifests to read instead of the API server (`--manifests`). */
  readonly manifests: string;
  /** Conntrack clean-up for UDP endpoints that go away. */
  readonly conntrackCleanup: boolean;
  /** The conntrack sysctls to set at start (in kproxy's own network namespace). */
  readonly conntrack: ConntrackConfig;
}

/** kube-proxy's defaults, except where kproxy measured a better one (min sync period). */
export const DEFAULT_PROXY_CONFIG: ProxyConfig = Object.freeze({
  mode: "nftables",
  dryRun: false,
  nftablesNetlink: true,
  hostnameOverride: "",
  clusterCIDRs: Object.freeze([]) as readonly string[],
  detectLocalMode: "ClusterCIDR",
  podBridgeInterface: "",
  podInterfaceNamePrefix: "",
  masqueradeAll: false,
  masqueradeBit: 14,
  nodePortAddresses: Object.freeze([]) as readonly string[],
  localhostNodePorts: true,
  healthzBindAddress: "0.0.0.0:10256",
  metricsBindAddress: "127.0.0.1:10249",
  syncPeriodMs: 30_000,
  minSyncPeriodMs: 10,
  kubeconfig: "",
  master: "",
  kubeApiQps: 5,
  kubeApiBurst: 10,
  manifests: "",
  conntrackCleanup: true,
  conntrack: DEFAULT_CONNTRACK_CONFIG,
});

/**
 * Upstream's validation of the detect-local fields (pkg/proxy/apis/config/validation), as one
 * line in upstream's words, or null when they are valid.
 */
export function detectLocalProblem(config: {
  readonly detectLocalMode: string;
  readonly podBridgeInterface: string;
  readonly podInterfaceNamePrefix: string;
}): string | null {
  const modes = ["ClusterCIDR", "NodeCIDR", "BridgeInterface", "InterfaceNamePrefix", ""];
  if (!modes.includes(config.detectLocalMode)) {
    return `KubeProxyConfiguration.DetectLocalMode: Unsupported value: ${
      JSON.stringify(config.detectLocalMode)
    }: supported values: ${modes.map((m) => JSON.stringify(m)).join(", ")}`;
  }
  if (config.detectLocalMode === "BridgeInterface" && config.podBridgeInterface === "") {
    return 'KubeProxyConfiguration.DetectLocalConfiguration.InterfaceName: Invalid value: "": ' +
      "must not be empty (BridgeInterface needs --pod-bridge-interface)";
  }
  if (config.detectLocalMode === "InterfaceNamePrefix" && config.podInterfaceNamePrefix === "") {
    return 'KubeProxyConfiguration.DetectLocalConfiguration.InterfacePrefix: Invalid value: "": ' +
      "must not be empty (InterfaceNamePrefix needs --pod-interface-name-prefix)";
  }
  return null;
}
