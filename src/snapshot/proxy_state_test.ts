// IP plan: nodes 198.18.0.0/24 and fd00::0:0/112, pods 198.18.1.0/24 and fd00::1:0/112, services
// 198.18.128.0/17 and fd00::80:0/112, LoadBalancer ingress 198.18.250.0/24, clients 198.19.0.0/24.
import assert from "node:assert/strict";
import { type KubeObject, objectKey } from "../model/kube_object.ts";
import {
  buildSnapshot,
  initialProxyState,
  type ProxyEvent,
  reconcile,
  type SnapshotSettings,
} from "./proxy_state.ts";
import {
  build,
  ep,
  famOf,
  node,
  obj,
  portOf,
  prng,
  type Raw,
  SETTINGS,
  shuffle,
  slice,
  svc,
  TERMINATING,
  webSvc,
} from "./fixtures_test.ts";
import type { ProxySnapshot } from "./types.ts";

const WEB = "default/web:http";

const upsert = (raw: Raw): ProxyEvent => ({ type: "upsert", object: obj(raw) });
const del = (kind: KubeObject["kind"], name: string, namespace: string | null = "default") =>
  ({ type: "delete", kind, namespace, name }) as const;

function hashesOf(snap: ProxySnapshot): Map<string, string> {
  return new Map(snap.servicePorts.map((p) => [p.id, p.hash]));
}

/** Ids whose entries differ between two snapshots: what changedServicePorts must list. */
function expectedChanges(before: ProxySnapshot, after: ProxySnapshot): string[] {
  const a = hashesOf(before);
  const b = hashesOf(after);
  const out = new Set<string>();
  for (const [id, h] of b) if (a.get(id) !== h) out.add(id);
  for (const id of a.keys()) if (!b.has(id)) out.add(id);
  return [...out].sort();
}

/** Applies batches one by one from the initial state; returns the last result. */
function run(batches: ProxyEvent[][], settings: SnapshotSettings = SETTINGS) {
  let state = initialProxyState(settings);
  let last = reconcile(state, []);
  for (const batch of batches) {
    last = reconcile(state, batch);
    state = last.state;
  }
  return last;
}

const EXAMPLE: Raw[] = [
  node("node-a", "zone-a", ["198.18.0.10", "fd00::10"]),
  node("node-b", "zone-b", ["198.18.0.11"]),
  webSvc({ type: "NodePort", ports: [{ name: "http", port: 80, nodePort: 30080 }] }),
  slice("web-1", "web", [ep("198.18.1.2", { node: "node-a", zone: "zone-a" })]),
  slice("web-2", "web", [
    ep("198.18.1.3", { node: "node-b" }),
    ep("198.18.1.4", { ...TERMINATING, node: "node-a" }),
  ]),
  svc("api", {
    type: "LoadBalancer",
    clusterIPs: ["198.18.128.20", "fd00::80:20"],
    externalTrafficPolicy: "Local",
    healthCheckNodePort: 32000,
    sessionAffinity: "ClientIP",
    loadBalancerSourceRanges: ["198.19.0.0/24"],
    ports: [{ name: "https", port: 443, nodePort: 30443 }],
  }, { ns: "shop", status: { loadBalancer: { ingress: [{ ip: "198.18.250.1" }] } } }),
  slice("api-v4", "api", [ep("198.18.1.30", { node: "node-a" })], {
    ns: "shop",
    ports: [{ name: "https", port: 8443 }],
  }),
  slice("api-v6", "api", [ep("fd00::1:30", { node: "node-b" })], {
    ns: "shop",
    addressType: "IPv6",
    ports: [{ name: "https", port: 8443 }],
  }),
  svc("kube-dns", {
    clusterIP: "198.18.128.53",
    ports: [{ name: "dns", protocol: "UDP", port: 53 }, { name: "dns-tcp", port: 53 }],
  }, { ns: "kube-system" }),
  slice("kube-dns-1", "kube-dns", [ep("198.18.1.20"), ep("198.18.1.21")], {
    ns: "kube-system",
    ports: [{ name: "dns", protocol: "UDP", port: 53 }, { name: "dns-tcp", port: 53 }],
  }),
];

