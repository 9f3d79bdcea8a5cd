// IP plan: nodes 198.18.0.0/24, pods 198.18.1.0/24 and fd00::1:0/112, services 198.18.128.0/17
// and fd00::80:0/112, external IPs 198.18.200.0/24 and fd00::c8:0/112, LoadBalancer ingress
// 198.18.250.0/24 and fd00::fa:0/112, clients 198.19.0.0/24 and fd00::c0:0/112.
import assert from "node:assert/strict";
import {
  addrs,
  build,
  ep,
  famOf,
  node,
  obj,
  portOf,
  type Raw,
  slice,
  svc,
  TERMINATING,
  webSvc,
} from "./fixtures_test.ts";
import { buildServicePorts } from "./service_ports.ts";
import type { EndpointSlice } from "../model/endpoint_slice.ts";
import type { Service } from "../model/service.ts";

const WEB = "default/web:http";

Deno.test("service ports: a ClusterIP service gives one entry per port with kube-proxy's ids", () => {
  const snap = build([
    svc("web", {
      clusterIP: "198.18.128.10",
      ports: [
        { name: "http", port: 80 },
        { name: "https", protocol: "TCP", port: 443 },
      ],
    }),
    svc("plain", { clusterIP: "198.18.128.11", ports: [{ port: 8080 }] }, { ns: "other" }),
  ]);
  assert.deepEqual(snap.servicePorts.map((p) => p.id), [
    "default/web:http",
    "default/web:https",
    "other/plain",
  ]);
  const http = portOf(snap, WEB);
  assert.equal(http.namespace, "default");
  assert.equal(http.name, "web");
  assert.equal(http.portName, "http");
  assert.equal(http.protocol, "TCP");
  assert.equal(http.port, 80);
  assert.equal(http.type, "ClusterIP");
  assert.equal(http.nodePort, null);
  assert.equal(http.healthCheckNodePort, null);
  assert.equal(http.sessionAffinityTimeoutSeconds, null);
  assert.equal(http.externalTrafficPolicy, "Cluster");
  assert.equal(http.internalTrafficPolicy, "Cluster");
  assert.deepEqual(http.families.map((f) => [f.family, f.clusterIP]), [["IPv4", "198.18.128.10"]]);
  assert.equal(portOf(snap, "other/plain").portName, "");
});

Deno.test("service ports: a namespace-less Service is in default and its ports keep their order of ids", () => {
  const raw = svc("web", { clusterIP: "198.18.128.10", ports: [{ name: "b", port: 2 }] });
  delete (raw["metadata"] as Raw)["namespace"];
  assert.deepEqual(build([raw]).servicePorts.map((p) => p.id), ["default/web:b"]);
});

Deno.test("service ports: cluster IPs per family, IPv4 first, canonical text", async (t) => {
  const cases: {
    name: string;
    spec: Raw;
    want: [string, string][];
  }[] = [
    {
      name: "clusterIP only",
      spec: { clusterIP: "198.18.128.10" },
      want: [["IPv4", "198.18.128.10"]],
    },
    {
      name: "clusterIPs dual-stack, v6 listed first",
      spec: {
        clusterIP: "fd00::80:10",
        clusterIPs: ["FD00:0:0:0:0:0:80:10", "198.18.128.10"],
      },
      want: [["IPv4", "198.18.128.10"], ["IPv6", "fd00::80:10"]],
    },
    {
      name: "IPv6 single-stack",
      spec: { clusterIPs: ["fd00::80:10"] },
      want: [["IPv6", "fd00::80:10"]],
    },
    {
      name: "clusterIPs wins over clusterIP",
      spec: { clusterIP: "198.18.128.99", clusterIPs: ["198.18.128.10"] },
      want: [["IPv4", "198.18.128.10"]],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const snap = build([svc("web", { ports: [{ name: "http", port: 80 }], ...c.spec })]);
      assert.deepEqual(portOf(snap, WEB).families.map((f) => [f.family, f.clusterIP]), c.want);
    });
  }
});

