/**
 * Table tests of explain's answers, in both backends: every match kind, every verdict, every
 * reason an endpoint is not used, masquerade with its reasons, and that each chain an answer
 * names exists in the backend's rendered rules. IP plan: see _fixtures.ts.
 */
import assert from "node:assert/strict";
import { renderFamilyRestore } from "../render/iptables/full_restore.ts";
import { renderNftables } from "../render/nftables/nftables_renderer.ts";
import type { ProxySnapshot } from "../snapshot/types.ts";
import { NODE_IP, OUTSIDE_CLIENT, POD_CLIENT, slice, snapshotOf, svc } from "./_fixtures.ts";
import type { ExplainAnswer, ExplainMode } from "./answer.ts";
import { type ExplainOptions, explainPacket } from "./explain.ts";
import { formatExplanation } from "./format.ts";
import { packetOf, parseTarget } from "./packet.ts";
import { enteredChains } from "./trace_engine.ts";

const MODES: readonly ExplainMode[] = ["nftables", "iptables"];
const HTTP = { name: "http", port: 80 };

function ask(
  snapshot: ProxySnapshot,
  to: string,
  from: string | undefined,
  mode: ExplainMode,
  options: Partial<ExplainOptions> = {},
): ExplainAnswer {
  const answer = explainPacket(snapshot, packetOf(parseTarget(to), snapshot, { from }), {
    mode,
    ...options,
  });
  assertChainsRendered(snapshot, answer);
  // The text form never fails and names the verdict.
  assert.match(
    formatExplanation(answer),
    new RegExp(`verdict     ${answer.verdict.kind.toUpperCase()}`),
  );
  return answer;
}

/** Every chain an answer's path enters exists in the backend's rendered rules. */
function assertChainsRendered(snapshot: ProxySnapshot, answer: ExplainAnswer): void {
  const paths = [answer.path, ...answer.endpoints.map((e) => e.path)];
  const builtins = new Set(["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"]);
  if (answer.mode === "nftables") {
    const text = renderNftables(snapshot);
    for (const p of paths) {
      for (const entry of enteredChains(p)) {
        const chain = entry.split(" ").at(-1) as string;
        assert.ok(text.includes(`chain ${chain} {`), `nftables render has chain ${chain}`);
      }
    }
  } else {
    const text = renderFamilyRestore(snapshot, answer.packet.family).text;
    for (const p of paths) {
      for (const entry of enteredChains(p)) {
        const chain = entry.split(" ").at(-1) as string;
        if (builtins.has(chain)) continue;
        assert.ok(text.includes(`:${chain} - [0:0]`), `iptables render has chain ${chain}`);
      }
    }
  }
}

function endpointsOf(a: ExplainAnswer): string[] {
  return a.endpoints.map((e) => `${e.ip}:${e.port}`);
}

function reasonsOf(a: ExplainAnswer, ip: string): string[] {
  return a.excluded.find((e) => e.ip === ip)?.reasons.map((r) => r.kind) ?? [];
}

const WEB = snapshotOf([
  svc("web", {
    type: "NodePort",
    clusterIPs: ["198.18.128.10"],
    ports: [{ ...HTTP, nodePort: 30080 }],
    externalIPs: ["198.18.200.10"],
  }),
  slice("web", [
    { ip: "198.18.1.10" },
    { ip: "198.18.1.11", node: "node-b" },
    { ip: "198.18.1.12", node: "node-b" },
    { ip: "198.18.1.13", ready: false },
    { ip: "198.18.1.14", ready: false, serving: true, terminating: true },
  ]),
]);

