/** The effective configuration of a kproxy process, with kube-proxy's defaults. */

/** The rule backends kproxy can program. */
export type ProxyMode = "iptables" | "nftables";

/** Everything kproxy is configured with, after the config file and flags are merged. */
export interface ProxyConfig {
  /** Which backend programs the kernel. */
  readonly mode: ProxyMode;
  /** Print rule diffs instead of touching the kernel. */
  readonly dryRun: boolean;
  /** The name of this node (`--hostname-override`); defaults to the host name. */
  readonly hostnameOverride: string;
  /** Pod CIDRs of the cluster (`--cluster-cidr`), used to tell local from outside traffic. */
  readonly clusterCIDRs: readonly string[];
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
}

/** kube-proxy's defaults, except where kproxy measured a better one (min sync period). */
export const DEFAULT_PROXY_CONFIG: ProxyConfig = Object.freeze({
  mode: "nftables",
  dryRun: false,
  hostnameOverride: "",
  clusterCIDRs: Object.freeze([]) as readonly string[],
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
});
