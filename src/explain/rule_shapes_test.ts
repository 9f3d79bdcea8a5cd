/** The rule compilers know the renderers' shapes and refuse anything else, naming the rule. */
import assert from "node:assert/strict";
import { compileIptablesRule } from "./iptables_rules.ts";
import { compileNftRule, expandFans } from "./nftables_rules.ts";
import { type PacketState, RuleShapeError } from "./trace_engine.ts";

const STATE: PacketState = {
  protocol: "TCP",
  source: "198.18.1.99",
  destination: "198.18.128.10",
  port: 80,
  inputInterface: null,
  marked: false,
  dnat: null,
  masqueraded: false,
  dstNatDone: false,
  srcNatDone: false,
};

const NFT_LOOKUPS = {
  mapVerdict: (map: string, key: string) =>
    map === "service-ips" && key === "198.18.128.10 . tcp . 80" ? "goto service-X" : null,
  inSet: () => false,
  isLocal: (ip: string) => ip === "198.18.0.10",
};

Deno.test("nftables rules: matches, picks and verdicts", () => {
  const vmap = compileNftRule("ip daddr . meta l4proto . th dport vmap @service-ips", NFT_LOOKUPS);
  assert.equal(vmap.matches(STATE), 1);
  assert.deepEqual(vmap.apply(STATE).control, { kind: "goto", chain: "service-X" });
  assert.equal(vmap.matches({ ...STATE, port: 81 }), 0);
  const pick = compileNftRule(
    "numgen random mod 4 0 meta l4proto tcp dnat to 198.18.1.10:8080",
    NFT_LOOKUPS,
  );
  assert.equal(pick.matches(STATE), 0.25);
  assert.equal(pick.matches({ ...STATE, protocol: "UDP" }), 0);
  const after = pick.apply(STATE).state;
  assert.equal(after.destination, "198.18.1.10");
  assert.equal(after.port, 8080);
  const masq = compileNftRule(
    "ip daddr 198.18.128.10 tcp dport 80 ip saddr != 198.18.1.0/24 jump mark-for-masquerade",
    NFT_LOOKUPS,
  );
  assert.equal(masq.matches(STATE), 0, "a pod source is not masqueraded");
  assert.equal(masq.matches({ ...STATE, source: "198.19.0.2" }), 1);
  const fib = compileNftRule("fib saddr type local goto service-X", NFT_LOOKUPS);
  assert.equal(fib.matches({ ...STATE, source: "198.18.0.10" }), 1);
  assert.equal(fib.matches(STATE), 0);
});

Deno.test("nftables rules: entry sets and endpoint maps", () => {
  const lookups = {
    ...NFT_LOOKUPS,
    inSet: (set: string, key: string) =>
      (set === "clusterip-cluster-services" && key === "198.18.128.10 . tcp . 80") ||
      (set === "nodeport-local-services" && key === "tcp . 30080"),
    mapVerdict: (map: string, key: string) =>
      map === "cluster-endpoints"
        ? { "198.18.128.10 . tcp . 80 . 131072": "198.18.1.10 . 8080" }[key] ??
          { "198.18.128.10 . tcp . 80 . 131073": "198.18.1.11 . 8080" }[key] ?? null
        : null,
  };
  const entry = compileNftRule(
    "ip daddr . meta l4proto . th dport @clusterip-cluster-services goto clusterip-cluster",
    lookups,
  );
  assert.equal(entry.matches(STATE), 1);
  assert.equal(
    entry.apply(STATE).describe,
    "@clusterip-cluster-services[198.18.128.10 . tcp . 80] → goto clusterip-cluster",
  );
  assert.equal(entry.matches({ ...STATE, port: 81 }), 0);
  const nodePort = compileNftRule(
    "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport @nodeport-local-services goto nodeport-local",
    lookups,
  );
  const atNode = { ...STATE, destination: "198.18.0.10", port: 30080 };
  assert.equal(nodePort.matches(atNode), 1);
  assert.match(nodePort.apply(atNode).describe ?? "", /\[tcp \. 30080\]/);
  const pick = (n: number) =>
    expandFans([compileNftRule(
      `dnat ip to ip daddr . meta l4proto . th dport . numgen random mod ${n} offset ${
        n * 65536
      } map @cluster-endpoints`,
      lookups,
    )]);
  // Two endpoints under offset 2·65536: two alternatives, 1/2 then 1/1.
  const two = pick(2);
  assert.deepEqual(two.map((r) => r.matches(STATE)), [0.5, 1]);
  assert.deepEqual(two.map((r) => r.apply(STATE).state.destination), [
    "198.18.1.10",
    "198.18.1.11",
  ]);
  // No key under another N: the rule does not match, the next one is tried.
  assert.deepEqual(pick(3).map((r) => r.matches(STATE)), [0, 0, 0]);
});

Deno.test("nftables rules: an unknown shape is an error naming the rule", () => {
  assert.throws(
    () => compileNftRule("ip daddr 198.18.128.10 counter accept", NFT_LOOKUPS),
    (e: unknown) =>
      e instanceof RuleShapeError && /"ip daddr 198\.18\.128\.10 counter accept"/.test(e.message),
  );
  assert.throws(() => compileNftRule("jump a jump b", NFT_LOOKUPS), RuleShapeError);
});

const IPT_LOOKUPS = {
  isLocal: (ip: string) => ip === "198.18.0.10",
  inRecent: () => false,
  isChain: (name: string) => name.startsWith("KUBE-"),
};

Deno.test("iptables rules: matches, picks and targets", () => {
  const svc = compileIptablesRule(
    '-m comment --comment "default/web:http cluster IP" -m tcp -p tcp -d 198.18.128.10 --dport 80 -j KUBE-SVC-X',
    IPT_LOOKUPS,
  );
  assert.equal(svc.matches(STATE), 1);
  assert.deepEqual(svc.apply(STATE).control, { kind: "jump", chain: "KUBE-SVC-X" });
  assert.equal(svc.matches({ ...STATE, protocol: "UDP" }), 0);
  const pick = compileIptablesRule(
    "-m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-A",
    IPT_LOOKUPS,
  );
  assert.ok(Math.abs(pick.matches(STATE) - 1 / 3) < 1e-9);
  const dnat = compileIptablesRule(
    "-m tcp -p tcp -j DNAT --to-destination [fd00:1::10]:8080",
    IPT_LOOKUPS,
  );
  assert.equal(dnat.apply(STATE).state.destination, "fd00:1::10");
  const notPods = compileIptablesRule(
    "! -s 198.18.1.0/24 -d 198.18.128.10 -j KUBE-MARK-MASQ",
    IPT_LOOKUPS,
  );
  assert.equal(notPods.matches(STATE), 0);
  assert.equal(notPods.matches({ ...STATE, source: "198.19.0.2" }), 1);
  const local = compileIptablesRule("-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS", IPT_LOOKUPS);
  assert.equal(local.matches({ ...STATE, destination: "198.18.0.10" }), 1);
  assert.equal(local.matches(STATE), 0);
});

Deno.test("iptables rules: an unknown shape is an error naming the rule", () => {
  assert.throws(
    () => compileIptablesRule("-m set --match-set foo src -j ACCEPT", IPT_LOOKUPS),
    (e: unknown) => e instanceof RuleShapeError && /--match-set/.test(e.message),
  );
  assert.throws(() => compileIptablesRule("-j NOTACHAIN", IPT_LOOKUPS), RuleShapeError);
});
