/**
 * The fixed part of a family's table: base chains hooked into netfilter, the dispatch chains
 * that look packets up in the verdict maps, and the declarations of the shared sets and maps.
 * Which built-in hook jumps to which of our chains is a data table, as in kube-proxy.
 */
import type { LocalDetector, ProxySnapshot } from "../../snapshot/types.ts";
import { endpointKeyOffset, FIXED, MAP_MAX_ENDPOINTS } from "./names.ts";
import type { ChainSpec, FamilyContext } from "./model.ts";
import { parseCIDR, parseIP } from "../../model/ip.ts";
import { podSourceMatch } from "./service_port_rules.ts";

/** A base chain: `type T hook H priority P`. */
export interface BaseChainSpec extends ChainSpec {
  /** `filter` or `nat`. */
  readonly type: "filter" | "nat";
  /** The netfilter hook. */
  readonly hook: "prerouting" | "input" | "forward" | "output" | "postrouting";
  /** Numeric priority (dstnat is -100, srcnat 100). */
  readonly priority: number;
}

/** A shared set or map: its declaration and any fixed elements. */
export interface SharedSetSpec {
  /** `set` or `map`. */
  readonly kind: "set" | "map";
  /** Name. */
  readonly name: string;
  /** Declaration body, without elements. */
  readonly declaration: string;
  /** Elements that come from the node or options (not from service ports). */
  readonly fixedElements: readonly string[];
  /**
   * Its fixed elements change without a rewrite of the table (the service CIDRs): they are left
   * out of the table's fixed key, and an incremental sync adds and deletes them as elements.
   */
  readonly elementsOnly?: true;
}

/** The fixed part of one family's table. */
export interface FixedRules {
  /** Shared sets and maps, in declaration order. */
  readonly sets: readonly SharedSetSpec[];
  /** Base chains. */
  readonly baseChains: readonly BaseChainSpec[];
  /** Fixed regular chains. */
  readonly chains: readonly ChainSpec[];
}

/**
 * Filter chains run before DNAT (priority dstnat-10) so they see the service address; the
 * output checks that must see the address after DNAT (as upstream's filter-output at priority
 * filter) run in `filter-output-post-dnat`: the node's own traffic to an external address of an
 * eTP Local service without local endpoints is short-circuited to the cluster endpoints by the
 * nat chain, so the "no endpoints" drop must not see it first.
 */
const FILTER_PRIORITY = -110;
const DNAT_PRIORITY = -100;
const POST_DNAT_PRIORITY = -90;
const SNAT_PRIORITY = 100;

/** Which base chain jumps to which dispatch chain, and on what condition. */
const JUMPS: readonly {
  readonly from: string;
  readonly to: string;
  readonly match: string;
}[] = [
  { from: "filter-prerouting", to: FIXED.firewallCheckChain, match: "ct state new " },
  { from: "filter-input", to: FIXED.nodePortEndpointsCheckChain, match: "ct state new " },
  { from: "filter-input", to: FIXED.serviceEndpointsCheckChain, match: "ct state new " },
  { from: "filter-forward", to: FIXED.serviceEndpointsCheckChain, match: "ct state new " },
  { from: "filter-output", to: FIXED.firewallCheckChain, match: "ct state new " },
  { from: "filter-output-post-dnat", to: FIXED.serviceEndpointsCheckChain, match: "ct state new " },
  { from: "filter-forward", to: FIXED.clusterIPsCheckChain, match: "ct state new " },
  { from: "filter-output-post-dnat", to: FIXED.clusterIPsCheckChain, match: "ct state new " },
  { from: "nat-prerouting", to: FIXED.servicesChain, match: "" },
  { from: "nat-output", to: FIXED.servicesChain, match: "" },
  { from: "nat-postrouting", to: FIXED.masqueradingChain, match: "" },
];