Deno.test("snapshot: same input in any order gives byte-identical output", () => {
  const settings = { ...SETTINGS, clusterCIDRs: ["198.18.1.0/24", "fd00::1:0/112"] };
  const reference = build(EXAMPLE, settings);
  const referenceJSON = JSON.stringify(reference);
  const rand = prng(7);
  for (let i = 0; i < 25; i++) {
    const shuffled = shuffle(EXAMPLE, rand);
    const cidrs = shuffle(settings.clusterCIDRs, rand);
    const snap = build(shuffled, { ...settings, clusterCIDRs: cidrs });
    assert.equal(snap.hash, reference.hash);
    assert.equal(JSON.stringify(snap), referenceJSON);
  }
  // Endpoints inside a slice, and ports inside a service, in another order.
  const reordered = EXAMPLE.map((raw) => {
    if (raw["kind"] !== "EndpointSlice") return raw;
    return { ...raw, endpoints: [...(raw["endpoints"] as Raw[])].reverse() };
  });
  assert.equal(build(reordered, settings).hash, reference.hash);
});

Deno.test("snapshot: the hash is a 32-digit hex content hash that covers every field", () => {
  const a = build(EXAMPLE);
  assert.match(a.hash, /^[0-9a-f]{32}$/);
  assert.equal(a.version, 1);
  const b = build(EXAMPLE, { ...SETTINGS, masqueradeAll: true });
  assert.notEqual(a.hash, b.hash, "options are hashed");
  assert.deepEqual(
    a.servicePorts.map((p) => p.hash),
    b.servicePorts.map((p) => p.hash),
    "service port hashes do not depend on options",
  );
  const c = build([...EXAMPLE, slice("web-3", "web", [ep("198.18.1.9")])]);
  assert.notEqual(c.hash, a.hash);
  assert.notEqual(portOf(c, WEB).hash, portOf(a, WEB).hash);
  assert.equal(portOf(c, "shop/api:https").hash, portOf(a, "shop/api:https").hash);
});

Deno.test("snapshot: service port hashes are stable for equal content", () => {
  const a = portOf(build(EXAMPLE), WEB);
  const b = portOf(
    build([EXAMPLE[2] as Raw, EXAMPLE[3] as Raw, EXAMPLE[4] as Raw, EXAMPLE[0] as Raw]),
    WEB,
  );
  assert.equal(a.hash, b.hash);
  assert.deepEqual(a, b);
});

Deno.test("snapshot: deeply frozen; mutation throws in strict mode", () => {
  const snap = build(EXAMPLE, { ...SETTINGS, clusterCIDRs: ["198.18.1.0/24"] });
  const sp = portOf(snap, WEB);
  const attempts: [string, () => void][] = [
    ["hash", () => ((snap as { hash: string }).hash = "x")],
    ["servicePorts.push", () => (snap.servicePorts as unknown[]).push(sp)],
    ["servicePorts[0] =", () => ((snap.servicePorts as unknown[])[0] = sp)],
    ["node.name", () => ((snap.node as { name: string }).name = "x")],
    ["node.primaryIPs", () => (snap.node.primaryIPs as string[]).push("198.18.0.99")],
    ["options.clusterCIDRs", () => (snap.options.clusterCIDRs as string[]).pop()],
    ["entry.port", () => ((sp as { port: number }).port = 1)],
    ["families[0].clusterIP", () => ((famOf(sp) as { clusterIP: string }).clusterIP = "x")],
    ["endpoints.sort", () => (famOf(sp).endpoints as unknown[]).reverse()],
    ["endpoint.ready", () => ((famOf(sp).endpoints[0] as { ready: boolean }).ready = false)],
    ["clusterEndpoints", () => (famOf(sp).clusterEndpoints as unknown[]).length = 0],
    ["delete", () => delete (snap as { version?: number }).version],
  ];
  for (const [what, attempt] of attempts) assert.throws(attempt, TypeError, what);
  // Incremental snapshots are frozen too.
  const next = reconcile(initialProxyState(SETTINGS), [upsert(webSvc())]).state.snapshot;
  assert.ok(Object.isFrozen(next) && Object.isFrozen(next.servicePorts));
  assert.ok(Object.isFrozen(next.servicePorts[0]?.families[0]));
});

