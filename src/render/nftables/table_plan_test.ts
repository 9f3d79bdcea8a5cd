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
import { fullTableText, planIncremental, renderFamily } from "./table_plan.ts";

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
    // flush + 11 rules + hairpin: 10 elements out, 10 in.
    assert.equal(plan.commands.length, 32, `${services} services`);
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
    rawSlice("b", HTTP_TARGET, [{ ip: "198.18.1.1" }]),
  ]);
  state = r.state;
  const live = renderFamily(state.snapshot, "IPv4");
  assert.match(fullTableText(live), /198\.18\.200\.1 \. tcp \. 80 : goto external-\S+\/a\//);
  r = reconcile(state, [{ type: "delete", kind: "Service", namespace: "default", name: "a" }]);
  const plan = planIncremental(
    live,
    renderFamily(r.state.snapshot, "IPv4", r.changedServicePorts),
    r.changedServicePorts,
  );
  const text = plan.commands.join("\n");
  assert.match(text, /delete element ip kproxy service-ips \{ 198\.18\.200\.1 \. tcp \. 80 \}/);
  assert.match(
    text,
    /add element ip kproxy service-ips \{ 198\.18\.200\.1 \. tcp \. 80 : goto external-\S+\/b\//,
  );
  // The hairpin pair is still claimed by b: it stays.
  assert.doesNotMatch(text, /hairpin/);
  assert.match(text, /delete chain ip kproxy service-\S+\/a\//);
  plan.commit();
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
