/**
 * The fleet lab: one etcd + kube-apiserver (tests/fixtures/apiserver.ts) holding a synthetic
 * cluster, and N node network namespaces each running one proxy — kproxy or upstream
 * kube-proxy, nftables mode — that reaches the API server through the fixture's netns bridge.
 * Each node has its own client-certificate user (group {@link FLEET_GROUP}, bound to
 * `system:node-proxier`), so the API server's audit log says which node made which request, and
 * its own bridge with a {@link TrafficMeter}, so the bytes each node pulled are counted on the
 * wire (TLS records) in the same way for upstream's protobuf and kproxy's JSON.
 *
 * Most nodes are bare namespaces (loopback, plus an `eth0` holding the node's address and the
 * default route into a dead link, so service traffic has somewhere to go). A few "probe nodes" are full
 * single-node topologies from the packet harness (tests/netns: node, two pods, a client), whose
 * pods serve the lab's probe Service, so probes can tell whether a node's rules still carry
 * traffic while the API server is away.
 *
 * IP plan (inside the synthetic cluster's, bench/synthetic_cluster.ts): bare node `i` holds
 * 198.18.0.(10+i)/32 on `eth0`; probe nodes use the topology's plan (node 198.19.0.1, pods
 * 198.18.1.10 and .11, client 198.19.0.2); the probe Service's ClusterIP is the fresh service
 * address 198.19.251.255 and its endpoints are the topology's two pods; markers (Services without
 * endpoints, written to see who caught up) take fresh ClusterIPs from 198.19.250.0 upwards.
 *
 * @module
 */
import {
  type NetnsBridge,
  startTestCluster,
  type TestCluster,
} from "../../tests/fixtures/apiserver.ts";
import {
  createTopology,
  NODE_PRIMARY_IPV4,
  podIPv4,
  type Topology,
} from "../../tests/netns/mod.ts";
import { runToolResult } from "../../src/apply/run_tool.ts";
import {
  type ApiClients,
  apiClients,
  createCluster,
  createService,
  createSlice,
  type CreationStats,
  forEachConcurrent,
} from "../api_cluster.ts";
import { atExit, type BenchNetns, createBenchNetns } from "../netns.ts";
import { type ProxyImpl, type ProxyProcess, startProxy } from "../proxy_process.ts";
import {
  addedService,
  BENCH_NODE_NAME,
  BENCH_SERVICE_RANGE,
  freshServiceIPv4,
  type RawObject,
  type SyntheticCluster,
  syntheticCluster,
} from "../synthetic_cluster.ts";
import { auditApiServerArgs, AuditLogReader, FLEET_GROUP } from "./audit.ts";
import { ProcessSampler } from "./process_sampler.ts";
import { TrafficMeter } from "./traffic_meter.ts";

/** The namespace of the lab's own Services (probe and markers). */
export const LAB_NAMESPACE = "bench-00";
/** Name of the Service the probe nodes' pods serve. */
export const PROBE_SERVICE = "fleet-probe";
/** ClusterIP of the probe Service. */
export const PROBE_SERVICE_IP = "198.19.251.255";
/** Its port (the pods answer on 8080). */
export const PROBE_SERVICE_PORT = 80;

/** Name of fleet node `i` (node-a, node-001, ...: the synthetic cluster's endpoint nodes). */
export function fleetNodeName(i: number): string {
  return i === 0 ? BENCH_NODE_NAME : `node-${String(i).padStart(3, "0")}`;
}

/** Address of bare fleet node `i`. */
export function fleetNodeIPv4(i: number): string {
  if (i > 240) throw new Error(`Cannot address fleet node ${i}: at most 241 nodes`);
  return `198.18.0.${10 + i}`;
}

/** The API server, its synthetic cluster and the instruments around it. */
export interface FleetCluster {
  /** etcd + kube-apiserver. */
  readonly cluster: TestCluster;
  /** What it holds. */
  readonly synthetic: SyntheticCluster;
  /** Clients writing as admin. */
  readonly clients: ApiClients;
  /** How creating the objects went. */
  readonly creation: CreationStats;
  /** The audit log, tallied per node user. */
  readonly audit: AuditLogReader;
  /** The API server's CPU and memory. */
  readonly apiServer: ProcessSampler;
  /** Next fresh marker index. */
  nextMarker: number;
  /** The marker written before any proxy starts: rejected once a node's first sync is live. */
  readonly ready: Marker;
  /** Stops everything. */
  stop(): Promise<void>;
}

