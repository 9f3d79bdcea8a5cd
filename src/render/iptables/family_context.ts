/** The per-family facts the iptables rules depend on, derived once per sync from a snapshot. */
import { cidrContains, familyOf, type IPFamily, parseCIDR, parseIP } from "../../model/ip.ts";
import type { LocalDetector, ProxySnapshot } from "../../snapshot/types.ts";

/** What one family's rules need to know beyond the service ports. */
export interface FamilyContext {
  /** The family (IPv4 → iptables, IPv6 → ip6tables). */
  readonly family: IPFamily;
  /** The masquerade mark as kube-proxy prints it (`0x00004000` for bit 14). */
  readonly masqueradeMark: string;
  /** Masquerade every packet to a service (`--masquerade-all`). */
  readonly masqueradeAll: boolean;
  /**
   * The local detector's matches (upstream's `IfLocal` / `IfNotLocal`): `-s CIDR` / `! -s CIDR`
   * in the CIDR modes (like kube-proxy, the family's first CIDR only), `-i br0` / `! -i br0` or
   * `-i veth+` / `! -i veth+` in the interface modes; null when pod traffic cannot be told.
   */
  readonly podSource: { readonly ifLocal: string; readonly ifNotLocal: string } | null;
  /** This node's primary IP of the family, for loadBalancerSourceRanges that include the node. */
  readonly nodeIP: string | null;
  /** Addresses NodePorts are accepted on (this family), or null for every local address. */
  readonly nodePortIPs: readonly string[] | null;
  /** NodePorts on 127.0.0.0/8 are accepted (IPv4 only; needs route_localnet). */
  readonly localhostNodePorts: boolean;
  /** Add `--random-fully` to the MASQUERADE rule. */
  readonly randomFully: boolean;
  /** Drop forwarded packets conntrack calls INVALID (not when nf_conntrack_tcp_be_liberal=1). */
  readonly dropInvalid: boolean;
  /** The nfacct counter the INVALID drop adds to, or null when there is none. */
  readonly invalidDroppedCounter: string | null;
  /** The nfacct counter NodePorts reached on 127.0.0.0/8 add to, or null. */
  readonly localhostNodePortsCounter: string | null;
}

/** Options that come from the host rather than the snapshot. */
export interface FamilyContextOptions {
  /** The iptables binary supports `--random-fully` (every iptables ≥ 1.6.2 does). */
  readonly randomFully?: boolean;
  /**
   * nf_conntrack_tcp_be_liberal is set: only out-of-window resets are INVALID, so no INVALID
   * drop is written (upstream reads the sysctl once at start).
   */
  readonly conntrackTCPLiberal?: boolean;
  /** The nfacct counters that exist (upstream's counter names); rules count into those only. */
  readonly nfacctCounters?: readonly string[];
}

/** kube-proxy's nfacct counter of packets the INVALID drop dropped. */
export const INVALID_DROPPED_COUNTER = "ct_state_invalid_dropped_pkts";
/** kube-proxy's nfacct counter of packets accepted on localhost NodePorts. */
export const LOCALHOST_NODEPORTS_COUNTER = "localhost_nps_accepted_pkts";

/** kube-proxy's mark text: Go's `%#08x` of `1 << bit`. */
export function masqueradeMarkText(bit: number): string {
  return "0x" + (2 ** bit).toString(16).padStart(8, "0");
}

function isLoopback(ip: string): boolean {
  return ip === "::1" || ip.startsWith("127.");
}

function podSourceMatches(detector: LocalDetector, family: IPFamily): FamilyContext["podSource"] {
  let match: string | null;
  if (detector.interfaceName !== null) {
    const name = detector.mode === "InterfaceNamePrefix"
      ? `${detector.interfaceName}+`
      : detector.interfaceName;
    match = `-i ${name}`;
  } else {
    const cidr = detector.cidrs.find((c) => familyOf(c) === family);
    match = cidr === undefined ? null : `-s ${cidr}`;
  }
  return match === null ? null : { ifLocal: match, ifNotLocal: `! ${match}` };
}

/** The family context of `snapshot` for `family`. */
export function familyContext(
  snapshot: ProxySnapshot,
  family: IPFamily,
  options: FamilyContextOptions = {},
): FamilyContext {
  const { node, options: opts } = snapshot;
  const podSource = podSourceMatches(opts.localDetector, family);
  const nodeIP = node.primaryIPs.find((ip) => familyOf(ip) === family) ?? null;
  const nodePortIPs = node.nodePortIPs[family];
  // kube-proxy turns localhost NodePorts off unless the NodePort addresses include 127.0.0.1.
  const loopbackAllowed = nodePortIPs === null || nodePortIPs.some((ip) => ip.startsWith("127."));
  return {
    family,
    masqueradeMark: masqueradeMarkText(opts.masqueradeBit),
    masqueradeAll: opts.masqueradeAll,
    podSource,
    nodeIP,
    nodePortIPs,
    localhostNodePorts: family === "IPv4" && opts.localhostNodePorts && loopbackAllowed,
    randomFully: options.randomFully ?? true,
    dropInvalid: options.conntrackTCPLiberal !== true,
    invalidDroppedCounter: options.nfacctCounters?.includes(INVALID_DROPPED_COUNTER)
      ? INVALID_DROPPED_COUNTER
      : null,
    localhostNodePortsCounter: options.nfacctCounters?.includes(LOCALHOST_NODEPORTS_COUNTER)
      ? LOCALHOST_NODEPORTS_COUNTER
      : null,
  };
}

/** The explicit NodePort addresses that get a `KUBE-NODEPORTS` jump (loopback filtered). */
export function nodePortDestinations(ctx: FamilyContext): readonly string[] {
  if (ctx.nodePortIPs === null) return [];
  return ctx.nodePortIPs.filter((ip) => !isLoopback(ip) || ctx.localhostNodePorts);
}

/** True when `ip` lies in `cidr` (canonical texts). */
export function cidrHolds(cidr: string, ip: string): boolean {
  const c = parseCIDR(cidr);
  const a = parseIP(ip);
  return c !== null && a !== null && cidrContains(c, a);
}
