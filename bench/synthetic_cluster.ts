/**
 * A seeded generator of synthetic clusters for the benchmarks: Services and EndpointSlices (plus
 * this node's Node and the namespaces) at any size, with a realistic mix, as plain Kubernetes
 * objects. The same seed and size always give the same cluster.
 *
 * IP plan (everything inside 198.18.0.0/15 and fd00::/8):
 * - node-a (the proxied node): InternalIP 198.18.0.1, fd00:97::1.
 * - pod addresses: 198.18.1.0 – 198.18.249.255 (a pool, reused past 63,744 endpoints), and
 *   fd00:99::/64; endpoints added by benchmark changes: 198.18.250.0 – 198.18.255.255, never in
 *   the pool, so their appearance in a ruleset is unambiguous.
 * - ClusterIPs: 198.19.1.0 – 198.19.249.255 (one per service, by index) and fd00:98::/108;
 *   services added by benchmark changes: 198.19.250.0/23; LoadBalancer ingress: 198.19.252.0/22
 *   (reused past 1,024 LoadBalancers).
 * - Past 63,744 services (kernel and in-process benches only, no API server): the pod pool
 *   shrinks to 198.18.1.0 – 198.18.63.255 and ClusterIPs continue at 198.18.64.0 – 198.18.249.255
 *   (up to 111,360 services); NodePorts then run past 32767.
 * - proxies' cluster CIDRs: 198.18.0.0/16 and fd00:99::/64; the API server's service range
 *   198.19.0.0/16 (its `kubernetes` service takes 198.19.0.1) and fd00:98::/108.
 *
 * The mix per service: 4% NodePort, 2% LoadBalancer (40% of those externalTrafficPolicy Local),
 * 5% ClientIP affinity, 5% dual-stack (PreferDualStack), 1% internalTrafficPolicy Local, 20% with
 * a second port, 8% UDP (port 53); endpoints spread over 50 nodes and 3 zones, about 3% not
 * ready and 1% terminating but serving.
 *
 * @module
 */
import type { KubeObject } from "../src/model/kube_object.ts";
import { parseKubeObject } from "../src/model/kube_object.ts";

/** The node the proxies run as. */
export const BENCH_NODE_NAME = "node-a";
/** The node's IPv4 InternalIP. */
export const BENCH_NODE_IPV4 = "198.18.0.1";
/** The node's IPv6 InternalIP. */
export const BENCH_NODE_IPV6 = "fd00:97::1";
/** `--cluster-cidr` for every proxy in the benchmarks. */
export const BENCH_CLUSTER_CIDRS: readonly string[] = Object.freeze([
  "198.18.0.0/16",
  "fd00:99::/64",
]);
/** `--service-cluster-ip-range` of the benchmark API server. */
export const BENCH_SERVICE_RANGE = "198.19.0.0/16,fd00:98::/108";
/** The NodePort range the generator allocates from (the API server's default). */
export const NODE_PORT_BASE = 30000;

const POOL_V4_START = ipv4ToInt("198.18.1.0");
const POOL_V4_SIZE = 249 * 256;
/** The pool of clusters too big for 198.19.0.0/16's ClusterIPs. */
const SMALL_POOL_V4_SIZE = 63 * 256;
const OVERFLOW_SVC_START = ipv4ToInt("198.18.64.0");
const OVERFLOW_SVC_SIZE = 186 * 256;
const FRESH_EP_START = ipv4ToInt("198.18.250.0");
const FRESH_EP_SIZE = 6 * 256;
const SVC_V4_START = ipv4ToInt("198.19.1.0");
const SVC_V4_SIZE = 249 * 256;
const FRESH_SVC_START = ipv4ToInt("198.19.250.0");
const FRESH_SVC_SIZE = 2 * 256;
const LB_START = ipv4ToInt("198.19.252.0");
const LB_SIZE = 4 * 256;
const ZONES = ["zone-a", "zone-b", "zone-c"] as const;

/** A plain Kubernetes object (what `kubectl get -o json` shows, trimmed). */
export type RawObject = Record<string, unknown> & {
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
};

/** What to generate. */
export interface SyntheticClusterOptions {
  /** Number of Services. */
  readonly services: number;
  /** Endpoints per Service (per family), default 10. */
  readonly endpointsPerService?: number;
  /** PRNG seed, default 1. */
  readonly seed?: number;
  /** Namespaces the Services are spread over, default 20. */
  readonly namespaces?: number;
  /** Nodes the endpoints are spread over (node-a is one of them), default 50. */
  readonly nodes?: number;
  /** Only plain ClusterIP TCP services with one port (the many-endpoints rows), default false. */
  readonly plain?: boolean;
}