/** Options of {@link startFleetCluster}. */
export interface FleetClusterOptions {
  /** Services of the synthetic cluster. */
  readonly services: number;
  /** Nodes the cluster will hold (Node objects; endpoints spread over at least 50). */
  readonly nodes: number;
  /** Progress lines. */
  readonly log: (line: string) => void;
}

/** Starts the API server with auditing and fills it. */
export async function startFleetCluster(options: FleetClusterOptions): Promise<FleetCluster> {
  const dir = await Deno.makeTempDir({ prefix: "kproxy-fleet-" });
  const audit = await auditApiServerArgs(dir);
  const cluster = await startTestCluster({
    serviceClusterIpRange: BENCH_SERVICE_RANGE,
    extraApiServerArgs: audit.args,
    // A loaded machine (a fleet reconnecting, others' work) can take minutes to start it.
    readyTimeoutMs: 300_000,
  });
  const cleanup = atExit(() => {
    for (const pid of [cluster.apiServerPid(), cluster.etcdPid()]) {
      if (pid !== null) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* gone */ }
      }
    }
  });
  try {
    const clients = apiClients(cluster.kubeconfigPath);
    const synthetic = syntheticCluster({
      services: options.services,
      nodes: Math.max(50, options.nodes),
    });
    options.log(
      `creating ${synthetic.services.length} services and ${synthetic.slices.length} slices`,
    );
    const creation = await createCluster(clients, synthetic, { log: options.log });
    await forEachConcurrent(
      Array.from({ length: options.nodes }, (_, i) => i).filter((i) =>
        fleetNodeName(i) !== synthetic.node.metadata.name
      ),
      16,
      async (i) => {
        await clients.core.createNode({ body: fleetNode(synthetic.node, i) as never });
      },
    );
    await patchNodeAddress(cluster, fleetNodeName(0), fleetNodeIPv4(0));
    await bindFleetGroup(cluster);
    await createProbeService(clients);
    const apiServer = new ProcessSampler(() => cluster.apiServerPid());
    await apiServer.start();
    const ready = addedService(0, 0, 0);
    await createService(clients, ready.service);
    return {
      cluster,
      synthetic,
      clients,
      creation,
      audit: new AuditLogReader(audit.logPath),
      apiServer,
      nextMarker: 1,
      ready: {
        name: `${ready.namespace}/${ready.service.metadata.name}`,
        ip: freshServiceIPv4(0),
        port: 80,
      },
      stop: async () => {
        apiServer.stop();
        await cluster.stop();
        await Deno.remove(dir, { recursive: true }).catch(() => undefined);
        cleanup();
      },
    };
  } catch (e) {
    await cluster.stop();
    cleanup();
    throw e;
  }
}

function fleetNode(template: RawObject, i: number): RawObject {
  const name = fleetNodeName(i);
  const metadata = template.metadata as { labels?: Record<string, string> };
  return {
    ...template,
    metadata: {
      name,
      labels: {
        ...(metadata.labels ?? {}),
        "kubernetes.io/hostname": name,
        "topology.kubernetes.io/zone": ["zone-a", "zone-b", "zone-c"][i % 3] as string,
      },
    },
    status: {
      addresses: [{ type: "InternalIP", address: fleetNodeIPv4(i) }, {
        type: "Hostname",
        address: name,
      }],
    },
  };
}

async function bindFleetGroup(cluster: TestCluster): Promise<void> {
  const res = await cluster.request("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "kproxy-fleet" },
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "ClusterRole",
        name: "system:node-proxier",
      },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: FLEET_GROUP }],
    }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`Cannot bind ${FLEET_GROUP}: HTTP ${res.status}: ${text}`);
}

