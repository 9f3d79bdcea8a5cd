/** Endpoint selection and policy rules of one service port. IP plan: see `_fixtures.ts`. */
import assert from "node:assert/strict";
import { rawService, rawSlice, snapshotOf } from "./_fixtures.ts";
import { familyContext, fixedRules } from "./fixed_rules.ts";
import { endpointKeyOffset, FIXED, MAP_MAX_ENDPOINTS } from "./names.ts";
import { CASCADE_MAX_ENDPOINTS, renderServicePort } from "./service_port_rules.ts";

const HTTP = { name: "http", protocol: "TCP", port: 80 };
const HTTP_TARGET = { name: "http", protocol: "TCP", port: 8080 };

function rulesFor(endpoints: number, spec: Record<string, unknown> = {}) {
  const snapshot = snapshotOf([
    rawService("web", { clusterIPs: ["198.18.128.10"], ports: [HTTP], ...spec }),
    rawSlice(
      "web",
      HTTP_TARGET,
      Array.from({ length: endpoints }, (_, i) => ({ ip: `198.18.1.${10 + i}` })),
    ),
  ]);
  const sp = snapshot.servicePorts[0]!;
  return renderServicePort(sp, familyContext(snapshot, "IPv4"))!;
}

Deno.test("map-held endpoints: N keys 0…N-1 behind the offset, one per endpoint", () => {
  for (let n = 1; n <= MAP_MAX_ENDPOINTS; n++) {
    const rules = rulesFor(n);
    assert.deepEqual(rules.chains, [], "no chains of its own");
    const picks = rules.elements.filter((e) => e.set === FIXED.clusterEndpointsMap);
    assert.deepEqual(
      picks.map((e) => [e.key, e.value]),
      Array.from({ length: n }, (_, i) => [
        `198.18.128.10 . tcp . 80 . ${endpointKeyOffset(n) + i}`,
        `198.18.1.${10 + i} . 8080`,
      ]),
    );
    assert.deepEqual(
      rules.elements.filter((e) => e.set === FIXED.clusterIPClusterSet).map((e) => e.key),
      ["198.18.128.10 . tcp . 80"],
    );
  }
  // The selection chain draws i uniformly in [0, N) for every N a map-held port may have.
  const snapshot = snapshotOf([]);
  const select = fixedRules(snapshot, familyContext(snapshot, "IPv4")).chains
    .find((c) => c.name === FIXED.selectClusterChain)!;
  assert.deepEqual(
    select.rules,
    Array.from(
      { length: MAP_MAX_ENDPOINTS },
      (_, k) =>
        `dnat ip to ip daddr . meta l4proto . th dport . numgen random mod ${k + 1} offset ${
          endpointKeyOffset(k + 1)
        } map @cluster-endpoints`,
    ),
  );
});

Deno.test("with affinity, the numgen cascade picks each endpoint with probability 1/N", () => {
  for (let n = 1; n <= CASCADE_MAX_ENDPOINTS; n++) {
    const chain = rulesFor(n, { sessionAffinity: "ClientIP" }).chains
      .find((c) => c.name.startsWith("service-"))!;
    const picks = chain.rules.filter((r) => r.includes("dnat to") && !r.startsWith("ip saddr @"));
    assert.equal(picks.length, n);
    let remaining = 1;
    const probability: number[] = [];
    for (const rule of picks) {
      const m = /numgen random mod (\d+) 0 /.exec(rule);
      const p = m ? 1 / Number(m[1]) : 1;
      probability.push(remaining * p);
      remaining *= 1 - p;
    }
    for (const p of probability) assert.ok(Math.abs(p - 1 / n) < 1e-12, `N=${n}: ${probability}`);
  }
});

Deno.test("many endpoints use one numgen map rule", () => {
  const n = CASCADE_MAX_ENDPOINTS + 1;
  const chain = rulesFor(n).chains.find((c) => c.name.startsWith("service-"))!;
  const dnat = chain.rules.filter((r) => r.includes("dnat"));
  assert.equal(dnat.length, 1);
  assert.match(
    dnat[0]!,
    new RegExp(`numgen random mod ${n} map \\{ 0 : 198\\.18\\.1\\.10 \\. 8080,`),
  );
});

Deno.test("ClientIP affinity: one set per endpoint, checked before the random pick", () => {
  const rules = rulesFor(2, {
    sessionAffinity: "ClientIP",
    sessionAffinityConfig: { clientIP: { timeoutSeconds: 30 } },
  });
  assert.equal(rules.sets.length, 2);
  for (const s of rules.sets) {
    assert.equal(s.declaration, "type ipv4_addr; flags dynamic,timeout; timeout 30s;");
  }
  const chain = rules.chains.find((c) => c.name.startsWith("service-"))!;
  const [, sticky0, sticky1, pick0, pick1] = chain.rules;
  assert.match(
    sticky0!,
    /^ip saddr @affinity-\S+ update @affinity-\S+ \{ ip saddr \} .*198\.18\.1\.10:8080$/,
  );
  assert.match(sticky1!, /^ip saddr @affinity-\S+ update .*198\.18\.1\.11:8080$/);
  assert.match(
    pick0!,
    /^numgen random mod 2 0 update @affinity-\S+ \{ ip saddr \} .*198\.18\.1\.10/,
  );
  assert.match(pick1!, /^update @affinity-\S+ \{ ip saddr \} .*198\.18\.1\.11/);
});

Deno.test("a service port without this family renders nothing", () => {
  const snapshot = snapshotOf([
    rawService("web", { clusterIPs: ["198.18.128.10"], ports: [HTTP] }),
  ]);
  assert.equal(
    renderServicePort(snapshot.servicePorts[0]!, familyContext(snapshot, "IPv6")),
    null,
  );
});
