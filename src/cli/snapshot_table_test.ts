// IP plan: pods 198.18.1.0/24 and fd00::1:0/112, services 198.18.128.0/17 and fd00::80:0/112,
// external IPs 198.18.200.0/24, LoadBalancer ingress 198.18.250.0/24.
import assert from "node:assert/strict";
import { build, ep, node, slice, svc, TERMINATING, webSvc } from "../snapshot/fixtures_test.ts";
import { formatSnapshotTable } from "./snapshot_table.ts";

Deno.test("snapshot table: one row per service port and family, endpoints in use", () => {
  const snap = build([
    node("node-a", "zone-a"),
    webSvc({
      type: "NodePort",
      clusterIPs: ["198.18.128.10", "fd00::80:10"],
      externalIPs: ["198.18.200.1"],
      sessionAffinity: "ClientIP",
      ports: [{ name: "http", port: 80, nodePort: 30080 }],
    }),
    slice("web-1", "web", [
      ep("198.18.1.3", { node: "node-b" }),
      ep("198.18.1.2", { node: "node-a" }),
      ep("198.18.1.9", { ready: false }),
    ]),
    svc("db", { clusterIP: "198.18.128.30", ports: [{ port: 5432 }] }),
    svc("old", { clusterIP: "198.18.128.31", ports: [{ port: 1 }] }),
    slice("old-1", "old", [ep("198.18.1.4", TERMINATING)], { ports: [{ port: 1 }] }),
  ]);
  const lines = formatSnapshotTable(snap).split("\n");
  assert.equal(lines[0], `node node-a zone zone-a · snapshot ${snap.hash} · 3 service ports`);
  assert.deepEqual(lines.slice(1), [
    "SERVICE PORT      TYPE       PROTO  ADDRESS                         NODEPORT  POLICY                                   ENDPOINTS",
    "default/db        ClusterIP  TCP    198.18.128.30:5432              -         ext=Cluster int=Cluster                  <none: rejected>",
    "default/old       ClusterIP  TCP    198.18.128.31:1                 -         ext=Cluster int=Cluster                  198.18.1.4:1 (terminating)",
    "default/web:http  NodePort   TCP    198.18.128.10:80 +198.18.200.1  30080     ext=Cluster int=Cluster affinity=10800s  198.18.1.2:8080 (local), 198.18.1.3:8080",
    "default/web:http  NodePort   TCP    [fd00::80:10]:80                30080     ext=Cluster int=Cluster affinity=10800s  <none: rejected>",
  ]);
});

Deno.test("snapshot table: an empty snapshot and an unnamed node", () => {
  const snap = build([], {
    nodeName: "",
    clusterCIDRs: [],
    masqueradeAll: false,
    masqueradeBit: 14,
    localhostNodePorts: true,
    nodePortAddresses: [],
    hostAddresses: [],
  });
  assert.equal(
    formatSnapshotTable(snap),
    `node <unnamed> · snapshot ${snap.hash} · 0 service ports\n` +
      "SERVICE PORT  TYPE  PROTO  ADDRESS  NODEPORT  POLICY  ENDPOINTS",
  );
});
