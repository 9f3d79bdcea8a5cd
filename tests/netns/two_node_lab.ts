/**
 * A two-node lab in network namespaces: node A (where a proxy runs), node B (off-node pods,
 * routed, so off-node endpoints really answer; no proxy), pods on both, and an external client,
 * dual-stack. Addresses are fixed (`two_node_plan.ts`), so two labs side by side — one per proxy
 * — are identical inside; only the namespace names differ.
 *
 * Everything is created inside the lab's namespaces (`ip -n`), never in the host's namespace.
 *
 * @module
 */
import { runToolResult, type ToolResult } from "../../src/apply/run_tool.ts";
import { type Agent, startAgent } from "./agent.ts";
import type { ProbeOptions, ProbeResult, ProbeTarget } from "./probe.ts";
import {
  ip,
  linkPeers,
  liveNamespaces,
  netnsSupport,
  newTopologyId,
  QUIET_IPV6,
  sweepStaleNamespacesOnce,
  sysctl,
  topologyEnded,
  topologyStarted,
} from "./topology.ts";
import {
  LAB_CLIENT,
  LAB_POD_PORTS,
  LAB_PODS,
  type LabFamily,
  type LabPod,
  NODE_A_INTERNAL,
  NODE_A_PRIMARY,
  NODE_A_SECONDARY,
  NODE_B_INTERNAL,
  NODE_B_PRIMARY,
} from "./two_node_plan.ts";

/** Where a probe of the lab starts: a pod by name, a node, or the external client. */
export type LabRole = "nodeA" | "nodeB" | "client" | string;

/** A live two-node lab. Call {@link TwoNodeLab.teardown} (in `finally`) when done. */
export interface TwoNodeLab {
  /** Id shared by the namespace names. */
  readonly id: string;
  /** Node A's namespace: the proxy under test runs here. */
  readonly nodeA: string;
  /** Node B's namespace. */
  readonly nodeB: string;
  /** The external client's namespace. */
  readonly client: string;
  /** Every namespace of this lab. */
  readonly namespaces: readonly string[];
  /** The namespace of a role (`nodeA`, `nodeB`, `client`, a pod name). */
  netnsOf(role: LabRole): string;
  /** Runs `argv` in a role's namespace, without a shell; never throws on exit codes. */
  exec(role: LabRole, argv: readonly string[]): Promise<ToolResult>;
  /** `count` probes from a role, results in order. */
  probeMany(
    from: LabRole,
    target: ProbeTarget,
    count: number,
    options?: ProbeOptions,
  ): Promise<ProbeResult[]>;
  /** Stops every agent and deletes every namespace; safe to call twice. */
  teardown(): Promise<void>;
}

/** Options of {@link createTwoNodeLab}. */
export interface TwoNodeLabOptions {
  /** Ports each pod serves on (TCP, UDP and SCTP); default {@link LAB_POD_PORTS}. */
  readonly podPorts?: readonly number[];
}

function podRole(pod: LabPod): string {
  return pod.name;
}

async function addAddresses(
  ns: string,
  dev: string,
  addrs: Readonly<Record<LabFamily, string>>,
  prefix: Readonly<Record<LabFamily, number>>,
): Promise<void> {
  await ip(["-n", ns, "addr", "add", `${addrs.IPv4}/${prefix.IPv4}`, "dev", dev]);
  await ip(["-n", ns, "-6", "addr", "add", `${addrs.IPv6}/${prefix.IPv6}`, "dev", dev, "nodad"]);
}

