/**
 * fast-check generators of Kubernetes objects for hostile-input tests: mostly well-formed
 * Services, EndpointSlices and Nodes that name each other (so snapshots have real service ports
 * and endpoints), with any field sometimes replaced by a hostile value — quotes, newlines, shell
 * and rule syntax, control characters, huge or malformed numbers and addresses, wrong types.
 *
 * Every hostile string contains the marker {@link MARKER} or is otherwise invalid in a field
 * kproxy validates, so "no marker in any rule" means nothing hostile reached the kernel.
 *
 * IP plan: ClusterIPs 198.18.128.0/17 and fd00:128::/64, pods 198.18.1.0/24 and fd00:1::/64,
 * external and load-balancer IPs 198.19.0.0/24, node 198.18.0.10 / fd00::10.
 *
 * @module
 */
import fc from "fast-check";

/** A substring only hostile values carry (no valid name, hash or keyword contains `_Q`). */
export const MARKER = "q_Q";

/** Strings crafted to break out of rule text, logs or shells. */
export const HOSTILE_STRINGS: readonly string[] = [
  `${MARKER}"`,
  `${MARKER}'`,
  `${MARKER}\n`,
  `a\nadd table ip evil ${MARKER}`,
  `"; flush ruleset; "${MARKER}`,
  `" -j ACCEPT -m comment --comment "${MARKER}`,
  `$(reboot)${MARKER}`,
  `\`id\`${MARKER}`,
  `${MARKER}; rm -rf /`,
  `${MARKER}\\`,
  `${MARKER}\u0000`,
  `${MARKER}\r\n*filter\nCOMMIT`,
  `} ${MARKER} {`,
  `# ${MARKER}`,
  `${MARKER}\t`,
  `é${MARKER}💥`,
  ` ${MARKER} `,
  `${MARKER}${"x".repeat(300)}`,
  `../../${MARKER}`,
  `--${MARKER}`,
  `@${MARKER}`,
  `${MARKER}\u202e`,
];

/** A hostile string: one of the crafted ones, or random text with the marker. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...HOSTILE_STRINGS),
  fc.string({ maxLength: 40 }).map((s) => `${s}${MARKER}`),
  fc.string({ unit: "binary", maxLength: 20 }).map((s) => `${MARKER}${s}`),
);

/** A value of the wrong type for almost any field. */
export const wrongType: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, 0, -1, 1.5, NaN, Infinity, 1e308, -0, [], {}, [[]], { a: 1 }),
  hostileString,
);

/** `good` most of the time, a hostile or wrongly typed value sometimes. */
export function sometimesHostile<T>(
  good: fc.Arbitrary<T>,
  hostileWeight = 1,
): fc.Arbitrary<unknown> {
  return fc.oneof(
    { arbitrary: good, weight: 12 },
    { arbitrary: hostileString, weight: hostileWeight },
    { arbitrary: wrongType, weight: hostileWeight },
  );
}

const byte = fc.integer({ min: 0, max: 255 });
const hex = fc.integer({ min: 0, max: 0xffff }).map((n) => n.toString(16));

/** IPv4 addresses in the test plan, plus odd but valid spellings. */
export const ipv4: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: fc.tuple(byte, byte).map(([a, b]) => `198.18.${128 + (a & 127)}.${b}`), weight: 3 },
  { arbitrary: byte.map((b) => `198.18.1.${b}`), weight: 3 },
  { arbitrary: byte.map((b) => `198.19.0.${b}`), weight: 1 },
  {
    arbitrary: fc.constantFrom("0.0.0.0", "255.255.255.255", "127.0.0.1", "198.18.0.10"),
    weight: 1,
  },
);

/** IPv6 addresses in the test plan, plus odd but valid spellings. */
export const ipv6: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: hex.map((h) => `fd00:128::${h}`), weight: 3 },
  { arbitrary: hex.map((h) => `fd00:1::${h}`), weight: 3 },
  {
    arbitrary: fc.constantFrom(
      "::",
      "::1",
      "fd00::10",
      "FD00:0:0:0:0:0:0:A",
      "::ffff:198.18.0.1",
      "fd00:19::2",
      "fe80::1",
    ),
    weight: 1,
  },
);

