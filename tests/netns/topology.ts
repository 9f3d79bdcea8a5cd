/**
 * A throwaway node/pod/client topology in network namespaces, for packet-level tests.
 *
 * IP plan (fixed, so scenario tables can name addresses; namespace names are random):
 * - node: internal 198.18.0.1 / fd00::1 (on its loopback, the pods' gateway); a default route
 *   into a dead link (`null0`), so VIPs are routable and only kproxy's DNAT makes them answer.
 * - pods: pod i = 198.18.1.(10+i) / fd00:1::(10+i), each in its own namespace behind a veth
 *   (`pod<i>` on the node, `eth0` in the pod), a /32 and /128 host route on the node, default
 *   route via the node — like a point-to-point CNI.
 * - client: 198.19.0.2/24, fd00:19::2/64 behind `ext0`; the node's side, 198.19.0.1 /
 *   fd00:19::1, is the node's primary IP (NodePorts).
 * - second client (optional): 198.19.1.2/24, fd00:19:1::2/64 behind `ext1` (node 198.19.1.1).
 *
 * Everything is created inside the namespaces (`ip -n`), never in the host's namespace. Tools run
 * through Deno.Command without a shell.
 *
 * @module
 */
import { runToolResult, type ToolResult } from "../../src/apply/run_tool.ts";
import { type Agent, startAgent } from "./agent.ts";
import {
  type Distribution,
  distribution,
  type ProbeOptions,
  type ProbeResult,
  type ProbeTarget,
} from "./probe.ts";
import { netns } from "../requirements.ts";

/** The node's loopback address: pods' gateway, source of node-originated and masqueraded traffic. */
export const NODE_INTERNAL_IPV4 = "198.18.0.1";
/** The node's IPv6 loopback address. */
export const NODE_INTERNAL_IPV6 = "fd00::1";
/** The node's address on the client link: its primary IP (NodePorts, Node InternalIP). */
export const NODE_PRIMARY_IPV4 = "198.19.0.1";
/** The node's IPv6 address on the client link (its IPv6 primary IP). */
export const NODE_PRIMARY_IPV6 = "fd00:19::1";
/** The node's address on the second client's link. */
export const NODE_CLIENT2_IPV4 = "198.19.1.1";
/** The node's IPv6 address on the second client's link. */
export const NODE_CLIENT2_IPV6 = "fd00:19:1::1";
/** The external client's address. */
export const CLIENT_IPV4 = "198.19.0.2";
/** The external client's IPv6 address. */
export const CLIENT_IPV6 = "fd00:19::2";
/** The second external client's address. */
export const CLIENT2_IPV4 = "198.19.1.2";
/** The second external client's IPv6 address. */
export const CLIENT2_IPV6 = "fd00:19:1::2";
/** The pod CIDRs (kproxy's `clusterCIDRs` in scenarios). */
export const POD_CIDRS: readonly string[] = Object.freeze(["198.18.1.0/24", "fd00:1::/64"]);
/** TCP ports every pod server listens on, by default. */
export const DEFAULT_POD_TCP_PORTS: readonly number[] = Object.freeze([8080, 8081]);
/** UDP ports every pod server listens on, by default. */
export const DEFAULT_POD_UDP_PORTS: readonly number[] = Object.freeze([8080, 8081]);

/** IPv4 address of pod `index`. */
export function podIPv4(index: number): string {
  return `198.18.1.${10 + index}`;
}

/** IPv6 address of pod `index`. */
export function podIPv6(index: number): string {
  return `fd00:1::${10 + index}`;
}

/** Every address on the node (for kproxy's `hostAddresses`), given the topology's shape. */
export function nodeAddresses(secondClient: boolean): string[] {
  const out = [NODE_INTERNAL_IPV4, NODE_PRIMARY_IPV4, NODE_INTERNAL_IPV6, NODE_PRIMARY_IPV6];
  if (secondClient) out.push(NODE_CLIENT2_IPV4, NODE_CLIENT2_IPV6);
  return out;
}

