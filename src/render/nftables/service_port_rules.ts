/**
 * One service port → the chains, sets and map elements it needs in one family's table (pure).
 *
 * Most service ports are elements only (`mapHeldRules`): entry-set membership for each way in,
 * and their endpoints in the endpoint maps (see `mod.ts`). Ports with session affinity or more
 * than {@link MAP_MAX_ENDPOINTS} endpoints (`chainedRules`) get one chain per traffic policy
 * (`service-…` for Cluster, `local-…` for Local) plus `external-…` for NodePort, ExternalIP and
 * LoadBalancer traffic, reached through the verdict maps `service-ips` and `service-nodeports`;
 * each policy chain picks an endpoint with a short cascade of `numgen random mod k 0 … dnat`
 * rules (uniform: rule i fires with probability 1/(N-i)), or one `numgen random mod N map { … }`
 * rule past {@link CASCADE_MAX_ENDPOINTS}.
 */
import { cidrContains, parseCIDR, parseIP } from "../../model/ip.ts";
import type { EndpointInfo, ServicePortFamily, ServicePortSnapshot } from "../../snapshot/types.ts";
import type { ChainSpec, ElementSpec, FamilyContext, ServicePortRules, SetSpec } from "./model.ts";
import {
  affinitySetName,
  endpointKeyOffset,
  FIXED,
  MAP_MAX_ENDPOINTS,
  protocolKeyword,
  servicePortChainNames,
} from "./names.ts";
import { flatText, flatTexts } from "../flat_text.ts";

/** Above this many endpoints a policy chain uses one numgen map rule instead of a cascade. */
export const CASCADE_MAX_ENDPOINTS = 16;

/**
 * The "is this source a pod?" match of the local detector (upstream's `IfLocalNFT` /
 * `IfNotLocalNFT`): `ip saddr [!=] CIDR` (or the `cluster-cidrs` set) in the CIDR modes,
 * `iifname [!=] "br0"` / `"veth*"` in the interface modes; null when pods cannot be told.
 */
export function podSourceMatch(ctx: FamilyContext, negate: boolean): string | null {
  const op = negate ? "!= " : "";
  if (ctx.podInterface !== null) return `iifname ${op}${ctx.podInterface}`;
  if (ctx.podCIDRs.length === 0) return null;
  if (ctx.podCIDRs.length === 1) return `${ctx.ipX} saddr ${op}${ctx.podCIDRs[0]}`;
  return `${ctx.ipX} saddr ${op}@${FIXED.clusterCIDRsSet}`;
}

/** `ip:port` or `[ip6]:port`, as a dnat target. */
export function dnatTarget(ep: { readonly ip: string; readonly port: number }): string {
  return ep.ip.includes(":") ? `[${ep.ip}]:${ep.port}` : `${ep.ip}:${ep.port}`;
}

/** The rules that pick one of `endpoints` (non-empty) and DNAT to it. */
function endpointSelectionRules(
  sp: ServicePortSnapshot,
  ctx: FamilyContext,
  endpoints: readonly EndpointInfo[],
): string[] {
  const proto = `meta l4proto ${protocolKeyword(sp.protocol)}`;
  const affinity = sp.sessionAffinityTimeoutSeconds !== null;
  const rules: string[] = [];
  if (affinity) {
    // A client seen recently keeps its endpoint; each hit refreshes the timeout, like
    // iptables' `recent --rcheck` then `--set`.
    for (const ep of endpoints) {
      const set = affinitySetName(sp, ep);
      rules.push(
        `${ctx.ipX} saddr @${set} update @${set} { ${ctx.ipX} saddr } ${proto} dnat to ${
          dnatTarget(ep)
        }`,
      );
    }
  }
  const n = endpoints.length;
  if (!affinity && n > CASCADE_MAX_ENDPOINTS) {
    const elements = endpoints.map((ep, i) => `${i} : ${ep.ip} . ${ep.port}`).join(", ");
    rules.push(
      `${proto} dnat ${ctx.ipX} addr . port to numgen random mod ${n} map { ${elements} }`,
    );
    return rules;
  }
  endpoints.forEach((ep, i) => {
    const pick = i < n - 1 ? `numgen random mod ${n - i} 0 ` : "";
    const record = affinity ? `update @${affinitySetName(sp, ep)} { ${ctx.ipX} saddr } ` : "";
    rules.push(`${pick}${record}${proto} dnat to ${dnatTarget(ep)}`);
  });
  return rules;
}

