/**
 * One service port of one family → its iptables rules (pure), with kube-proxy's semantics:
 * the rules it puts in the shared top-level chains (KUBE-SERVICES, KUBE-NODEPORTS,
 * KUBE-EXTERNAL-SERVICES, KUBE-PROXY-FIREWALL) and the nat chains it owns outright
 * (KUBE-SVC/SVL/EXT/FW/SEP). Keeping the two apart is what lets a partial sync rewrite one
 * service without touching anyone else's rules.
 */
import type { EndpointInfo, ServicePortFamily, ServicePortSnapshot } from "../../snapshot/types.ts";
import {
  endpointChainName,
  endpointText,
  protocolWord,
  servicePortChainNames,
} from "./chain_names.ts";
import { quoteComment } from "./comment.ts";
import { cidrHolds, type FamilyContext } from "./family_context.ts";
import { probability } from "./probability.ts";
import { flatText, flatTexts } from "../flat_text.ts";

/** The two tables kproxy writes. */
export type IptablesTable = "filter" | "nat";

/** kproxy's fixed chain names. */
export const KUBE_SERVICES = "KUBE-SERVICES";
/** NodePort dispatch (nat) and health-check node port accepts (filter). */
export const KUBE_NODEPORTS = "KUBE-NODEPORTS";
/** REJECT/DROP for external destinations without usable endpoints (filter). */
export const KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES";
/** DROP for LB traffic a KUBE-FW chain did not accept (filter). */
export const KUBE_PROXY_FIREWALL = "KUBE-PROXY-FIREWALL";
/** Forwarding accepts for marked and established traffic (filter). */
export const KUBE_FORWARD = "KUBE-FORWARD";
/** Marks a packet for masquerading (nat). */
export const KUBE_MARK_MASQ = "KUBE-MARK-MASQ";
/** Masquerades marked packets (nat). */
export const KUBE_POSTROUTING = "KUBE-POSTROUTING";
/** kubelet's anti-martian chain, duplicated as kube-proxy does when localhost NodePorts are on. */
export const KUBE_FIREWALL = "KUBE-FIREWALL";

/** A rule a service port puts into a shared chain: `-A chain spec`. */
export interface TopRule {
  /** The table. */
  readonly table: IptablesTable;
  /** The shared chain. */
  readonly chain: string;
  /** Everything after `-A chain`. */
  readonly spec: string;
}

/** A nat chain a service port owns, with its rules (each is what follows `-A name`). */
export interface OwnedChain {
  /** The chain name. */
  readonly name: string;
  /** Rule specs in order. */
  readonly rules: readonly string[];
}

/** Everything one service port contributes to one family's ruleset. */
export interface ServicePortRules {
  /** The ServicePortName text. */
  readonly id: string;
  /** Rules in shared chains, in order. */
  readonly topRules: readonly TopRule[];
  /** Owned nat chains, in declaration order. */
  readonly chains: readonly OwnedChain[];
}

/** Number of rules (not chains) in `rules`. */
export function countRules(rules: ServicePortRules): number {
  let n = rules.topRules.length;
  for (const c of rules.chains) n += c.rules.length;
  return n;
}

function endpointRules(
  sp: ServicePortSnapshot,
  endpoints: readonly EndpointInfo[],
  sepName: (ep: EndpointInfo) => string,
): string[] {
  const out: string[] = [];
  if (sp.sessionAffinityTimeoutSeconds !== null) {
    for (const ep of endpoints) {
      const sep = sepName(ep);
      out.push(
        `-m comment --comment ${quoteComment(`${sp.id} -> ${endpointText(ep.ip, ep.port)}`)} ` +
          `-m recent --name ${sep} --rcheck --seconds ${sp.sessionAffinityTimeoutSeconds} ` +
          `--reap -j ${sep}`,
      );
    }
  }
  const n = endpoints.length;
  endpoints.forEach((ep, i) => {
    const comment = quoteComment(`${sp.id} -> ${endpointText(ep.ip, ep.port)}`);
    const stat = i < n - 1 ? ` -m statistic --mode random --probability ${probability(n - i)}` : "";
    out.push(`-m comment --comment ${comment}${stat} -j ${sepName(ep)}`);
  });
  return out;
}