/** Strings that look like addresses but are not (or not in the expected form). */
export const badAddress: fc.Arbitrary<string> = fc.constantFrom(
  "198.18.0.1/32",
  " 198.18.0.1",
  "198.18.0.1\n",
  "1.2.3",
  "1.2.3.4.5",
  "256.1.1.1",
  "198.018.0.1",
  "0x7f.0.0.1",
  "fd00::1%eth0",
  "[fd00::1]",
  "fd00:::1",
  "1.2.3.4; drop",
  "",
  `${MARKER}1.2.3.4`,
);

/** Any address: mostly valid, of either family, sometimes malformed or hostile. */
export const address: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: ipv4, weight: 6 },
  { arbitrary: ipv6, weight: 3 },
  { arbitrary: badAddress, weight: 1 },
  { arbitrary: hostileString, weight: 1 },
);

/** CIDRs for loadBalancerSourceRanges and the like (overlaps included on purpose). */
export const cidr: fc.Arbitrary<unknown> = fc.oneof(
  {
    arbitrary: fc.tuple(ipv4, fc.integer({ min: 0, max: 32 })).map(([ip, p]) => `${ip}/${p}`),
    weight: 4,
  },
  {
    arbitrary: fc.tuple(ipv6, fc.integer({ min: 0, max: 128 })).map(([ip, p]) => `${ip}/${p}`),
    weight: 2,
  },
  {
    arbitrary: fc.constantFrom(
      "0.0.0.0/0",
      "::/0",
      " 198.19.0.0/24 ",
      "198.19.0.0/24\n",
      "198.19.0.0/33",
      "198.19.0.0/",
      "198.19.0.0/024",
      "198.19.0.0",
    ),
    weight: 1,
  },
  { arbitrary: hostileString, weight: 1 },
);

/** Port numbers, including every kind of out-of-range and wrongly typed value. */
export const port: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.integer({ min: 1, max: 65535 }), weight: 8 },
  { arbitrary: fc.constantFrom(80, 443, 53, 8080, 30080), weight: 4 },
  {
    arbitrary: fc.constantFrom(0, -1, 65536, 1e9, 80.5, NaN, Infinity, "80", "80; drop", null),
    weight: 1,
  },
);

/** Names: a small pool (so objects refer to each other), long valid ones, and hostile ones. */
export const serviceName: fc.Arbitrary<unknown> = sometimesHostile(
  fc.constantFrom(
    "web",
    "api",
    "dns",
    "a-b.c-d",
    "x".repeat(63),
    `${"n".repeat(60)}.${"m".repeat(60)}.${"o".repeat(60)}.${"p".repeat(60)}`,
  ),
);
/** Namespaces. */
export const namespace: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.constantFrom("default", "kube-system", "ns-1", "z".repeat(63)), weight: 12 },
  { arbitrary: fc.constant(undefined), weight: 2 },
  { arbitrary: hostileString, weight: 1 },
);
/** Port names. */
export const portName: fc.Arbitrary<unknown> = sometimesHostile(
  fc.constantFrom("", "http", "dns", "p".repeat(63)),
);
const protocol = sometimesHostile(fc.constantFrom("TCP", "UDP", "SCTP", undefined));
const stringMap = fc.dictionary(
  fc.oneof(
    fc.constantFrom("app", "kubernetes.io/service-name", "topology.kubernetes.io/zone"),
    hostileString,
  ),
  fc.oneof(fc.constantFrom("web", "zone-a", ""), hostileString),
  { maxKeys: 3 },
);

function optional<T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.option(arb, { nil: undefined, freq: 3 });
}