Deno.test("service ports: a v4-only slice of a dual-stack service gives v4 endpoints only", () => {
  const snap = build([
    webSvc({ clusterIPs: ["198.18.128.10", "fd00::80:10"] }),
    slice("web-v4", "web", [ep("198.18.1.2"), ep("198.18.1.3")]),
  ]);
  const sp = portOf(snap, WEB);
  assert.deepEqual(addrs(famOf(sp, "IPv4").endpoints), ["198.18.1.2:8080", "198.18.1.3:8080"]);
  assert.deepEqual(famOf(sp, "IPv6").endpoints, []);
  assert.deepEqual(famOf(sp, "IPv6").clusterEndpoints, []);
  assert.equal(famOf(sp, "IPv6").hasAnyEndpoints, false);
  assert.equal(famOf(sp, "IPv4").hasAnyEndpoints, true);
});

Deno.test("service ports: dual-stack slices feed their own family, addresses canonicalised", () => {
  const snap = build([
    webSvc({ clusterIPs: ["198.18.128.10", "fd00::80:10"] }),
    slice("web-v4", "web", [ep("198.18.1.2")]),
    slice("web-v6", "web", [ep("FD00:0::1:2")], { addressType: "IPv6" }),
  ]);
  const sp = portOf(snap, WEB);
  assert.deepEqual(addrs(famOf(sp, "IPv4").endpoints), ["198.18.1.2:8080"]);
  assert.deepEqual(addrs(famOf(sp, "IPv6").endpoints), ["[fd00::1:2]:8080"]);
});

Deno.test("service ports: a service with a family but no slice of it keeps that family without endpoints", () => {
  const snap = build([
    webSvc({ clusterIPs: ["fd00::80:10"] }),
    slice("v4", "web", [ep("198.18.1.2")]),
  ]);
  const f = famOf(portOf(snap, WEB), "IPv6");
  assert.deepEqual(f.endpoints, []);
  assert.equal(snap.servicePorts[0]?.families.length, 1);
});

Deno.test("service ports: NodePort only for NodePort and LoadBalancer services", async (t) => {
  const cases: { type: string; nodePort: number | undefined; want: number | null }[] = [
    { type: "NodePort", nodePort: 30080, want: 30080 },
    { type: "LoadBalancer", nodePort: 30080, want: 30080 },
    { type: "ClusterIP", nodePort: 30080, want: null },
    { type: "LoadBalancer", nodePort: undefined, want: null },
  ];
  for (const c of cases) {
    await t.step(`${c.type} nodePort ${c.nodePort}`, () => {
      const port: Raw = { name: "http", port: 80 };
      if (c.nodePort !== undefined) port["nodePort"] = c.nodePort;
      const sp = portOf(build([webSvc({ type: c.type, ports: [port] })]), WEB);
      assert.equal(sp.nodePort, c.want);
      assert.equal(sp.type, c.type);
    });
  }
});

Deno.test("service ports: externalIPs split by family, canonical, sorted, de-duplicated", () => {
  const sp = portOf(
    build([
      webSvc({
        clusterIPs: ["198.18.128.10", "fd00::80:10"],
        externalIPs: ["198.18.200.9", "fd00:0::c8:1", "198.18.200.1", "198.18.200.9"],
      }),
    ]),
    WEB,
  );
  assert.deepEqual(famOf(sp, "IPv4").externalIPs, ["198.18.200.1", "198.18.200.9"]);
  assert.deepEqual(famOf(sp, "IPv6").externalIPs, ["fd00::c8:1"]);
});

Deno.test("service ports: externalIPs of a family the service lacks are dropped", () => {
  const sp = portOf(build([webSvc({ externalIPs: ["fd00::c8:1"] })]), WEB);
  assert.deepEqual(sp.families.map((f) => f.family), ["IPv4"]);
  assert.deepEqual(famOf(sp).externalIPs, []);
});