Deno.test("reconcile: incremental results equal a from-scratch build (seeded random sequences)", () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    const rand = prng(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)] as T;
    const universe = new RandomUniverse(rand, pick);
    let state = initialProxyState(SETTINGS);
    const model = new Map<string, KubeObject>();
    for (let step = 0; step < 150; step++) {
      const batch: ProxyEvent[] = [];
      const size = 1 + Math.floor(rand() * 5);
      for (let i = 0; i < size; i++) {
        const r = rand();
        if (r < 0.6) {
          const o = obj(universe.randomObject());
          model.set(objectKey(o), o);
          batch.push({ type: "upsert", object: o });
        } else if (r < 0.67 && model.size > 0) {
          // Re-send an object unchanged: nothing may change.
          const o = pick([...model.values()]);
          batch.push({ type: "upsert", object: o });
        } else if (r < 0.95) {
          const o = obj(universe.randomObject());
          const m = o.object.metadata;
          // A deleted Node of this node's name stays as last seen (see the drain test below).
          if (!(o.kind === "Node" && m.name === SETTINGS.nodeName)) model.delete(objectKey(o));
          batch.push({
            type: "delete",
            kind: o.kind,
            namespace: o.kind === "Node" ? null : m.namespace ?? "default",
            name: m.name,
          });
        } else {
          const objects = Array.from(
            { length: Math.floor(rand() * 12) },
            () => obj(universe.randomObject()),
          );
          model.clear();
          for (const o of objects) model.set(objectKey(o), o);
          batch.push({ type: "replace", objects });
        }
      }
      const before = state.snapshot;
      const result = reconcile(state, batch);
      state = result.state;
      const expected = buildSnapshot([...model.values()], SETTINGS);
      const where = `seed ${seed} step ${step}`;
      assert.equal(JSON.stringify(state.snapshot), JSON.stringify(expected), where);
      assert.equal(state.snapshot.hash, expected.hash, where);
      assert.deepEqual(result.changedServicePorts, expectedChanges(before, state.snapshot), where);
      assert.equal(
        result.nodeChanged,
        JSON.stringify(before.node) !== JSON.stringify(state.snapshot.node),
        where,
      );
      if (result.changedServicePorts.length === 0 && !result.nodeChanged) {
        assert.equal(state.snapshot, before, `${where}: unchanged snapshot is kept as is`);
      }
    }
  }
});

/** Random variants of a fixed set of objects, so upserts and deletes collide often. */
class RandomUniverse {
  constructor(
    readonly rand: () => number,
    readonly pick: <T>(items: readonly T[]) => T,
  ) {}

  randomObject(): Raw {
    const r = this.rand();
    if (r < 0.3) return this.service();
    if (r < 0.85) return this.endpointSlice();
    return this.node();
  }

  service(): Raw {
    const { pick, rand } = this;
    const [ns, name] = pick([["default", "web"], ["default", "hl"], ["shop", "api"]] as const);
    const dual = rand() < 0.4;
    const spec: Raw = {
      clusterIPs: dual
        ? ["198.18.128.10", "fd00::80:10"]
        : [pick(["198.18.128.10", "198.18.128.11"])],
      ports: pick([
        [{ name: "http", port: 80 }],
        [{ name: "http", port: 80 }, { name: "https", port: 443 }],
        [{ name: "dns", protocol: "UDP", port: 53 }, { name: "http", port: 8000 }],
        [{ port: 9000 }],
      ]),
    };
    const type = pick(["ClusterIP", "NodePort", "LoadBalancer"]);
    spec["type"] = type;
    if (type !== "ClusterIP") {
      spec["ports"] = (spec["ports"] as Raw[]).map((p, i) => ({ ...p, nodePort: 30000 + i }));
    }
    if (rand() < 0.3) spec["externalTrafficPolicy"] = "Local";
    if (rand() < 0.3) spec["internalTrafficPolicy"] = "Local";
    if (rand() < 0.2) spec["sessionAffinity"] = "ClientIP";
    if (rand() < 0.2) spec["externalIPs"] = ["198.18.200.1"];
    if (rand() < 0.1) spec["clusterIPs"] = ["None"];
    const labels = rand() < 0.1 ? { "service.kubernetes.io/service-proxy-name": "x" } : undefined;
    const status = { loadBalancer: { ingress: [{ ip: "198.18.250.1" }] } };
    return svc(name, spec, { ns, status, ...(labels ? { labels } : {}) });
  }