for (const mode of MODES) {
  Deno.test(`${mode}: a pod to a ClusterIP: DNAT to one of three, source kept, reasons for the rest`, () => {
    const a = ask(WEB, "198.18.128.10:80", POD_CLIENT, mode);
    assert.equal(a.match?.kind, "ClusterIP");
    assert.equal(a.match?.servicePort, "default/web:http");
    assert.equal(a.verdict.kind, "dnat");
    assert.deepEqual(endpointsOf(a), ["198.18.1.10:8080", "198.18.1.11:8080", "198.18.1.12:8080"]);
    for (const ep of a.endpoints) assert.ok(Math.abs(ep.share - 1 / 3) < 1e-6, `${ep.ip} share`);
    assert.equal(a.masquerade?.applies, "never");
    assert.match(a.masquerade?.reason ?? "", /inside the cluster CIDR 198\.18\.1\.0\/24/);
    assert.deepEqual(reasonsOf(a, "198.18.1.13"), ["not-ready"]);
    assert.deepEqual(reasonsOf(a, "198.18.1.14"), ["terminating"]);
    assert.match(
      a.excluded.find((e) => e.ip === "198.18.1.14")?.reasons[0]?.text ?? "",
      /3 endpoints are ready/,
    );
    assert.equal(a.fromNode, false);
  });

  Deno.test(`${mode}: the node to a ClusterIP is masqueraded (outside the cluster CIDR)`, () => {
    const a = ask(WEB, "198.18.128.10:80", undefined, mode);
    assert.equal(a.packet.source, NODE_IP);
    assert.equal(a.fromNode, true);
    assert.equal(a.verdict.kind, "dnat");
    assert.equal(a.masquerade?.applies, "always");
    assert.match(a.masquerade?.reason ?? "", /outside the cluster CIDR/);
    assert.ok(a.endpoints.every((e) => e.masqueraded && e.delivery === "sent"));
  });

  Deno.test(`${mode}: a NodePort on the node's primary address, from outside: masqueraded`, () => {
    const a = ask(WEB, `${NODE_IP}:30080`, OUTSIDE_CLIENT, mode);
    assert.equal(a.match?.kind, "NodePort");
    assert.equal(a.match?.address, NODE_IP);
    assert.equal(a.match?.policy.name, "externalTrafficPolicy");
    assert.equal(a.endpoints.length, 3);
    assert.equal(a.masquerade?.applies, "always");
    assert.match(a.masquerade?.reason ?? "", /externalTrafficPolicy Cluster/);
  });

  Deno.test(`${mode}: an external IP from outside`, () => {
    const a = ask(WEB, "198.18.200.10:80", OUTSIDE_CLIENT, mode);
    assert.equal(a.match?.kind, "ExternalIP");
    assert.equal(a.endpoints.length, 3);
    assert.ok(a.endpoints.every((e) => e.masqueraded && e.delivery === "forwarded"));
  });

  Deno.test(`${mode}: a NodePort on an address that is not a NodePort address matches nothing`, () => {
    const a = ask(WEB, "198.18.0.99:30080", OUTSIDE_CLIENT, mode);
    assert.equal(a.match, null);
    assert.equal(a.verdict.kind, "routed");
    assert.ok(
      a.notes.some((n) => /30080 is the NodePort of default\/web:http/.test(n)),
      a.notes.join(),
    );
  });

  Deno.test(`${mode}: a pod reaching itself through its service is masqueraded (hairpin)`, () => {
    const a = ask(WEB, "198.18.128.10:80", "198.18.1.10", mode);
    const self = a.endpoints.find((e) => e.ip === "198.18.1.10");
    assert.equal(self?.masqueraded, true);
    assert.ok(a.endpoints.filter((e) => e.ip !== "198.18.1.10").every((e) => !e.masqueraded));
    assert.equal(a.masquerade?.applies, "hairpin");
    assert.match(a.masquerade?.reason ?? "", /hairpin/);
  });
}

const EMPTY = snapshotOf([
  svc("empty", {
    type: "NodePort",
    clusterIPs: ["198.18.128.18"],
    ports: [{ ...HTTP, nodePort: 30083 }],
  }),
  slice("empty", [{ ip: "198.18.1.10", ready: false }]),
]);

for (const mode of MODES) {
  Deno.test(`${mode}: a service without usable endpoints rejects, naming why each endpoint fails`, () => {
    for (
      const [to, from] of [["198.18.128.18:80", POD_CLIENT], [`${NODE_IP}:30083`, OUTSIDE_CLIENT]]
    ) {
      const a = ask(EMPTY, to as string, from, mode);
      assert.equal(a.verdict.kind, "reject", `${to}: ${a.verdict.reason}`);
      assert.match(a.verdict.reason, /no endpoints that can serve/);
      assert.deepEqual(reasonsOf(a, "198.18.1.10"), ["not-ready"]);
      assert.ok(a.verdict.by !== undefined);
    }
  });
}