/** What to build. */
export interface TopologySpec {
  /** Number of pods (named `pod0`...), or their names. Default 3. */
  readonly pods?: number | readonly string[];
  /** Add the second external client (`client2`, 198.19.1.2). */
  readonly secondClient?: boolean;
  /** Set `net.ipv4.conf.all.route_localnet=1` on the node (localhost NodePorts). */
  readonly routeLocalnet?: boolean;
  /** TCP ports each pod server listens on; default {@link DEFAULT_POD_TCP_PORTS}. */
  readonly podTcpPorts?: readonly number[];
  /** UDP ports each pod server listens on; default {@link DEFAULT_POD_UDP_PORTS}. */
  readonly podUdpPorts?: readonly number[];
  /** Start the pod servers (default true). */
  readonly startServers?: boolean;
  /**
   * Put the pods' node-side veths into a bridge of this name (the node's pod gateway, as a
   * bridge CNI does) instead of routing to each veth: pod traffic then arrives on the bridge.
   */
  readonly podBridge?: string;
}

/** One pod of a topology. */
export interface PodInfo {
  /** Pod name; also what its server answers with. */
  readonly name: string;
  /** Its network namespace. */
  readonly netns: string;
  /** IPv4 address. */
  readonly ipv4: string;
  /** IPv6 address. */
  readonly ipv6: string;
  /** The node-side veth name (in the node namespace). */
  readonly nodeLink: string;
}

/** One external client of a topology. */
export interface ClientInfo {
  /** `client` or `client2`. */
  readonly name: string;
  /** Its network namespace. */
  readonly netns: string;
  /** IPv4 address. */
  readonly ipv4: string;
  /** IPv6 address. */
  readonly ipv6: string;
  /** The node's IPv4 address on this link. */
  readonly nodeIPv4: string;
  /** The node's IPv6 address on this link. */
  readonly nodeIPv6: string;
}

/** The node of a topology. */
export interface NodeInfo {
  /** The node namespace, where kproxy's rules go. */
  readonly netns: string;
  /** Loopback address (pods' gateway; source of node and masqueraded traffic). */
  readonly internalIPv4: string;
  /** IPv6 loopback address. */
  readonly internalIPv6: string;
  /** Primary IP: the node's address on the client link. */
  readonly primaryIPv4: string;
  /** IPv6 primary IP. */
  readonly primaryIPv6: string;
  /** Every address on the node. */
  readonly addresses: readonly string[];
}

/** A live topology. Call {@link Topology.teardown} (in `finally`) when done. */
export interface Topology {
  /** Id shared by the namespace names: `kp<pid base 36>x<2 random>`. */
  readonly id: string;
  /** The node namespace, for appliers' `{ netns }` option. */
  readonly nodeNetns: string;
  /** The node. */
  readonly node: NodeInfo;
  /** The pods, in order. */
  readonly pods: readonly PodInfo[];
  /** The external client. */
  readonly client: ClientInfo;
  /** The second external client, when asked for. */
  readonly client2: ClientInfo | null;
  /** Every namespace of this topology. */
  readonly namespaces: readonly string[];
  /** The namespace of a role (`node`, `client`, `client2`, a pod name) or a namespace name. */
  netnsOf(ns: string): string;
  /** Runs `argv` in a namespace (role or name), without a shell; never throws on exit codes. */
  exec(ns: string, argv: readonly string[]): Promise<ToolResult>;
  /** One probe from a namespace (role or name). */
  probe(from: string, target: ProbeTarget, options?: ProbeOptions): Promise<ProbeResult>;
  /** `count` probes from a namespace, results in order. */
  probeMany(
    from: string,
    target: ProbeTarget,
    count: number,
    options?: ProbeOptions,
  ): Promise<ProbeResult[]>;
  /** `count` probes summarised: answers per pod, refusals, timeouts, client IPs. */
  distribution(
    from: string,
    target: ProbeTarget,
    count: number,
    options?: ProbeOptions,
  ): Promise<Distribution>;
  /** Stops every agent and deletes every namespace; safe to call twice. */
  teardown(): Promise<void>;
}

/** Whether this process can build topologies, and why not. */
export interface NetnsSupport {
  /** True when running as root with a working `ip netns`. */
  readonly ok: boolean;
  /** Why not, when not. */
  readonly reason: string;
}

/** Whether topologies can be built here (tests gate on {@link netns} from tests/requirements.ts). */
export function netnsSupport(): NetnsSupport {
  const reason = netns.missing();
  return reason === null ? { ok: true, reason: "" } : { ok: false, reason };
}

/** Namespaces of live topologies, deleted on unload or a signal if a run stops early. */
export const liveNamespaces: Set<string> = new Set<string>();
let unloadHooked = false;
let liveTopologies = 0;

