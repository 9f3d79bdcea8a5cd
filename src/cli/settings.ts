/** ProxyConfig → the snapshot settings the reconciler takes. */
import type { ProxyConfig } from "../config/proxy_config.ts";
import type { SnapshotSettings } from "../snapshot/proxy_state.ts";

/** This node's name: `--hostname-override`, else the host name, lower-cased as kube-proxy does. */
export function nodeNameOf(config: ProxyConfig): string {
  if (config.hostnameOverride !== "") return config.hostnameOverride;
  try {
    return Deno.hostname().toLowerCase();
  } catch {
    return "";
  }
}

/** The addresses on this host's interfaces (for `--nodeport-addresses` CIDRs). */
export function hostAddresses(): string[] {
  try {
    return Deno.networkInterfaces().map((i) => i.address.replace(/%.*$/, ""));
  } catch {
    return [];
  }
}

/** Snapshot settings from the effective config; `host` is empty for offline commands. */
export function snapshotSettingsOf(
  config: ProxyConfig,
  nodeName: string,
  host: readonly string[],
): SnapshotSettings {
  return {
    nodeName,
    clusterCIDRs: config.clusterCIDRs,
    detectLocal: {
      mode: config.detectLocalMode,
      bridgeInterface: config.podBridgeInterface,
      interfaceNamePrefix: config.podInterfaceNamePrefix,
    },
    masqueradeAll: config.masqueradeAll,
    masqueradeBit: config.masqueradeBit,
    localhostNodePorts: config.localhostNodePorts,
    nodePortAddresses: config.nodePortAddresses,
    hostAddresses: host,
  };
}

/** The IP families this host can program: IPv6 only where the kernel has it enabled. */
export function hostIPFamilies(): ("IPv4" | "IPv6")[] {
  try {
    Deno.statSync("/proc/net/if_inet6");
    return ["IPv4", "IPv6"];
  } catch {
    return ["IPv4"];
  }
}