const LOCAL = snapshotOf([
  svc("np-local", {
    type: "NodePort",
    clusterIPs: ["198.18.128.14"],
    ports: [{ ...HTTP, nodePort: 30081 }],
    externalIPs: ["198.18.200.11"],
    externalTrafficPolicy: "Local",
    healthCheckNodePort: 30181,
  }),
  slice("np-local", [{ ip: "198.18.1.10" }, { ip: "198.18.1.11" }, {
    ip: "198.18.1.12",
    node: "node-b",
  }]),
  svc("np-remote", {
    type: "NodePort",
    clusterIPs: ["198.18.128.15"],
    ports: [{ ...HTTP, nodePort: 30082 }],
    externalIPs: ["198.18.200.12"],
    externalTrafficPolicy: "Local",
  }),
  slice("np-remote", [{ ip: "198.18.1.12", node: "node-b" }]),
  svc("itp", {
    clusterIPs: ["198.18.128.16"],
    ports: [HTTP],
    internalTrafficPolicy: "Local",
  }),
  slice("itp", [{ ip: "198.18.1.10" }, { ip: "198.18.1.12", node: "node-b" }]),
  svc("itp-remote", {
    clusterIPs: ["198.18.128.17"],
    ports: [HTTP],
    internalTrafficPolicy: "Local",
  }),
  slice("itp-remote", [{ ip: "198.18.1.12", node: "node-b" }]),
]);

for (const mode of MODES) {
  Deno.test(`${mode}: externalTrafficPolicy Local: only local endpoints, client address kept`, () => {
    const a = ask(LOCAL, `${NODE_IP}:30081`, OUTSIDE_CLIENT, mode);
    assert.deepEqual(endpointsOf(a), ["198.18.1.10:8080", "198.18.1.11:8080"]);
    assert.equal(a.masquerade?.applies, "never");
    assert.match(a.masquerade?.reason ?? "", /externalTrafficPolicy Local keeps/);
    assert.deepEqual(reasonsOf(a, "198.18.1.12"), ["traffic-policy"]);
    assert.match(
      a.excluded[0]?.reasons[0]?.text ?? "",
      /externalTrafficPolicy: Local .* runs on node-b/,
    );
  });

  Deno.test(`${mode}: externalTrafficPolicy Local without local endpoints drops`, () => {
    for (const to of [`${NODE_IP}:30082`, "198.18.200.12:80"]) {
      const a = ask(LOCAL, to, OUTSIDE_CLIENT, mode);
      assert.equal(a.verdict.kind, "drop", `${to}: ${a.verdict.reason}`);
      assert.match(a.verdict.reason, /externalTrafficPolicy is Local and no usable endpoint/);
      assert.deepEqual(reasonsOf(a, "198.18.1.12"), ["traffic-policy"]);
    }
  });

  Deno.test(`${mode}: pods reaching an external IP of a Local service use every endpoint`, () => {
    const a = ask(LOCAL, "198.18.200.11:80", POD_CLIENT, mode);
    assert.equal(a.endpoints.length, 3);
    assert.equal(a.masquerade?.applies, "never");
    assert.match(a.masquerade?.reason ?? "", /pod traffic to an external address/);
  });

  Deno.test(`${mode}: internalTrafficPolicy Local: local endpoints only, else drop`, () => {
    const a = ask(LOCAL, "198.18.128.16:80", POD_CLIENT, mode);
    assert.deepEqual(endpointsOf(a), ["198.18.1.10:8080"]);
    assert.equal(a.match?.policy.name, "internalTrafficPolicy");
    assert.deepEqual(reasonsOf(a, "198.18.1.12"), ["traffic-policy"]);
    assert.match(a.excluded[0]?.reasons[0]?.text ?? "", /internalTrafficPolicy: Local/);
    const b = ask(LOCAL, "198.18.128.17:80", POD_CLIENT, mode);
    assert.equal(b.verdict.kind, "drop");
    assert.match(b.verdict.reason, /internalTrafficPolicy is Local/);
  });
}

for (const mode of MODES) {
  Deno.test(`${mode}: the node's own packet to an external IP of a Local service without local endpoints goes to the cluster, masqueraded (as upstream)`, () => {
    const a = ask(LOCAL, "198.18.200.12:80", undefined, mode);
    assert.equal(a.verdict.kind, "dnat");
    assert.equal(a.masquerade?.applies, "always");
    assert.match(a.masquerade?.reason ?? "", /the node itself sends it/);
  });
}

const TOPOLOGY = snapshotOf([
  svc("zoned", { clusterIPs: ["198.18.128.30"], ports: [HTTP] }),
  slice("zoned", [
    { ip: "198.18.1.10", zone: "a", forZones: ["a"] },
    { ip: "198.18.1.11", node: "node-b", zone: "b", forZones: ["b"] },
  ]),
  svc("noded", { clusterIPs: ["198.18.128.31"], ports: [HTTP] }),
  slice("noded", [
    { ip: "198.18.1.20", forNodes: ["node-a"], forZones: ["a"] },
    { ip: "198.18.1.21", node: "node-b", forNodes: ["node-b"], forZones: ["a"] },
  ]),
]);