Deno.test("service ports: LoadBalancer ingress IPs, read as upstream reads them", async (t) => {
  const ingress = [
    { ip: "198.18.250.2" },
    { ip: "198.18.250.1", ipMode: "VIP" },
    { ip: "198.18.250.3", ipMode: "Proxy" },
    // An ipMode a later API may add: not a VIP, and the Service stays readable.
    { ip: "198.18.250.4", ipMode: "Tunnel" },
    { hostname: "lb.example" },
    { ip: "fd00::fa:1" },
  ];
  const status = { loadBalancer: { ingress } };
  const dual = { clusterIPs: ["198.18.128.10", "fd00::80:10"] };
  for (const type of ["LoadBalancer", "NodePort", "ClusterIP"]) {
    // Upstream reads status.loadBalancer whatever the type (the API server clears it when a
    // Service stops being a LoadBalancer; a manifest may still carry it).
    await t.step(`type ${type}: only VIP ingress IPs (ipMode absent or VIP), per family`, () => {
      const sp = portOf(build([webSvc({ type, ...dual }, { status })]), WEB);
      assert.deepEqual(famOf(sp, "IPv4").loadBalancerIPs, ["198.18.250.1", "198.18.250.2"]);
      assert.deepEqual(famOf(sp, "IPv6").loadBalancerIPs, ["fd00::fa:1"]);
    });
  }
});

Deno.test("service ports: protocols TCP (default), UDP, SCTP; slice ports matched by name and protocol", async (t) => {
  for (const protocol of ["TCP", "UDP", "SCTP", undefined]) {
    await t.step(`service protocol ${protocol ?? "(absent)"}`, () => {
      const port: Raw = { name: "p", port: 53 };
      if (protocol !== undefined) port["protocol"] = protocol;
      const snap = build([
        svc("dns", { clusterIP: "198.18.128.53", ports: [port] }),
        slice("dns-1", "dns", [ep("198.18.1.2")], {
          ports: [
            { name: "p", protocol: "TCP", port: 1053 },
            { name: "p", protocol: "UDP", port: 2053 },
            { name: "p", protocol: "SCTP", port: 3053 },
          ],
        }),
      ]);
      const sp = portOf(snap, "default/dns:p");
      const want = { TCP: 1053, UDP: 2053, SCTP: 3053 }[protocol ?? "TCP"];
      assert.equal(sp.protocol, protocol ?? "TCP");
      assert.deepEqual(addrs(famOf(sp).endpoints), [`198.18.1.2:${want}`]);
    });
  }
  await t.step("a slice port without protocol is TCP", () => {
    const snap = build([
      webSvc(),
      slice("web-1", "web", [ep("198.18.1.2")], { ports: [{ name: "http", port: 9000 }] }),
    ]);
    assert.deepEqual(addrs(famOf(portOf(snap, WEB)).endpoints), ["198.18.1.2:9000"]);
  });
  await t.step("a slice port of another protocol does not match", () => {
    const snap = build([
      webSvc(),
      slice("web-1", "web", [ep("198.18.1.2")], {
        ports: [{ name: "http", protocol: "UDP", port: 9000 }],
      }),
    ]);
    assert.deepEqual(famOf(portOf(snap, WEB)).endpoints, []);
  });
  await t.step("a slice port of another name does not match; unnamed matches unnamed", () => {
    const snap = build([
      svc("web", {
        clusterIP: "198.18.128.10",
        ports: [{ name: "http", port: 80 }, { port: 81, name: "" }],
      }),
      slice("web-1", "web", [ep("198.18.1.2")], {
        ports: [{ name: "metrics", port: 9100 }, { port: 9000 }],
      }),
    ]);
    assert.deepEqual(famOf(portOf(snap, WEB)).endpoints, []);
    assert.deepEqual(addrs(famOf(portOf(snap, "default/web")).endpoints), ["198.18.1.2:9000"]);
  });
  await t.step("a slice port without a port number is unusable", () => {
    const snap = build([
      webSvc(),
      slice("web-1", "web", [ep("198.18.1.2")], { ports: [{ name: "http" }] }),
    ]);
    assert.deepEqual(famOf(portOf(snap, WEB)).endpoints, []);
  });
});

Deno.test("service ports: sessionAffinity ClientIP and its timeout", async (t) => {
  const cases: { name: string; spec: Raw; want: number | null }[] = [
    { name: "none", spec: {}, want: null },
    { name: "None", spec: { sessionAffinity: "None" }, want: null },
    { name: "ClientIP default", spec: { sessionAffinity: "ClientIP" }, want: 10800 },
    {
      name: "ClientIP 600",
      spec: {
        sessionAffinity: "ClientIP",
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } },
      },
      want: 600,
    },
    {
      name: "timeout without ClientIP",
      spec: { sessionAffinity: "None", sessionAffinityConfig: { clientIP: { timeoutSeconds: 6 } } },
      want: null,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.equal(portOf(build([webSvc(c.spec)]), WEB).sessionAffinityTimeoutSeconds, c.want);
    });
  }
});