/** A raw Service. */
export const rawService: fc.Arbitrary<Record<string, unknown>> = fc.record({
  apiVersion: sometimesHostile(fc.constant("v1")),
  kind: fc.constant("Service"),
  metadata: fc.record({
    name: serviceName,
    namespace,
    uid: optional(fc.oneof(fc.uuid(), hostileString)),
    labels: optional(stringMap),
    annotations: optional(stringMap),
    resourceVersion: optional(fc.oneof(fc.constant("123"), hostileString)),
  }, { requiredKeys: ["name"] }),
  spec: fc.record({
    type: sometimesHostile(
      fc.constantFrom("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"),
    ),
    clusterIPs: sometimesHostile(fc.oneof(
      ipv4.map((ip) => [ip]),
      ipv6.map((ip) => [ip]),
      fc.tuple(ipv4, ipv6).map(([a, b]) => [a, b]),
      fc.tuple(ipv6, ipv4).map(([a, b]) => [a, b]),
      fc.constant(["None"]),
      fc.array(address, { maxLength: 3 }),
    )),
    ports: fc.array(
      fc.record({
        name: portName,
        protocol,
        port,
        nodePort: optional(port),
        targetPort: optional(fc.oneof(port, hostileString)),
      }, { requiredKeys: ["port"] }),
      { maxLength: 3 },
    ),
    externalIPs: optional(fc.array(address, { maxLength: 2 })),
    sessionAffinity: optional(sometimesHostile(fc.constantFrom("None", "ClientIP"))),
    sessionAffinityConfig: optional(fc.record({
      clientIP: fc.record({ timeoutSeconds: sometimesHostile(fc.integer({ min: 1, max: 86400 })) }),
    })),
    externalTrafficPolicy: optional(sometimesHostile(fc.constantFrom("Cluster", "Local"))),
    internalTrafficPolicy: optional(sometimesHostile(fc.constantFrom("Cluster", "Local"))),
    healthCheckNodePort: optional(port),
    loadBalancerSourceRanges: optional(fc.array(cidr, { maxLength: 3 })),
    externalName: optional(hostileString),
    trafficDistribution: optional(fc.oneof(fc.constant("PreferClose"), hostileString)),
  }, { requiredKeys: ["type", "ports"] }),
  status: optional(fc.record({
    loadBalancer: fc.record({
      ingress: fc.array(
        fc.record({
          ip: optional(address),
          hostname: optional(hostileString),
          ipMode: optional(sometimesHostile(fc.constantFrom("VIP", "Proxy"))),
        }),
        { maxLength: 2 },
      ),
    }),
  })),
}, { requiredKeys: ["kind", "metadata", "spec"] }).map((svc) => {
  // Keep spec.clusterIP consistent with clusterIPs, as the API server does.
  const spec = svc.spec as Record<string, unknown>;
  const ips = spec["clusterIPs"];
  if (Array.isArray(ips) && typeof ips[0] === "string") spec["clusterIP"] = ips[0];
  return svc;
});

/** A raw EndpointSlice (of a service from the same name pool). */
export const rawEndpointSlice: fc.Arbitrary<Record<string, unknown>> = fc.record({
  apiVersion: sometimesHostile(fc.constant("discovery.k8s.io/v1")),
  kind: fc.constant("EndpointSlice"),
  metadata: fc.record({
    name: sometimesHostile(
      fc.string({ unit: fc.constantFrom(..."abcdef0123-"), minLength: 1, maxLength: 8 }).map((s) =>
        `s${s}s`
      ),
    ),
    namespace,
    labels: fc.oneof(
      { arbitrary: serviceName.map((n) => ({ "kubernetes.io/service-name": n })), weight: 8 },
      { arbitrary: stringMap, weight: 1 },
    ),
    annotations: optional(fc.dictionary(
      fc.constantFrom("endpoints.kubernetes.io/last-change-trigger-time", "x"),
      fc.oneof(fc.constant("2024-01-01T00:00:00Z"), hostileString),
      { maxKeys: 2 },
    )),
  }, { requiredKeys: ["name"] }),
  addressType: sometimesHostile(fc.constantFrom("IPv4", "IPv6", "FQDN")),
  endpoints: fc.array(
    fc.record({
      addresses: fc.array(address, { minLength: 1, maxLength: 2 }),
      conditions: optional(fc.record({
        ready: optional(sometimesHostile(fc.boolean())),
        serving: optional(fc.boolean()),
        terminating: optional(fc.boolean()),
      })),
      nodeName: optional(sometimesHostile(fc.constantFrom("node-a", "node-b"))),
      zone: optional(sometimesHostile(fc.constantFrom("zone-a", "zone-b"))),
      hints: optional(fc.record({
        forZones: fc.array(
          fc.record({ name: sometimesHostile(fc.constantFrom("zone-a", "zone-b")) }),
          { maxLength: 2 },
        ),
      })),
      targetRef: optional(fc.record({ kind: fc.constant("Pod"), name: hostileString })),
    }, { requiredKeys: ["addresses"] }),
    { maxLength: 4 },
  ),
  ports: fc.array(
    fc.record({ name: portName, protocol, port, appProtocol: optional(hostileString) }),
    { maxLength: 3 },
  ),
}, { requiredKeys: ["kind", "metadata", "addressType"] });

