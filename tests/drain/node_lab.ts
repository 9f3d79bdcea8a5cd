/**
 * A lab of several nodes on one LAN, each with a proxy of its own, plus an external client: what
 * a load balancer in front of a cluster sees. Pods come and go on any node (`addPod`,
 * `removePod`), and pod networks are routed node to node, so a NodePort on one node reaches pods
 * on every other.
 *
 * IP plan (IPv4 only):
 * - the LAN 198.19.0.0/24 is a bridge in the client's namespace; the client is 198.19.0.2, node
 *   `i` is 198.19.0.(10+i) on its `eth0` (its primary address: NodePorts, health checks);
 * - node `i`'s pods: 198.18.(8+i).0/24, pod `j` of the lab (counted over all nodes) gets
 *   198.18.(8+i).(10+j); the node's own 198.18.(8+i).1 (on `lo`) is their gateway; every node
 *   routes the other nodes' pod networks via their LAN address;
 * - the proxies' cluster CIDR is {@link LAB_CLUSTER_CIDR} (every pod network, no node address),
 *   so traffic from the client or from another node is masqueraded where kube-proxy would.
 *
 * Namespaces: `kp<pid>x<rand>-c0` (client and LAN bridge), `-m<i>` (nodes), `-q<j>` (pods).
 * Everything is created inside them (`ip -n`), never in the host's namespace.
 *
 * @module
 */
import { runToolResult, type ToolResult } from "../../src/apply/run_tool.ts";
import { type Agent, startAgent } from "../netns/agent.ts";
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
} from "../netns/topology.ts";

/** The client's address on the LAN. */
export const LAB_CLIENT_IPV4 = "198.19.0.2";
/** Every pod network of the lab (the proxies' `--cluster-cidr`). */
export const LAB_CLUSTER_CIDR = "198.18.0.0/16";
/** The port pod servers listen on. */
export const LAB_POD_PORT = 8080;
/** The most nodes a lab can have. */
export const LAB_MAX_NODES = 100;

/** Node `i`'s LAN address. */
export function labNodeIPv4(i: number): string {
  return `198.19.0.${10 + i}`;
}

/** Node `i`'s pod network. */
export function labPodCidr(i: number): string {
  return `198.18.${8 + i}.0/24`;
}

/** One node of the lab. */
export interface LabNode {
  /** Index. */
  readonly index: number;
  /** Its namespace (the proxy runs here). */
  readonly netns: string;
  /** LAN address. */
  readonly ipv4: string;
}

/** One pod of the lab. */
export interface LabPod {
  /** Name (what its server answers with). */
  readonly name: string;
  /** Node index. */
  readonly node: number;
  /** Address. */
  readonly ipv4: string;
  /** Its namespace. */
  readonly netns: string;
}

/** A live lab. Call {@link NodeLab.teardown} in `finally`. */
export interface NodeLab {
  /** Id shared by the namespace names. */
  readonly id: string;
  /** The nodes. */
  readonly nodes: readonly LabNode[];
  /** The client's namespace. */
  readonly client: string;
  /** Starts a pod (its server listening on {@link LAB_POD_PORT}) on node `node`. */
  addPod(node: number, name: string): Promise<LabPod>;
  /** Stops a pod's server and deletes its namespace. */
  removePod(pod: LabPod): Promise<void>;
  /** Cuts node `node` off the LAN (a node switched off). */
  powerOff(node: number): Promise<void>;
  /** Runs `argv` in a namespace, without a shell. */
  exec(netns: string, argv: readonly string[]): Promise<ToolResult>;
  /** Stops every pod and deletes every namespace; safe to call twice. */
  teardown(): Promise<void>;
}