/** A generated cluster. */
export interface SyntheticCluster {
  /** The options it was made with, defaults filled in. */
  readonly options: Required<SyntheticClusterOptions>;
  /** Namespace objects (`v1 Namespace`), for the API server. */
  readonly namespaces: readonly RawObject[];
  /** node-a's Node object. */
  readonly node: RawObject;
  /** Services, by index. */
  readonly services: readonly RawObject[];
  /** EndpointSlices (one per service per family). */
  readonly slices: readonly RawObject[];
  /** Counts by feature, for the report. */
  readonly mix: Readonly<Record<string, number>>;
}

/** mulberry32: a small, fast, seeded PRNG returning floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function ipv4ToInt(text: string): number {
  return text.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
}

function intToIPv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}

/** `prefix` (ending in `::`) plus `n` in the last 32 bits, in canonical (RFC 5952) form. */
function ipv6Of(prefix: string, n: number): string {
  const hi = Math.floor(n / 65536) % 65536;
  const lo = (n % 65536).toString(16);
  return hi === 0 ? `${prefix}${lo}` : `${prefix}${hi.toString(16)}:${lo}`;
}

/** The ClusterIP (IPv4) of service `index` (past 63,744: in 198.18.64.0 – 198.18.249.255). */
export function serviceIPv4(index: number): string {
  if (index < SVC_V4_SIZE) return intToIPv4(SVC_V4_START + index);
  if (index >= SVC_V4_SIZE + OVERFLOW_SVC_SIZE) {
    throw new Error(`Cannot address service ${index}: over ${SVC_V4_SIZE + OVERFLOW_SVC_SIZE}`);
  }
  return intToIPv4(OVERFLOW_SVC_START + index - SVC_V4_SIZE);
}

/** The IPv6 ClusterIP of service `index` (inside fd00:98::/108). */
export function serviceIPv6(index: number): string {
  return ipv6Of("fd00:98::", 256 + index);
}

/**
 * IPv4 address of pool endpoint `n` (reused past the pool's size); the pool is smaller in
 * clusters of more than 63,744 services, whose ClusterIPs take its upper part.
 */
export function podIPv4(n: number, services = 0): string {
  const pool = services > SVC_V4_SIZE ? SMALL_POOL_V4_SIZE : POOL_V4_SIZE;
  return intToIPv4(POOL_V4_START + (n % pool));
}

/** IPv6 address of endpoint `n`. */
export function podIPv6(n: number): string {
  return ipv6Of("fd00:99::", 256 + n);
}

/** The `k`-th endpoint address benchmark changes add (never used by a generated cluster). */
export function freshEndpointIPv4(k: number): string {
  if (k >= FRESH_EP_SIZE) throw new Error(`Cannot make fresh endpoint ${k}: over ${FRESH_EP_SIZE}`);
  return intToIPv4(FRESH_EP_START + k);
}

/** The `k`-th ClusterIP of a service added by a benchmark change. */
export function freshServiceIPv4(k: number): string {
  if (k >= FRESH_SVC_SIZE) {
    throw new Error(`Cannot make fresh service ${k}: over ${FRESH_SVC_SIZE}`);
  }
  return intToIPv4(FRESH_SVC_START + k);
}

/** Namespace of service `index`. */
export function namespaceOf(index: number, namespaces: number): string {
  return `bench-${String(index % namespaces).padStart(2, "0")}`;
}

/** Name of service `index`. */
export function serviceNameOf(index: number): string {
  return `svc-${String(index).padStart(6, "0")}`;
}

function nodeNameOf(i: number): string {
  return i === 0 ? BENCH_NODE_NAME : `node-${String(i).padStart(3, "0")}`;
}

interface PortPlan {
  name: string;
  protocol: "TCP" | "UDP";
  port: number;
  targetPort: number;
}