function deleteLiveNamespacesSync(): void {
  for (const ns of liveNamespaces) {
    try {
      // Kill whatever still runs in the namespace, then delete it.
      const pids = new Deno.Command("ip", { args: ["netns", "pids", ns], stderr: "null" })
        .outputSync();
      for (const pid of new TextDecoder().decode(pids.stdout).split(/\s+/)) {
        if (/^\d+$/.test(pid)) {
          try {
            Deno.kill(Number(pid), "SIGKILL");
          } catch { /* gone */ }
        }
      }
      new Deno.Command("ip", { args: ["netns", "del", ns], stderr: "null" }).outputSync();
    } catch { /* best effort */ }
  }
  liveNamespaces.clear();
}

const SIGNAL_HANDLERS: readonly [Deno.Signal, () => void][] = [
  ["SIGINT", () => {
    deleteLiveNamespacesSync();
    Deno.exit(130);
  }],
  ["SIGTERM", () => {
    deleteLiveNamespacesSync();
    Deno.exit(143);
  }],
];

/**
 * Registers cleanup hooks while at least one topology lives; the signal listeners go away with
 * the last topology, so test sanitizers see none left over. Other labs built from this module's
 * helpers (two_node_lab.ts) call it too.
 */
export function topologyStarted(): void {
  if (!unloadHooked) {
    unloadHooked = true;
    globalThis.addEventListener("unload", deleteLiveNamespacesSync);
  }
  if (liveTopologies++ === 0) {
    for (const [signal, handler] of SIGNAL_HANDLERS) Deno.addSignalListener(signal, handler);
  }
}

/** The counterpart of {@link topologyStarted}: drops the signal listeners with the last lab. */
export function topologyEnded(): void {
  if (--liveTopologies === 0) {
    for (const [signal, handler] of SIGNAL_HANDLERS) Deno.removeSignalListener(signal, handler);
  }
}

/** Runs `ip args` (host side, `-n NS` for namespaces); throws naming the command on failure. */
export async function ip(args: readonly string[]): Promise<void> {
  const result = await runToolResult("ip", args);
  if (result.code !== 0) {
    throw new Error(`Cannot build topology: ip ${args.join(" ")}: ${result.stderr.trim()}`);
  }
}

/** A veth pair from `link` in `ns` to `peerLink` in `peerNs`, both ends up. */
export async function linkPeers(
  ns: string,
  link: string,
  peerNs: string,
  peerLink: string,
): Promise<void> {
  await ip([
    "-n",
    ns,
    "link",
    "add",
    link,
    "type",
    "veth",
    "peer",
    "name",
    peerLink,
    "netns",
    peerNs,
  ]);
  await ip(["-n", ns, "link", "set", link, "up"]);
  await ip(["-n", peerNs, "link", "set", peerLink, "up"]);
}

/** Sets sysctls inside `netns`; throws naming the namespace on failure. */
export async function sysctl(
  netns: string,
  settings: Readonly<Record<string, string>>,
): Promise<void> {
  const args = ["-q", "-w", ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)];
  const result = await runToolResult("sysctl", args, { netns });
  if (result.code !== 0) {
    throw new Error(`Cannot set sysctls in ${netns}: ${result.stderr.trim()}`);
  }
}

/**
 * Namespace names: `kp<owner pid, base 36>x<2 random>-<role>` (role `node`, `p<i>`, `c0`, `c1`;
 * the two-node lab's `na`, `nb`, `a<i>`, `b<i>`; the node lab's `m<i>` nodes and `q<i>` pods),
 * at most 15 characters. The owner pid lets a
 * later run delete what a killed run left behind.
 */
const NAMESPACE_NAME =
  /^kp([0-9a-z]{1,5})x[0-9a-z]{2}-(node|p\d{1,3}|c[01]|n[ab]|[ab]\d{1,2}|m\d{1,2}|q\d{1,3})$/;
const usedIds = new Set<string>();

