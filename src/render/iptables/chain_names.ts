/**
 * kube-proxy's iptables chain names: a prefix plus the first 16 characters of the base32 of a
 * SHA-256, so names fit iptables' 28-character limit and match what an upstream kube-proxy
 * would create for the same service port.
 */
import { createHash } from "node:crypto";
import type { Protocol } from "../../snapshot/types.ts";

/** Prefix of a service port's Cluster-policy chain. */
export const SVC_PREFIX = "KUBE-SVC-";
/** Prefix of a service port's Local-policy chain. */
export const SVL_PREFIX = "KUBE-SVL-";
/** Prefix of a service port's external-traffic chain. */
export const EXT_PREFIX = "KUBE-EXT-";
/** Prefix of a service port's loadBalancerSourceRanges firewall chain. */
export const FW_PREFIX = "KUBE-FW-";
/** Prefix of an endpoint's DNAT chain. */
export const SEP_PREFIX = "KUBE-SEP-";

const SERVICE_CHAIN_PREFIXES = [SVC_PREFIX, SVL_PREFIX, EXT_PREFIX, FW_PREFIX, SEP_PREFIX];

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** The first 16 base32 (RFC 4648) characters of the SHA-256 of `text`. */
export function hash16(text: string): string {
  const digest = createHash("sha256").update(text).digest();
  // 16 characters × 5 bits = 80 bits = the first 10 bytes.
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (let i = 0; i < 10; i++) {
    buffer = (buffer << 8) | (digest[i] as number);
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32[(buffer >> bits) & 31];
    }
    buffer &= 0xff;
  }
  return out;
}

/** The lower-case protocol word iptables and the chain hashes use. */
export function protocolWord(protocol: Protocol): "tcp" | "udp" | "sctp" {
  return protocol.toLowerCase() as "tcp" | "udp" | "sctp";
}

/** The chain names of one service port (all derived from its ServicePortName and protocol). */
export interface ServicePortChainNames {
  /** `KUBE-SVC-…`: endpoints for Cluster traffic policy. */
  readonly svc: string;
  /** `KUBE-SVL-…`: endpoints for Local traffic policy. */
  readonly svl: string;
  /** `KUBE-EXT-…`: where external destinations (NodePort, external and LB IPs) go. */
  readonly ext: string;
  /** `KUBE-FW-…`: loadBalancerSourceRanges check for LB IPs. */
  readonly fw: string;
}

/** The chain names kube-proxy gives the service port `id` (`ns/name:port`) with `protocol`. */
export function servicePortChainNames(id: string, protocol: Protocol): ServicePortChainNames {
  const h = hash16(id + protocolWord(protocol));
  return { svc: SVC_PREFIX + h, svl: SVL_PREFIX + h, ext: EXT_PREFIX + h, fw: FW_PREFIX + h };
}

/** `ip:port`, or `[ip]:port` for IPv6: kube-proxy's endpoint text. */
export function endpointText(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** The `KUBE-SEP-…` chain of one endpoint (`ip:port` text) of a service port. */
export function endpointChainName(id: string, protocol: Protocol, endpoint: string): string {
  return SEP_PREFIX + hash16(id + protocolWord(protocol) + endpoint);
}

/** True for the per-service chain names (SVC, SVL, EXT, FW, SEP) kproxy creates and deletes. */
export function isServiceChainName(name: string): boolean {
  return SERVICE_CHAIN_PREFIXES.some((p) => name.startsWith(p));
}