  endpointSlice(): Raw {
    const { pick, rand } = this;
    const ns = rand() < 0.8 ? "default" : "shop";
    const name = pick(["s0", "s1", "s2", "s3", "s4"]);
    const service = pick(["web", "hl", "api", "gone"]);
    const v6 = rand() < 0.3;
    const portSets = [
      [{ name: "http", port: 8080 }],
      [{ name: "http", port: 8081 }, { name: "https", port: 8443 }],
      [{ name: "dns", protocol: "UDP", port: 53 }],
      [{ port: 9000 }],
    ];
    const hinted = rand() < 0.5;
    const endpoints = Array.from({ length: Math.floor(rand() * 5) }, () => {
      const host = 2 + Math.floor(rand() * 6);
      const cond = pick([{}, { ready: false }, TERMINATING, { ready: true }, {
        ready: false,
        serving: false,
        terminating: true,
      }]);
      const opts: Record<string, unknown> = { ...cond };
      const where = pick([null, "node-a", "node-b"]);
      if (where !== null) opts["node"] = where;
      if (hinted) opts["hints"] = [pick(["zone-a", "zone-b"])];
      return ep(v6 ? `fd00::1:${host}` : `198.18.1.${host}`, opts);
    });
    return slice(name, service, endpoints, {
      ns,
      addressType: v6 ? "IPv6" : "IPv4",
      ports: pick(portSets),
    });
  }

  node(): Raw {
    const { pick } = this;
    return node(pick(["node-a", "node-b"]), pick(["zone-a", "zone-b", null]), [
      pick(["198.18.0.10", "198.18.0.11"]),
    ]);
  }
}

Deno.test("reconcile: changedServicePorts lists exactly what changed", () => {
  const s0 = reconcile(initialProxyState(SETTINGS), [
    upsert(webSvc({ ports: [{ name: "http", port: 80 }, { name: "https", port: 443 }] })),
    upsert(svc("db", { clusterIP: "198.18.128.30", ports: [{ port: 5432 }] })),
  ]);
  assert.deepEqual(s0.changedServicePorts, ["default/db", WEB, "default/web:https"]);
  assert.equal(s0.nodeOrOptionsChanged, false);
  const s1 = reconcile(s0.state, [
    upsert(slice("web-1", "web", [ep("198.18.1.2")])),
  ]);
  assert.deepEqual(s1.changedServicePorts, [WEB], "only the port the slice serves");
  const s2 = reconcile(s1.state, [
    upsert(webSvc({ ports: [{ name: "http", port: 80 }] })),
  ]);
  assert.deepEqual(s2.changedServicePorts, ["default/web:https"], "a removed port");
  const s3 = reconcile(s2.state, [del("Service", "db")]);
  assert.deepEqual(s3.changedServicePorts, ["default/db"]);
  assert.deepEqual(s3.state.snapshot.servicePorts.map((p) => p.id), [WEB]);
  const s4 = reconcile(s3.state, [del("Service", "db"), del("EndpointSlice", "nope")]);
  assert.deepEqual(s4.changedServicePorts, [], "deleting what is gone changes nothing");
  assert.equal(s4.state.snapshot, s3.state.snapshot);
});

