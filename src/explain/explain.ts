/**
 * `kproxy explain`'s pure core: (snapshot, packet) → where the packet goes and why.
 *
 * The packet is traced through the rules the active backend's renderer writes for the snapshot
 * (the same renderer code, the same chain names), so the answer and `/rules` point at each other;
 * the reasons (why an endpoint is not used, why the source is masqueraded) come from the
 * snapshot's own fields.
 *
 * @module
 */
import {
  endpointChainName,
  endpointText,
  servicePortChainNames as iptablesChainNames,
} from "../render/iptables/chain_names.ts";
import { familyContext as nftablesContext } from "../render/nftables/fixed_rules.ts";
import {
  affinitySetName,
  FIXED,
  servicePortChainNames as nftablesChainNames,
} from "../render/nftables/names.ts";
import { compareIPs } from "../model/ip.ts";
import type {
  EndpointInfo,
  ProxySnapshot,
  ServicePortFamily,
  ServicePortSnapshot,
} from "../snapshot/types.ts";
import type {
  AffinityAnswer,
  EndpointChoice,
  ExplainAnswer,
  ExplainMode,
  MasqueradeAnswer,
  ServicePortMatch,
  Verdict,
} from "./answer.ts";
import { candidatePorts } from "./candidates.ts";
import {
  affinityReason,
  type EndpointExclusion,
  type EndpointSetKind,
  exclusion,
  type ExclusionReason,
  exclusionReasons,
} from "./endpoint_reasons.ts";
import { iptablesView } from "./iptables_trace.ts";
import { nftablesView } from "./nftables_trace.ts";
import {
  type ExplainPacket,
  hostPort,
  inAnyCIDR,
  isNodeAddress,
  nodeAddressesOf,
} from "./packet.ts";
import {
  interfaceMatches,
  OTHER_INTERFACE,
  type PathEvent,
  type TraceOutcome,
  tracePacket,
} from "./trace_engine.ts";

/** Options of {@link explainPacket}. */
export interface ExplainOptions {
  /** Whose rules to trace. */
  readonly mode: ExplainMode;
  /**
   * Every address of this node (what `fib … type local` / `addrtype LOCAL` see). The snapshot's
   * primary and NodePort addresses are always included.
   */
  readonly nodeAddresses?: readonly string[];
  /**
   * ClientIP affinity state read from the kernel: nftables affinity set name, or iptables
   * `recent` list name (the KUBE-SEP chain), → the source addresses it holds. Without it, the
   * source is a client the service has not seen.
   */
  readonly affinity?: ReadonlyMap<string, readonly string[]>;
  /**
   * The interface the packet arrives on (what `iifname` / `-i` see; ignored for the node's own
   * packets). Default: a pod's when the source is an endpoint on this node (the bridge in
   * BridgeInterface mode, a name with the prefix in InterfaceNamePrefix mode), else an
   * interface that is neither.
   */
  readonly inputInterface?: string;
}

/** The input interface explain assumes for `packet` when it is not told (see ExplainOptions). */
export function assumedInputInterface(snapshot: ProxySnapshot, packet: ExplainPacket): string {
  const detector = snapshot.options.localDetector;
  const fromPodHere = snapshot.servicePorts.some((sp) =>
    sp.families.some((f) => f.endpoints.some((e) => e.isLocal && e.ip === packet.source))
  );
  if (!fromPodHere || detector.interfaceName === null) return OTHER_INTERFACE;
  // A prefix names every pod interface; the prefix itself is one such name.
  return detector.interfaceName;
}

interface Matched {
  readonly sp: ServicePortSnapshot;
  readonly fam: ServicePortFamily;
  readonly match: ServicePortMatch;
}

