/**
 * The matrix: which packets a cluster asks for, from where, how many.
 *
 * IP plan: tests/netns/two_node_plan.ts (node A 198.19.0.1 / 198.19.1.1 / 198.18.0.1,
 * LoadBalancer and external IPs 198.18.200.0/24).
 */
import assert from "node:assert/strict";
import { lbService, readyEndpoint } from "./_fixtures.ts";
import { buildMatrix, probeCount, SOURCES, UNUSED_SERVICE_PORT } from "./matrix.ts";

Deno.test("matrix: every address kind of a LoadBalancer, from every source, both families", () => {
  const m = buildMatrix({ services: [lbService()] });
  const kinds = (family: string) =>
    [
      ...new Set(
        m.cells.filter((c) => c.family === family && c.service === "web").map((c) => c.kind),
      ),
    ].sort();
  assert.deepEqual(kinds("IPv4"), [
    "ClusterIP",
    "ClusterIP unused port",
    "ExternalIP",
    "LoadBalancer IP",
    "NodePort internal",
    "NodePort localhost",
    "NodePort primary",
    "NodePort secondary",
  ]);
  // The IPv6 ingress (ipMode Proxy) is probed too: no rule must answer it.
  assert.deepEqual(kinds("IPv6"), kinds("IPv4").filter((k) => k !== "ExternalIP"));
  const primary = m.cells.filter((c) => c.kind === "NodePort primary" && c.family === "IPv4");
  assert.deepEqual(primary.map((c) => c.source), [...SOURCES]);
  assert.deepEqual(primary.map((c) => `${c.ip}:${c.port}`), Array(4).fill("198.19.0.1:30080"));
  const localhost = m.cells.filter((c) => c.kind === "NodePort localhost");
  assert.deepEqual(localhost.map((c) => `${c.source} ${c.ip}`), ["node A 127.0.0.1", "node A ::1"]);
  const unused = m.cells.filter((c) => c.kind === "ClusterIP unused port");
  assert.ok(unused.every((c) => c.port === UNUSED_SERVICE_PORT && c.protocol === "TCP"));
  assert.equal(new Set(m.cells.map((c) => c.id)).size, m.cells.length, "cell ids are unique");
});

Deno.test("matrix: health answers for /healthz, /livez and each healthCheckNodePort", () => {
  const m = buildMatrix({ services: [lbService()] });
  assert.deepEqual(m.health.map((h) => h.id), [
    "web healthCheckNodePort 198.19.0.1:32000",
    "web healthCheckNodePort [fd00:19::1]:32000",
    "web healthCheckNodePort 198.19.1.1:32000",
    "/healthz",
    "/livez",
  ]);
});

Deno.test("matrix: headless and ExternalName services get no cells; affinity skips pod on B", () => {
  const none = buildMatrix({
    services: [lbService({ headless: true }), lbService({ type: "ExternalName" })],
  });
  // Only the unallocated service addresses, one per family.
  assert.deepEqual(none.cells.map((c) => c.id), [
    "unallocated ClusterIP 198.18.191.250:80 from node A",
    "unallocated ClusterIP [fd00:128::f:fffa]:80 from node A",
  ]);
  const sticky = buildMatrix({ services: [lbService({ affinitySeconds: 60 })] });
  const served = sticky.cells.filter((c) =>
    c.service === "web" && c.kind !== "ClusterIP unused port"
  );
  assert.ok(served.length > 0);
  assert.ok(served.every((c) => c.source !== "pod on B" && c.affinity && c.count === 4));
});

Deno.test("matrix: enough probes to see a spread", () => {
  assert.equal(probeCount(0, false), 4);
  assert.equal(probeCount(2, false), 9);
  assert.equal(probeCount(7, false), 24);
  assert.equal(probeCount(10, false), 24);
  const m = buildMatrix({ services: [lbService()] });
  const v4 = m.cells.find((c) => c.kind === "ClusterIP" && c.family === "IPv4");
  const v6 = m.cells.find((c) => c.kind === "ClusterIP" && c.family === "IPv6");
  assert.equal(v4?.count, 9); // two pods in the IPv4 slice
  assert.equal(v6?.count, 4); // none in IPv6
});

Deno.test("matrix: a pod reached on two target ports counts as two endpoints (seed 2's s2-2)", () => {
  const svc = lbService();
  const m = buildMatrix({
    services: [{
      ...svc,
      slices: [...svc.slices, {
        name: "web-1",
        family: "IPv4",
        ports: [{ name: "http", protocol: "TCP", port: 8081 }, {
          name: "other",
          protocol: "TCP",
          port: 8082,
        }],
        endpoints: [readyEndpoint("a1"), readyEndpoint("a2")],
      }],
    }],
  });
  const v4 = m.cells.find((c) => c.kind === "ClusterIP" && c.family === "IPv4");
  // a1:8080 b1:8080 a1:8081 a2:8081 (web-1's port "other" is no port of the service).
  assert.equal(v4?.count, 15);
});