async function createProbeService(clients: ApiClients): Promise<void> {
  await createService(clients, {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: PROBE_SERVICE, namespace: LAB_NAMESPACE },
    spec: {
      type: "ClusterIP",
      clusterIP: PROBE_SERVICE_IP,
      clusterIPs: [PROBE_SERVICE_IP],
      ipFamilies: ["IPv4"],
      ipFamilyPolicy: "SingleStack",
      ports: [{ name: "http", protocol: "TCP", port: PROBE_SERVICE_PORT, targetPort: 8080 }],
    },
  });
  await createSlice(clients, {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: `${PROBE_SERVICE}-v4`,
      namespace: LAB_NAMESPACE,
      labels: {
        "kubernetes.io/service-name": PROBE_SERVICE,
        "endpointslice.kubernetes.io/managed-by": "kproxy-bench",
      },
    },
    addressType: "IPv4",
    // The probe nodes' own pods; on bare nodes these addresses lead nowhere, which is fine.
    endpoints: [0, 1].map((i) => ({
      addresses: [podIPv4(i)],
      conditions: { ready: true, serving: true, terminating: false },
    })),
    ports: [{ name: "http", protocol: "TCP", port: 8080 }],
  });
}

/** A Service with no endpoints: every proxy rejects connections to it once it has it. */
export interface Marker {
  /** `namespace/name`. */
  readonly name: string;
  /** Its ClusterIP. */
  readonly ip: string;
  /** Its port. */
  readonly port: number;
}

/**
 * Writes a marker: a new Service without endpoints, which every proxy (kproxy and upstream alike)
 * programs as "reject" — a connection to it from the node is refused at once, where before it
 * timed out on the node's dead default route. So a node has caught up with the API server once a
 * marker written after an event is refused there; the check costs one `curl` in the node's
 * namespace (reading the kernel's ruleset with `nft` costs seconds at 10k services).
 */
export async function writeMarker(fc: FleetCluster): Promise<Marker> {
  const k = fc.nextMarker++;
  const added = addedService(k, 0, 0);
  await createService(fc.clients, added.service);
  return {
    name: `${added.namespace}/${added.service.metadata.name}`,
    ip: freshServiceIPv4(k),
    port: 80,
  };
}

/** One node of a fleet. */
export interface FleetNode {
  /** Index in the fleet. */
  readonly index: number;
  /** The Node's name. */
  readonly name: string;
  /** Its API user (audit). */
  readonly user: string;
  /** Its network namespace. */
  readonly netns: string;
  /** Its kubeconfig. */
  readonly kubeconfig: string;
  /** Its traffic to the API server. */
  readonly meter: TrafficMeter;
  /** The bridge the traffic crosses. */
  readonly bridge: NetnsBridge;
  /** The topology, for probe nodes. */
  readonly topology: Topology | null;
  /** The proxy, once started. */
  proxy: ProxyProcess | null;
}

/** A set of nodes running one implementation. */
export interface Fleet {
  /** Which proxy. */
  readonly impl: ProxyImpl;
  /** Its nodes. */
  readonly nodes: readonly FleetNode[];
  /** Where the proxies' logs go. */
  readonly logDir: string;
  /** Stops every proxy and removes every namespace. */
  stop(): Promise<void>;
}

/** Options of {@link createFleet}. */
export interface FleetOptions {
  /** Which proxy. */
  readonly impl: ProxyImpl;
  /** Nodes. */
  readonly nodes: number;
  /** How many of them are probe nodes (the first ones). */
  readonly probeNodes: number;
  /** Folder for logs. */
  readonly logDir: string;
}

async function ip(args: readonly string[]): Promise<void> {
  const r = await runToolResult("ip", args);
  if (r.code !== 0) throw new Error(`Cannot run ip ${args.join(" ")}: ${r.stderr.trim()}`);
}

async function bareNode(i: number): Promise<BenchNetns> {
  const ns = await createBenchNetns(`fl${i}`);
  try {
    // A veth whose peer stays down: a dead link for the default route (no dummy module here).
    await ip(["-n", ns.name, "link", "add", "eth0", "type", "veth", "peer", "name", "null1"]);
    await ip(["-n", ns.name, "addr", "add", `${fleetNodeIPv4(i)}/32`, "dev", "eth0"]);
    await ip(["-n", ns.name, "link", "set", "eth0", "arp", "off", "up"]);
    await ip(["-n", ns.name, "route", "add", "default", "dev", "eth0"]);
  } catch (e) {
    await ns.remove();
    throw e;
  }
  return ns;
}