/** Generates a cluster; deterministic for equal options. */
export function syntheticCluster(options: SyntheticClusterOptions): SyntheticCluster {
  const opts: Required<SyntheticClusterOptions> = {
    services: options.services,
    endpointsPerService: options.endpointsPerService ?? 10,
    seed: options.seed ?? 1,
    namespaces: options.namespaces ?? 20,
    nodes: options.nodes ?? 50,
    plain: options.plain ?? false,
  };
  const rand = seededRandom(opts.seed);
  const nsCount = Math.max(1, Math.min(opts.namespaces, opts.services));
  const namespaces: RawObject[] = [];
  for (let i = 0; i < nsCount; i++) {
    namespaces.push({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: namespaceOf(i, nsCount) },
    });
  }
  const node: RawObject = {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: BENCH_NODE_NAME,
      labels: {
        "topology.kubernetes.io/zone": "zone-a",
        "kubernetes.io/hostname": BENCH_NODE_NAME,
      },
    },
    spec: { podCIDRs: ["198.18.0.0/24", "fd00:99::/112"] },
    status: {
      addresses: [
        { type: "InternalIP", address: BENCH_NODE_IPV4 },
        { type: "InternalIP", address: BENCH_NODE_IPV6 },
        { type: "Hostname", address: BENCH_NODE_NAME },
      ],
    },
  };
  const services: RawObject[] = [];
  const slices: RawObject[] = [];
  const mix: Record<string, number> = {
    ClusterIP: 0,
    NodePort: 0,
    LoadBalancer: 0,
    externalTrafficPolicyLocal: 0,
    clientIPAffinity: 0,
    dualStack: 0,
    internalTrafficPolicyLocal: 0,
    twoPorts: 0,
    udp: 0,
    servicePorts: 0,
    endpoints: 0,
  };
  let nodePort = NODE_PORT_BASE;
  let lbCount = 0;
  let endpointCounter = 0;
  for (let i = 0; i < opts.services; i++) {
    const r = rand();
    const plain = opts.plain;
    const type = plain
      ? "ClusterIP"
      : r < 0.04
      ? "NodePort"
      : r < 0.06
      ? "LoadBalancer"
      : "ClusterIP";
    const external = type !== "ClusterIP";
    const local = external && rand() < 0.4;
    const affinity = rand() < 0.05 && !plain;
    const dual = rand() < 0.05 && !plain;
    const itpLocal = rand() < 0.01 && !plain;
    const udp = rand() < 0.08 && !plain;
    const twoPorts = !udp && rand() < 0.2 && !plain;
    const ports: PortPlan[] = udp
      ? [{ name: "dns", protocol: "UDP", port: 53, targetPort: 5353 }]
      : [{ name: "http", protocol: "TCP", port: 80, targetPort: 8080 }];
    if (twoPorts) ports.push({ name: "metrics", protocol: "TCP", port: 9090, targetPort: 9090 });
    const ns = namespaceOf(i, nsCount);
    const name = serviceNameOf(i);
    const specPorts = ports.map((p) => ({
      name: p.name,
      protocol: p.protocol,
      port: p.port,
      targetPort: p.targetPort,
      ...(external ? { nodePort: nodePort++ } : {}),
    }));
    const spec: Record<string, unknown> = {
      type,
      clusterIP: serviceIPv4(i),
      clusterIPs: dual ? [serviceIPv4(i), serviceIPv6(i)] : [serviceIPv4(i)],
      ipFamilies: dual ? ["IPv4", "IPv6"] : ["IPv4"],
      ipFamilyPolicy: dual ? "PreferDualStack" : "SingleStack",
      ports: specPorts,
      selector: { app: name },
      sessionAffinity: affinity ? "ClientIP" : "None",
      ...(affinity ? { sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } } } : {}),
      ...(external ? { externalTrafficPolicy: local ? "Local" : "Cluster" } : {}),
      ...(local && type === "LoadBalancer" ? { healthCheckNodePort: nodePort++ } : {}),
      internalTrafficPolicy: itpLocal ? "Local" : "Cluster",
    };
    const service: RawObject = {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace: ns, labels: { app: name } },
      spec,
    };
    if (type === "LoadBalancer") {
      // Past 1,024 LoadBalancers the addresses are shared (kernel benches only).
      const lb = intToIPv4(LB_START + (lbCount++ % LB_SIZE));
      service["status"] = { loadBalancer: { ingress: [{ ip: lb }] } };
    }
    services.push(service);
    mix[type] = (mix[type] ?? 0) + 1;
    if (local) mix["externalTrafficPolicyLocal"]!++;
    if (affinity) mix["clientIPAffinity"]!++;
    if (dual) mix["dualStack"]!++;
    if (itpLocal) mix["internalTrafficPolicyLocal"]!++;
    if (twoPorts) mix["twoPorts"]!++;
    if (udp) mix["udp"]!++;
    mix["servicePorts"]! += ports.length;

    for (const family of dual ? ["IPv4", "IPv6"] as const : ["IPv4"] as const) {
      const endpoints: Record<string, unknown>[] = [];
      for (let e = 0; e < opts.endpointsPerService; e++) {
        const n = endpointCounter++;
        const nodeIndex = Math.floor(rand() * opts.nodes);
        const c = rand();
        const ready = c >= 0.04;
        const terminating = c < 0.01;
        endpoints.push({
          addresses: [family === "IPv4" ? podIPv4(n, opts.services) : podIPv6(n)],
          conditions: { ready, serving: ready || terminating, terminating },
          nodeName: nodeNameOf(nodeIndex),
          zone: ZONES[nodeIndex % ZONES.length],
          targetRef: { kind: "Pod", namespace: ns, name: `${name}-${e}` },
        });
      }
      mix["endpoints"]! += endpoints.length;
      slices.push({
        apiVersion: "discovery.k8s.io/v1",
        kind: "EndpointSlice",
        metadata: {
          name: `${name}-${family === "IPv4" ? "v4" : "v6"}`,
          namespace: ns,
          labels: {
            "kubernetes.io/service-name": name,
            "endpointslice.kubernetes.io/managed-by": "kproxy-bench",
          },
        },
        addressType: family,
        endpoints,
        ports: ports.map((p) => ({ name: p.name, protocol: p.protocol, port: p.targetPort })),
      });
    }
  }
  return { options: opts, namespaces, node, services, slices, mix };
}