Deno.test("reconcile: changes that cancel out produce no change", () => {
  const base = run([[upsert(webSvc()), upsert(slice("web-1", "web", [ep("198.18.1.2")]))]]);
  const cases: [string, ProxyEvent[]][] = [
    ["the same objects again", [
      upsert(webSvc()),
      upsert(slice("web-1", "web", [ep("198.18.1.2")])),
    ]],
    [
      "edit then revert",
      [
        upsert(slice("web-1", "web", [ep("198.18.1.9")])),
        upsert(slice("web-1", "web", [ep("198.18.1.2")])),
      ],
    ],
    [
      "delete then re-add",
      [
        del("Service", "web"),
        del("EndpointSlice", "web-1"),
        upsert(webSvc()),
        upsert(slice("web-1", "web", [ep("198.18.1.2")])),
      ],
    ],
    [
      "add then delete a new service",
      [
        upsert(svc("db", { clusterIP: "198.18.128.30", ports: [{ port: 5432 }] })),
        del("Service", "db"),
      ],
    ],
    [
      "a second slice with the same endpoint",
      [upsert(slice("web-2", "web", [ep("198.18.1.2")]))],
    ],
    ["an empty batch", []],
    ["another node's Node", [upsert(node("node-b", "zone-b"))]],
  ];
  for (const [what, batch] of cases) {
    const r = reconcile(base.state, batch);
    assert.deepEqual(r.changedServicePorts, [], what);
    assert.equal(r.nodeOrOptionsChanged, false, what);
    assert.equal(r.state.snapshot.hash, base.state.snapshot.hash, what);
  }
});

Deno.test("reconcile: the previous state is never mutated", () => {
  const first = run([[upsert(webSvc()), upsert(slice("web-1", "web", [ep("198.18.1.2")]))]]);
  const json = JSON.stringify(first.state.snapshot);
  const sizes = [
    first.state.services.size,
    first.state.slices.size,
    first.state.slicesByService.size,
  ];
  reconcile(first.state, [
    del("Service", "web"),
    upsert(slice("web-2", "web", [ep("198.18.1.3")])),
  ]);
  reconcile(first.state, [{ type: "replace", objects: [] }]);
  assert.equal(JSON.stringify(first.state.snapshot), json);
  assert.deepEqual(
    [first.state.services.size, first.state.slices.size, first.state.slicesByService.size],
    sizes,
  );
  assert.deepEqual([...(first.state.slicesByService.get("default/web") ?? [])], ["default/web-1"]);
});

Deno.test("reconcile: a slice moving from one service to another updates both", () => {
  const base = run([[
    upsert(webSvc()),
    upsert(svc("web2", { clusterIP: "198.18.128.12", ports: [{ name: "http", port: 80 }] })),
    upsert(slice("s1", "web", [ep("198.18.1.2")])),
  ]]);
  assert.equal(famOf(portOf(base.state.snapshot, WEB)).endpoints.length, 1);
  const moved = reconcile(base.state, [upsert(slice("s1", "web2", [ep("198.18.1.2")]))]);
  assert.deepEqual(moved.changedServicePorts, ["default/web2:http", WEB]);
  assert.equal(famOf(portOf(moved.state.snapshot, WEB)).endpoints.length, 0);
  assert.equal(famOf(portOf(moved.state.snapshot, "default/web2:http")).endpoints.length, 1);
  assert.equal(moved.state.slicesByService.has("default/web"), false);
  // Losing its label detaches it.
  const unlabelled = slice("s1", "web2", [ep("198.18.1.2")]);
  (unlabelled["metadata"] as Raw)["labels"] = {};
  const detached = reconcile(moved.state, [upsert(unlabelled)]);
  assert.deepEqual(detached.changedServicePorts, ["default/web2:http"]);
  assert.equal(
    detached.state.snapshot.hash,
    build([
      webSvc(),
      svc("web2", { clusterIP: "198.18.128.12", ports: [{ name: "http", port: 80 }] }),
    ]).hash,
  );
});

Deno.test("reconcile: a slice that arrives before its service is used once the service does", () => {
  const r = run([
    [upsert(slice("s1", "web", [ep("198.18.1.2")]))],
    [upsert(webSvc())],
  ]);
  assert.deepEqual(r.changedServicePorts, [WEB]);
  assert.equal(famOf(portOf(r.state.snapshot, WEB)).endpoints.length, 1);
  const gone = reconcile(r.state, [del("Service", "web")]);
  assert.deepEqual(gone.state.snapshot.servicePorts, []);
  const back = reconcile(gone.state, [upsert(webSvc())]);
  assert.equal(famOf(portOf(back.state.snapshot, WEB)).endpoints.length, 1, "slices are kept");
});