Deno.test("service ports: externalTrafficPolicy Local only when externally accessible", async (t) => {
  const lb = { loadBalancer: { ingress: [{ ip: "198.18.250.1" }] } };
  const cases: { name: string; spec: Raw; status?: Raw; want: string }[] = [
    { name: "ClusterIP", spec: {}, want: "Cluster" },
    { name: "ClusterIP + externalIPs", spec: { externalIPs: ["198.18.200.1"] }, want: "Local" },
    {
      name: "NodePort",
      spec: { type: "NodePort", ports: [{ name: "http", port: 80, nodePort: 30080 }] },
      want: "Local",
    },
    {
      name: "LoadBalancer",
      spec: { type: "LoadBalancer", ports: [{ name: "http", port: 80, nodePort: 30080 }] },
      status: lb,
      want: "Local",
    },
    {
      name: "LoadBalancer without node ports or ingress yet",
      spec: { type: "LoadBalancer" },
      want: "Local",
    },
    {
      name: "NodePort with policy Cluster",
      spec: {
        type: "NodePort",
        externalTrafficPolicy: "Cluster",
        ports: [{ name: "http", port: 80, nodePort: 30080 }],
      },
      want: "Cluster",
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const spec = { externalTrafficPolicy: "Local", ...c.spec };
      const sp = portOf(build([webSvc(spec, c.status ? { status: c.status } : {})]), WEB);
      assert.equal(sp.externalTrafficPolicy, c.want);
    });
  }
});

Deno.test("service ports: healthCheckNodePort only for LoadBalancer with externalTrafficPolicy Local", async (t) => {
  const port = { name: "http", port: 80, nodePort: 30080 };
  const cases: { name: string; spec: Raw; want: number | null }[] = [
    {
      name: "LoadBalancer Local",
      spec: { type: "LoadBalancer", externalTrafficPolicy: "Local" },
      want: 32000,
    },
    {
      name: "LoadBalancer Cluster",
      spec: { type: "LoadBalancer", externalTrafficPolicy: "Cluster" },
      want: null,
    },
    {
      name: "NodePort Local",
      spec: { type: "NodePort", externalTrafficPolicy: "Local" },
      want: null,
    },
    { name: "ClusterIP", spec: {}, want: null },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const sp = portOf(
        build([webSvc({ ports: [port], healthCheckNodePort: 32000, ...c.spec })]),
        WEB,
      );
      assert.equal(sp.healthCheckNodePort, c.want);
    });
  }
});

Deno.test("service ports: loadBalancerSourceRanges per family, canonical, sorted, unique", () => {
  const sp = portOf(
    build([
      webSvc({
        type: "LoadBalancer",
        clusterIPs: ["198.18.128.10", "fd00::80:10"],
        loadBalancerSourceRanges: [
          " 198.19.0.77/24 ",
          "198.19.0.0/24",
          "198.18.0.0/15",
          "FD00::C0:1/112",
        ],
      }),
    ]),
    WEB,
  );
  assert.deepEqual(famOf(sp, "IPv4").loadBalancerSourceRanges, ["198.18.0.0/15", "198.19.0.0/24"]);
  assert.deepEqual(famOf(sp, "IPv6").loadBalancerSourceRanges, ["fd00::c0:0/112"]);
});

