/**
 * Incremental planning (pure): partial transactions touch only what changed, and the memory
 * they leave renders like a fresh full render. IP plan: see `_fixtures.ts`.
 */
import assert from "node:assert/strict";
import { initialProxyState, type ProxyState, reconcile } from "../../snapshot/proxy_state.ts";
import {
  FIXTURE_SETTINGS,
  objects,
  rawService,
  rawSlice,
  syntheticService,
  syntheticState,
} from "./_fixtures.ts";
import { fullTableText, planIncremental, renderFamily, ruleCount } from "./table_plan.ts";

const HTTP = { name: "http", protocol: "TCP", port: 80 };
const HTTP_TARGET = { name: "http", protocol: "TCP", port: 8080 };

function sorted(text: string): string {
  return text.split("\n").map((l) => l.trim().replace(/,$/, "")).filter((l) => l !== "").sort()
    .join("\n");
}

function upsert(state: ProxyState, raws: unknown[]) {
  return reconcile(state, objects(raws).map((object) => ({ type: "upsert" as const, object })));
}

Deno.test("a one-endpoint change sends a transaction whose size does not grow with services", () => {
  for (const services of [10, 1000]) {
    const state = syntheticState(services, 10);
    const live = renderFamily(state.snapshot, "IPv4");
    const slice = objects(syntheticService(3, 10, { firstEndpoint: 50_000 }))[1];
    const r = reconcile(state, [{ type: "upsert", object: slice! }]);
    const next = renderFamily(r.state.snapshot, "IPv4", r.changedServicePorts);
    const plan = planIncremental(live, next, r.changedServicePorts);
    // Ten new endpoints: ten endpoint-map elements and ten hairpin pairs out, ten of each in,
    // and nothing but elements.
    assert.equal(plan.commands.length, 40, `${services} services`);
    assert.ok(plan.commands.every((c) => / element ip kproxy /.test(c)), plan.commands.join("\n"));
    plan.commit();
    assert.equal(
      sorted(fullTableText(live)),
      sorted(fullTableText(renderFamily(r.state.snapshot, "IPv4"))),
    );
  }
});

