/**
 * The fixed part of kproxy's iptables layout, as data: which chains exist in which table, which
 * built-in chains jump to them, and the rules that do not depend on any service.
 */
import { quoteComment } from "./comment.ts";
import type { FamilyContext } from "./family_context.ts";
import {
  type IptablesTable,
  KUBE_EXTERNAL_SERVICES,
  KUBE_FIREWALL,
  KUBE_FORWARD,
  KUBE_MARK_MASQ,
  KUBE_NODEPORTS,
  KUBE_POSTROUTING,
  KUBE_PROXY_FIREWALL,
  KUBE_SERVICES,
} from "./service_rules.ts";

/** The fixed filter chains, in kube-proxy's declaration order. */
export const FILTER_CHAINS: readonly string[] = [
  KUBE_SERVICES,
  KUBE_EXTERNAL_SERVICES,
  KUBE_FORWARD,
  KUBE_NODEPORTS,
  KUBE_PROXY_FIREWALL,
];

/** The fixed nat chains, in kube-proxy's declaration order. */
export const NAT_CHAINS: readonly string[] = [
  KUBE_SERVICES,
  KUBE_NODEPORTS,
  KUBE_POSTROUTING,
  KUBE_MARK_MASQ,
];

/** A rule in a built-in chain that sends packets into one of kproxy's chains. */
export interface JumpRule {
  /** The table. */
  readonly table: IptablesTable;
  /** The built-in chain the rule lives in. */
  readonly from: string;
  /** kproxy's chain it jumps to. */
  readonly to: string;
  /** The rule's comment (kube-proxy's exact words), or empty for none. */
  readonly comment: string;
  /** Matches before the comment. */
  readonly extra: string;
}

const NEW = "-m conntrack --ctstate NEW";

/** kube-proxy's jump rules, in the order it ensures them (each is inserted at the top). */
export const JUMP_RULES: readonly JumpRule[] = [
  {
    table: "filter",
    from: "INPUT",
    to: KUBE_EXTERNAL_SERVICES,
    comment: "kubernetes externally-visible service portals",
    extra: NEW,
  },
  {
    table: "filter",
    from: "FORWARD",
    to: KUBE_EXTERNAL_SERVICES,
    comment: "kubernetes externally-visible service portals",
    extra: NEW,
  },
  {
    table: "filter",
    from: "INPUT",
    to: KUBE_NODEPORTS,
    comment: "kubernetes health check service ports",
    extra: "",
  },
  {
    table: "filter",
    from: "FORWARD",
    to: KUBE_SERVICES,
    comment: "kubernetes service portals",
    extra: NEW,
  },
  {
    table: "filter",
    from: "OUTPUT",
    to: KUBE_SERVICES,
    comment: "kubernetes service portals",
    extra: NEW,
  },
  {
    table: "filter",
    from: "FORWARD",
    to: KUBE_FORWARD,
    comment: "kubernetes forwarding rules",
    extra: "",
  },
  {
    table: "filter",
    from: "INPUT",
    to: KUBE_PROXY_FIREWALL,
    comment: "kubernetes load balancer firewall",
    extra: NEW,
  },
  {
    table: "filter",
    from: "OUTPUT",
    to: KUBE_PROXY_FIREWALL,
    comment: "kubernetes load balancer firewall",
    extra: NEW,
  },
  {
    table: "filter",
    from: "FORWARD",
    to: KUBE_PROXY_FIREWALL,
    comment: "kubernetes load balancer firewall",
    extra: NEW,
  },
  {
    table: "nat",
    from: "OUTPUT",
    to: KUBE_SERVICES,
    comment: "kubernetes service portals",
    extra: "",
  },
  {
    table: "nat",
    from: "PREROUTING",
    to: KUBE_SERVICES,
    comment: "kubernetes service portals",
    extra: "",
  },
  {
    table: "nat",
    from: "POSTROUTING",
    to: KUBE_POSTROUTING,
    comment: "kubernetes postrouting rules",
    extra: "",
  },
];