Deno.test("service ports: endpoints merged across slices, de-duplicated, a ready copy wins", async (t) => {
  const slices = [
    slice("web-a", "web", [ep("198.18.1.3", { ready: false }), ep("198.18.1.2")]),
    slice("web-b", "web", [ep("198.18.1.3", { ready: true, node: "node-b" }), ep("198.18.1.4")]),
    slice("web-c", "web", [ep("198.18.1.2", { ...TERMINATING })]),
  ];
  for (const order of [[0, 1, 2], [2, 1, 0], [1, 2, 0]]) {
    await t.step(`slice order ${order}`, () => {
      const snap = build([webSvc(), ...order.map((i) => slices[i] as Raw)]);
      const f = famOf(portOf(snap, WEB));
      assert.deepEqual(addrs(f.endpoints), [
        "198.18.1.2:8080",
        "198.18.1.3:8080",
        "198.18.1.4:8080",
      ]);
      assert.ok(f.endpoints.every((e) => e.ready));
      assert.equal(f.endpoints[1]?.nodeName, "node-b");
      assert.deepEqual(addrs(f.clusterEndpoints), addrs(f.endpoints));
    });
  }
  await t.step("a copy on this node beats a readier copy elsewhere, as upstream", () => {
    for (const names of [["web-a", "web-b"], ["web-b", "web-a"]]) {
      const snap = build([
        webSvc(),
        slice(names[0]!, "web", [ep("198.18.1.5", { ready: true, node: "node-b" })]),
        slice(names[1]!, "web", [ep("198.18.1.5", { ready: false, node: "node-a" })]),
      ]);
      const [only] = famOf(portOf(snap, WEB)).endpoints;
      assert.deepEqual([only?.isLocal, only?.ready], [true, false]);
    }
  });
  await t.step("same address with different target ports are two endpoints", () => {
    const snap = build([
      webSvc(),
      slice("web-a", "web", [ep("198.18.1.2")]),
      slice("web-b", "web", [ep("198.18.1.2")], { ports: [{ name: "http", port: 9090 }] }),
    ]);
    assert.deepEqual(addrs(famOf(portOf(snap, WEB)).endpoints), [
      "198.18.1.2:8080",
      "198.18.1.2:9090",
    ]);
  });
  await t.step("endpoints sorted numerically, not as text", () => {
    const snap = build([
      webSvc(),
      slice("web-a", "web", [ep("198.18.1.10"), ep("198.18.1.9"), ep("198.18.1.100")]),
    ]);
    assert.deepEqual(addrs(famOf(portOf(snap, WEB)).endpoints), [
      "198.18.1.9:8080",
      "198.18.1.10:8080",
      "198.18.1.100:8080",
    ]);
  });
});

Deno.test("service ports: endpoint conditions default to ready, serving and not terminating", () => {
  const snap = build([
    webSvc(),
    slice("web-a", "web", [
      ep("198.18.1.2"),
      ep("198.18.1.3", { ready: false }),
      ep("198.18.1.4", { ready: false, terminating: true }),
    ]),
  ]);
  const [a, b, c] = famOf(portOf(snap, WEB)).endpoints;
  assert.deepEqual([a?.ready, a?.serving, a?.terminating], [true, true, false]);
  // Like kube-proxy: an absent `serving` means true, whatever `ready` says.
  assert.deepEqual([b?.ready, b?.serving, b?.terminating], [false, true, false]);
  assert.deepEqual([c?.ready, c?.serving, c?.terminating], [false, true, true]);
});

Deno.test("service ports: endpoint locality, node and zone", () => {
  const snap = build([
    webSvc(),
    slice("web-a", "web", [
      ep("198.18.1.2", { node: "node-a", zone: "zone-a" }),
      ep("198.18.1.3", { node: "node-b" }),
      ep("198.18.1.4"),
    ]),
  ]);
  const eps = famOf(portOf(snap, WEB)).endpoints;
  assert.deepEqual(eps.map((e) => [e.nodeName, e.zone, e.isLocal]), [
    ["node-a", "zone-a", true],
    ["node-b", null, false],
    [null, null, false],
  ]);
});

const LOCAL_READY = { node: "node-a" };
const REMOTE_READY = { node: "node-b" };

interface PolicyCase {
  name: string;
  spec: Raw;
  eps: Raw[];
  cluster: string[];
  local: string[];
  any: boolean;
}