const BASE_CHAINS: readonly Omit<BaseChainSpec, "rules">[] = [
  { name: "filter-prerouting", type: "filter", hook: "prerouting", priority: FILTER_PRIORITY },
  { name: "filter-input", type: "filter", hook: "input", priority: FILTER_PRIORITY },
  { name: "filter-forward", type: "filter", hook: "forward", priority: FILTER_PRIORITY },
  { name: "filter-output", type: "filter", hook: "output", priority: FILTER_PRIORITY },
  // After DNAT: only packets to a service address that were not DNATed match (no endpoints,
  // a port the ClusterIP lacks).
  {
    name: "filter-output-post-dnat",
    type: "filter",
    hook: "output",
    priority: POST_DNAT_PRIORITY,
  },
  { name: "nat-prerouting", type: "nat", hook: "prerouting", priority: DNAT_PRIORITY },
  { name: "nat-output", type: "nat", hook: "output", priority: DNAT_PRIORITY },
  { name: "nat-postrouting", type: "nat", hook: "postrouting", priority: SNAT_PRIORITY },
];

/** The fwmark value of the masquerade bit, as nft prints it (`0x00004000`). */
export function masqueradeMark(bit: number): string {
  return `0x${(2 ** bit).toString(16).padStart(8, "0")}`;
}

/** The `iifname` operand of an interface-mode local detector, quoted as `nft list` prints it. */
function podInterfacePattern(detector: LocalDetector): string | null {
  if (detector.interfaceName === null) return null;
  const name = detector.mode === "InterfaceNamePrefix"
    ? `${detector.interfaceName}*`
    : detector.interfaceName;
  return JSON.stringify(name);
}

/** The per-family context the service port renderer needs, from the snapshot. */
export function familyContext(snapshot: ProxySnapshot, family: "IPv4" | "IPv6"): FamilyContext {
  const detector = snapshot.options.localDetector;
  const podCIDRs = detector.cidrs.filter((c) => parseCIDR(c)?.family === family);
  const nodeIP = snapshot.node.primaryIPs.find((ip) => parseIP(ip)?.family === family) ?? null;
  return {
    family,
    ipX: family === "IPv4" ? "ip" : "ip6",
    addrType: family === "IPv4" ? "ipv4_addr" : "ipv6_addr",
    podCIDRs,
    podInterface: podInterfacePattern(detector),
    masqueradeAll: snapshot.options.masqueradeAll,
    nodeIP,
  };
}

/** NodePort addresses of this family, or null for every local address. */
function nodePortIPs(snapshot: ProxySnapshot, ctx: FamilyContext): string[] | null {
  const ips = snapshot.node.nodePortIPs[ctx.family];
  if (ips === null) return null;
  // Loopback NodePorts are not supported by nftables mode (as upstream).
  return ips.filter((ip) => !ip.startsWith("127.") && ip !== "::1");
}

