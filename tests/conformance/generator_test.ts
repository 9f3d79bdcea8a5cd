/**
 * The generator: a seed names one cluster for good, every object is one kproxy can read, node
 * ports are unique, and over a couple of hundred seeds every feature kube-proxy reads shows up.
 *
 * IP plan: tests/netns/two_node_plan.ts.
 */
import assert from "node:assert/strict";
import { parseKubeObject } from "../../src/model/kube_object.ts";
import {
  apiOperations,
  type ClusterModel,
  serviceObject,
  serviceStatus,
  sliceObject,
} from "./cluster_model.ts";
import { generateCase } from "./generator.ts";

function objectsOf(cluster: ClusterModel, seed: number): Record<string, unknown>[] {
  return cluster.services.flatMap((svc) => {
    const status = serviceStatus(svc);
    return [
      { ...serviceObject(svc, seed), ...(status === null ? {} : { status }) },
      ...svc.slices.map((s) => sliceObject(svc, s, seed)),
    ];
  });
}

Deno.test("generator: a seed gives the same cluster every time, another seed another one", () => {
  assert.deepEqual(generateCase(42), generateCase(42));
  assert.notDeepEqual(generateCase(42).rounds[0], generateCase(43).rounds[0]);
  assert.equal(generateCase(7, { changeRounds: 3 }).rounds.length, 4);
});

Deno.test("generator: every object of 100 seeds is one kproxy reads without complaint", () => {
  for (let seed = 1; seed <= 100; seed++) {
    const c = generateCase(seed);
    for (const cluster of c.rounds) {
      for (const raw of objectsOf(cluster, seed)) {
        const r = parseKubeObject(raw, `seed ${seed}`);
        assert.equal(r.ok, true, `seed ${seed}: ${JSON.stringify(r)}`);
      }
    }
  }
});

Deno.test("generator: node ports and virtual IPs are unique within a case", () => {
  for (let seed = 1; seed <= 100; seed++) {
    const c = generateCase(seed, { changeRounds: 2 });
    for (const cluster of c.rounds) {
      const nodePorts = cluster.services.flatMap((s) => [
        ...s.ports.flatMap((p) => p.nodePort === null ? [] : [p.nodePort]),
        ...(s.healthCheckNodePort === null ? [] : [s.healthCheckNodePort]),
      ]);
      assert.equal(new Set(nodePorts).size, nodePorts.length, `seed ${seed} node ports`);
      const vips = cluster.services.flatMap((s) => [
        ...s.clusterIPs,
        ...s.externalIPs,
        ...s.ingress.flatMap((i) => i.ip === null ? [] : [i.ip]),
      ]);
      assert.equal(new Set(vips).size, vips.length, `seed ${seed} virtual IPs`);
    }
  }
});

Deno.test("generator: 200 seeds cover the feature space kube-proxy reads", () => {
  const seen = new Set<string>();
  for (let seed = 1; seed <= 200; seed++) {
    for (const cluster of generateCase(seed).rounds) {
      for (const s of cluster.services) {
        seen.add(s.headless ? "headless" : `type ${s.type}`);
        seen.add(`families ${s.ipFamilies.join(",")}`);
        for (const p of s.ports) {
          seen.add(`protocol ${p.protocol}`);
          seen.add(typeof p.targetPort === "string" ? "named target port" : "numeric target port");
        }
        if (s.ports.length > 1) seen.add("several ports");
        if (s.externalIPs.length > 0) seen.add("externalIPs");
        if (s.sourceRanges.length > 0) seen.add("source ranges");
        for (const i of s.ingress) {
          seen.add(i.ip === null ? "hostname ingress" : `ipMode ${i.ipMode}`);
        }
        if (s.allocateNodePorts === false) seen.add("no node ports");
        seen.add(`eTP ${s.externalTrafficPolicy}`);
        seen.add(`iTP ${s.internalTrafficPolicy}`);
        if (s.affinitySeconds !== null) seen.add("ClientIP affinity");
        if (s.trafficDistribution !== null) seen.add(`distribution ${s.trafficDistribution}`);
        if (s.slices.filter((x) => x.family === s.ipFamilies[0]).length > 1) {
          seen.add("several slices");
        }
        if (s.slices.some((x) => !s.ipFamilies.includes(x.family))) seen.add("foreign family");
        const pods = new Map<string, number>();
        for (const slice of s.slices) {
          if (slice.ports.some((p) => p.port === 9)) seen.add("closed pod port");
          for (const ep of slice.endpoints) {
            const key = `${slice.family} ${ep.pod}`;
            pods.set(key, (pods.get(key) ?? 0) + 1);
            seen.add(`ready ${ep.ready} serving ${ep.serving} terminating ${ep.terminating}`);
            seen.add(ep.nodeName ? `on node ${ep.pod[0]}` : "no node name");
            if (ep.hintZones !== null) seen.add("zone hints");
            if (ep.hintNodes !== null) seen.add("node hints");
          }
        }
        if ([...pods.values()].some((n) => n > 1)) seen.add("duplicate endpoints");
      }
    }
  }
  const wanted = [
    "type ClusterIP",
    "type NodePort",
    "type LoadBalancer",
    "type ExternalName",
    "headless",
    "families IPv4",
    "families IPv6",
    "families IPv4,IPv6",
    "families IPv6,IPv4",
    "protocol TCP",
    "protocol UDP",
    "protocol SCTP",
    "named target port",
    "numeric target port",
    "several ports",
    "externalIPs",
    "source ranges",
    "hostname ingress",
    "ipMode VIP",
    "ipMode Proxy",
    "ipMode null",
    "no node ports",
    "eTP Local",
    "eTP Cluster",
    "iTP Local",
    "iTP Cluster",
    "ClientIP affinity",
    "distribution PreferClose",
    "distribution PreferSameZone",
    "distribution PreferSameNode",
    "several slices",
    "foreign family",
    "closed pod port",
    "ready true serving true terminating false",
    "ready false serving false terminating false",
    "ready false serving true terminating true",
    "ready false serving false terminating true",
    "ready null serving null terminating null",
    "on node a",
    "on node b",
    "no node name",
    "zone hints",
    "node hints",
    "duplicate endpoints",
  ];
  assert.deepEqual(wanted.filter((w) => !seen.has(w)), []);
});

Deno.test("generator: API operations create a round, change it, and delete it again", () => {
  const c = generateCase(5);
  const [first, second] = c.rounds;
  const create = apiOperations(null, first!, 5);
  const services = first!.services.length;
  assert.equal(create.filter((o) => o.op === "create" && o.kind === "Service").length, services);
  assert.ok(create.every((o) => o.op === "create" || o.op === "status"));
  assert.deepEqual(apiOperations(first!, first!, 5), []);
  const change = apiOperations(first!, second!, 5);
  assert.ok(change.length > 0, `seed 5 changes: ${c.changes[1]}`);
  const gone = apiOperations(second!, { services: [] }, 5);
  assert.ok(gone.every((o) => o.op === "delete"));
  // Slices go before their services, so nothing ever points at a missing service.
  const firstService = gone.findIndex((o) => o.kind === "Service");
  assert.ok(gone.slice(firstService).every((o) => o.kind === "Service"));
});

Deno.test("generator: a changed ingress never gives a hostname-only entry an ipMode (seed 82)", () => {
  for (const round of generateCase(82).rounds) {
    for (const svc of round.services) {
      for (const i of svc.ingress) assert.ok(i.ip !== null || i.ipMode === null, svc.name);
    }
  }
});