/** A fresh id for a lab's namespace names (`kp<pid base 36>x<2 random>`). */
export function newTopologyId(): string {
  for (;;) {
    const random = Math.floor(Math.random() * 36 * 36).toString(36).padStart(2, "0");
    const id = `kp${Deno.pid.toString(36)}x${random}`;
    if (!usedIds.has(id)) {
      usedIds.add(id);
      return id;
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Deletes namespaces that harness runs left behind when they were killed (their owner process is
 * gone); never touches a live run's namespaces or anyone else's. Returns the deleted names.
 */
export async function sweepStaleNamespaces(): Promise<string[]> {
  const list = await runToolResult("ip", ["netns", "list"]);
  const stale: string[] = [];
  for (const line of list.stdout.split("\n")) {
    const name = line.split(" ")[0] ?? "";
    const m = NAMESPACE_NAME.exec(name);
    if (m === null) continue;
    const pid = parseInt(m[1] ?? "", 36);
    if (pid !== Deno.pid && !processAlive(pid)) stale.push(name);
  }
  for (const ns of stale) {
    const pids = await runToolResult("ip", ["netns", "pids", ns]);
    for (const pid of pids.stdout.split(/\s+/)) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        Deno.kill(Number(pid), "SIGKILL");
      } catch { /* gone */ }
    }
    await runToolResult("ip", ["netns", "del", ns]);
  }
  return stale;
}

let swept = false;

/** Deletes stale namespaces of killed runs, once per process (see {@link sweepStaleNamespaces}). */
export async function sweepStaleNamespacesOnce(): Promise<void> {
  if (swept) return;
  swept = true;
  await sweepStaleNamespaces();
}

/** Sysctls every lab namespace gets: no DAD, no router advertisements, no reverse-path filter. */
export const QUIET_IPV6: Readonly<Record<string, string>> = {
  "net.ipv6.conf.all.accept_dad": "0",
  "net.ipv6.conf.default.accept_dad": "0",
  "net.ipv6.conf.all.accept_ra": "0",
  "net.ipv6.conf.default.accept_ra": "0",
  "net.ipv4.conf.all.rp_filter": "0",
  "net.ipv4.conf.default.rp_filter": "0",
};

async function linkClient(
  node: string,
  info: ClientInfo,
  link: string,
  prefix4: number,
  prefix6: number,
): Promise<void> {
  await ip([
    "-n",
    node,
    "link",
    "add",
    link,
    "type",
    "veth",
    "peer",
    "name",
    "eth0",
    "netns",
    info.netns,
  ]);
  await ip(["-n", node, "addr", "add", `${info.nodeIPv4}/${prefix4}`, "dev", link]);
  await ip(["-n", node, "-6", "addr", "add", `${info.nodeIPv6}/${prefix6}`, "dev", link, "nodad"]);
  await ip(["-n", node, "link", "set", link, "up"]);
  await ip(["-n", info.netns, "link", "set", "lo", "up"]);
  await ip(["-n", info.netns, "addr", "add", `${info.ipv4}/${prefix4}`, "dev", "eth0"]);
  await ip([
    "-n",
    info.netns,
    "-6",
    "addr",
    "add",
    `${info.ipv6}/${prefix6}`,
    "dev",
    "eth0",
    "nodad",
  ]);
  await ip(["-n", info.netns, "link", "set", "eth0", "up"]);
  await ip(["-n", info.netns, "route", "add", "default", "via", info.nodeIPv4]);
  await ip(["-n", info.netns, "-6", "route", "add", "default", "via", info.nodeIPv6]);
}

/**
 * Moves the pods behind one bridge: their veths become its ports, the node's IPv6 gateway
 * address (fe80::1) and the pods' host routes go to the bridge, so the node sees pod traffic
 * arrive on the bridge (`iifname`), as with a bridge CNI.
 */
async function bridgePods(node: string, bridge: string, pods: readonly PodInfo[]): Promise<void> {
  await ip(["-n", node, "link", "add", bridge, "type", "bridge"]);
  await ip(["-n", node, "-6", "addr", "add", "fe80::1/64", "dev", bridge, "nodad"]);
  await ip(["-n", node, "link", "set", bridge, "up"]);
  for (const pod of pods) {
    await ip(["-n", node, "-6", "addr", "del", "fe80::1/64", "dev", pod.nodeLink]);
    await ip(["-n", node, "link", "set", pod.nodeLink, "master", bridge]);
    await ip([
      "-n",
      node,
      "route",
      "replace",
      `${pod.ipv4}/32`,
      "dev",
      bridge,
      "src",
      NODE_INTERNAL_IPV4,
    ]);
    await ip([
      "-n",
      node,
      "-6",
      "route",
      "replace",
      `${pod.ipv6}/128`,
      "dev",
      bridge,
      "src",
      NODE_INTERNAL_IPV6,
    ]);
  }
}

async function linkPod(node: string, pod: PodInfo): Promise<void> {
  const link = pod.nodeLink;
  await ip([
    "-n",
    node,
    "link",
    "add",
    link,
    "type",
    "veth",
    "peer",
    "name",
    "eth0",
    "netns",
    pod.netns,
  ]);
  await ip(["-n", node, "-6", "addr", "add", "fe80::1/64", "dev", link, "nodad"]);
  await ip(["-n", node, "link", "set", link, "up"]);
  await ip(["-n", pod.netns, "link", "set", "lo", "up"]);
  await ip(["-n", pod.netns, "addr", "add", `${pod.ipv4}/32`, "dev", "eth0"]);
  await ip(["-n", pod.netns, "-6", "addr", "add", `${pod.ipv6}/128`, "dev", "eth0", "nodad"]);
  await ip(["-n", pod.netns, "link", "set", "eth0", "up"]);
  await ip(["-n", pod.netns, "route", "add", NODE_INTERNAL_IPV4, "dev", "eth0", "scope", "link"]);
  await ip(["-n", pod.netns, "route", "add", "default", "via", NODE_INTERNAL_IPV4, "dev", "eth0"]);
  await ip(["-n", pod.netns, "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0"]);
  await ip(["-n", node, "route", "add", `${pod.ipv4}/32`, "dev", link, "src", NODE_INTERNAL_IPV4]);
  await ip([
    "-n",
    node,
    "-6",
    "route",
    "add",
    `${pod.ipv6}/128`,
    "dev",
    link,
    "src",
    NODE_INTERNAL_IPV6,
  ]);
}

/**
 * Builds a topology: namespaces, links, addresses, routes, sysctls, and (by default) one pod
 * server per pod, listening before this resolves. On any failure everything built is removed.
 */
export async function createTopology(spec: TopologySpec = {}): Promise<Topology> {
  const support = netnsSupport();
  if (!support.ok) throw new Error(`Cannot build topology: ${support.reason}`);
  await sweepStaleNamespacesOnce();
  const id = newTopologyId();
  const podNames = typeof spec.pods === "object"
    ? [...spec.pods]
    : Array.from({ length: spec.pods ?? 3 }, (_, i) => `pod${i}`);
  if (podNames.length > 200) throw new Error("Cannot build topology: pods must be at most 200");
  const nodeNetns = `${id}-node`;
  const pods: PodInfo[] = podNames.map((name, i) => ({
    name,
    netns: `${id}-p${i}`,
    ipv4: podIPv4(i),
    ipv6: podIPv6(i),
    nodeLink: `pod${i}`,
  }));
  const client: ClientInfo = {
    name: "client",
    netns: `${id}-c0`,
    ipv4: CLIENT_IPV4,
    ipv6: CLIENT_IPV6,
    nodeIPv4: NODE_PRIMARY_IPV4,
    nodeIPv6: NODE_PRIMARY_IPV6,
  };
  const client2: ClientInfo | null = spec.secondClient
    ? {
      name: "client2",
      netns: `${id}-c1`,
      ipv4: CLIENT2_IPV4,
      ipv6: CLIENT2_IPV6,
      nodeIPv4: NODE_CLIENT2_IPV4,
      nodeIPv6: NODE_CLIENT2_IPV6,
    }
    : null;
  const namespaces = [
    nodeNetns,
    ...pods.map((p) => p.netns),
    client.netns,
    ...(client2 ? [client2.netns] : []),
  ];
  const node: NodeInfo = {
    netns: nodeNetns,
    internalIPv4: NODE_INTERNAL_IPV4,
    internalIPv6: NODE_INTERNAL_IPV6,
    primaryIPv4: NODE_PRIMARY_IPV4,
    primaryIPv6: NODE_PRIMARY_IPV6,
    addresses: nodeAddresses(client2 !== null),
  };
  const roles = new Map<string, string>([["node", nodeNetns], ["client", client.netns]]);
  if (client2) roles.set("client2", client2.netns);
  for (const p of pods) roles.set(p.name, p.netns);
  const agents = new Map<string, Promise<Agent>>();
  let tornDown = false;

  const netnsOf = (ns: string): string => {
    const byRole = roles.get(ns);
    if (byRole !== undefined) return byRole;
    if (namespaces.includes(ns)) return ns;
    throw new Error(`Topology ${id} has no namespace ${ns}`);
  };

  const teardown = async () => {
    if (tornDown) return;
    tornDown = true;
    try {
      await stopAndDelete();
    } finally {
      topologyEnded();
    }
  };

  const stopAndDelete = async () => {
    const started = await Promise.allSettled(agents.values());
    await Promise.allSettled(
      started.map(async (s) => {
        if (s.status !== "fulfilled") return;
        await s.value.stop();
      }),
    );
    const problems: string[] = [];
    // Pods and clients first: their veth ends go with them; the node last.
    for (const ns of [...namespaces].reverse()) {
      const r = await runToolResult("ip", ["netns", "del", ns]);
      if (r.code !== 0 && !/No such file/.test(r.stderr)) {
        problems.push(`${ns}: ${r.stderr.trim()}`);
      }
      liveNamespaces.delete(ns);
    }
    if (problems.length > 0) {
      throw new Error(`Cannot delete namespaces of topology ${id}: ${problems.join("; ")}`);
    }
  };

  const agentFor = (netns: string, name: string, serve: boolean): Promise<Agent> => {
    let agent = agents.get(netns);
    if (agent === undefined) {
      agent = startAgent(netns, {
        name,
        ...(serve
          ? {
            tcpPorts: spec.podTcpPorts ?? DEFAULT_POD_TCP_PORTS,
            udpPorts: spec.podUdpPorts ?? DEFAULT_POD_UDP_PORTS,
          }
          : {}),
      });
      agents.set(netns, agent);
    }
    return agent;
  };

  const probeMany = async (
    from: string,
    target: ProbeTarget,
    count: number,
    options: ProbeOptions = {},
  ): Promise<ProbeResult[]> => {
    if (tornDown) throw new Error(`Topology ${id} is torn down`);
    const netns = netnsOf(from);
    const role = [...roles.entries()].find(([, n]) => n === netns)?.[0] ?? from;
    const isPod = pods.some((p) => p.netns === netns);
    const agent = await agentFor(netns, role, isPod && spec.startServers !== false);
    return await agent.probeMany(target, count, options);
  };

  topologyStarted();
  try {
    for (const ns of namespaces) {
      await ip(["netns", "add", ns]);
      liveNamespaces.add(ns);
    }
    await Promise.all(namespaces.map((ns) => sysctl(ns, QUIET_IPV6)));
    await sysctl(nodeNetns, {
      "net.ipv4.ip_forward": "1",
      "net.ipv6.conf.all.forwarding": "1",
      ...(spec.routeLocalnet ? { "net.ipv4.conf.all.route_localnet": "1" } : {}),
    });
    await ip(["-n", nodeNetns, "link", "set", "lo", "up"]);
    await ip(["-n", nodeNetns, "addr", "add", `${NODE_INTERNAL_IPV4}/32`, "dev", "lo"]);
    await ip([
      "-n",
      nodeNetns,
      "-6",
      "addr",
      "add",
      `${NODE_INTERNAL_IPV6}/128`,
      "dev",
      "lo",
      "nodad",
    ]);
    // A dead default route: VIPs are routable (so OUTPUT DNAT sees them), but go nowhere.
    await ip(["-n", nodeNetns, "link", "add", "null0", "type", "veth", "peer", "name", "null1"]);
    await ip(["-n", nodeNetns, "link", "set", "null0", "arp", "off", "up"]);
    await ip(["-n", nodeNetns, "route", "add", "default", "dev", "null0"]);
    await ip(["-n", nodeNetns, "-6", "route", "add", "default", "dev", "null0"]);
    await Promise.all(pods.map((p) => linkPod(nodeNetns, p)));
    if (spec.podBridge !== undefined) await bridgePods(nodeNetns, spec.podBridge, pods);
    await linkClient(nodeNetns, client, "ext0", 24, 64);
    if (client2) await linkClient(nodeNetns, client2, "ext1", 24, 64);
    if (spec.startServers !== false) {
      await Promise.all(pods.map((p) => agentFor(p.netns, p.name, true)));
    }
  } catch (e) {
    await teardown().catch(() => {});
    throw e;
  }

  return {
    id,
    nodeNetns,
    node,
    pods,
    client,
    client2,
    namespaces,
    netnsOf,
    exec: async (ns, argv) => {
      const [tool, ...args] = argv;
      if (tool === undefined) throw new Error("Cannot exec in a namespace: argv is empty");
      return await runToolResult(tool, args, { netns: netnsOf(ns) });
    },
    probe: async (from, target, options) => {
      const [result] = await probeMany(from, target, 1, options);
      if (result === undefined) throw new Error(`Probe from ${from} returned nothing`);
      return result;
    },
    probeMany,
    distribution: async (from, target, count, options) =>
      distribution(await probeMany(from, target, count, options)),
    teardown,
  };
}

/** Builds a topology, runs `fn` with it, and always tears it down. */
export async function withTopology<T>(
  spec: TopologySpec,
  fn: (topology: Topology) => Promise<T>,
): Promise<T> {
  const topology = await createTopology(spec);
  try {
    return await fn(topology);
  } finally {
    await topology.teardown();
  }
}
