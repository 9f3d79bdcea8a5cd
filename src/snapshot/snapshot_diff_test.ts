// IP plan: nodes 198.18.0.0/24, pods 198.18.1.0/24 and fd00::1:0/112, services 198.18.128.0/17
// and fd00::80:0/112, external IPs 198.18.200.0/24.
import assert from "node:assert/strict";
import { build, ep, node, portOf, slice, svc, TERMINATING, webSvc } from "./fixtures_test.ts";
import {
  describeServicePort,
  describeSnapshotDiff,
  endpointAddress,
  endpointState,
} from "./snapshot_diff.ts";

const WEB = "default/web:http";

Deno.test("snapshot diff: equal snapshots have no lines", () => {
  const a = build([webSvc(), slice("s1", "web", [ep("198.18.1.2")])]);
  const b = build([slice("s1", "web", [ep("198.18.1.2")]), webSvc()]);
  const d = describeSnapshotDiff(a, b);
  assert.equal(d.fromHash, d.toHash);
  assert.deepEqual(d.lines, []);
  assert.deepEqual([d.added, d.removed, d.changed, d.lostAllEndpoints], [[], [], [], []]);
  assert.equal(d.nodeOrOptionsChanged, false);
});

Deno.test("snapshot diff: endpoint lines", () => {
  const a = build([
    webSvc(),
    slice("s1", "web", [ep("198.18.1.2"), ep("198.18.1.3"), ep("198.18.1.4", { node: "node-a" })]),
  ]);
  const b = build([
    webSvc(),
    slice("s1", "web", [
      ep("198.18.1.2"),
      ep("198.18.1.4", { ...TERMINATING, node: "node-a" }),
      ep("198.18.1.7"),
    ]),
  ]);
  const d = describeSnapshotDiff(a, b);
  assert.deepEqual(d.lines, [
    `${WEB} endpoint 198.18.1.4:8080 ready, local → serving, terminating, local`,
    `${WEB} +endpoint 198.18.1.7:8080 (ready)`,
    `${WEB} -endpoint 198.18.1.3:8080 (ready)`,
  ]);
  assert.deepEqual(d.changed.map((c) => c.after.id), [WEB]);
  assert.deepEqual(d.lostAllEndpoints, []);
});

Deno.test("snapshot diff: added, removed and changed service ports, in id order", () => {
  const a = build([
    webSvc(),
    svc("db", { clusterIP: "198.18.128.30", ports: [{ port: 5432 }] }),
  ]);
  const b = build([
    webSvc({
      type: "NodePort",
      clusterIPs: ["198.18.128.10", "fd00::80:10"],
      externalIPs: ["198.18.200.1"],
      sessionAffinity: "ClientIP",
      ports: [{ name: "http", port: 80, nodePort: 30080 }],
    }),
    svc("api", { clusterIP: "198.18.128.20", ports: [{ name: "https", port: 443 }] }, {
      ns: "shop",
    }),
  ]);
  const d = describeSnapshotDiff(a, b);
  assert.deepEqual(d.added.map((s) => s.id), ["shop/api:https"]);
  assert.deepEqual(d.removed.map((s) => s.id), ["default/db"]);
  assert.deepEqual(d.lines, [
    "-service default/db TCP 198.18.128.30:5432 0 endpoints",
    `${WEB} type ClusterIP → NodePort`,
    `${WEB} nodePort none → 30080`,
    `${WEB} sessionAffinityTimeout none → 10800`,
    `${WEB} +externalIP 198.18.200.1`,
    `${WEB} +family IPv6 clusterIP fd00::80:10`,
    "+service shop/api:https TCP 198.18.128.20:443 0 endpoints",
  ]);
});

Deno.test("snapshot diff: losing every endpoint is flagged", () => {
  const a = build([webSvc(), slice("s1", "web", [ep("198.18.1.2")])]);
  const b = build([webSvc(), slice("s1", "web", [ep("198.18.1.2", { ready: false })])]);
  const d = describeSnapshotDiff(a, b);
  assert.deepEqual(d.lostAllEndpoints, [WEB]);
  assert.deepEqual(d.lines, [
    `${WEB} endpoint 198.18.1.2:8080 ready → serving`,
    `${WEB} lost all endpoints: connections will be rejected`,
  ]);
  assert.deepEqual(describeSnapshotDiff(b, a).lostAllEndpoints, []);
  const removed = describeSnapshotDiff(a, build([]));
  assert.deepEqual(removed.lostAllEndpoints, [], "a removed service is not a lost one");
});

Deno.test("snapshot diff: endpoints in use change with topology only", () => {
  const objects = [
    webSvc(),
    slice("s1", "web", [
      ep("198.18.1.2", { hints: ["zone-a"] }),
      ep("198.18.1.3", { hints: ["zone-b"] }),
    ]),
  ];
  const a = build([node("node-a", "zone-a"), ...objects]);
  const b = build([node("node-a", "zone-b"), ...objects]);
  const d = describeSnapshotDiff(a, b);
  assert.equal(d.nodeOrOptionsChanged, true);
  assert.equal(d.lines[0], `${WEB} endpoints in use (IPv4) 198.18.1.2:8080 → 198.18.1.3:8080`);
  assert.match(d.lines[1] ?? "", /^node node-a: .*"zone":"zone-a".* → .*"zone":"zone-b"/);
  assert.equal(d.lines.length, 2);
});

Deno.test("snapshot diff: options changes", () => {
  const a = build([webSvc()]);
  const b = build([webSvc()], {
    ...(baseSettings()),
    masqueradeAll: true,
  });
  const d = describeSnapshotDiff(a, b);
  assert.equal(d.nodeOrOptionsChanged, true);
  assert.deepEqual(d.changed, []);
  assert.equal(d.lines.length, 1);
  assert.match(d.lines[0] ?? "", /^options: .*"masqueradeAll":false.* → .*"masqueradeAll":true/);
});

function baseSettings() {
  return {
    nodeName: "node-a",
    clusterCIDRs: [],
    masqueradeAll: false,
    masqueradeBit: 14,
    localhostNodePorts: true,
    nodePortAddresses: [],
    hostAddresses: [],
  };
}

Deno.test("snapshot diff: helpers", () => {
  const snap = build([
    webSvc({ clusterIPs: ["198.18.128.10", "fd00::80:10"] }),
    slice("s1", "web", [ep("198.18.1.2", { node: "node-a" })]),
    slice("s2", "web", [ep("fd00::1:2")], { addressType: "IPv6" }),
  ]);
  const sp = portOf(snap, WEB);
  assert.equal(describeServicePort(sp), "TCP 198.18.128.10:80 [fd00::80:10]:80 2 endpoints");
  assert.equal(endpointAddress({ ip: "fd00::1:2", port: 80 }), "[fd00::1:2]:80");
  assert.equal(endpointAddress({ ip: "198.18.1.2", port: 80 }), "198.18.1.2:80");
  const [v4] = sp.families[0]?.endpoints ?? [];
  assert.ok(v4);
  assert.equal(endpointState(v4), "ready, local");
  assert.equal(
    endpointState({ ...v4, ready: false, serving: false, terminating: true, isLocal: false }),
    "not ready, terminating",
  );
});