function matchOf(
  sp: ServicePortSnapshot,
  fam: ServicePortFamily,
  kind: ServicePortMatch["kind"],
  packet: ExplainPacket,
): Matched {
  const internal = kind === "ClusterIP";
  return {
    sp,
    fam,
    match: {
      servicePort: sp.id,
      kind,
      address: packet.destination,
      port: packet.port,
      traffic: internal ? "internal" : "external",
      policy: internal
        ? { name: "internalTrafficPolicy", value: sp.internalTrafficPolicy }
        : { name: "externalTrafficPolicy", value: sp.externalTrafficPolicy },
    },
  };
}

/** The service port whose ClusterIP, external IP or LB IP and port the packet is sent to. */
function addressMatch(snapshot: ProxySnapshot, packet: ExplainPacket): Matched | null {
  for (const sp of snapshot.servicePorts) {
    if (sp.protocol !== packet.protocol || sp.port !== packet.port) continue;
    const fam = sp.families.find((f) => f.family === packet.family);
    if (fam === undefined) continue;
    const dst = packet.destination;
    if (fam.clusterIP === dst) return matchOf(sp, fam, "ClusterIP", packet);
    if (fam.externalIPs.includes(dst)) return matchOf(sp, fam, "ExternalIP", packet);
    if (fam.loadBalancerIPs.includes(dst)) return matchOf(sp, fam, "LoadBalancerIP", packet);
  }
  return null;
}

/** True when the trace went through a rule keyed on the NodePort `nodePort`. */
function tracedNodePort(mode: ExplainMode, path: readonly PathEvent[], nodePort: number): boolean {
  return path.some((e) => {
    if (e.kind !== "rule") return false;
    if (mode === "nftables") {
      return (e.rule.includes(`vmap @${FIXED.serviceNodePortsMap}`) ||
        e.rule.includes(`vmap @${FIXED.noEndpointNodePortsMap}`) ||
        e.rule.includes(`@${FIXED.nodePortClusterSet} `) ||
        e.rule.includes(`@${FIXED.nodePortLocalSet} `)) &&
        e.effect.includes(` . ${nodePort}]`);
    }
    return e.rule.includes(`--dport ${nodePort} `) &&
      (e.chain === "KUBE-NODEPORTS" || e.rule.includes("--dst-type LOCAL"));
  });
}

function nodePortMatch(
  snapshot: ProxySnapshot,
  packet: ExplainPacket,
  mode: ExplainMode,
  paths: readonly (readonly PathEvent[])[],
): Matched | null {
  for (const sp of snapshot.servicePorts) {
    if (sp.nodePort !== packet.port || sp.protocol !== packet.protocol) continue;
    const fam = sp.families.find((f) => f.family === packet.family);
    if (fam === undefined) continue;
    if (paths.some((p) => tracedNodePort(mode, p, packet.port))) {
      return matchOf(sp, fam, "NodePort", packet);
    }
  }
  return null;
}

/** Length of the longest common prefix of the paths. */
function commonPrefix(paths: readonly (readonly PathEvent[])[]): number {
  const first = paths[0] ?? [];
  let n = first.length;
  for (const p of paths.slice(1)) {
    let i = 0;
    while (i < n && i < p.length && JSON.stringify(p[i]) === JSON.stringify(first[i])) i++;
    n = i;
  }
  return n;
}

type MarkKind = "hairpin" | "external-cluster" | "node-source" | "off-cluster" | "masquerade-all";

function isMarkJump(e: PathEvent): e is Extract<PathEvent, { kind: "rule" }> {
  return e.kind === "rule" &&
    (e.effect === `jump ${FIXED.markMasqChain}` || e.effect === "jump KUBE-MARK-MASQ");
}

function markKind(e: Extract<PathEvent, { kind: "rule" }>): MarkKind {
  const c = e.chain;
  if (c === FIXED.masqueradingChain || c.startsWith("KUBE-SEP-")) return "hairpin";
  if (c.startsWith("external-") || c.startsWith("nodeport-") || c.startsWith("KUBE-EXT-")) {
    return e.rule.includes("fib saddr type local") || e.rule.includes("--src-type LOCAL")
      ? "node-source"
      : "external-cluster";
  }
  const detects = ["saddr !=", "! -s ", "iifname !=", "! -i "];
  return detects.some((d) => e.rule.includes(d)) ? "off-cluster" : "masquerade-all";
}