/** The fixed part of the table for one family. */
export function fixedRules(snapshot: ProxySnapshot, ctx: FamilyContext): FixedRules {
  const { ipX, addrType } = ctx;
  const mark = masqueradeMark(snapshot.options.masqueradeBit);
  const npIPs = nodePortIPs(snapshot, ctx);
  const key3 = `${addrType} . inet_proto . inet_service`;
  const sets: SharedSetSpec[] = [];
  if (ctx.podCIDRs.length > 1) {
    sets.push({
      kind: "set",
      name: FIXED.clusterCIDRsSet,
      declaration: `type ${addrType}; flags interval;`,
      fixedElements: ctx.podCIDRs,
    });
  }
  // Upstream keeps the ranges in the rule (an anonymous set, rewritten at its full syncs); a
  // named set lets a ServiceCIDR change be an element-only transaction.
  const serviceCIDRs = snapshot.serviceCIDRs.filter((c) => parseCIDR(c)?.family === ctx.family);
  if (serviceCIDRs.length > 0) {
    sets.push({
      kind: "set",
      name: FIXED.serviceCIDRsSet,
      declaration: `type ${addrType}; flags interval;`,
      fixedElements: serviceCIDRs,
      elementsOnly: true,
    });
  }
  if (npIPs !== null) {
    sets.push({
      kind: "set",
      name: FIXED.nodePortIPsSet,
      declaration: `type ${addrType};`,
      fixedElements: npIPs,
    });
  }
  const map = (name: string, type: string): SharedSetSpec => ({
    kind: "map",
    name,
    declaration: `type ${type} : verdict;`,
    fixedElements: [],
  });
  sets.push(
    {
      kind: "set",
      name: FIXED.clusterIPsSet,
      declaration: `type ${addrType};`,
      fixedElements: [],
    },
    {
      kind: "set",
      name: FIXED.hairpinSet,
      declaration: `type ${addrType} . ${addrType};`,
      fixedElements: [],
    },
    map(FIXED.serviceIPsMap, key3),
    map(FIXED.serviceNodePortsMap, "inet_proto . inet_service"),
    map(FIXED.noEndpointServicesMap, key3),
    map(FIXED.noEndpointNodePortsMap, "inet_proto . inet_service"),
    map(FIXED.firewallIPsMap, key3),
  );
  const set = (name: string, type: string): SharedSetSpec => ({
    kind: "set",
    name,
    declaration: `type ${type};`,
    fixedElements: [],
  });
  const endpointMap = (name: string, key: string): SharedSetSpec => ({
    kind: "map",
    name,
    declaration: `typeof ${key} . numgen random mod 1 : ${ipX} daddr . th dport;`,
    fixedElements: [],
  });
  const vipTypeof = `${ipX} daddr . meta l4proto . th dport`;
  sets.push(
    set(FIXED.clusterIPClusterSet, key3),
    set(FIXED.clusterIPLocalSet, key3),
    set(FIXED.externalClusterSet, key3),
    set(FIXED.externalLocalSet, key3),
    set(FIXED.nodePortClusterSet, "inet_proto . inet_service"),
    set(FIXED.nodePortLocalSet, "inet_proto . inet_service"),
    endpointMap(FIXED.clusterEndpointsMap, vipTypeof),
    endpointMap(FIXED.localEndpointsMap, vipTypeof),
    endpointMap(FIXED.nodePortClusterEndpointsMap, "meta l4proto . th dport"),
    endpointMap(FIXED.nodePortLocalEndpointsMap, "meta l4proto . th dport"),
  );

  const baseChains: BaseChainSpec[] = BASE_CHAINS.map((bc) => ({
    ...bc,
    rules: JUMPS.filter((j) => j.from === bc.name).map((j) => `${j.match}jump ${j.to}`),
  }));

  const vipKey = `${ipX} daddr . meta l4proto . th dport`;
  const nodePortMatch = npIPs === null
    ? `fib daddr type local ${ipX} daddr != ${ipX === "ip" ? "127.0.0.0/8" : "::1"}`
    : `${ipX} daddr @${FIXED.nodePortIPsSet}`;
  const npKey = `${nodePortMatch} meta l4proto . th dport`;
  // ClusterIP traffic from outside the pod network may leave the node again: masquerade it.
  const notPods = podSourceMatch(ctx, true);
  const internalMasq = ctx.masqueradeAll
    ? [`jump ${FIXED.markMasqChain}`]
    : notPods === null
    ? []
    : [`${notPods} jump ${FIXED.markMasqChain}`];
  const pods = podSourceMatch(ctx, false);
  /** External traffic with externalTrafficPolicy Local: as the per-port external chains do. */
  const externalLocal = (cluster: string, local: string) => [
    // Pod traffic to an external address acts as if it went out to the LB and back in.
    ...(pods === null ? [] : [`${pods} goto ${cluster}`]),
    // The node's own traffic must be masqueraded: its source would be the VIP itself.
    `fib saddr type local jump ${FIXED.markMasqChain}`,
    `fib saddr type local goto ${cluster}`,
    `goto ${local}`,
  ];
  /** Uniform choice among N endpoints, for every N a map-held service port may have. */
  const select = (key: string, endpointMap: string) =>
    Array.from({ length: MAP_MAX_ENDPOINTS }, (_, k) => {
      const n = k + 1;
      return `dnat ${ipX} to ${key} . numgen random mod ${n} offset ${
        endpointKeyOffset(n)
      } map @${endpointMap}`;
    });
  const chains: ChainSpec[] = [
    {
      name: FIXED.servicesChain,
      rules: [
        `${vipKey} vmap @${FIXED.serviceIPsMap}`,
        `${vipKey} @${FIXED.clusterIPClusterSet} goto ${FIXED.clusterIPClusterChain}`,
        `${vipKey} @${FIXED.clusterIPLocalSet} goto ${FIXED.clusterIPLocalChain}`,
        `${vipKey} @${FIXED.externalClusterSet} goto ${FIXED.externalClusterChain}`,
        `${vipKey} @${FIXED.externalLocalSet} goto ${FIXED.externalLocalChain}`,
        `${npKey} vmap @${FIXED.serviceNodePortsMap}`,
        `${npKey} @${FIXED.nodePortClusterSet} goto ${FIXED.nodePortClusterChain}`,
        `${npKey} @${FIXED.nodePortLocalSet} goto ${FIXED.nodePortLocalChain}`,
      ],
    },
    {
      name: FIXED.clusterIPClusterChain,
      rules: [...internalMasq, `goto ${FIXED.selectClusterChain}`],
    },
    {
      name: FIXED.clusterIPLocalChain,
      rules: [...internalMasq, `goto ${FIXED.selectLocalChain}`],
    },
    {
      name: FIXED.externalClusterChain,
      rules: [`jump ${FIXED.markMasqChain}`, `goto ${FIXED.selectClusterChain}`],
    },
    {
      name: FIXED.externalLocalChain,
      rules: externalLocal(FIXED.selectClusterChain, FIXED.selectLocalChain),
    },
    {
      name: FIXED.nodePortClusterChain,
      rules: [`jump ${FIXED.markMasqChain}`, `goto ${FIXED.selectNodePortClusterChain}`],
    },
    {
      name: FIXED.nodePortLocalChain,
      rules: externalLocal(FIXED.selectNodePortClusterChain, FIXED.selectNodePortLocalChain),
    },
    { name: FIXED.selectClusterChain, rules: select(vipTypeof, FIXED.clusterEndpointsMap) },
    { name: FIXED.selectLocalChain, rules: select(vipTypeof, FIXED.localEndpointsMap) },
    {
      name: FIXED.selectNodePortClusterChain,
      rules: select("meta l4proto . th dport", FIXED.nodePortClusterEndpointsMap),
    },
    {
      name: FIXED.selectNodePortLocalChain,
      rules: select("meta l4proto . th dport", FIXED.nodePortLocalEndpointsMap),
    },
    {
      name: FIXED.serviceEndpointsCheckChain,
      rules: [`${vipKey} vmap @${FIXED.noEndpointServicesMap}`],
    },
    {
      name: FIXED.nodePortEndpointsCheckChain,
      rules: [`${nodePortMatch} meta l4proto . th dport vmap @${FIXED.noEndpointNodePortsMap}`],
    },
    { name: FIXED.firewallCheckChain, rules: [`${vipKey} vmap @${FIXED.firewallIPsMap}`] },
    {
      // Traffic to a ClusterIP that no service port DNATed: a port the service lacks. Then,
      // as upstream, traffic to an address of a service CIDR that no Service holds is dropped.
      name: FIXED.clusterIPsCheckChain,
      rules: [
        `${ipX} daddr @${FIXED.clusterIPsSet} goto ${FIXED.rejectChain}`,
        ...(serviceCIDRs.length === 0 ? [] : [`${ipX} daddr @${FIXED.serviceCIDRsSet} drop`]),
      ],
    },
    {
      name: FIXED.rejectChain,
      rules: ["meta l4proto tcp reject with tcp reset", "reject"],
    },
    { name: FIXED.markMasqChain, rules: [`meta mark set meta mark | ${mark}`] },
    {
      name: FIXED.masqueradingChain,
      rules: [
        // Hairpin: a pod that reached itself through a service must see the node as source.
        `ct status dnat ${ipX} saddr . ${ipX} daddr @${FIXED.hairpinSet} jump ${FIXED.markMasqChain}`,
        `meta mark & ${mark} == 0 return`,
        `meta mark set meta mark ^ ${mark}`,
        "masquerade fully-random",
      ],
    },
  ];
  return { sets, baseChains, chains };
}