Deno.test("reconcile: a Node zone change recomputes topology", () => {
  const hinted = slice("s1", "web", [
    ep("198.18.1.2", { hints: ["zone-a"] }),
    ep("198.18.1.3", { hints: ["zone-b"] }),
  ]);
  const plain = svc("db", { clusterIP: "198.18.128.30", ports: [{ port: 5432 }] });
  const base = run([[
    upsert(webSvc()),
    upsert(hinted),
    upsert(plain),
    upsert(node("node-a", "zone-a")),
  ]]);
  assert.deepEqual(famOf(portOf(base.state.snapshot, WEB)).clusterEndpoints.map((e) => e.ip), [
    "198.18.1.2",
  ]);
  const moved = reconcile(base.state, [upsert(node("node-a", "zone-b"))]);
  assert.equal(moved.nodeOrOptionsChanged, true);
  assert.deepEqual(moved.changedServicePorts, [WEB], "only the hinted service changed");
  assert.equal(moved.state.snapshot.node.zone, "zone-b");
  assert.deepEqual(famOf(portOf(moved.state.snapshot, WEB)).clusterEndpoints.map((e) => e.ip), [
    "198.18.1.3",
  ]);
  const unlabelled = reconcile(moved.state, [upsert(node("node-a", null))]);
  assert.deepEqual(unlabelled.changedServicePorts, [WEB]);
  assert.equal(famOf(portOf(unlabelled.state.snapshot, WEB)).clusterEndpoints.length, 2);
  // Deleting the Node changes nothing: its last zone stays (as upstream's NodeManager).
  const deleted = reconcile(moved.state, [del("Node", "node-a", null)]);
  assert.equal(deleted.state.snapshot.node.known, true);
  assert.equal(deleted.state.snapshot.node.zone, "zone-b");
  assert.deepEqual(deleted.changedServicePorts, []);
});

Deno.test("reconcile: Node facts in the snapshot", () => {
  const n = node("node-a", "zone-a", ["198.18.0.10", "fd00::10", "198.18.0.12"]);
  (n["status"] as Raw)["addresses"] = [
    { type: "Hostname", address: "node-a" },
    { type: "ExternalIP", address: "198.18.0.99" },
    { type: "InternalIP", address: "fd00:0::10" },
    { type: "InternalIP", address: "198.18.0.10" },
    { type: "InternalIP", address: "198.18.0.12" },
  ];
  const snap = build([n]);
  assert.deepEqual(snap.node, {
    name: "node-a",
    zone: "zone-a",
    primaryIPs: ["198.18.0.10", "fd00::10"],
    nodePortIPs: { IPv4: null, IPv6: null },
    deleting: false,
    toBeDeleted: false,
    known: true,
  });
  const deleting = {
    ...n,
    metadata: { ...(n["metadata"] as Raw), deletionTimestamp: "2024-01-01T00:00:00Z" },
  };
  assert.equal(build([deleting]).node.deleting, true);
  const tainted = {
    ...n,
    spec: {
      taints: [
        { key: "node.kubernetes.io/unschedulable", effect: "NoSchedule" },
        { key: "ToBeDeletedByClusterAutoscaler", value: "1732000000", effect: "NoSchedule" },
      ],
    },
  };
  assert.equal(build([tainted]).node.toBeDeleted, true);
  assert.equal(build([tainted]).node.deleting, false);
  assert.equal(build([]).node.known, false);
  assert.deepEqual(build([]).node.primaryIPs, []);
  const ext = node("node-a", null);
  (ext["status"] as Raw)["addresses"] = [{ type: "ExternalIP", address: "198.18.0.99" }];
  assert.deepEqual(build([ext]).node.primaryIPs, ["198.18.0.99"], "ExternalIP when no InternalIP");
});