for (const mode of MODES) {
  Deno.test(`${mode}: topology hints keep traffic in this zone or on this node`, () => {
    const a = ask(TOPOLOGY, "198.18.128.30:80", POD_CLIENT, mode);
    assert.deepEqual(endpointsOf(a), ["198.18.1.10:8080"]);
    assert.deepEqual(reasonsOf(a, "198.18.1.11"), ["topology"]);
    assert.match(a.excluded[0]?.reasons[0]?.text ?? "", /zone b, and node-a is in zone a/);
    const b = ask(TOPOLOGY, "198.18.128.31:80", POD_CLIENT, mode);
    assert.deepEqual(endpointsOf(b), ["198.18.1.20:8080"]);
    assert.deepEqual(reasonsOf(b, "198.18.1.21"), ["topology"]);
    assert.match(b.excluded[0]?.reasons[0]?.text ?? "", /PreferSameNode/);
  });
}

const STICKY = snapshotOf([
  svc("sticky", {
    clusterIPs: ["198.18.128.12"],
    ports: [HTTP],
    sessionAffinity: "ClientIP",
    sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } },
  }),
  slice("sticky", [{ ip: "198.18.1.10" }, { ip: "198.18.1.11" }]),
]);

for (const mode of MODES) {
  Deno.test(`${mode}: ClientIP affinity: a new client gets any endpoint, a known one its own`, () => {
    const a = ask(STICKY, "198.18.128.12:80", POD_CLIENT, mode);
    assert.equal(a.endpoints.length, 2);
    assert.deepEqual(a.affinity, { timeoutSeconds: 600, pinnedTo: null });
    const name = mode === "nftables"
      ? a.endpoints[1]?.path.find((e) => e.kind === "rule" && e.rule.includes("update @affinity-"))
      : a.endpoints[1]?.path.find((e) => e.kind === "enter" && e.chain.startsWith("KUBE-SEP-"));
    assert.ok(name !== undefined, "the path names the affinity set / recent list");
    const set = name.kind === "rule"
      ? (/update @(\S+)/.exec(name.rule)?.[1] as string)
      : name.chain;
    const pinned = ask(STICKY, "198.18.128.12:80", POD_CLIENT, mode, {
      affinity: new Map([[set, [POD_CLIENT]]]),
    });
    assert.deepEqual(endpointsOf(pinned), ["198.18.1.11:8080"]);
    assert.equal(pinned.endpoints[0]?.share, 1);
    assert.equal(pinned.affinity?.pinnedTo, "198.18.1.11:8080");
    assert.deepEqual(reasonsOf(pinned, "198.18.1.10"), ["affinity"]);
  });
}

const LB = snapshotOf([
  svc("lb", {
    type: "LoadBalancer",
    clusterIPs: ["198.18.128.21"],
    ports: [{ ...HTTP, nodePort: 30085 }],
    loadBalancerSourceRanges: ["198.19.0.0/24"],
  }, ["198.18.200.20"]),
  slice("lb", [{ ip: "198.18.1.10" }, { ip: "198.18.1.11" }]),
]);

for (const mode of MODES) {
  Deno.test(`${mode}: loadBalancerSourceRanges: listed sources pass, others are dropped`, () => {
    const a = ask(LB, "198.18.200.20:80", OUTSIDE_CLIENT, mode);
    assert.equal(a.match?.kind, "LoadBalancerIP");
    assert.equal(a.endpoints.length, 2);
    const b = ask(LB, "198.18.200.20:80", "198.19.1.2", mode);
    assert.equal(b.verdict.kind, "drop");
    assert.match(b.verdict.reason, /outside the loadBalancerSourceRanges .*198\.19\.0\.0\/24/);
    assert.ok(b.excluded.every((e) => e.reasons[0]?.kind === "blocked"));
    const c = ask(LB, `${NODE_IP}:30085`, "198.19.1.2", mode);
    assert.equal(c.verdict.kind, "dnat", "ranges do not apply to the NodePort");
  });
}

Deno.test("nftables rejects a ClusterIP's missing port; iptables lets it pass", () => {
  const nft = ask(WEB, "198.18.128.10:81", POD_CLIENT, "nftables");
  assert.equal(nft.verdict.kind, "reject");
  assert.match(nft.verdict.reason, /has no TCP port 81 \(it has TCP 80\)/);
  const ipt = ask(WEB, "198.18.128.10:81", POD_CLIENT, "iptables");
  assert.equal(ipt.verdict.kind, "routed");
  assert.ok(ipt.notes.some((n) => /is the ClusterIP of default\/web:http \(TCP 80\)/.test(n)));
});