/**
 * The backend's "is this source a pod?" test for the packet (the local detector its rules use):
 * in words, and whether the packet passes it.
 */
interface PodTest {
  /**
   * What pod traffic is (`the cluster CIDR 198.18.1.0/24`, `interfaces named "veth*"`), or why
   * it cannot be told when not implemented.
   */
  readonly what: string;
  /** The packet as a pod's, in words: `is inside the cluster CIDR …`, `arrives on …`. */
  readonly inside: string;
  /** The packet as not a pod's, in words. */
  readonly outside: string;
  /** False when pod traffic cannot be told (no CIDR of the family in a CIDR mode). */
  readonly implemented: boolean;
  /** True when the packet counts as a pod's. */
  readonly isPod: boolean;
}

function podTestOf(
  snapshot: ProxySnapshot,
  mode: ExplainMode,
  packet: ExplainPacket,
  inputInterface: string | null,
): PodTest {
  const detector = snapshot.options.localDetector;
  if (detector.interfaceName !== null) {
    const bridge = detector.mode === "BridgeInterface";
    const pattern = bridge ? detector.interfaceName : `${detector.interfaceName}*`;
    const what = bridge
      ? `the bridge ${JSON.stringify(pattern)} (--detect-local-mode=BridgeInterface)`
      : `an interface named ${JSON.stringify(pattern)} (--detect-local-mode=InterfaceNamePrefix)`;
    const on = inputInterface === null
      ? "no interface (the node sends it)"
      : JSON.stringify(inputInterface);
    return {
      what,
      inside: `arrives on ${on}, ${what}`,
      outside: `arrives on ${on}, not ${what}`,
      implemented: true,
      isPod: interfaceMatches(inputInterface, pattern),
    };
  }
  // The CIDRs the backend's own family context uses (iptables: the family's first only).
  const cidrs = mode === "nftables"
    ? nftablesContext(snapshot, packet.family).podCIDRs
    : detector.cidrs.filter((c) => c.includes(":") === (packet.family === "IPv6")).slice(0, 1);
  const source = detector.mode === "NodeCIDR" ? "the node's pod CIDR" : "the cluster CIDR";
  const missing = detector.mode === "NodeCIDR"
    ? `the Node has no ${packet.family} spec.podCIDRs`
    : "no --cluster-cidr is set";
  const what = cidrs.length > 0 ? `${source} ${cidrs.join(", ")}` : missing;
  return {
    what,
    inside: `is inside ${what}`,
    outside: `is outside ${what}`,
    implemented: cidrs.length > 0,
    isPod: inAnyCIDR(packet.source, cidrs),
  };
}

function markText(kind: MarkKind, packet: ExplainPacket, pods: PodTest): string {
  switch (kind) {
    case "hairpin":
      return `hairpin: the endpoint is the source itself, so the node's address replaces ${packet.source}`;
    case "external-cluster":
      return "externalTrafficPolicy Cluster: external traffic is masqueraded so that replies " +
        "come back through this node (the endpoint may run elsewhere)";
    case "node-source":
      return "the node itself sends it to an external address of a Local service, " +
        "so its source is masqueraded";
    case "off-cluster":
      return `source ${packet.source} ${pods.outside}: traffic from outside the pod network ` +
        "to a ClusterIP is masqueraded";
    case "masquerade-all":
      return "--masquerade-all masquerades every packet to a service";
  }
}