Deno.test("reconcile: a deleted Node keeps its last facts (NodePorts live on during a drain)", () => {
  const n = node("node-a", "zone-a", ["198.18.0.10"]);
  const settings = { ...SETTINGS, nodePortAddresses: ["primary"] };
  const base = run([[upsert(n)]], settings);
  const r = reconcile(base.state, [del("Node", "node-a", null)]);
  assert.deepEqual(r.state.snapshot.node, base.state.snapshot.node);
  assert.deepEqual(r.state.snapshot.node.nodePortIPs, { IPv4: ["198.18.0.10"], IPv6: null });
  assert.equal(r.nodeOrOptionsChanged, false);
});

Deno.test("reconcile: nodePortAddresses select the NodePort addresses, per family as upstream", async (t) => {
  const n = node("node-a", null, ["198.18.0.10", "fd00::10"]);
  const v4only = node("node-a", null, ["198.18.0.10"]);
  const host = ["198.18.0.10", "198.18.0.200", "127.0.0.1", "fd00::10", "fd00::1:1"];
  type Want = { IPv4: string[] | null; IPv6: string[] | null };
  const cases: [string, string[], Want, Raw?][] = [
    ["empty: every local address of both families", [], { IPv4: null, IPv6: null }],
    ["primary", ["primary"], { IPv4: ["198.18.0.10"], IPv6: ["fd00::10"] }],
    ["primary with an IPv4-only Node: every local IPv6 address", ["primary"], {
      IPv4: ["198.18.0.10"],
      IPv6: null,
    }, v4only],
    ["a CIDR picks host addresses; the other family takes all", ["198.18.0.0/24"], {
      IPv4: ["198.18.0.10", "198.18.0.200"],
      IPv6: null,
    }],
    ["v6 CIDR", ["fd00::1:0/112"], { IPv4: null, IPv6: ["fd00::1:1"] }],
    ["no match: none of that family", ["198.19.0.0/24"], { IPv4: [], IPv6: null }],
    ["0.0.0.0/0 is every local address, whatever else", ["0.0.0.0/0", "198.18.0.0/24"], {
      IPv4: null,
      IPv6: null,
    }],
    ["::/0 with an IPv4 CIDR", ["::/0", "198.18.0.10/32"], { IPv4: ["198.18.0.10"], IPv6: null }],
    ["both families listed", ["198.18.0.10/32", "fd00::/64"], {
      IPv4: ["198.18.0.10"],
      IPv6: ["fd00::10", "fd00::1:1"],
    }],
  ];
  for (const [name, npa, want, nodeObject] of cases) {
    await t.step(name, () => {
      const snap = build([nodeObject ?? n], {
        ...SETTINGS,
        nodePortAddresses: npa,
        hostAddresses: host,
      });
      assert.deepEqual(snap.node.nodePortIPs, want);
    });
  }
});

Deno.test("reconcile: settings events change options and locality", () => {
  const objects = [
    upsert(webSvc()),
    upsert(
      slice("s1", "web", [
        ep("198.18.1.2", { node: "node-a" }),
        ep("198.18.1.3", { node: "node-b" }),
      ]),
    ),
    upsert(node("node-a", "zone-a")),
    upsert(node("node-b", "zone-b")),
  ];
  const base = run([objects]);
  const cidrs = reconcile(base.state, [{
    type: "settings",
    settings: { ...SETTINGS, clusterCIDRs: [" 198.18.1.7/24 ", "198.18.1.0/24", "bad"] },
  }]);
  assert.equal(cidrs.nodeOrOptionsChanged, true);
  assert.deepEqual(cidrs.changedServicePorts, []);
  assert.deepEqual(cidrs.state.snapshot.options.clusterCIDRs, ["198.18.1.0/24"]);
  assert.notEqual(cidrs.state.snapshot.hash, base.state.snapshot.hash);
  const renamed = reconcile(base.state, [{
    type: "settings",
    settings: { ...SETTINGS, nodeName: "node-b" },
  }]);
  assert.deepEqual(renamed.changedServicePorts, [WEB]);
  assert.deepEqual(
    famOf(portOf(renamed.state.snapshot, WEB)).endpoints.filter((e) => e.isLocal).map((e) => e.ip),
    ["198.18.1.3"],
  );
  // The old node's facts do not carry over to the new name.
  assert.equal(renamed.state.snapshot.node.name, "node-b");
  assert.notEqual(renamed.state.snapshot.node.zone, "zone-a");
  const seen = reconcile(renamed.state, [upsert(node("node-b", "zone-b"))]);
  assert.equal(seen.state.snapshot.node.zone, "zone-b");
  assert.equal(
    seen.state.snapshot.hash,
    buildSnapshot(objects.map((e) => (e as { object: KubeObject }).object), {
      ...SETTINGS,
      nodeName: "node-b",
    }).hash,
  );
});

