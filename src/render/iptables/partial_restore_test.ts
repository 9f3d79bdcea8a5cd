import assert from "node:assert/strict";
import type { IPFamily } from "../../model/ip.ts";
import { initialProxyState, type ProxyEvent, reconcile } from "../../snapshot/proxy_state.ts";
import type { ProxySnapshot } from "../../snapshot/types.ts";
import { BASE_SETTINGS, nodeA, objects, service, slice } from "./_test_cases.ts";
import { type LiveServicePort, renderFamilyRestore } from "./full_restore.ts";
import { changedIds, renderPartialRestore } from "./partial_restore.ts";
import { IptablesFake } from "./restore_fake.ts";

// IP plan: services 198.18.128.0/17, pods 198.18.1.0/24 (see _test_cases.ts).

const SHARED = new Set([
  "KUBE-SERVICES",
  "KUBE-NODEPORTS",
  "KUBE-EXTERNAL-SERVICES",
  "KUBE-PROXY-FIREWALL",
]);

/** Tables as comparable data: shared chains as sorted sets, owned chains in order. */
function normalized(fake: IptablesFake): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  for (const table of ["filter", "nat"]) {
    const chains: Record<string, string[]> = {};
    for (const [name, rules] of [...fake.chains(table)].sort(([a], [b]) => a < b ? -1 : 1)) {
      chains[name] = SHARED.has(name) ? [...rules].sort() : rules;
    }
    out[table] = chains;
  }
  return out;
}

function svcObjects(
  i: number,
  endpoints: number,
  extra: Partial<Parameters<typeof service>[1]> = {},
) {
  return objects([
    service(`s${i}`, {
      type: "NodePort",
      clusterIPs: [`198.18.128.${i}`],
      ports: [{ name: "http", protocol: "TCP", port: 80, nodePort: 30000 + i }],
      ...extra,
    }),
    slice(`s${i}`, `s${i}-1`, {
      ports: [{ name: "http", protocol: "TCP", port: 8080 }],
      endpoints: Array.from({ length: endpoints }, (_, k) => ({
        ip: `198.18.1.${i * 5 + k}`,
        node: k === 0 ? "node-a" : "node-b",
      })),
    }),
  ]);
}

/** Applies partial syncs step by step and checks each against a fresh full load. */
function runSteps(
  family: IPFamily,
  steps: readonly (readonly ProxyEvent[])[],
  chainsPerStage?: number,
): number[] {
  let state = initialProxyState(BASE_SETTINGS);
  const first = reconcile(state, [{
    type: "replace",
    objects: [...objects([nodeA()]), ...svcObjects(1, 3), ...svcObjects(2, 2), ...svcObjects(3, 1)],
  }]);
  state = first.state;
  const fake = new IptablesFake();
  const opts = chainsPerStage === undefined ? {} : { chainsPerStage };
  const full = renderFamilyRestore(state.snapshot, family, opts);
  for (const stage of full.stages) fake.restore(stage, { noflush: true });
  let live: Map<string, LiveServicePort> = new Map(full.services);
  const sizes: number[] = [];
  for (const events of steps) {
    const r = reconcile(state, events);
    state = r.state;
    const partial = renderPartialRestore(state.snapshot, family, live, r.changedServicePorts, opts);
    for (const stage of partial.stages) fake.restore(stage, { noflush: true });
    sizes.push(partial.lines);
    for (const [id, v] of partial.updates) {
      if (v === null) live.delete(id);
      else live.set(id, v);
    }
    const expected = new IptablesFake();
    const again = renderFamilyRestore(state.snapshot, family);
    expected.restore(again.text, { noflush: true });
    assert.deepEqual(normalized(fake), normalized(expected));
    assert.deepEqual([...live.keys()].sort(), [...again.services.keys()].sort());
    live = new Map(live);
  }
  return sizes;
}

function churn(): ProxyEvent[][] {
  const ep = (i: number, n: number, extra = {}) =>
    svcObjects(i, n, extra).map((object) => ({ type: "upsert", object }) as ProxyEvent);
  return [
    ep(1, 4), // one more endpoint
    ep(2, 0), // loses every endpoint: nat rules → filter REJECT, chains deleted
    ep(2, 2), // and gets them back
    ep(3, 1, { etp: "Local" }), // EXT chain rules change, SVL appears
    ep(3, 1, { itp: "Local", etp: "Local" }), // cluster IP now goes to SVL
    [{ type: "delete", kind: "Service", namespace: "default", name: "s1" }],
    ep(4, 2, { externalIPs: ["198.18.200.4"], affinity: 60 }), // a new service
    [...ep(5, 3), ...ep(6, 3), ...ep(2, 3)], // several at once
    [], // nothing changed: nothing sent
  ];
}

Deno.test("partial syncs leave exactly what a full sync of the same snapshot would", () => {
  const sizes = runSteps("IPv4", churn());
  assert.equal(sizes[sizes.length - 1], 0);
});

Deno.test("staged syncs (iptables-nft's batches) end where one transaction would", () => {
  for (const limit of [1, 3, 7]) {
    const sizes = runSteps("IPv4", churn(), limit);
    assert.equal(sizes[sizes.length - 1], 0);
  }
});

Deno.test("a one-endpoint change sends only that service's chains", () => {
  const sizes = runSteps("IPv4", [
    svcObjects(1, 4).slice(1).map((object) => ({ type: "upsert", object }) as ProxyEvent),
  ]);
  // *nat; EXT, SVC and 4 SEP chain lines; 2 EXT rules, SVC masq + 4 jumps, 4×2 SEP rules;
  // COMMIT. No filter table, nothing in the shared chains.
  assert.equal(sizes[0], 1 + 6 + 2 + 5 + 8 + 1);
});

Deno.test("changedIds also catches ports whose hash differs from what is live", () => {
  const state = reconcile(initialProxyState(BASE_SETTINGS), [{
    type: "replace",
    objects: [...objects([nodeA()]), ...svcObjects(1, 1), ...svcObjects(2, 1)],
  }]).state;
  const snapshot: ProxySnapshot = state.snapshot;
  const full = renderFamilyRestore(snapshot, "IPv4");
  const live = new Map(full.services);
  assert.deepEqual(changedIds(snapshot, "IPv4", live, []), []);
  const first = live.get("default/s1:http") as LiveServicePort;
  live.set("default/s1:http", { ...first, hash: "stale" });
  live.set("default/gone:http", first);
  assert.deepEqual(changedIds(snapshot, "IPv4", live, []), [
    "default/gone:http",
    "default/s1:http",
  ]);
});