function unmarkedText(
  m: Matched | null,
  packet: ExplainPacket,
  pods: PodTest,
  fromNode: boolean,
): string {
  if (m === null) return "no service rule marks it";
  if (m.match.traffic === "internal") {
    if (!pods.implemented) {
      return `${pods.what}, so pod traffic cannot be told from other traffic and no ` +
        "ClusterIP traffic is masqueraded (as kube-proxy)";
    }
    if (pods.isPod) {
      return `source ${packet.source} ${pods.inside}: pod traffic keeps its address`;
    }
    return fromNode ? "the node's own packet is not marked" : "no service rule marks it";
  }
  if (m.sp.externalTrafficPolicy === "Local") {
    return pods.isPod
      ? "pod traffic to an external address of a Local service goes to any endpoint " +
        "and keeps its address"
      : "externalTrafficPolicy Local keeps the client's address";
  }
  return "no service rule marks it";
}

function endpointOf(fam: ServicePortFamily | null, ip: string, port: number): EndpointInfo | null {
  return fam?.endpoints.find((e) => e.ip === ip && e.port === port) ?? null;
}

/** Which endpoint set the DNAT chose from, by the chain names the renderer gives them. */
function setOf(m: Matched, mode: ExplainMode, path: readonly PathEvent[]): EndpointSetKind {
  const names = mode === "nftables" ? nftablesChainNames(m.sp) : (() => {
    const n = iptablesChainNames(m.sp.id, m.sp.protocol);
    return { local: n.svl, cluster: n.svc };
  })();
  for (let i = path.length - 1; i >= 0; i--) {
    const e = path[i] as PathEvent;
    if (e.kind !== "enter") continue;
    if (e.chain === names.local) return "local";
    if (e.chain === names.cluster) return "cluster";
    // Service ports whose endpoints live in maps pick in the shared selection chains.
    if (e.chain === FIXED.selectLocalChain || e.chain === FIXED.selectNodePortLocalChain) {
      return "local";
    }
    if (e.chain === FIXED.selectClusterChain || e.chain === FIXED.selectNodePortClusterChain) {
      return "cluster";
    }
  }
  return "cluster";
}

type Cause =
  | "firewall"
  | "no-local-endpoints"
  | "no-endpoints"
  | "no-such-port"
  | "unallocated"
  | "localnet"
  | "other";

function causeOf(outcome: TraceOutcome, mode: ExplainMode): Cause {
  const by = outcome.by;
  if (by === undefined) return "no-endpoints";
  const chain = by.chain;
  if (mode === "nftables") {
    if (chain.startsWith("firewall-")) return "firewall";
    const path = outcome.branch.path;
    if (chain === FIXED.rejectChain) {
      const enter = path.findLastIndex((e) => e.kind === "enter" && e.chain === FIXED.rejectChain);
      const before = path[enter - 1];
      if (before?.kind === "rule" && before.chain === FIXED.clusterIPsCheckChain) {
        return "no-such-port";
      }
      return before?.kind === "rule" && /@no-endpoint-/.test(before.rule)
        ? "no-endpoints"
        : "other";
    }
    if (chain === FIXED.clusterIPsCheckChain && by.rule.includes(`@${FIXED.serviceCIDRsSet}`)) {
      return "unallocated";
    }
    // A drop verdict of the no-endpoint maps: endpoints exist, none where the policy allows.
    return /@no-endpoint-/.test(by.rule) ? "no-local-endpoints" : "other";
  }
  if (chain === "KUBE-PROXY-FIREWALL") return "firewall";
  if (chain === "KUBE-FIREWALL") return "localnet";
  if (/has no local endpoints/.test(by.rule)) return "no-local-endpoints";
  if (/has no endpoints/.test(by.rule)) return "no-endpoints";
  return "other";
}