Deno.test("service ports: cluster and local sets with kube-proxy's fallback to serving-terminating", async (t) => {
  const nodePort = { type: "NodePort", ports: [{ name: "http", port: 80, nodePort: 30080 }] };
  const cases: PolicyCase[] = [
    {
      name: "Cluster policies: ready endpoints only",
      spec: {},
      eps: [
        ep("198.18.1.2", LOCAL_READY),
        ep("198.18.1.3", { ...TERMINATING, ...REMOTE_READY }),
        ep("198.18.1.4", { ready: false, ...REMOTE_READY }),
      ],
      cluster: ["198.18.1.2"],
      local: [],
      any: true,
    },
    {
      name: "Cluster: no ready endpoint → serving-terminating ones",
      spec: {},
      eps: [
        ep("198.18.1.3", { ...TERMINATING, ...REMOTE_READY }),
        ep("198.18.1.4", { ready: false, serving: false, terminating: true }),
        ep("198.18.1.5", { ready: false, serving: true, terminating: false }),
      ],
      cluster: ["198.18.1.3"],
      local: [],
      any: true,
    },
    {
      name: "Cluster: nothing usable",
      spec: {},
      eps: [ep("198.18.1.4", { ready: false, serving: false, terminating: true })],
      cluster: [],
      local: [],
      any: false,
    },
    {
      name: "internalTrafficPolicy Local: local ready only, no cluster set",
      spec: { internalTrafficPolicy: "Local" },
      eps: [ep("198.18.1.2", LOCAL_READY), ep("198.18.1.3", REMOTE_READY)],
      cluster: [],
      local: ["198.18.1.2"],
      any: true,
    },
    {
      name: "internalTrafficPolicy Local: no local endpoint but remote ones exist",
      spec: { internalTrafficPolicy: "Local" },
      eps: [ep("198.18.1.3", REMOTE_READY)],
      cluster: [],
      local: [],
      any: true,
    },
    {
      name: "internalTrafficPolicy Local: local fallback to serving-terminating",
      spec: { internalTrafficPolicy: "Local" },
      eps: [ep("198.18.1.2", { ...TERMINATING, ...LOCAL_READY }), ep("198.18.1.3", REMOTE_READY)],
      cluster: [],
      local: ["198.18.1.2"],
      any: true,
    },
    {
      name: "externalTrafficPolicy Local on NodePort: both sets",
      spec: { ...nodePort, externalTrafficPolicy: "Local" },
      eps: [ep("198.18.1.2", LOCAL_READY), ep("198.18.1.3", REMOTE_READY)],
      cluster: ["198.18.1.2", "198.18.1.3"],
      local: ["198.18.1.2"],
      any: true,
    },
    {
      name: "externalTrafficPolicy Local: local falls back alone, cluster keeps ready",
      spec: { ...nodePort, externalTrafficPolicy: "Local" },
      eps: [
        ep("198.18.1.2", { ...TERMINATING, ...LOCAL_READY }),
        ep("198.18.1.3", REMOTE_READY),
      ],
      cluster: ["198.18.1.3"],
      local: ["198.18.1.2"],
      any: true,
    },
    {
      name: "externalTrafficPolicy Local: local ready beats local terminating",
      spec: { ...nodePort, externalTrafficPolicy: "Local" },
      eps: [
        ep("198.18.1.2", { ...TERMINATING, ...LOCAL_READY }),
        ep("198.18.1.4", LOCAL_READY),
      ],
      cluster: ["198.18.1.4"],
      local: ["198.18.1.4"],
      any: true,
    },
    {
      name: "externalTrafficPolicy Local without external access is ignored",
      spec: { externalTrafficPolicy: "Local" },
      eps: [ep("198.18.1.2", LOCAL_READY), ep("198.18.1.3", REMOTE_READY)],
      cluster: ["198.18.1.2", "198.18.1.3"],
      local: [],
      any: true,
    },
    {
      name: "internal Local but externally accessible: cluster set kept for external traffic",
      spec: { ...nodePort, internalTrafficPolicy: "Local" },
      eps: [ep("198.18.1.2", LOCAL_READY), ep("198.18.1.3", REMOTE_READY)],
      cluster: ["198.18.1.2", "198.18.1.3"],
      local: ["198.18.1.2"],
      any: true,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const snap = build([webSvc(c.spec), slice("web-a", "web", c.eps)]);
      const f = famOf(portOf(snap, WEB));
      assert.deepEqual(f.clusterEndpoints.map((e) => e.ip), c.cluster, "cluster");
      assert.deepEqual(f.localEndpoints.map((e) => e.ip), c.local, "local");
      assert.equal(f.hasAnyEndpoints, c.any, "hasAnyEndpoints");
      assert.equal(f.endpoints.length, c.eps.length);
    });
  }
});