function isExternallyAccessible(sp: ServicePortSnapshot, fam: ServicePortFamily): boolean {
  return sp.nodePort !== null || fam.externalIPs.length > 0 || fam.loadBalancerIPs.length > 0;
}

/** True when the service port's endpoints live in the endpoint maps (no chains of its own). */
export function heldInMaps(sp: ServicePortSnapshot, fam: ServicePortFamily): boolean {
  return sp.sessionAffinityTimeoutSeconds === null &&
    fam.clusterEndpoints.length <= MAP_MAX_ENDPOINTS &&
    fam.localEndpoints.length <= MAP_MAX_ENDPOINTS;
}

/** The rules of one service port in one family's table, or null when it has no such family. */
export function renderServicePort(
  sp: ServicePortSnapshot,
  ctx: FamilyContext,
): ServicePortRules | null {
  const fam = sp.families.find((f) => f.family === ctx.family);
  if (fam === undefined) return null;
  return heldInMaps(sp, fam) ? mapHeldRules(sp, fam, ctx) : chainedRules(sp, fam, ctx);
}

/**
 * A service port without affinity and with at most {@link MAP_MAX_ENDPOINTS} endpoints per policy:
 * elements only. Each way in (its ClusterIP, external and LB addresses, its NodePort) joins the
 * entry set of the fixed chain for its policy and gets its endpoints in the endpoint maps of the
 * policies it can use, keyed `entry . N·65536+i`. A change of endpoints, or a service coming or
 * going, is then a change of elements only: no rule, no chain, nothing the kernel validates.
 */
function mapHeldRules(
  sp: ServicePortSnapshot,
  fam: ServicePortFamily,
  ctx: FamilyContext,
): ServicePortRules {
  const proto = protocolKeyword(sp.protocol);
  const chains: ChainSpec[] = [];
  const elements: ElementSpec[] = [];
  const hasEndpoints = fam.hasAnyEndpoints;
  const cluster = fam.clusterEndpoints;
  const local = fam.localEndpoints;
  const internalLocal = sp.internalTrafficPolicy === "Local";
  const externalLocal = sp.externalTrafficPolicy === "Local";
  const hasInternalEndpoints = hasEndpoints && (internalLocal ? local : cluster).length > 0;
  const hasExternalEndpoints = hasEndpoints && (externalLocal ? local : cluster).length > 0;
  const usesExternal = hasEndpoints && isExternallyAccessible(sp, fam) && cluster.length > 0;
  const noEndpointVerdict = hasEndpoints ? "drop" : `goto ${FIXED.rejectChain}`;
  const endpoints = (map: string, entry: string, eps: readonly EndpointInfo[]) => {
    const offset = endpointKeyOffset(eps.length);
    eps.forEach((ep, i) =>
      elements.push({ set: map, key: `${entry} . ${offset + i}`, value: `${ep.ip} . ${ep.port}` })
    );
  };

  // ClusterIP.
  elements.push({ set: FIXED.clusterIPsSet, key: fam.clusterIP, value: null });
  const clusterKey = `${fam.clusterIP} . ${proto} . ${sp.port}`;
  if (hasInternalEndpoints) {
    const set = internalLocal ? FIXED.clusterIPLocalSet : FIXED.clusterIPClusterSet;
    elements.push({ set, key: clusterKey, value: null });
    if (internalLocal) endpoints(FIXED.localEndpointsMap, clusterKey, local);
    else endpoints(FIXED.clusterEndpointsMap, clusterKey, cluster);
  } else {
    elements.push({ set: FIXED.noEndpointServicesMap, key: clusterKey, value: noEndpointVerdict });
  }

  // ExternalIPs, LoadBalancer IPs and the NodePort follow the external policy.
  const external = (
    key: string,
    sets: { readonly cluster: string; readonly local: string; readonly noEndpoints: string },
    maps: { readonly cluster: string; readonly local: string },
  ) => {
    if (usesExternal) {
      elements.push({ set: externalLocal ? sets.local : sets.cluster, key, value: null });
      // Local policy: pods and the node itself still use every endpoint.
      endpoints(maps.cluster, key, cluster);
      if (externalLocal) endpoints(maps.local, key, local);
    }
    if (!hasExternalEndpoints) {
      elements.push({ set: sets.noEndpoints, key, value: noEndpointVerdict });
    }
  };
  for (const ip of [...fam.externalIPs, ...fam.loadBalancerIPs]) {
    external(`${ip} . ${proto} . ${sp.port}`, {
      cluster: FIXED.externalClusterSet,
      local: FIXED.externalLocalSet,
      noEndpoints: FIXED.noEndpointServicesMap,
    }, { cluster: FIXED.clusterEndpointsMap, local: FIXED.localEndpointsMap });
  }
  firewall(sp, fam, ctx, servicePortChainNames(sp).firewall, chains, elements);
  if (sp.nodePort !== null) {
    external(`${proto} . ${sp.nodePort}`, {
      cluster: FIXED.nodePortClusterSet,
      local: FIXED.nodePortLocalSet,
      noEndpoints: FIXED.noEndpointNodePortsMap,
    }, { cluster: FIXED.nodePortClusterEndpointsMap, local: FIXED.nodePortLocalEndpointsMap });
  }
  hairpin([...cluster, ...local], elements);
  return finish(sp, chains, [], elements);
}