Deno.test("an element claimed by two services moves to the other when its winner leaves", () => {
  let state = initialProxyState(FIXTURE_SETTINGS);
  let r = upsert(state, [
    rawService("a", { clusterIPs: ["198.18.128.1"], externalIPs: ["198.18.200.1"], ports: [HTTP] }),
    rawSlice("a", HTTP_TARGET, [{ ip: "198.18.1.1" }]),
    rawService("b", { clusterIPs: ["198.18.128.2"], externalIPs: ["198.18.200.1"], ports: [HTTP] }),
    rawSlice("b", HTTP_TARGET, [{ ip: "198.18.1.2" }]),
    rawService("c", {
      clusterIPs: ["198.18.128.3"],
      externalIPs: ["198.18.200.3"],
      sessionAffinity: "ClientIP",
      ports: [HTTP],
    }),
    rawSlice("c", HTTP_TARGET, [{ ip: "198.18.1.3" }]),
    rawService("d", { clusterIPs: ["198.18.128.4"], externalIPs: ["198.18.200.3"], ports: [HTTP] }),
    rawSlice("d", HTTP_TARGET, [{ ip: "198.18.1.4" }]),
  ]);
  state = r.state;
  const live = renderFamily(state.snapshot, "IPv4");
  // a and b both claim 198.18.200.1:80 with one endpoint each: a (the smaller id) wins.
  assert.match(
    fullTableText(live),
    /198\.18\.200\.1 \. tcp \. 80 \. 65536 : 198\.18\.1\.1 \. 8080/,
  );
  assert.doesNotMatch(fullTableText(live), /198\.18\.200\.1 \. tcp \. 80 \. 65536 : 198\.18\.1\.2/);
  // c (chained, for its affinity) is in the verdict map the services chain reads first; d waits
  // in its entry set.
  assert.match(fullTableText(live), /198\.18\.200\.3 \. tcp \. 80 : goto external-\S+\/c\//);
  r = reconcile(state, [
    { type: "delete", kind: "Service", namespace: "default", name: "a" },
    { type: "delete", kind: "Service", namespace: "default", name: "c" },
  ]);
  const plan = planIncremental(
    live,
    renderFamily(r.state.snapshot, "IPv4", r.changedServicePorts),
    r.changedServicePorts,
  );
  const text = plan.commands.join("\n");
  // b's endpoint takes the key a held, with b's own value.
  assert.match(
    text,
    /delete element ip kproxy cluster-endpoints \{ 198\.18\.200\.1 \. tcp \. 80 \. 65536 \}/,
  );
  assert.match(
    text,
    /add element ip kproxy cluster-endpoints \{ 198\.18\.200\.1 \. tcp \. 80 \. 65536 : 198\.18\.1\.2 \. 8080 \}/,
  );
  // The entry is still claimed by b: it stays; a's hairpin pair goes, b's stays.
  assert.doesNotMatch(text, /external-cluster-services \{ 198\.18\.200\.1 /);
  assert.match(text, /delete element ip kproxy hairpin-endpoints \{ 198\.18\.1\.1 /);
  assert.doesNotMatch(text, /hairpin-endpoints \{ 198\.18\.1\.2 /);
  // c's element and chains go, which leaves the address to d (already in its entry set).
  assert.match(text, /delete element ip kproxy service-ips \{ 198\.18\.200\.3 \. tcp \. 80 \}/);
  assert.doesNotMatch(text, /external-cluster-services/);
  assert.match(text, /delete chain ip kproxy service-\S+\/c\//);
  const rulesBefore = ruleCount(live);
  assert.ok(plan.ruleDelta < 0, "c's chains took rules with them");
  plan.commit();
  assert.equal(rulesBefore + plan.ruleDelta, ruleCount(renderFamily(r.state.snapshot, "IPv4")));
  assert.equal(
    sorted(fullTableText(live)),
    sorted(fullTableText(renderFamily(r.state.snapshot, "IPv4"))),
  );
});

Deno.test("an unchanged service port plans nothing; a plan is inert until committed", () => {
  const state = syntheticState(5, 2);
  const live = renderFamily(state.snapshot, "IPv4");
  const before = fullTableText(live);
  const id = state.snapshot.servicePorts[0]!.id;
  assert.deepEqual(
    planIncremental(live, renderFamily(state.snapshot, "IPv4", [id]), [id]).commands,
    [],
  );
  const r = reconcile(state, [{
    type: "delete",
    kind: "Service",
    namespace: "bench",
    name: "svc-0",
  }]);
  const plan = planIncremental(live, renderFamily(r.state.snapshot, "IPv4", [id]), [id]);
  assert.ok(plan.commands.length > 0);
  assert.equal(fullTableText(live), before);
  plan.commit();
  assert.notEqual(fullTableText(live), before);
});

Deno.test("ServiceCIDRs: nftables drops traffic to their unallocated addresses, per family; a change is elements only", () => {
  const cidr = (name: string, cidrs: string[]) => ({
    apiVersion: "networking.k8s.io/v1",
    kind: "ServiceCIDR",
    metadata: { name },
    spec: { cidrs },
  });
  const base = initialProxyState(FIXTURE_SETTINGS);
  const one = upsert(base, [cidr("kubernetes", ["198.18.128.0/17", "fd00:128::/112"])]);
  assert.equal(one.nodeOrOptionsChanged, false, "the applier decides: no full sync asked");
  assert.deepEqual(one.state.snapshot.serviceCIDRs, ["198.18.128.0/17", "fd00:128::/112"]);
  assert.notEqual(one.state.snapshot.hash, base.snapshot.hash);
  assert.ok(Object.isFrozen(one.state.snapshot.serviceCIDRs));
  const v4 = renderFamily(one.state.snapshot, "IPv4");
  // As upstream: the port a ClusterIP lacks is rejected first, then the range is dropped.
  assert.match(
    fullTableText(v4),
    /chain cluster-ips-check \{\n\t\tip daddr @cluster-ips goto reject-chain\n\t\tip daddr @service-cidrs drop\n\t\}/,
  );
  assert.match(
    fullTableText(v4),
    /set service-cidrs \{\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = \{\n\t\t\t198\.18\.128\.0\/17\n/,
  );
  const v6 = fullTableText(renderFamily(one.state.snapshot, "IPv6"));
  assert.match(v6, /ip6 daddr @service-cidrs drop/);
  assert.match(v6, /fd00:128::\/112/);
  assert.doesNotMatch(fullTableText(renderFamily(base.snapshot, "IPv4")), /service-cidrs| drop\n/);

  // A second range, and one inside the first (which adds nothing): two elements out of three.
  const two = upsert(one.state, [
    cidr("extra", ["198.19.128.0/24"]),
    cidr("inner", ["198.18.130.0/24"]),
  ]);
  assert.deepEqual(two.state.snapshot.serviceCIDRs, [
    "198.18.128.0/17",
    "198.19.128.0/24",
    "fd00:128::/112",
  ]);
  assert.deepEqual(two.changedServicePorts, []);
  const next = renderFamily(two.state.snapshot, "IPv4", []);
  assert.equal(next.fixedKey, v4.fixedKey, "the fixed part is the same but for elements");
  const plan = planIncremental(v4, next, []);
  assert.deepEqual(plan.commands, [
    "add element ip kproxy service-cidrs { 198.19.128.0/24 }",
  ]);
  plan.commit();
  assert.equal(fullTableText(v4), fullTableText(renderFamily(two.state.snapshot, "IPv4")));

  // One goes: a delete of its element. All go: the set and the rule go (a full sync).
  const less = reconcile(two.state, [
    { type: "delete", kind: "ServiceCIDR", namespace: null, name: "kubernetes" },
  ]);
  assert.deepEqual(less.state.snapshot.serviceCIDRs, ["198.18.130.0/24", "198.19.128.0/24"]);
  const lessPlan = planIncremental(v4, renderFamily(less.state.snapshot, "IPv4", []), []);
  assert.deepEqual(lessPlan.commands, [
    "delete element ip kproxy service-cidrs { 198.18.128.0/17 }",
    "add element ip kproxy service-cidrs { 198.18.130.0/24 }",
  ]);
  const gone = reconcile(less.state, [
    { type: "delete", kind: "ServiceCIDR", namespace: null, name: "extra" },
    { type: "delete", kind: "ServiceCIDR", namespace: null, name: "inner" },
  ]);
  assert.deepEqual(gone.state.snapshot.serviceCIDRs, []);
  const none = renderFamily(gone.state.snapshot, "IPv4");
  assert.notEqual(none.fixedKey, v4.fixedKey, "no range: no set, no rule, a rewrite");
  assert.doesNotMatch(fullTableText(none), / drop\n/);
});