/** The rules of service port `sp` in family `fam` (kube-proxy's syncProxyRules, one port). */
export function renderServicePort(
  sp: ServicePortSnapshot,
  fam: ServicePortFamily,
  ctx: FamilyContext,
): ServicePortRules {
  const proto = protocolWord(sp.protocol);
  const names = servicePortChainNames(sp.id, sp.protocol);
  const id = sp.id;
  const match = `-m ${proto} -p ${proto}`;
  const hasEndpoints = fam.hasAnyEndpoints;
  const clusterEps = fam.clusterEndpoints;
  const localEps = fam.localEndpoints;
  const externallyAccessible = sp.nodePort !== null || fam.externalIPs.length > 0 ||
    fam.loadBalancerIPs.length > 0;
  const externalPolicyLocal = externallyAccessible && sp.externalTrafficPolicy === "Local";
  const internalPolicyLocal = sp.internalTrafficPolicy === "Local";
  const usesClusterChain = clusterEps.length > 0;
  const usesLocalChain = localEps.length > 0;

  const internalChain = internalPolicyLocal ? names.svl : names.svc;
  const hasInternal = hasEndpoints && (!internalPolicyLocal || localEps.length > 0);
  const externalPolicyChain = externalPolicyLocal ? names.svl : names.svc;
  const hasExternal = hasEndpoints && (!externalPolicyLocal || localEps.length > 0);
  const usesExtChain = hasEndpoints && externallyAccessible;
  const usesFwChain = hasEndpoints && fam.loadBalancerIPs.length > 0 &&
    fam.loadBalancerSourceRanges.length > 0;
  const lbChain = usesFwChain ? names.fw : names.ext;

  let internalTarget = "";
  let internalComment = "";
  let externalTarget = "";
  let externalComment = "";
  if (!hasEndpoints) {
    internalTarget = externalTarget = "REJECT";
    internalComment = externalComment = quoteComment(`${id} has no endpoints`);
  } else {
    if (!hasInternal) {
      internalTarget = "DROP";
      internalComment = quoteComment(`${id} has no local endpoints`);
    }
    if (!hasExternal) {
      externalTarget = "DROP";
      externalComment = quoteComment(`${id} has no local endpoints`);
    }
  }

  const top: TopRule[] = [];
  const nat = (chain: string, spec: string) => top.push({ table: "nat", chain, spec });
  const filter = (chain: string, spec: string) => top.push({ table: "filter", chain, spec });
  const clusterIPMatch = `${match} -d ${fam.clusterIP} --dport ${sp.port}`;

  // The cluster IP.
  if (hasInternal) {
    nat(
      KUBE_SERVICES,
      `-m comment --comment ${quoteComment(`${id} cluster IP`)} ${clusterIPMatch} ` +
        `-j ${internalChain}`,
    );
  } else {
    filter(
      KUBE_SERVICES,
      `-m comment --comment ${internalComment} ${clusterIPMatch} -j ${internalTarget}`,
    );
  }
  // External IPs.
  for (const ip of fam.externalIPs) {
    const dst = `${match} -d ${ip} --dport ${sp.port}`;
    if (hasEndpoints) {
      nat(
        KUBE_SERVICES,
        `-m comment --comment ${quoteComment(`${id} external IP`)} ${dst} -j ${names.ext}`,
      );
    }
    if (!hasExternal) {
      filter(
        KUBE_EXTERNAL_SERVICES,
        `-m comment --comment ${externalComment} ${dst} -j ${externalTarget}`,
      );
    }
  }
  // LoadBalancer ingress IPs.
  for (const ip of fam.loadBalancerIPs) {
    const dst = `${match} -d ${ip} --dport ${sp.port}`;
    if (hasEndpoints) {
      nat(
        KUBE_SERVICES,
        `-m comment --comment ${quoteComment(`${id} loadbalancer IP`)} ${dst} -j ${lbChain}`,
      );
    }
    if (usesFwChain) {
      filter(
        KUBE_PROXY_FIREWALL,
        `-m comment --comment ${quoteComment(`${id} traffic not accepted by ${names.fw}`)} ` +
          `${dst} -j DROP`,
      );
    }
  }
  if (!hasExternal) {
    for (const ip of fam.loadBalancerIPs) {
      filter(
        KUBE_EXTERNAL_SERVICES,
        `-m comment --comment ${externalComment} ${match} -d ${ip} --dport ${sp.port} ` +
          `-j ${externalTarget}`,
      );
    }
  }
  // NodePort (not subject to loadBalancerSourceRanges, as in kube-proxy).
  if (sp.nodePort !== null) {
    if (hasEndpoints) {
      // Upstream counts NodePort packets to 127.0.0.0/8 in an nfacct counter (IPv4 only).
      if (ctx.localhostNodePorts && ctx.localhostNodePortsCounter !== null) {
        nat(
          KUBE_NODEPORTS,
          `-m comment --comment ${quoteComment(id)} ${match} -d 127.0.0.0/8 ` +
            `--dport ${sp.nodePort} -m nfacct --nfacct-name ${ctx.localhostNodePortsCounter} ` +
            `-j ${names.ext}`,
        );
      }
      nat(
        KUBE_NODEPORTS,
        `-m comment --comment ${quoteComment(id)} ${match} --dport ${sp.nodePort} -j ${names.ext}`,
      );
    }
    if (!hasExternal) {
      filter(
        KUBE_EXTERNAL_SERVICES,
        `-m comment --comment ${externalComment} -m addrtype --dst-type LOCAL ${match} ` +
          `--dport ${sp.nodePort} -j ${externalTarget}`,
      );
    }
  }
  // The health check node port is accepted whether or not this node has endpoints.
  if (sp.healthCheckNodePort !== null) {
    filter(
      KUBE_NODEPORTS,
      `-m comment --comment ${quoteComment(`${id} health check node port`)} -m tcp -p tcp ` +
        `--dport ${sp.healthCheckNodePort} -j ACCEPT`,
    );
  }

  // Owned nat chains.
  const chains: OwnedChain[] = [];
  const internalMasq: string[] = [];
  if (hasInternal) {
    const head = `-m comment --comment ${quoteComment(`${id} cluster IP`)} ${clusterIPMatch}`;
    if (ctx.masqueradeAll) internalMasq.push(`${head} -j ${KUBE_MARK_MASQ}`);
    else if (ctx.podSource !== null) {
      internalMasq.push(`${head} ${ctx.podSource.ifNotLocal} -j ${KUBE_MARK_MASQ}`);
    }
  }
  if (usesExtChain) {
    const rules: string[] = [];
    if (!externalPolicyLocal) {
      rules.push(
        `-m comment --comment ${
          quoteComment(`masquerade traffic for ${id} external destinations`)
        } -j ${KUBE_MARK_MASQ}`,
      );
    } else {
      if (ctx.podSource !== null) {
        rules.push(
          `-m comment --comment ${quoteComment(`pod traffic for ${id} external destinations`)} ` +
            `${ctx.podSource.ifLocal} -j ${names.svc}`,
        );
      }
      rules.push(
        `-m comment --comment ${
          quoteComment(`masquerade LOCAL traffic for ${id} external destinations`)
        } -m addrtype --src-type LOCAL -j ${KUBE_MARK_MASQ}`,
      );
      rules.push(
        `-m comment --comment ${
          quoteComment(`route LOCAL traffic for ${id} external destinations`)
        } -m addrtype --src-type LOCAL -j ${names.svc}`,
      );
    }
    if (hasExternal) rules.push(`-j ${externalPolicyChain}`);
    chains.push({ name: names.ext, rules });
  }
  if (usesFwChain) {
    const head = `-m comment --comment ${quoteComment(`${id} loadbalancer IP`)}`;
    const rules: string[] = [];
    let allowFromNode = false;
    for (const cidr of fam.loadBalancerSourceRanges) {
      rules.push(`${head} -s ${cidr} -j ${names.ext}`);
      if (ctx.nodeIP !== null && cidrHolds(cidr, ctx.nodeIP)) allowFromNode = true;
    }
    if (allowFromNode) {
      for (const ip of fam.loadBalancerIPs) rules.push(`${head} -s ${ip} -j ${names.ext}`);
    }
    rules.push(
      `-m comment --comment ${
        quoteComment(`other traffic to ${id} will be dropped by ${KUBE_PROXY_FIREWALL}`)
      }`,
    );
    chains.push({ name: names.fw, rules });
  }

  const sepNames = new Map<string, string>();
  const sepName = (ep: EndpointInfo): string => {
    const key = endpointText(ep.ip, ep.port);
    let name = sepNames.get(key);
    if (name === undefined) {
      name = endpointChainName(id, sp.protocol, key);
      sepNames.set(key, name);
    }
    return name;
  };
  if (usesClusterChain) {
    const masq = internalChain === names.svc ? internalMasq : [];
    chains.push({ name: names.svc, rules: [...masq, ...endpointRules(sp, clusterEps, sepName)] });
  }
  if (usesLocalChain) {
    const masq = internalChain === names.svl ? internalMasq : [];
    chains.push({ name: names.svl, rules: [...masq, ...endpointRules(sp, localEps, sepName)] });
  }
  // One DNAT chain per endpoint either policy chain uses, in endpoint order.
  const used = new Set<string>();
  for (const ep of [...clusterEps, ...localEps]) used.add(endpointText(ep.ip, ep.port));
  const affinity = sp.sessionAffinityTimeoutSeconds !== null;
  for (const ep of fam.endpoints) {
    if (!used.has(endpointText(ep.ip, ep.port))) continue;
    const name = sepName(ep);
    const comment = `-m comment --comment ${quoteComment(id)}`;
    const recent = affinity ? ` -m recent --name ${name} --set` : "";
    chains.push({
      name,
      rules: [
        `${comment} -s ${ep.ip} -j ${KUBE_MARK_MASQ}`,
        `${comment}${recent} ${match} -j DNAT --to-destination ${endpointText(ep.ip, ep.port)}`,
      ],
    });
  }
  return {
    id,
    topRules: top.map((r) => ({ table: r.table, chain: r.chain, spec: flatText(r.spec) })),
    chains: chains.map((c) => ({ name: flatText(c.name), rules: flatTexts(c.rules) })),
  };
}