Deno.test("reconcile: replace drops stale objects", () => {
  const base = run([[
    upsert(webSvc()),
    upsert(slice("s1", "web", [ep("198.18.1.2")])),
    upsert(svc("db", { clusterIP: "198.18.128.30", ports: [{ port: 5432 }] })),
    upsert(node("node-a", "zone-a")),
  ]]);
  const r = reconcile(base.state, [{
    type: "replace",
    objects: [obj(webSvc()), obj(slice("s2", "web", [ep("198.18.1.3")]))],
  }]);
  assert.deepEqual(r.changedServicePorts, ["default/db", WEB]);
  assert.deepEqual(r.state.snapshot.servicePorts.map((p) => p.id), [WEB]);
  assert.deepEqual(famOf(portOf(r.state.snapshot, WEB)).endpoints.map((e) => e.ip), ["198.18.1.3"]);
  assert.equal(r.state.snapshot.node.known, false, "the Node was not in the new list");
  assert.equal(r.nodeOrOptionsChanged, true);
  assert.deepEqual([...r.state.slices.keys()], ["default/s2"]);
  assert.deepEqual([...r.state.services.keys()], ["default/web"]);
  // Events after a replace in the same batch apply on top of it.
  const after = reconcile(base.state, [
    { type: "replace", objects: [obj(webSvc())] },
    upsert(slice("s3", "web", [ep("198.18.1.4")])),
  ]);
  assert.deepEqual(famOf(portOf(after.state.snapshot, WEB)).endpoints.map((e) => e.ip), [
    "198.18.1.4",
  ]);
});

Deno.test("buildSnapshot: a later object with the same key wins", () => {
  const snap = build([
    slice("s1", "web", [ep("198.18.1.2")]),
    webSvc(),
    slice("s1", "web", [ep("198.18.1.3")]),
  ]);
  assert.deepEqual(famOf(portOf(snap, WEB)).endpoints.map((e) => e.ip), ["198.18.1.3"]);
});

Deno.test("draining a node (deletion, autoscaler taint) changes the node but no rule: no full sync", () => {
  const n = node("node-a", "zone-a");
  const s0 = reconcile(initialProxyState(SETTINGS), [upsert(n)]);
  const tainted = {
    ...n,
    spec: { taints: [{ key: "ToBeDeletedByClusterAutoscaler", effect: "NoSchedule" }] },
  };
  const s1 = reconcile(s0.state, [upsert(tainted)]);
  assert.equal(s1.nodeChanged, true);
  assert.equal(s1.nodeOrOptionsChanged, false, "a taint changes no rule");
  assert.equal(s1.state.snapshot.node.toBeDeleted, true);
  assert.notEqual(s1.state.snapshot.hash, s0.state.snapshot.hash, "the snapshot says so");
  const deleting = {
    ...tainted,
    metadata: { ...(n["metadata"] as Raw), deletionTimestamp: "2024-01-01T00:00:00Z" },
  };
  const s2 = reconcile(s1.state, [upsert(deleting)]);
  assert.equal(s2.nodeChanged, true);
  assert.equal(s2.nodeOrOptionsChanged, false);
  const s3 = reconcile(s2.state, [upsert(node("node-a", "zone-b"))]);
  assert.equal(s3.nodeChanged, true);
  assert.equal(s3.nodeOrOptionsChanged, true, "a zone change does change rules");
});
