// IP plan: pods 198.18.1.0/24.
import assert from "node:assert/strict";
import {
  canUseTopology,
  categorizeEndpoints,
  type CategorizeInput,
} from "./categorize_endpoints.ts";
import type { EndpointInfo } from "./types.ts";

function info(host: number, fields: Partial<EndpointInfo> = {}): EndpointInfo {
  return {
    ip: `198.18.1.${host}`,
    port: 8080,
    ready: true,
    serving: true,
    terminating: false,
    nodeName: null,
    zone: null,
    isLocal: false,
    zoneHints: null,
    nodeHints: null,
    ...fields,
  };
}

const terminating = { ready: false, serving: true, terminating: true };
const base: Omit<CategorizeInput, "endpoints"> = {
  internalTrafficPolicy: "Cluster",
  externalTrafficPolicy: "Cluster",
  externallyAccessible: false,
  zone: null,
};
const hosts = (eps: readonly EndpointInfo[]) => eps.map((e) => Number(e.ip.split(".")[3]));

Deno.test("categorize: no endpoints gives empty sets and no endpoints anywhere", () => {
  const r = categorizeEndpoints({ ...base, endpoints: [] });
  assert.deepEqual(r, {
    clusterEndpoints: [],
    localEndpoints: [],
    hasAnyEndpoints: false,
    topologyMode: null,
  });
});

Deno.test("categorize: table of policies, readiness and locality", async (t) => {
  const cases: {
    name: string;
    input: Partial<CategorizeInput>;
    eps: EndpointInfo[];
    cluster: number[];
    local: number[];
    any: boolean;
  }[] = [
    {
      name: "Cluster/Cluster uses ready endpoints, no local set",
      input: {},
      eps: [info(2, { isLocal: true }), info(3), info(4, { ready: false, serving: false })],
      cluster: [2, 3],
      local: [],
      any: true,
    },
    {
      name: "only serving-terminating endpoints: cluster falls back",
      input: {},
      eps: [info(2, terminating), info(3, { ...terminating, serving: false })],
      cluster: [2],
      local: [],
      any: true,
    },
    {
      name: "internal Local, not external: no cluster set; remote ready still counts as any",
      input: { internalTrafficPolicy: "Local" },
      eps: [info(3)],
      cluster: [],
      local: [],
      any: true,
    },
    {
      name: "internal Local: local serving-terminating fallback",
      input: { internalTrafficPolicy: "Local" },
      eps: [info(2, { ...terminating, isLocal: true }), info(3)],
      cluster: [],
      local: [2],
      any: true,
    },
    {
      name: "internal Local: terminating remote only counts as any",
      input: { internalTrafficPolicy: "Local" },
      eps: [info(3, terminating)],
      cluster: [],
      local: [],
      any: true,
    },
    {
      name: "external Local but not externally accessible: like Cluster",
      input: { externalTrafficPolicy: "Local" },
      eps: [info(2, { isLocal: true }), info(3)],
      cluster: [2, 3],
      local: [],
      any: true,
    },
    {
      name: "external Local and accessible: both sets, each with its own fallback",
      input: { externalTrafficPolicy: "Local", externallyAccessible: true },
      eps: [info(2, { ...terminating, isLocal: true }), info(3)],
      cluster: [3],
      local: [2],
      any: true,
    },
    {
      name: "external Local and accessible: nothing usable",
      input: { externalTrafficPolicy: "Local", externallyAccessible: true },
      eps: [info(2, { ready: false, serving: false, isLocal: true })],
      cluster: [],
      local: [],
      any: false,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const r = categorizeEndpoints({ ...base, ...c.input, endpoints: c.eps });
      assert.deepEqual(hosts(r.clusterEndpoints), c.cluster, "cluster");
      assert.deepEqual(hosts(r.localEndpoints), c.local, "local");
      assert.equal(r.hasAnyEndpoints, c.any, "any");
    });
  }
});

Deno.test("categorize: topology hints", () => {
  const eps = [
    info(2, { zoneHints: ["zone-a"] }),
    info(3, { zoneHints: ["zone-b"] }),
    info(4, { ...terminating, zoneHints: null }),
  ];
  assert.equal(canUseTopology(eps, "zone-a"), true);
  assert.equal(canUseTopology(eps, "zone-c"), false);
  assert.equal(canUseTopology(eps, null), false);
  assert.equal(canUseTopology(eps, ""), false);
  assert.equal(canUseTopology([info(2, { zoneHints: ["zone-a"] }), info(3)], "zone-a"), false);
  assert.equal(canUseTopology([info(2, { zoneHints: [] })], "zone-a"), false);
  assert.equal(canUseTopology([info(2, terminating)], "zone-a"), false, "no ready endpoints");
  const r = categorizeEndpoints({ ...base, zone: "zone-b", endpoints: eps });
  assert.deepEqual(hosts(r.clusterEndpoints), [3]);
  assert.equal(r.topologyMode, "PreferSameZone");
  const local = categorizeEndpoints({
    ...base,
    internalTrafficPolicy: "Local",
    zone: "zone-b",
    endpoints: eps,
  });
  assert.equal(local.topologyMode, null, "no cluster set, no topology");
});

Deno.test("categorize: node hints (PreferSameNode) win over zone hints when one names this node", () => {
  const eps = [
    info(2, { nodeHints: ["node-a"], zoneHints: ["zone-a"] }),
    info(3, { nodeHints: ["node-b"], zoneHints: ["zone-a"] }),
    info(4, { nodeHints: ["node-c"], zoneHints: ["zone-b"] }),
  ];
  const sameNode = categorizeEndpoints({
    ...base,
    endpoints: eps,
    zone: "zone-a",
    nodeName: "node-a",
  });
  assert.equal(sameNode.topologyMode, "PreferSameNode");
  assert.deepEqual(hosts(sameNode.clusterEndpoints), [2]);
  const otherNode = categorizeEndpoints({
    ...base,
    endpoints: eps,
    zone: "zone-a",
    nodeName: "node-z",
  });
  assert.equal(otherNode.topologyMode, "PreferSameZone", "no hint for this node: zone hints");
  assert.deepEqual(hosts(otherNode.clusterEndpoints), [2, 3]);
  const partial = categorizeEndpoints({
    ...base,
    endpoints: [info(2, { nodeHints: ["node-a"] }), info(3)],
    zone: "zone-a",
    nodeName: "node-a",
  });
  assert.equal(partial.topologyMode, null, "an endpoint without hints disables topology");
  assert.deepEqual(hosts(partial.clusterEndpoints), [2, 3]);
});