function causeText(
  cause: Cause,
  m: Matched | null,
  packet: ExplainPacket,
  snapshot: ProxySnapshot,
): string {
  const id = m?.sp.id ?? "the service";
  switch (cause) {
    case "firewall":
      return `source ${packet.source} is outside the loadBalancerSourceRanges of ${id} (${
        m?.fam.loadBalancerSourceRanges.join(", ") ?? ""
      })`;
    case "no-endpoints":
      return m === null || m.fam.endpoints.length === 0
        ? `${id} has no endpoints (its EndpointSlices list none)`
        : `${id} has no endpoints that can serve: none is ready, and none is terminating ` +
          "but still serving";
    case "no-local-endpoints": {
      const policy = m?.match.policy.name ?? "the traffic policy";
      const node = snapshot.node.name || "this node";
      return `${policy} is Local and no usable endpoint of ${id} runs on ${node}`;
    }
    case "no-such-port": {
      const owners = snapshot.servicePorts.filter((sp) =>
        sp.families.some((f) => f.clusterIP === packet.destination)
      );
      const ports = owners.map((sp) => `${sp.protocol} ${sp.port}`).join(", ");
      return `${packet.destination} is a ClusterIP, but its service has no ${packet.protocol} ` +
        `port ${packet.port} (it has ${ports}); kproxy rejects such packets, as kube-proxy's ` +
        "nftables mode does";
    }
    case "unallocated": {
      const ranges = snapshot.serviceCIDRs.filter((c) => inAnyCIDR(packet.destination, [c]));
      return `${packet.destination} is in the service CIDR ${ranges.join(", ")} but no Service ` +
        "holds it; kproxy drops such packets, as kube-proxy's nftables mode does";
    }
    case "localnet":
      return "packets to 127.0.0.0/8 from other addresses are dropped (the route_localnet " +
        "protection kube-proxy installs with localhost NodePorts)";
    case "other":
      return "a rule of kproxy's drops it (see the rule path)";
  }
}

/** Near misses: the destination is a service address with other ports, or a NodePort elsewhere. */
function notesOf(snapshot: ProxySnapshot, packet: ExplainPacket, matched: Matched | null) {
  const notes: string[] = [];
  if (matched !== null) return notes;
  for (const sp of snapshot.servicePorts) {
    const fam = sp.families.find((f) => f.family === packet.family);
    if (fam === undefined) continue;
    const dst = packet.destination;
    const role = fam.clusterIP === dst
      ? "the ClusterIP"
      : fam.externalIPs.includes(dst)
      ? "an external IP"
      : fam.loadBalancerIPs.includes(dst)
      ? "a LoadBalancer IP"
      : null;
    if (role !== null) notes.push(`${dst} is ${role} of ${sp.id} (${sp.protocol} ${sp.port})`);
    if (sp.nodePort === packet.port && sp.protocol === packet.protocol) {
      const ips = snapshot.node.nodePortIPs[packet.family];
      const where = ips === null
        ? `any local ${packet.family} address`
        : ips.join(", ") || "no address of this node";
      notes.push(
        `${packet.port} is the NodePort of ${sp.id}, but ${dst} is not one of this node's ` +
          `NodePort addresses (${where})`,
      );
    }
  }
  return notes;
}

function affinityOf(
  m: Matched | null,
  mode: ExplainMode,
  source: string,
  state: ReadonlyMap<string, readonly string[]> | undefined,
): AffinityAnswer | null {
  if (m === null || m.sp.sessionAffinityTimeoutSeconds === null) return null;
  let pinnedTo: string | null = null;
  if (state !== undefined) {
    for (const ep of m.fam.endpoints) {
      const name = mode === "nftables"
        ? affinitySetName(m.sp, ep)
        : endpointChainName(m.sp.id, m.sp.protocol, endpointText(ep.ip, ep.port));
      if ((state.get(name) ?? []).includes(source)) pinnedTo = hostPort(ep.ip, ep.port);
    }
  }
  return { timeoutSeconds: m.sp.sessionAffinityTimeoutSeconds, pinnedTo };
}