/** loadBalancerSourceRanges: anything from outside the ranges is dropped before DNAT. */
function firewall(
  sp: ServicePortSnapshot,
  fam: ServicePortFamily,
  ctx: FamilyContext,
  chain: string,
  chains: ChainSpec[],
  elements: ElementSpec[],
): void {
  if (fam.loadBalancerIPs.length === 0 || fam.loadBalancerSourceRanges.length === 0) return;
  const rules = fam.loadBalancerSourceRanges.map((r) => `${ctx.ipX} saddr ${r} return`);
  const node = ctx.nodeIP === null ? null : parseIP(ctx.nodeIP);
  const allowFromNode = node !== null && fam.loadBalancerSourceRanges.some((r) => {
    const cidr = parseCIDR(r);
    return cidr !== null && cidrContains(cidr, node);
  });
  // A VIP-style LB address is often local, so the node's own requests come from the VIP.
  if (allowFromNode) {
    for (const ip of fam.loadBalancerIPs) rules.push(`${ctx.ipX} saddr ${ip} return`);
  }
  rules.push("drop");
  chains.push({ name: chain, rules });
  const proto = protocolKeyword(sp.protocol);
  for (const ip of fam.loadBalancerIPs) {
    elements.push({
      set: FIXED.firewallIPsMap,
      key: `${ip} . ${proto} . ${sp.port}`,
      value: `goto ${chain}`,
    });
  }
}

/** Hairpin pairs: a pod that reaches itself through its service is masqueraded. */
function hairpin(endpoints: readonly EndpointInfo[], elements: ElementSpec[]): void {
  for (const ip of new Set(endpoints.map((ep) => ep.ip))) {
    elements.push({ set: FIXED.hairpinSet, key: `${ip} . ${ip}`, value: null });
  }
}

/** The pieces, their long-lived strings flattened. */
function finish(
  sp: ServicePortSnapshot,
  chains: readonly ChainSpec[],
  sets: readonly SetSpec[],
  elements: readonly ElementSpec[],
): ServicePortRules {
  return {
    id: sp.id,
    chains: chains.map((c) => ({ name: flatText(c.name), rules: flatTexts(c.rules) })),
    sets,
    elements: elements.map((e) => ({
      set: e.set,
      key: flatText(e.key),
      value: e.value === null ? null : flatText(e.value),
    })),
  };
}

/**
 * A service port with session affinity or many endpoints: chains of its own (`service-…`,
 * `local-…`, `external-…`) that the verdict maps jump to, each picking an endpoint with a cascade
 * of numgen rules (or one numgen map rule past {@link CASCADE_MAX_ENDPOINTS}).
 */