/** Builds a lab of `nodes` nodes (no pods yet); on failure everything built is removed. */
export async function createNodeLab(nodes: number): Promise<NodeLab> {
  const support = netnsSupport();
  if (!support.ok) throw new Error(`Cannot build a node lab: ${support.reason}`);
  if (nodes < 1 || nodes > LAB_MAX_NODES) {
    throw new Error(`Cannot build a node lab of ${nodes} nodes: 1 to ${LAB_MAX_NODES}`);
  }
  await sweepStaleNamespacesOnce();
  const id = newTopologyId();
  const client = `${id}-c0`;
  const labNodes: LabNode[] = Array.from({ length: nodes }, (_, i) => ({
    index: i,
    netns: `${id}-m${i}`,
    ipv4: labNodeIPv4(i),
  }));
  const namespaces = [client, ...labNodes.map((n) => n.netns)];
  const pods = new Map<string, { pod: LabPod; agent: Agent }>();
  let podCount = 0;
  let tornDown = false;

  const deleteNs = async (ns: string) => {
    const r = await runToolResult("ip", ["netns", "del", ns]);
    liveNamespaces.delete(ns);
    if (r.code !== 0 && !/No such file/.test(r.stderr)) throw new Error(`${ns}: ${r.stderr}`);
  };

  const teardown = async () => {
    if (tornDown) return;
    tornDown = true;
    try {
      await Promise.allSettled([...pods.values()].map((p) => p.agent.stop()));
      const problems: string[] = [];
      for (const ns of [...[...pods.values()].map((p) => p.pod.netns), ...namespaces].reverse()) {
        await deleteNs(ns).catch((e) => problems.push(String(e)));
      }
      pods.clear();
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
    await ip(["-n", client, "link", "set", "lo", "up"]);
    await ip(["-n", client, "link", "add", "br0", "type", "bridge"]);
    await ip(["-n", client, "addr", "add", `${LAB_CLIENT_IPV4}/24`, "dev", "br0"]);
    await ip(["-n", client, "link", "set", "br0", "up"]);
    for (const n of labNodes) {
      await sysctl(n.netns, {
        "net.ipv4.ip_forward": "1",
        "net.ipv4.conf.all.rp_filter": "0",
        "net.ipv4.conf.default.rp_filter": "0",
      });
      await ip(["-n", n.netns, "link", "set", "lo", "up"]);
      await ip(["-n", n.netns, "addr", "add", `198.18.${8 + n.index}.1/32`, "dev", "lo"]);
      await linkPeers(n.netns, "eth0", client, `m${n.index}`);
      await ip(["-n", client, "link", "set", `m${n.index}`, "master", "br0"]);
      await ip(["-n", n.netns, "addr", "add", `${n.ipv4}/24`, "dev", "eth0"]);
      for (const other of labNodes) {
        if (other.index === n.index) continue;
        await ip(["-n", n.netns, "route", "add", labPodCidr(other.index), "via", other.ipv4]);
      }
    }
  } catch (e) {
    await teardown().catch(() => {});
    throw e;
  }

  const addPod = async (node: number, name: string): Promise<LabPod> => {
    const n = labNodes[node];
    if (n === undefined) throw new Error(`Lab ${id} has no node ${node}`);
    const j = podCount++;
    if (j > 240) throw new Error(`Lab ${id} cannot hold more than 240 pods`);
    const pod: LabPod = {
      name,
      node,
      ipv4: `198.18.${8 + node}.${10 + j}`,
      netns: `${id}-q${j}`,
    };
    const gateway = `198.18.${8 + node}.1`;
    await ip(["netns", "add", pod.netns]);
    liveNamespaces.add(pod.netns);
    try {
      await sysctl(pod.netns, QUIET_IPV6);
      await linkPeers(n.netns, `q${j}`, pod.netns, "eth0");
      await ip(["-n", pod.netns, "link", "set", "lo", "up"]);
      await ip(["-n", pod.netns, "addr", "add", `${pod.ipv4}/32`, "dev", "eth0"]);
      await ip(["-n", pod.netns, "route", "add", gateway, "dev", "eth0", "scope", "link"]);
      await ip(["-n", pod.netns, "route", "add", "default", "via", gateway, "dev", "eth0"]);
      await ip(["-n", n.netns, "route", "add", `${pod.ipv4}/32`, "dev", `q${j}`, "src", gateway]);
      const agent = await startAgent(pod.netns, { name, tcpPorts: [LAB_POD_PORT] });
      pods.set(pod.netns, { pod, agent });
    } catch (e) {
      await deleteNs(pod.netns).catch(() => {});
      throw e;
    }
    return pod;
  };

  return {
    id,
    nodes: labNodes,
    client,
    addPod,
    removePod: async (pod) => {
      const entry = pods.get(pod.netns);
      if (entry === undefined) return;
      pods.delete(pod.netns);
      await entry.agent.stop();
      await deleteNs(pod.netns);
    },
    powerOff: async (node) => {
      const n = labNodes[node];
      if (n === undefined) throw new Error(`Lab ${id} has no node ${node}`);
      await ip(["-n", client, "link", "set", `m${node}`, "down"]);
    },
    exec: async (netns, argv) => {
      const [tool, ...args] = argv;
      if (tool === undefined) throw new Error("Cannot exec in a lab namespace: argv is empty");
      return await runToolResult(tool, args, { netns });
    },
    teardown,
  };
}
