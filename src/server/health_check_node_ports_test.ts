import assert from "node:assert/strict";
import { SNAPSHOT_A, SNAPSHOT_B, snapshotOf } from "./_fixtures.ts";
import {
  desiredHealthCheckNodePorts,
  healthCheckAnswer,
  listenerSignature,
  localEndpointsFor,
  planHealthCheckNodePorts,
} from "./health_check_node_ports.ts";

// IP plan: pods 198.18.1.0/24, fd00::1:0/112; services 198.18.128.0/17, fd00::/112.

Deno.test("only Local services with a healthCheckNodePort get a server", () => {
  assert.deepEqual(desiredHealthCheckNodePorts(SNAPSHOT_A), [
    { namespace: "shop", name: "api", port: 32000, localEndpoints: { IPv4: 1 } },
  ]);
  assert.deepEqual(
    desiredHealthCheckNodePorts(SNAPSHOT_B),
    desiredHealthCheckNodePorts(SNAPSHOT_A),
  );
});

Deno.test("local ready endpoints are counted by distinct IP over ports, per family", () => {
  const snap = snapshotOf(`
apiVersion: v1
kind: Service
metadata: { name: lb, namespace: default }
spec:
  type: LoadBalancer
  clusterIPs: [198.18.128.50, "fd00::50"]
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: RequireDualStack
  externalTrafficPolicy: Local
  healthCheckNodePort: 32100
  ports:
    - { name: a, port: 80, nodePort: 30100 }
    - { name: b, port: 81, nodePort: 30101 }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: lb-4, namespace: default, labels: { kubernetes.io/service-name: lb } }
addressType: IPv4
ports: [{ name: a, port: 8080 }, { name: b, port: 8081 }]
endpoints:
  - { addresses: [198.18.1.10], nodeName: node-a }
  - { addresses: [198.18.1.11], nodeName: node-a, conditions: { ready: false, terminating: true, serving: true } }
  - { addresses: [198.18.1.12], nodeName: node-b }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: lb-6, namespace: default, labels: { kubernetes.io/service-name: lb } }
addressType: IPv6
ports: [{ name: a, port: 8080 }]
endpoints:
  - { addresses: ["fd00::1:10"], nodeName: node-a }
`);
  assert.deepEqual(desiredHealthCheckNodePorts(snap), [
    { namespace: "default", name: "lb", port: 32100, localEndpoints: { IPv4: 1, IPv6: 1 } },
  ]);
  // Upstream's per-family servers: each address answers with its own family's count; the
  // all-addresses server (one dual-stack listener) with the first family's.
  const [svc] = desiredHealthCheckNodePorts(snap);
  assert.equal(localEndpointsFor(svc!, "IPv6"), 1);
  assert.equal(localEndpointsFor(svc!, null), 1);
  assert.equal(localEndpointsFor({ ...svc!, localEndpoints: { IPv6: 4 } }, null), 4);
});

Deno.test("local ready endpoints count on every port the slices name, as upstream's", () => {
  // The only local ready copy of 198.18.1.12 is under a port no service port matches;
  // upstream's LocalReadyEndpoints walks every port name of its slice cache and counts it.
  const snap = snapshotOf(`
apiVersion: v1
kind: Service
metadata: { name: lb, namespace: default }
spec:
  type: LoadBalancer
  clusterIPs: [198.18.128.51]
  externalTrafficPolicy: Local
  healthCheckNodePort: 32101
  ports: [{ name: http, port: 80, nodePort: 30102 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: lb-a, namespace: default, labels: { kubernetes.io/service-name: lb } }
addressType: IPv4
ports: [{ name: other, port: 8081 }]
endpoints:
  - { addresses: [198.18.1.12], nodeName: node-a }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: lb-b, namespace: default, labels: { kubernetes.io/service-name: lb } }
addressType: IPv4
ports: [{ name: http, port: 8081 }]
endpoints:
  - { addresses: [198.18.1.12] }
  - { addresses: [198.18.1.13], nodeName: node-a, conditions: { ready: false } }
`);
  assert.deepEqual(desiredHealthCheckNodePorts(snap), [
    { namespace: "default", name: "lb", port: 32101, localEndpoints: { IPv4: 1 } },
  ]);
});

Deno.test("answer: 200 with local endpoints and a healthy proxy, else 503", () => {
  const svc = { namespace: "shop", name: "api", localEndpoints: 2 };
  const ok = healthCheckAnswer(svc, true);
  assert.equal(ok.status, 200);
  assert.equal(ok.headers["X-Load-Balancing-Endpoint-Weight"], "2");
  assert.equal(ok.headers["Content-Type"], "application/json");
  assert.equal(
    ok.body,
    '{\n\t"service": {\n\t\t"namespace": "shop",\n\t\t"name": "api"\n\t},\n' +
      '\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}',
  );
  assert.equal(healthCheckAnswer(svc, false).status, 503);
  const none = healthCheckAnswer({ ...svc, localEndpoints: 0 }, true);
  assert.equal(none.status, 503);
  assert.equal(none.headers["X-Load-Balancing-Endpoint-Weight"], "0");
});

Deno.test("plan closes gone, moved and re-familied services, opens new ones, keeps the rest", () => {
  const open = new Map([
    ["a/x", "32000 IPv4"],
    ["a/y", "32001 IPv4"],
    ["a/z", "32002 IPv4"],
    ["a/v", "32004 IPv4"],
  ]);
  const desired = [
    { namespace: "a", name: "x", port: 32000, localEndpoints: { IPv4: 3 } },
    { namespace: "a", name: "y", port: 32005, localEndpoints: { IPv4: 1 } },
    { namespace: "b", name: "w", port: 32003, localEndpoints: { IPv4: 0 } },
    { namespace: "a", name: "v", port: 32004, localEndpoints: { IPv4: 1, IPv6: 0 } },
  ];
  assert.equal(listenerSignature(desired[3]!), "32004 IPv4,IPv6");
  const plan = planHealthCheckNodePorts(open, desired);
  assert.deepEqual(plan.close, ["a/v", "a/y", "a/z"]);
  assert.deepEqual(plan.open.map((s) => s.port), [32005, 32003, 32004]);
  assert.deepEqual(plan.keep.map((s) => s.localEndpoints), [{ IPv4: 3 }]);
});