function chainedRules(
  sp: ServicePortSnapshot,
  fam: ServicePortFamily,
  ctx: FamilyContext,
): ServicePortRules {
  const names = servicePortChainNames(sp);
  const proto = protocolKeyword(sp.protocol);
  const chains: ChainSpec[] = [];
  const sets: SetSpec[] = [];
  const elements: ElementSpec[] = [];

  const hasEndpoints = fam.hasAnyEndpoints;
  const clusterEndpoints = fam.clusterEndpoints;
  const localEndpoints = fam.localEndpoints;
  const usesClusterChain = clusterEndpoints.length > 0;
  const usesLocalChain = localEndpoints.length > 0;
  const internalLocal = sp.internalTrafficPolicy === "Local";
  const externalLocal = sp.externalTrafficPolicy === "Local";
  const internalChain = internalLocal ? names.local : names.cluster;
  const hasInternalEndpoints = hasEndpoints && (internalLocal ? usesLocalChain : usesClusterChain);
  const externalPolicyChain = externalLocal ? names.local : names.cluster;
  const hasExternalEndpoints = hasEndpoints && (externalLocal ? usesLocalChain : usesClusterChain);
  const externallyAccessible = isExternallyAccessible(sp, fam);
  const usesExternalChain = hasEndpoints && externallyAccessible && usesClusterChain;
  const noEndpointVerdict = (hasOwn: boolean): string | null =>
    hasOwn ? null : hasEndpoints ? "drop" : `goto ${FIXED.rejectChain}`;

  // ClusterIP.
  elements.push({ set: FIXED.clusterIPsSet, key: fam.clusterIP, value: null });
  const clusterKey = `${fam.clusterIP} . ${proto} . ${sp.port}`;
  if (hasInternalEndpoints) {
    elements.push({ set: FIXED.serviceIPsMap, key: clusterKey, value: `goto ${internalChain}` });
  } else {
    const verdict = noEndpointVerdict(false) as string;
    elements.push({ set: FIXED.noEndpointServicesMap, key: clusterKey, value: verdict });
  }

  // ExternalIPs and LoadBalancer IPs.
  const externalVerdict = noEndpointVerdict(hasExternalEndpoints);
  for (const ip of [...fam.externalIPs, ...fam.loadBalancerIPs]) {
    const key = `${ip} . ${proto} . ${sp.port}`;
    if (usesExternalChain) {
      elements.push({ set: FIXED.serviceIPsMap, key, value: `goto ${names.external}` });
    }
    if (externalVerdict !== null) {
      elements.push({ set: FIXED.noEndpointServicesMap, key, value: externalVerdict });
    }
  }

  firewall(sp, fam, ctx, names.firewall, chains, elements);

  // NodePort.
  if (sp.nodePort !== null) {
    const key = `${proto} . ${sp.nodePort}`;
    if (usesExternalChain) {
      elements.push({ set: FIXED.serviceNodePortsMap, key, value: `goto ${names.external}` });
    }
    if (externalVerdict !== null) {
      elements.push({ set: FIXED.noEndpointNodePortsMap, key, value: externalVerdict });
    }
  }

  // The external chain: masquerade (Cluster policy) or keep the client IP (Local policy).
  if (usesExternalChain) {
    const rules: string[] = [];
    if (!externalLocal) {
      rules.push(`jump ${FIXED.markMasqChain}`);
    } else {
      const pods = podSourceMatch(ctx, false);
      // Pod traffic to an external address acts as if it went out to the LB and back in.
      if (pods !== null) rules.push(`${pods} goto ${names.cluster}`);
      // The node's own traffic must be masqueraded: its source would be the VIP itself.
      rules.push(`fib saddr type local jump ${FIXED.markMasqChain}`);
      rules.push(`fib saddr type local goto ${names.cluster}`);
    }
    if (hasExternalEndpoints) rules.push(`goto ${externalPolicyChain}`);
    chains.push({ name: names.external, rules });
  }

  // The policy chains: masquerade rule for ClusterIP traffic, then endpoint selection.
  const internalMasq = (): string[] => {
    const dst = `${ctx.ipX} daddr ${fam.clusterIP} ${proto} dport ${sp.port}`;
    if (ctx.masqueradeAll) return [`${dst} jump ${FIXED.markMasqChain}`];
    // Off-cluster traffic to a ClusterIP may leave the node again, so it is masqueraded.
    const notPods = podSourceMatch(ctx, true);
    return notPods === null ? [] : [`${dst} ${notPods} jump ${FIXED.markMasqChain}`];
  };
  if (usesClusterChain) {
    const masq = hasInternalEndpoints && !internalLocal ? internalMasq() : [];
    chains.push({
      name: names.cluster,
      rules: [...masq, ...endpointSelectionRules(sp, ctx, clusterEndpoints)],
    });
  }
  if (usesLocalChain) {
    const masq = hasInternalEndpoints && internalLocal ? internalMasq() : [];
    chains.push({
      name: names.local,
      rules: [...masq, ...endpointSelectionRules(sp, ctx, localEndpoints)],
    });
  }

  // Session affinity sets (one per reachable endpoint) and hairpin pairs.
  const reachable = new Map<string, EndpointInfo>();
  for (const ep of [...clusterEndpoints, ...localEndpoints]) {
    reachable.set(`${ep.ip}|${ep.port}`, ep);
  }
  if (sp.sessionAffinityTimeoutSeconds !== null) {
    for (const ep of reachable.values()) {
      sets.push({
        name: affinitySetName(sp, ep),
        declaration:
          `type ${ctx.addrType}; flags dynamic,timeout; timeout ${sp.sessionAffinityTimeoutSeconds}s;`,
      });
    }
  }
  hairpin([...reachable.values()], elements);
  return finish(sp, chains, sets, elements);
}