/** A raw Node (this node `node-a` most of the time). */
export const rawNode: fc.Arbitrary<Record<string, unknown>> = fc.record({
  apiVersion: fc.constant("v1"),
  kind: fc.constant("Node"),
  metadata: fc.record({
    name: sometimesHostile(fc.constantFrom("node-a", "node-b")),
    labels: optional(fc.oneof(
      fc.record({
        "topology.kubernetes.io/zone": sometimesHostile(fc.constantFrom("zone-a", "zone-b", "")),
      }),
      stringMap,
    )),
    deletionTimestamp: optional(fc.oneof(fc.constant("2024-01-01T00:00:00Z"), hostileString)),
  }, { requiredKeys: ["name"] }),
  spec: optional(fc.record({ podCIDRs: fc.array(cidr, { maxLength: 2 }) })),
  status: optional(fc.record({
    addresses: fc.array(
      fc.record({
        type: sometimesHostile(fc.constantFrom("InternalIP", "ExternalIP", "Hostname")),
        address,
      }),
      { maxLength: 3 },
    ),
  })),
});

/** Every path (list of keys) into a JSON-like tree, inner nodes included. */
function paths(value: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []) {
  out.push(prefix);
  if (Array.isArray(value)) value.forEach((v, i) => paths(v, [...prefix, i], out));
  else if (typeof value === "object" && value !== null) {
    for (const [k, v] of Object.entries(value)) paths(v, [...prefix, k], out);
  }
  return out;
}

/** A copy of `object` with the values at some (index-chosen) paths replaced. */
export function mutate(object: unknown, mutations: readonly [number, unknown][]): unknown {
  let out = structuredClone(object);
  for (const [index, value] of mutations) {
    const all = paths(out);
    const path = all[index % all.length] as (string | number)[];
    // A copy: the generators share constant objects, which must never end up inside themselves.
    const copy = structuredClone(value);
    if (path.length === 0) {
      out = copy;
      continue;
    }
    let parent = out as Record<string | number, unknown>;
    for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
    parent[path[path.length - 1] as string | number] = copy;
  }
  return out;
}

const mutations = fc.array(
  fc.tuple(fc.nat(), fc.oneof(hostileString, wrongType, badAddress, port)),
  {
    maxLength: 2,
  },
);

/** Well-formed Services: valid names, ports, families and addresses. */
const goodService = fc.record({
  name: fc.constantFrom("web", "api", "dns", "a-b.c-d", "x".repeat(63)),
  namespace: fc.constantFrom("default", "kube-system", "z".repeat(63)),
  type: fc.constantFrom("ClusterIP", "NodePort", "LoadBalancer"),
  families: fc.constantFrom(["IPv4"], ["IPv6"], ["IPv4", "IPv6"], ["IPv6", "IPv4"]),
  v4: ipv4,
  v6: ipv6,
  ports: fc.uniqueArray(
    fc.record({
      name: fc.constantFrom("", "http", "dns", "p".repeat(63)),
      protocol: fc.constantFrom("TCP", "UDP", "SCTP"),
      port: fc.integer({ min: 1, max: 65535 }),
      nodePort: fc.integer({ min: 1, max: 65535 }),
      targetPort: fc.integer({ min: 1, max: 65535 }),
    }),
    { minLength: 1, maxLength: 3, selector: (p) => p.name },
  ),
  externalIPs: fc.array(fc.oneof(ipv4, ipv6), { maxLength: 2 }),
  lbIPs: fc.array(fc.oneof(ipv4, ipv6), { maxLength: 2 }),
  sourceRanges: fc.array(
    fc.oneof(
      fc.tuple(ipv4, fc.integer({ min: 0, max: 32 })).map(([ip, n]) => `${ip}/${n}`),
      fc.tuple(ipv6, fc.integer({ min: 0, max: 128 })).map(([ip, n]) => `${ip}/${n}`),
    ),
    { maxLength: 3 },
  ),
  affinity: fc.option(fc.integer({ min: 1, max: 86400 })),
  etp: fc.constantFrom("Cluster", "Local"),
  itp: fc.constantFrom("Cluster", "Local"),
  hcnp: fc.integer({ min: 1, max: 65535 }),
});

type GoodService = typeof goodService extends fc.Arbitrary<infer T> ? T : never;