Deno.test("nftables drops an unallocated address of a service CIDR, naming the range; iptables lets it pass", () => {
  const withCIDR = snapshotOf([
    ...[
      svc("web", { clusterIPs: ["198.18.128.10"], ports: [HTTP] }),
      slice("web", [{
        ip: "198.18.1.10",
      }]),
    ],
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "ServiceCIDR",
      metadata: { name: "kubernetes" },
      spec: { cidrs: ["198.18.128.0/17", "fd00:128::/64"] },
    },
  ]);
  for (const from of [POD_CLIENT, undefined]) {
    const nft = ask(withCIDR, "198.18.128.99:80", from, "nftables");
    assert.equal(nft.verdict.kind, "drop", `from ${from ?? "the node"}`);
    assert.match(
      nft.verdict.reason,
      /^198\.18\.128\.99 is in the service CIDR 198\.18\.128\.0\/17 but no Service holds it;/,
    );
    assert.match(nft.verdict.by?.rule ?? "", /ip daddr @service-cidrs drop/);
  }
  assert.equal(ask(withCIDR, "[fd00:128::99]:80", "fd00:1::99", "nftables").verdict.kind, "drop");
  // A held ClusterIP's missing port is still rejected first; outside the ranges, routed.
  assert.equal(ask(withCIDR, "198.18.128.10:81", POD_CLIENT, "nftables").verdict.kind, "reject");
  assert.equal(ask(withCIDR, "198.18.0.99:80", POD_CLIENT, "nftables").verdict.kind, "routed");
  assert.equal(ask(withCIDR, "198.18.128.99:80", POD_CLIENT, "iptables").verdict.kind, "routed");
  // Without ServiceCIDR objects, nothing is dropped.
  assert.equal(ask(WEB, "198.18.128.99:80", POD_CLIENT, "nftables").verdict.kind, "routed");
});

for (const mode of MODES) {
  Deno.test(`${mode}: a node address port no service uses is delivered locally`, () => {
    const a = ask(WEB, `${NODE_IP}:22`, OUTSIDE_CLIENT, mode);
    assert.equal(a.verdict.kind, "local");
    assert.equal(a.match, null);
  });

  Deno.test(`${mode}: --masquerade-all and no --cluster-cidr`, () => {
    const all = snapshotOf([
      svc("web", { clusterIPs: ["198.18.128.10"], ports: [HTTP] }),
      slice("web", [{ ip: "198.18.1.10" }]),
    ], { masqueradeAll: true });
    const a = ask(all, "198.18.128.10:80", POD_CLIENT, mode);
    assert.equal(a.masquerade?.applies, "always");
    assert.match(a.masquerade?.reason ?? "", /--masquerade-all/);
    const none = snapshotOf([
      svc("web", { clusterIPs: ["198.18.128.10"], ports: [HTTP] }),
      slice("web", [{ ip: "198.18.1.10" }]),
    ], { clusterCIDRs: [] });
    const b = ask(none, "198.18.128.10:80", OUTSIDE_CLIENT, mode);
    assert.equal(b.masquerade?.applies, "never");
    assert.match(b.masquerade?.reason ?? "", /no --cluster-cidr/);
  });

  Deno.test(`${mode}: IPv6 ClusterIP, UDP`, () => {
    const v6 = snapshotOf([
      svc("dns6", {
        clusterIPs: ["fd00:128::10"],
        ports: [{ name: "dns", protocol: "UDP", port: 53 }],
      }),
      slice("dns6", [{ ip: "fd00:1::10" }, { ip: "fd00:1::11", node: "node-b" }], {
        name: "dns",
        protocol: "UDP",
      }),
    ]);
    const a = ask(v6, "[fd00:128::10]:53/udp", "fd00:1::99", mode);
    assert.equal(a.packet.protocol, "UDP");
    assert.deepEqual(endpointsOf(a), ["fd00:1::10:8080", "fd00:1::11:8080"]);
    assert.equal(a.masquerade?.applies, "never");
  });

  Deno.test(`${mode}: many endpoints share the traffic evenly`, () => {
    const eps = Array.from({ length: 20 }, (_, i) => ({ ip: `198.18.1.${100 + i}` }));
    const big = snapshotOf([
      svc("big", { clusterIPs: ["198.18.128.40"], ports: [HTTP] }),
      slice("big", eps),
    ]);
    const a = ask(big, "198.18.128.40:80", POD_CLIENT, mode);
    assert.equal(a.endpoints.length, 20);
    const total = a.endpoints.reduce((s, e) => s + e.share, 0);
    assert.ok(Math.abs(total - 1) < 1e-6, `shares add up to ${total}`);
    for (const ep of a.endpoints) assert.ok(Math.abs(ep.share - 0.05) < 1e-6);
  });
}