/** kubelet's jumps to KUBE-FIREWALL, ensured only while kproxy writes that chain. */
export const KUBE_FIREWALL_JUMP_RULES: readonly JumpRule[] = [
  { table: "filter", from: "INPUT", to: KUBE_FIREWALL, comment: "", extra: "" },
  { table: "filter", from: "OUTPUT", to: KUBE_FIREWALL, comment: "", extra: "" },
];

/** The rule text of a jump rule after `-I from 1` / `-A from`. */
export function jumpRuleSpec(jump: JumpRule): string {
  const words: string[] = [];
  if (jump.extra !== "") words.push(jump.extra);
  if (jump.comment !== "") words.push(`-m comment --comment ${quoteComment(jump.comment)}`);
  words.push(`-j ${jump.to}`);
  return words.join(" ");
}

/** True when kproxy writes KUBE-FIREWALL for this family (localhost NodePorts on IPv4). */
export function writesKubeFirewall(ctx: FamilyContext): boolean {
  return ctx.family === "IPv4" && ctx.localhostNodePorts;
}

/** Fixed filter rules written before the service rules. */
export function filterHeadRules(ctx: FamilyContext): string[] {
  if (!writesKubeFirewall(ctx)) return [];
  // route_localnet opens 127.0.0.0/8 to the network (https://issue.k8s.io/90259); this closes it.
  return [
    `-A ${KUBE_FIREWALL} -m comment --comment ${
      quoteComment("block incoming localnet connections")
    }` +
    ` -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`,
  ];
}

/** Fixed filter rules written after the service rules. */
export function filterTailRules(ctx: FamilyContext): string[] {
  const mark = `${ctx.masqueradeMark}/${ctx.masqueradeMark}`;
  // Upstream leaves the INVALID drop out when nf_conntrack_tcp_be_liberal is set.
  const counted = ctx.invalidDroppedCounter === null
    ? ""
    : ` -m nfacct --nfacct-name ${ctx.invalidDroppedCounter}`;
  const invalid = ctx.dropInvalid
    ? [`-A ${KUBE_FORWARD} -m conntrack --ctstate INVALID${counted} -j DROP`]
    : [];
  return [
    ...invalid,
    `-A ${KUBE_FORWARD} -m comment --comment ${quoteComment("kubernetes forwarding rules")}` +
    ` -m mark --mark ${mark} -j ACCEPT`,
    `-A ${KUBE_FORWARD} -m comment --comment ${
      quoteComment("kubernetes forwarding conntrack rule")
    }` +
    ` -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
  ];
}

/** Fixed nat rules written before the service rules. */
export function natHeadRules(ctx: FamilyContext): string[] {
  const m = ctx.masqueradeMark;
  return [
    `-A ${KUBE_POSTROUTING} -m mark ! --mark ${m}/${m} -j RETURN`,
    // Clear the mark so a packet that traverses the stack again is not masqueraded twice.
    `-A ${KUBE_POSTROUTING} -j MARK --xor-mark ${m}`,
    `-A ${KUBE_POSTROUTING} -m comment --comment ` +
    `${quoteComment("kubernetes service traffic requiring SNAT")} -j MASQUERADE` +
    (ctx.randomFully ? " --random-fully" : ""),
    `-A ${KUBE_MARK_MASQ} -j MARK --or-mark ${m}`,
  ];
}

/** The last rules of nat KUBE-SERVICES: hand local destinations to KUBE-NODEPORTS. */
export function natTailRules(
  ctx: FamilyContext,
  nodePortDestinations: readonly string[],
): string[] {
  const comment = `-m comment --comment ${
    quoteComment("kubernetes service nodeports; NOTE: this must be the last rule in this chain")
  }`;
  if (ctx.nodePortIPs === null) {
    let dst = "-m addrtype --dst-type LOCAL";
    // Localhost NodePorts never work on IPv6, and on IPv4 only with route_localnet.
    if (ctx.family === "IPv6") dst += " ! -d ::1/128";
    else if (!ctx.localhostNodePorts) dst += " ! -d 127.0.0.0/8";
    return [`-A ${KUBE_SERVICES} ${comment} ${dst} -j ${KUBE_NODEPORTS}`];
  }
  return nodePortDestinations.map((ip) =>
    `-A ${KUBE_SERVICES} ${comment} -d ${ip} -j ${KUBE_NODEPORTS}`
  );
}