/** Builds the nodes' namespaces, bridges and identities (no proxy runs yet). */
export async function createFleet(fc: FleetCluster, options: FleetOptions): Promise<Fleet> {
  const nodes: FleetNode[] = [];
  const owned: (() => Promise<void>)[] = [];
  const stop = async () => {
    await Promise.allSettled(nodes.map((n) => n.proxy?.stop()));
    await Promise.allSettled(nodes.map((n) => n.bridge.close()));
    await Promise.allSettled(owned.map((f) => f()));
  };
  try {
    await forEachConcurrent(
      Array.from({ length: options.nodes }, (_, i) => i),
      4,
      async (i) => {
        let netns: string;
        let topology: Topology | null = null;
        if (i < options.probeNodes) {
          topology = await createTopology({ pods: 2 });
          owned.push(() => (topology as Topology).teardown());
          netns = topology.nodeNetns;
        } else {
          const ns = await bareNode(i);
          owned.push(() => ns.remove());
          netns = ns.name;
        }
        const user = `fleet-${options.impl}-${String(i).padStart(3, "0")}`;
        const kubeconfig = await fc.cluster.clientKubeconfig(user, [FLEET_GROUP]);
        const meter = new TrafficMeter();
        const bridge = await fc.cluster.exposeInNetns(netns, { meter });
        nodes.push({
          index: i,
          name: fleetNodeName(i),
          user,
          netns,
          kubeconfig,
          meter,
          bridge,
          topology,
          proxy: null,
        });
      },
    );
  } catch (e) {
    await stop();
    throw e;
  }
  nodes.sort((a, b) => a.index - b.index);
  // Probe nodes answer to the topology's node address: say so in their Node objects.
  for (const n of nodes.filter((n) => n.topology !== null)) {
    await patchNodeAddress(fc.cluster, n.name, NODE_PRIMARY_IPV4);
  }
  return {
    impl: options.impl,
    nodes,
    logDir: options.logDir,
    stop,
  };
}

async function patchNodeAddress(cluster: TestCluster, name: string, address: string) {
  const res = await cluster.request(`/api/v1/nodes/${name}/status`, {
    method: "PATCH",
    headers: { "Content-Type": "application/merge-patch+json" },
    body: JSON.stringify({
      status: { addresses: [{ type: "InternalIP", address }, { type: "Hostname", address: name }] },
    }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`Cannot patch Node ${name}: HTTP ${res.status}: ${text}`);
}

/** Starts node `n`'s proxy. */
export async function startNodeProxy(fleet: Fleet, n: FleetNode): Promise<void> {
  n.proxy = await startProxy(
    { impl: fleet.impl, mode: "nftables", label: fleet.impl },
    n.netns,
    n.kubeconfig,
    `${fleet.logDir}/${fleet.impl}-${n.name}.log`,
    { nodeName: n.name },
  );
}

/** True when a connection from node `n` to the marker is refused at once (it is programmed). */
export async function rejects(n: FleetNode, marker: Marker): Promise<boolean> {
  const r = await runToolResult("curl", [
    "-s",
    "-o",
    "/dev/null",
    "--connect-timeout",
    "0.5",
    `http://${marker.ip}:${marker.port}/`,
  ], { netns: n.netns, timeoutMs: 10_000 });
  // 7: could not connect (refused: TCP reset or ICMP unreachable); 28: timed out.
  return r.code === 7;
}

/**
 * Polls every node until it rejects the marker; per node the epoch ms it was first seen (null:
 * not within `timeoutMs`, or the proxy exited).
 */
export async function waitForMarkerEverywhere(
  fleet: Fleet,
  marker: Marker,
  options: { timeoutMs: number; intervalMs?: number; concurrency?: number },
): Promise<(number | null)[]> {
  const seen: (number | null)[] = fleet.nodes.map(() => null);
  const deadline = Date.now() + options.timeoutMs;
  while (Date.now() < deadline) {
    const waiting = fleet.nodes.filter((n, i) => seen[i] === null && n.proxy?.exited() === null);
    if (waiting.length === 0) break;
    await forEachConcurrent(waiting, options.concurrency ?? 16, async (n) => {
      if (await rejects(n, marker)) seen[n.index] = Date.now();
    });
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 200));
  }
  return seen;
}