Deno.test("packet syntax: protocols, IPv6 brackets, and clear errors", () => {
  assert.deepEqual(parseTarget("198.18.128.10:80"), {
    destination: "198.18.128.10",
    port: 80,
    protocol: "TCP",
  });
  assert.deepEqual(parseTarget("[fd00:128::10]:53/UDP"), {
    destination: "fd00:128::10",
    port: 53,
    protocol: "UDP",
  });
  assert.throws(() => parseTarget("198.18.128.10"), /is not ADDR:PORT/);
  assert.throws(() => parseTarget("198.18.128.10:80/icmp"), /tcp, udp or sctp/);
  assert.throws(() => parseTarget("198.18.128.10:0"), /from 1 to 65535/);
  assert.throws(
    () => packetOf(parseTarget("198.18.128.10:80"), WEB, { from: "fd00::1" }),
    /IPv6 but the destination/,
  );
});

Deno.test("every address of every service port, from a pod, the node and outside: consistent answers in both backends", () => {
  const snapshots = [WEB, EMPTY, LOCAL, TOPOLOGY, STICKY, LB];
  let answers = 0;
  for (const snapshot of snapshots) {
    for (const sp of snapshot.servicePorts) {
      for (const fam of sp.families) {
        const proto = sp.protocol.toLowerCase();
        const targets = [fam.clusterIP, ...fam.externalIPs, ...fam.loadBalancerIPs].map((ip) =>
          `${ip}:${sp.port}/${proto}`
        );
        if (sp.nodePort !== null) targets.push(`${NODE_IP}:${sp.nodePort}/${proto}`);
        for (const to of targets) {
          for (const from of [POD_CLIENT, undefined, OUTSIDE_CLIENT, "198.18.1.10"]) {
            for (const mode of MODES) {
              const a = ask(snapshot, to, from, mode);
              answers++;
              assert.equal(a.match?.servicePort, sp.id, `${mode} ${to} from ${from}`);
              if (a.verdict.kind === "dnat") {
                const total = a.endpoints.reduce((s, e) => s + e.share, 0);
                assert.ok(Math.abs(total - 1) < 1e-9, `${mode} ${to}: shares add up to ${total}`);
                for (const ep of a.endpoints) {
                  assert.ok(
                    fam.endpoints.some((e) => e.ip === ep.ip && e.port === ep.port),
                    `${mode} ${to}: ${ep.ip} is an endpoint of ${sp.id}`,
                  );
                }
                for (const ex of a.excluded) {
                  assert.ok(
                    ex.reasons.every((r) => r.kind !== "blocked"),
                    `${mode} ${to} from ${from}: ${ex.ip} has a real reason`,
                  );
                }
              }
              assert.equal(
                a.endpoints.length + a.excluded.length,
                fam.endpoints.length,
                `${mode} ${to}: every endpoint is either used or explained`,
              );
            }
          }
        }
      }
    }
  }
  assert.ok(answers > 100, `${answers} answers`);
});

Deno.test("iptables with localhost NodePorts: 127.0.0.1 from another address is dropped (route_localnet protection)", () => {
  const lo = snapshotOf([
    svc("np", {
      type: "NodePort",
      clusterIPs: ["198.18.128.90"],
      ports: [{ ...HTTP, nodePort: 30090 }],
    }),
    slice("np", [{ ip: "198.18.1.10" }]),
  ], { localhostNodePorts: true, nodePortAddresses: [] });
  const ok = ask(lo, "127.0.0.1:30090", "127.0.0.1", "iptables");
  assert.equal(ok.verdict.kind, "dnat");
  assert.equal(ok.match?.kind, "NodePort");
  const blocked = ask(lo, "127.0.0.1:9999", NODE_IP, "iptables");
  assert.equal(blocked.verdict.kind, "drop");
  assert.match(blocked.verdict.reason, /route_localnet/);
  assert.equal(blocked.verdict.by?.chain, "KUBE-FIREWALL");
});