function serviceObject(s: GoodService): Record<string, unknown> {
  const clusterIPs = s.families.map((f) => (f === "IPv4" ? s.v4 : s.v6));
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: s.name, namespace: s.namespace },
    spec: {
      type: s.type,
      clusterIP: clusterIPs[0],
      clusterIPs,
      ipFamilies: s.families,
      ports: s.ports.map((p) => ({
        name: p.name,
        protocol: p.protocol,
        port: p.port,
        targetPort: p.targetPort,
        ...(s.type === "ClusterIP" ? {} : { nodePort: p.nodePort }),
      })),
      externalIPs: s.externalIPs,
      loadBalancerSourceRanges: s.sourceRanges,
      ...(s.affinity === null ? {} : {
        sessionAffinity: "ClientIP",
        sessionAffinityConfig: { clientIP: { timeoutSeconds: s.affinity } },
      }),
      ...(s.type === "ClusterIP" ? {} : { externalTrafficPolicy: s.etp }),
      internalTrafficPolicy: s.itp,
      ...(s.type === "LoadBalancer" && s.etp === "Local" ? { healthCheckNodePort: s.hcnp } : {}),
    },
    status: { loadBalancer: { ingress: s.lbIPs.map((ip) => ({ ip })) } },
  };
}

/** Slices for a well-formed Service: its ports, its families, endpoints here and elsewhere. */
function slicesFor(s: GoodService): fc.Arbitrary<Record<string, unknown>[]> {
  const slice = (family: string, suffix: string) =>
    fc.record({
      endpoints: fc.array(
        fc.record({
          ip: family === "IPv4" ? ipv4 : ipv6,
          ready: fc.option(fc.boolean(), { nil: undefined }),
          serving: fc.option(fc.boolean(), { nil: undefined }),
          terminating: fc.option(fc.boolean(), { nil: undefined }),
          node: fc.constantFrom("node-a", "node-b", undefined),
          zone: fc.constantFrom("zone-a", "zone-b", undefined),
          hint: fc.constantFrom("zone-a", "zone-b", undefined),
        }),
        { maxLength: 5 },
      ),
    }).map(({ endpoints }) => ({
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: {
        name: `${s.name.slice(0, 50)}-${suffix}`,
        namespace: s.namespace,
        labels: { "kubernetes.io/service-name": s.name },
      },
      addressType: family,
      ports: s.ports.map((p) => ({ name: p.name, protocol: p.protocol, port: p.targetPort })),
      endpoints: endpoints.map((e) => ({
        addresses: [e.ip],
        conditions: { ready: e.ready, serving: e.serving, terminating: e.terminating },
        nodeName: e.node,
        zone: e.zone,
        ...(e.hint === undefined ? {} : { hints: { forZones: [{ name: e.hint }] } }),
      })),
    }));
  return fc.tuple(...s.families.map((f, i) => slice(f, `${f.toLowerCase()}${i}`)));
}

/** A well-formed Service with its slices, each object then hostile-mutated at a few paths. */
const serviceWithSlices: fc.Arbitrary<unknown[]> = goodService.chain((s) =>
  fc.tuple(slicesFor(s), mutations, mutations, fc.nat(9)).map(([slices, m1, m2, dice]) => {
    const objects: unknown[] = [serviceObject(s), ...slices];
    // Two out of three are left intact, so most worlds render real services.
    if (dice < 3) objects[0] = mutate(objects[0], m1);
    else if (dice < 6 && objects.length > 1) objects[1] = mutate(objects[1], m2);
    return objects;
  })
);

/** This node: zone label, addresses; sometimes mutated. */
const goodNode = fc.tuple(fc.constantFrom("zone-a", "zone-b", undefined), fc.boolean(), mutations)
  .map(([zone, mutated, m]) => {
    const node = {
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name: "node-a",
        labels: zone === undefined ? {} : { "topology.kubernetes.io/zone": zone },
      },
      status: {
        addresses: [
          { type: "InternalIP", address: "198.19.0.1" },
          { type: "InternalIP", address: "fd00:19::1" },
        ],
      },
    };
    return mutated ? mutate(node, m) : node;
  });

/**
 * A small cluster in random order: well-formed Services with their slices (some fields
 * hostile), this Node, and a few objects from the all-out hostile generators.
 */
export const rawWorld: fc.Arbitrary<unknown[]> = fc.tuple(
  fc.array(serviceWithSlices, { maxLength: 4 }),
  goodNode,
  fc.array(fc.oneof(rawService, rawEndpointSlice, rawNode), { maxLength: 2 }),
).chain(([groups, node, extra]) => {
  const all = [...groups.flat(), node, ...extra];
  return fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length });
});