Deno.test("service ports: topology hints", async (t) => {
  const cases: {
    name: string;
    zone: string | null;
    eps: Raw[];
    cluster: string[];
    applied: boolean;
  }[] = [
    {
      name: "every ready endpoint hinted, this zone has some: filtered",
      zone: "zone-a",
      eps: [
        ep("198.18.1.2", { hints: ["zone-a"] }),
        ep("198.18.1.3", { hints: ["zone-b"] }),
        ep("198.18.1.4", { hints: ["zone-b", "zone-a"] }),
      ],
      cluster: ["198.18.1.2", "198.18.1.4"],
      applied: true,
    },
    {
      name: "one ready endpoint without hints: no topology",
      zone: "zone-a",
      eps: [ep("198.18.1.2", { hints: ["zone-a"] }), ep("198.18.1.3")],
      cluster: ["198.18.1.2", "198.18.1.3"],
      applied: false,
    },
    {
      name: "an empty hints list counts as no hints",
      zone: "zone-a",
      eps: [ep("198.18.1.2", { hints: ["zone-a"] }), ep("198.18.1.3", { hints: [] })],
      cluster: ["198.18.1.2", "198.18.1.3"],
      applied: false,
    },
    {
      name: "no hint for this zone: no topology",
      zone: "zone-c",
      eps: [ep("198.18.1.2", { hints: ["zone-a"] }), ep("198.18.1.3", { hints: ["zone-b"] })],
      cluster: ["198.18.1.2", "198.18.1.3"],
      applied: false,
    },
    {
      name: "node without a zone: no topology",
      zone: null,
      eps: [ep("198.18.1.2", { hints: ["zone-a"] }), ep("198.18.1.3", { hints: ["zone-b"] })],
      cluster: ["198.18.1.2", "198.18.1.3"],
      applied: false,
    },
    {
      name: "unhinted endpoints that are not ready do not matter",
      zone: "zone-a",
      eps: [
        ep("198.18.1.2", { hints: ["zone-a"] }),
        ep("198.18.1.3", { hints: ["zone-b"] }),
        ep("198.18.1.5", { ready: false }),
      ],
      cluster: ["198.18.1.2"],
      applied: true,
    },
    {
      name: "no ready endpoints: serving-terminating fallback ignores hints",
      zone: "zone-a",
      eps: [
        ep("198.18.1.2", { ...TERMINATING, hints: ["zone-b"] }),
        ep("198.18.1.3", { ...TERMINATING, hints: ["zone-a"] }),
      ],
      cluster: ["198.18.1.2", "198.18.1.3"],
      applied: false,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const snap = build([
        node("node-a", c.zone),
        webSvc(),
        slice("web-a", "web", c.eps),
      ]);
      assert.equal(snap.node.zone, c.zone);
      const f = famOf(portOf(snap, WEB));
      assert.deepEqual(f.clusterEndpoints.map((e) => e.ip), c.cluster);
      assert.equal(f.topologyMode !== null, c.applied);
    });
  }
  await t.step("hints do not narrow the local set", () => {
    const snap = build([
      node("node-a", "zone-a"),
      webSvc({ internalTrafficPolicy: "Local" }),
      slice("web-a", "web", [
        ep("198.18.1.2", { node: "node-a", hints: ["zone-b"] }),
        ep("198.18.1.3", { node: "node-b", hints: ["zone-a"] }),
      ]),
    ]);
    assert.deepEqual(famOf(portOf(snap, WEB)).localEndpoints.map((e) => e.ip), ["198.18.1.2"]);
  });
});