/** A pod behind a veth on its node: /32 and /128, the node's loopback address as gateway. */
async function linkPod(nodeNs: string, podNs: string, pod: LabPod): Promise<void> {
  const gateway = pod.node === "A" ? NODE_A_INTERNAL : NODE_B_INTERNAL;
  const link = pod.name;
  await linkPeers(nodeNs, link, podNs, "eth0");
  await ip(["-n", nodeNs, "-6", "addr", "add", "fe80::1/64", "dev", link, "nodad"]);
  await ip(["-n", podNs, "link", "set", "lo", "up"]);
  await ip(["-n", podNs, "addr", "add", `${pod.ipv4}/32`, "dev", "eth0"]);
  await ip(["-n", podNs, "-6", "addr", "add", `${pod.ipv6}/128`, "dev", "eth0", "nodad"]);
  await ip(["-n", podNs, "route", "add", gateway.IPv4, "dev", "eth0", "scope", "link"]);
  await ip(["-n", podNs, "route", "add", "default", "via", gateway.IPv4, "dev", "eth0"]);
  await ip(["-n", podNs, "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0"]);
  await ip(["-n", nodeNs, "route", "add", `${pod.ipv4}/32`, "dev", link, "src", gateway.IPv4]);
  await ip([
    "-n",
    nodeNs,
    "-6",
    "route",
    "add",
    `${pod.ipv6}/128`,
    "dev",
    link,
    "src",
    gateway.IPv6,
  ]);
}

/**
 * Builds a two-node lab: namespaces, links, addresses, routes, sysctls, and one server per pod
 * (TCP, UDP and SCTP on every pod port), listening before this resolves. On any failure everything
 * built is removed.
 */