/** Explains where `packet` goes on this node with `snapshot`'s rules in `options.mode`. */
export function explainPacket(
  snapshot: ProxySnapshot,
  packet: ExplainPacket,
  options: ExplainOptions,
): ExplainAnswer {
  const { mode } = options;
  const addresses = nodeAddressesOf(snapshot, options.nodeAddresses);
  const isLocal = (ip: string) => isNodeAddress(ip, addresses);
  const fromNode = isLocal(packet.source);
  const ports = candidatePorts(
    snapshot,
    packet.family,
    [packet.destination, packet.source],
    [packet.port],
  );
  const view = mode === "nftables"
    ? nftablesView(snapshot, packet.family, ports, {
      isLocal,
      ...(options.affinity === undefined ? {} : { affinity: options.affinity }),
    })
    : iptablesView(snapshot, packet.family, ports, {
      isLocal,
      ...(options.affinity === undefined ? {} : { affinity: options.affinity }),
    });
  const inputInterface = options.inputInterface ?? assumedInputInterface(snapshot, packet);
  const outcomes = tracePacket(view, { packet, fromNode, isLocal, inputInterface });
  const paths = outcomes.map((o) => o.branch.path);
  const matched = addressMatch(snapshot, packet) ?? nodePortMatch(snapshot, packet, mode, paths);
  const pods = podTestOf(snapshot, mode, packet, fromNode ? null : inputInterface);
  const prefix = commonPrefix(paths);
  const dnat = outcomes.filter((o) => o.branch.state.dnat !== null);
  const notes = notesOf(snapshot, packet, matched);
  const affinity = affinityOf(matched, mode, packet.source, options.affinity);
  const base = {
    packet,
    fromNode,
    mode,
    node: snapshot.node.name,
    snapshot: snapshot.hash,
    match: matched?.match ?? null,
    affinity,
    path: (paths[0] ?? []).slice(0, prefix),
  };
  const other = outcomes.filter((o) => o.branch.state.dnat === null);
  if (dnat.length > 0) {
    if (other.length > 0) {
      const share = other.reduce((a, o) => a + o.branch.probability, 0);
      notes.push(`${(share * 100).toFixed(1)}% of packets are not DNATed (${other[0]?.kind})`);
    }
    const byEndpoint = new Map<string, { outcome: TraceOutcome; share: number }>();
    for (const o of dnat) {
      const d = o.branch.state.dnat as NonNullable<typeof o.branch.state.dnat>;
      const key = hostPort(d.ip, d.port);
      const entry = byEndpoint.get(key);
      if (entry === undefined) byEndpoint.set(key, { outcome: o, share: o.branch.probability });
      else entry.share += o.branch.probability;
    }
    const endpoints = [...byEndpoint.values()].map(({ outcome, share }): EndpointChoice => {
      const d = outcome.branch.state.dnat as NonNullable<typeof outcome.branch.state.dnat>;
      const info = endpointOf(matched?.fam ?? null, d.ip, d.port);
      return {
        ip: d.ip,
        port: d.port,
        nodeName: info?.nodeName ?? null,
        zone: info?.zone ?? null,
        isLocal: info?.isLocal ?? false,
        share,
        masqueraded: outcome.branch.state.masqueraded,
        delivery: outcome.kind === "delivered"
          ? "delivered"
          : outcome.kind === "sent"
          ? "sent"
          : "forwarded",
        path: outcome.branch.path.slice(prefix),
      };
    }).sort((a, b) => compareIPs(a.ip, b.ip) || a.port - b.port);
    const firstPath = dnat[0]?.branch.path ?? [];
    const set = matched === null ? "cluster" : setOf(matched, mode, firstPath);
    const excluded: EndpointExclusion[] = [];
    if (matched !== null) {
      const chosen = new Set(endpoints.map((e) => hostPort(e.ip, e.port)));
      const pool = set === "local" ? matched.fam.localEndpoints : matched.fam.clusterEndpoints;
      for (const ep of matched.fam.endpoints) {
        if (chosen.has(hostPort(ep.ip, ep.port))) continue;
        const inPool = pool.some((p) => p.ip === ep.ip && p.port === ep.port);
        const pinned = endpoints[0];
        const reasons: ExclusionReason[] = inPool && pinned !== undefined && affinity !== null
          ? [affinityReason(pinned, packet.source, affinity.timeoutSeconds)]
          : exclusionReasons(ep, reasonContext(matched, set, snapshot));
        excluded.push(exclusion(ep, reasons));
      }
    }
    const masquerade = masqueradeOf(dnat, matched, packet, pods, fromNode);
    const n = endpoints.length;
    const verdict: Verdict = {
      kind: "dnat",
      reason: n === 1
        ? `DNAT to ${hostPort(endpoints[0]?.ip ?? "", endpoints[0]?.port ?? 0)}`
        : `DNAT to one of ${n} endpoints, picked at random${
          affinity === null ? "" : ", then kept per client (ClientIP affinity)"
        }`,
    };
    return { ...base, verdict, endpoints, excluded, masquerade, notes };
  }
  // Not DNATed: one outcome in practice (no random pick happens before a DNAT).
  const outcome = other[0] as TraceOutcome;
  let verdict: Verdict;
  let set: EndpointSetKind | null = null;
  let blocked: string | null = null;
  if (outcome.kind === "dropped" || outcome.kind === "rejected") {
    const cause = causeOf(outcome, mode);
    const reason = causeText(cause, matched, packet, snapshot);
    verdict = {
      kind: outcome.kind === "dropped" ? "drop" : "reject",
      reason,
      ...(outcome.by === undefined ? {} : { by: outcome.by }),
    };
    if (cause === "no-local-endpoints") set = "local";
    else if (cause === "no-endpoints") set = "cluster";
    else blocked = reason;
  } else {
    const local = outcome.kind === "delivered";
    const what = matched === null
      ? "no service port matches it"
      : `kproxy's rules for ${matched.sp.id} let it pass unchanged`;
    verdict = {
      kind: local ? "local" : "routed",
      reason: local
        ? `${what}: delivered to this node's own sockets, as any packet to a node address`
        : `${what}: routed on to ${packet.destination} as it is`,
    };
    blocked = verdict.reason;
  }
  const excluded: EndpointExclusion[] = [];
  if (matched !== null) {
    for (const ep of matched.fam.endpoints) {
      const reasons: ExclusionReason[] = set !== null
        ? exclusionReasons(ep, reasonContext(matched, set, snapshot))
        : [{ kind: "blocked", text: blocked ?? verdict.reason }];
      excluded.push(exclusion(ep, reasons));
    }
  }
  return {
    ...base,
    path: outcome.branch.path,
    verdict,
    endpoints: [],
    excluded,
    masquerade: null,
    notes,
  };
}