Deno.test("service ports: services that get no entry", async (t) => {
  const cases: { name: string; raw: Raw }[] = [
    {
      name: "ExternalName",
      raw: svc("web", { type: "ExternalName", externalName: "web.example", ports: [{ port: 80 }] }),
    },
    { name: "headless", raw: svc("web", { clusterIP: "None", ports: [{ port: 80 }] }) },
    {
      name: "headless via clusterIPs",
      raw: svc("web", { clusterIP: "None", clusterIPs: ["None"], ports: [{ port: 80 }] }),
    },
    { name: "no cluster IP yet", raw: svc("web", { ports: [{ port: 80 }] }) },
    { name: "empty cluster IP", raw: svc("web", { clusterIP: "", ports: [{ port: 80 }] }) },
    {
      name: "labelled for another proxy",
      raw: webSvc({}, { labels: { "service.kubernetes.io/service-proxy-name": "other" } }),
    },
    {
      name: "labelled for another proxy with an empty value",
      raw: webSvc({}, { labels: { "service.kubernetes.io/service-proxy-name": "" } }),
    },
    { name: "no ports", raw: svc("web", { clusterIP: "198.18.128.10" }) },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const snap = build([c.raw, slice("web-a", "web", [ep("198.18.1.2")])]);
      assert.deepEqual(snap.servicePorts, []);
    });
  }
});

Deno.test("service ports: a service with no usable endpoints stays in the snapshot", () => {
  const snap = build([
    webSvc(),
    slice("web-a", "web", [ep("198.18.1.2", { ready: false, serving: false })]),
  ]);
  const f = famOf(portOf(snap, WEB));
  assert.equal(f.hasAnyEndpoints, false);
  assert.deepEqual(f.clusterEndpoints, []);
  assert.equal(f.endpoints.length, 1);
  assert.equal(build([webSvc()]).servicePorts.length, 1);
});

Deno.test("service ports: slices are matched by namespace and service-name label only", () => {
  const other = slice("web-x", "web", [ep("198.18.1.9")], { ns: "other" });
  const unlabelled = slice("web-y", "web", [ep("198.18.1.8")]);
  delete ((unlabelled["metadata"] as Raw)["labels"] as Raw)["kubernetes.io/service-name"];
  const fqdn = slice("web-z", "web", [ep("web.example")], { addressType: "FQDN" });
  const snap = build([
    webSvc(),
    other,
    unlabelled,
    fqdn,
    slice("web-a", "web", [ep("198.18.1.2")]),
  ]);
  assert.deepEqual(addrs(famOf(portOf(snap, WEB)).endpoints), ["198.18.1.2:8080"]);
});

Deno.test("service ports: only the first address of an endpoint is used", () => {
  const raw = slice("web-a", "web", [{ addresses: ["198.18.1.2", "198.18.1.3"] }]);
  const snap = build([webSvc(), raw]);
  assert.deepEqual(addrs(famOf(portOf(snap, WEB)).endpoints), ["198.18.1.2:8080"]);
});

Deno.test("service ports: duplicate port names keep the first port", () => {
  const snap = build([
    webSvc({ ports: [{ name: "http", port: 80 }, { name: "http", port: 81 }] }),
  ]);
  assert.deepEqual(snap.servicePorts.map((p) => [p.id, p.port]), [[WEB, 80]]);
});

Deno.test("service ports: entries are deeply frozen and carry a stable content hash", () => {
  const service = obj(webSvc()).object as Service;
  const slices = [
    obj(slice("web-a", "web", [ep("198.18.1.2", { node: "node-a" })])).object as EndpointSlice,
  ];
  const ctx = { name: "node-a", zone: null };
  const [a] = buildServicePorts(service, slices, ctx);
  const [b] = buildServicePorts(service, slices, ctx);
  assert.ok(a && b);
  assert.notEqual(a, b);
  assert.equal(a.hash, b.hash);
  assert.match(a.hash, /^[0-9a-f]{32}$/);
  assert.ok(Object.isFrozen(a));
  assert.ok(Object.isFrozen(a.families));
  assert.ok(Object.isFrozen(a.families[0]?.endpoints[0]));
  assert.throws(() => {
    (a as { port: number }).port = 81;
  }, TypeError);
  assert.throws(() => {
    (a.families[0]?.endpoints as unknown[]).push(1);
  }, TypeError);
  const [c] = buildServicePorts(service, slices, { name: "node-b", zone: null });
  assert.notEqual(c?.hash, a.hash, "locality is part of the content");
});