export async function createTwoNodeLab(options: TwoNodeLabOptions = {}): Promise<TwoNodeLab> {
  const support = netnsSupport();
  if (!support.ok) throw new Error(`Cannot build a two-node lab: ${support.reason}`);
  await sweepStaleNamespacesOnce();
  const id = newTopologyId();
  const nodeA = `${id}-na`;
  const nodeB = `${id}-nb`;
  const client = `${id}-c0`;
  const podNs = new Map(LAB_PODS.map((p) => [p.name, `${id}-${p.name}`]));
  const namespaces = [nodeA, nodeB, client, ...podNs.values()];
  const roles = new Map<string, string>([["nodeA", nodeA], ["nodeB", nodeB], [
    "client",
    client,
  ]]);
  for (const [name, ns] of podNs) roles.set(name, ns);
  const agents = new Map<string, Promise<Agent>>();
  const podPorts = options.podPorts ?? LAB_POD_PORTS;
  let tornDown = false;

  const netnsOf = (role: LabRole): string => {
    const ns = roles.get(role);
    if (ns === undefined) throw new Error(`Lab ${id} has no role ${role}`);
    return ns;
  };

  const agentFor = (role: string): Promise<Agent> => {
    const ns = netnsOf(role);
    let agent = agents.get(ns);
    if (agent === undefined) {
      const isPod = podNs.has(role);
      agent = startAgent(ns, {
        name: role,
        ...(isPod ? { tcpPorts: podPorts, udpPorts: podPorts, sctpPorts: podPorts } : {}),
      });
      agents.set(ns, agent);
    }
    return agent;
  };

  const teardown = async () => {
    if (tornDown) return;
    tornDown = true;
    try {
      const started = await Promise.allSettled(agents.values());
      await Promise.allSettled(
        started.map((s) => s.status === "fulfilled" ? s.value.stop() : Promise.resolve()),
      );
      const problems: string[] = [];
      for (const ns of [...namespaces].reverse()) {
        const r = await runToolResult("ip", ["netns", "del", ns]);
        if (r.code !== 0 && !/No such file/.test(r.stderr)) problems.push(`${ns}: ${r.stderr}`);
        liveNamespaces.delete(ns);
      }
      if (problems.length > 0) {
        throw new Error(`Cannot delete namespaces of lab ${id}: ${problems.join("; ")}`);
      }
    } finally {
      topologyEnded();
    }
  };

  topologyStarted();
  try {
    for (const ns of namespaces) {
      await ip(["netns", "add", ns]);
      liveNamespaces.add(ns);
    }
    await Promise.all(namespaces.map((ns) => sysctl(ns, QUIET_IPV6)));
    const forwarding = { "net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1" };
    await sysctl(nodeA, forwarding);
    await sysctl(nodeB, forwarding);
    for (const [ns, internal] of [[nodeA, NODE_A_INTERNAL], [nodeB, NODE_B_INTERNAL]] as const) {
      await ip(["-n", ns, "link", "set", "lo", "up"]);
      await addAddresses(ns, "lo", internal, { IPv4: 32, IPv6: 128 });
    }
    await ip(["-n", client, "link", "set", "lo", "up"]);
    // Node A: a dead default route, so VIPs are routable but answer only through the proxy.
    await ip(["-n", nodeA, "link", "add", "null0", "type", "veth", "peer", "name", "null1"]);
    await ip(["-n", nodeA, "link", "set", "null0", "arp", "off", "up"]);
    await ip(["-n", nodeA, "route", "add", "default", "dev", "null0"]);
    await ip(["-n", nodeA, "-6", "route", "add", "default", "dev", "null0"]);
    // The client link: node A's primary addresses.
    await linkPeers(nodeA, "ext0", client, "eth0");
    await addAddresses(nodeA, "ext0", NODE_A_PRIMARY, { IPv4: 24, IPv6: 64 });
    await addAddresses(client, "eth0", LAB_CLIENT, { IPv4: 24, IPv6: 64 });
    await ip(["-n", client, "route", "add", "default", "via", NODE_A_PRIMARY.IPv4]);
    await ip(["-n", client, "-6", "route", "add", "default", "via", NODE_A_PRIMARY.IPv6]);
    // The node link: A's secondary addresses, B's primary ones; B routes everything through A.
    await linkPeers(nodeA, "nodeb", nodeB, "nodea");
    await addAddresses(nodeA, "nodeb", NODE_A_SECONDARY, { IPv4: 24, IPv6: 64 });
    await addAddresses(nodeB, "nodea", NODE_B_PRIMARY, { IPv4: 24, IPv6: 64 });
    await ip(["-n", nodeB, "route", "add", "default", "via", NODE_A_SECONDARY.IPv4]);
    await ip(["-n", nodeB, "-6", "route", "add", "default", "via", NODE_A_SECONDARY.IPv6]);
    const viaB = { IPv4: NODE_B_PRIMARY.IPv4, IPv6: NODE_B_PRIMARY.IPv6 };
    await ip(["-n", nodeA, "route", "add", "198.18.3.0/24", "via", viaB.IPv4]);
    await ip(["-n", nodeA, "route", "add", `${NODE_B_INTERNAL.IPv4}/32`, "via", viaB.IPv4]);
    await ip(["-n", nodeA, "-6", "route", "add", "fd00:2:0:b::/64", "via", viaB.IPv6]);
    await ip(["-n", nodeA, "-6", "route", "add", `${NODE_B_INTERNAL.IPv6}/128`, "via", viaB.IPv6]);
    await Promise.all(
      LAB_PODS.map((p) => linkPod(p.node === "A" ? nodeA : nodeB, netnsOf(p.name), p)),
    );
    await Promise.all(LAB_PODS.map((p) => agentFor(podRole(p))));
  } catch (e) {
    await teardown().catch(() => {});
    throw e;
  }

  return {
    id,
    nodeA,
    nodeB,
    client,
    namespaces,
    netnsOf,
    exec: async (role, argv) => {
      const [tool, ...args] = argv;
      if (tool === undefined) throw new Error("Cannot exec in a lab namespace: argv is empty");
      return await runToolResult(tool, args, { netns: netnsOf(role) });
    },
    probeMany: async (from, target, count, probeOptions) => {
      if (tornDown) throw new Error(`Lab ${id} is torn down`);
      const agent = await agentFor(from);
      return await agent.probeMany(target, count, probeOptions);
    },
    teardown,
  };
}