/** Validates every Service, EndpointSlice and the Node into kproxy's model (throws on any error). */
export function kubeObjectsOf(cluster: SyntheticCluster): KubeObject[] {
  return [cluster.node, ...cluster.services, ...cluster.slices].map(toKubeObject);
}

/** Validates one raw object into kproxy's model (throws when invalid or ignored). */
export function toKubeObject(raw: RawObject): KubeObject {
  const r = parseKubeObject(raw, "synthetic");
  if (r.ok === true) return r.value;
  throw new Error(
    r.ok === false ? r.error.message : `Cannot read ${raw.kind} ${raw.metadata.name}: kind ignored`,
  );
}

/** A copy of a slice with one more endpoint at `address` (on another node, ready). */
export function sliceWithEndpoint(slice: RawObject, address: string): RawObject {
  const endpoints = [...((slice["endpoints"] as unknown[] | undefined) ?? [])];
  endpoints.push({
    addresses: [address],
    conditions: { ready: true, serving: true, terminating: false },
    nodeName: "node-049",
    zone: "zone-b",
  });
  return { ...slice, endpoints, metadata: { ...slice.metadata } };
}

/** A copy of a slice without its endpoints at `address`. */
export function sliceWithoutEndpoint(slice: RawObject, address: string): RawObject {
  const endpoints = ((slice["endpoints"] as { addresses: string[] }[] | undefined) ?? [])
    .filter((e) => !e.addresses.includes(address));
  return { ...slice, endpoints, metadata: { ...slice.metadata } };
}

/** The first IPv4 address of a slice's endpoints (for scale-down changes). */
export function firstEndpointAddress(slice: RawObject): string {
  const eps = (slice["endpoints"] as { addresses: string[] }[] | undefined) ?? [];
  const address = eps[0]?.addresses[0];
  if (address === undefined) {
    throw new Error(`Cannot scale down slice ${slice.metadata.name}: it has no endpoints`);
  }
  return address;
}

/**
 * A new ClusterIP Service (`bench-added/svc-added-<k>`, one TCP port 80) at the `k`-th fresh
 * ClusterIP, and its slice with `endpoints` fresh addresses starting at fresh endpoint `firstEp`.
 */
export function addedService(
  k: number,
  endpoints: number,
  firstEp: number,
): { namespace: string; service: RawObject; slice: RawObject } {
  const namespace = "bench-00";
  const name = `svc-added-${String(k).padStart(3, "0")}`;
  const ip = freshServiceIPv4(k);
  const service: RawObject = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace, labels: { app: name } },
    spec: {
      type: "ClusterIP",
      clusterIP: ip,
      clusterIPs: [ip],
      ipFamilies: ["IPv4"],
      ipFamilyPolicy: "SingleStack",
      ports: [{ name: "http", protocol: "TCP", port: 80, targetPort: 8080 }],
      selector: { app: name },
    },
  };
  const slice: RawObject = {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: `${name}-v4`,
      namespace,
      labels: {
        "kubernetes.io/service-name": name,
        "endpointslice.kubernetes.io/managed-by": "kproxy-bench",
      },
    },
    addressType: "IPv4",
    endpoints: Array.from({ length: endpoints }, (_, e) => ({
      addresses: [freshEndpointIPv4(firstEp + e)],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: "node-048",
      zone: "zone-a",
    })),
    ports: [{ name: "http", protocol: "TCP", port: 8080 }],
  };
  return { namespace, service, slice };
}