function reasonContext(m: Matched, set: EndpointSetKind, snapshot: ProxySnapshot) {
  return {
    sp: m.sp,
    fam: m.fam,
    set,
    policy: m.match.policy.name,
    nodeName: snapshot.node.name,
    zone: snapshot.node.zone,
  };
}

function masqueradeOf(
  dnat: readonly TraceOutcome[],
  matched: Matched | null,
  packet: ExplainPacket,
  pods: PodTest,
  fromNode: boolean,
): MasqueradeAnswer {
  const marks = (o: TraceOutcome) => o.branch.path.filter(isMarkJump).map(markKind);
  const masqueraded = dnat.filter((o) => o.branch.state.masqueraded);
  const unmarked = unmarkedText(matched, packet, pods, fromNode);
  if (masqueraded.length === 0) return { applies: "never", reason: unmarked };
  const kinds = masqueraded.map(marks);
  const nonHairpin = kinds.flat().filter((k) => k !== "hairpin");
  if (masqueraded.length === dnat.length) {
    const kind = nonHairpin[0] ?? "hairpin";
    return { applies: "always", reason: markText(kind, packet, pods) };
  }
  if (nonHairpin.length === 0) {
    return {
      applies: "hairpin",
      reason: `${unmarked}; but when it lands on ${packet.source} itself, ${
        markText("hairpin", packet, pods)
      }`,
    };
  }
  return { applies: "always", reason: markText(nonHairpin[0] as MarkKind, packet, pods) };
}
