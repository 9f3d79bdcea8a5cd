// IP plan: the generator's own (198.18.0.0/15, fd00::/8); see synthetic_cluster.ts.
import assert from "node:assert/strict";
import { parseIP } from "../src/model/ip.ts";
import {
  addedService,
  freshEndpointIPv4,
  freshServiceIPv4,
  kubeObjectsOf,
  podIPv6,
  serviceIPv4,
  serviceIPv6,
  sliceWithEndpoint,
  sliceWithoutEndpoint,
  syntheticCluster,
  toKubeObject,
} from "./synthetic_cluster.ts";

Deno.test("the same seed and size give the same cluster", () => {
  const a = syntheticCluster({ services: 300, seed: 7 });
  const b = syntheticCluster({ services: 300, seed: 7 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a.services, syntheticCluster({ services: 300, seed: 8 }).services);
});

Deno.test("every generated object passes kproxy's validation", () => {
  const cluster = syntheticCluster({ services: 2000 });
  const objects = kubeObjectsOf(cluster);
  assert.equal(objects.length, 1 + cluster.services.length + cluster.slices.length);
});

Deno.test("the mix has every kind of service the benchmarks promise", () => {
  const { mix } = syntheticCluster({ services: 2000 });
  for (
    const key of ["NodePort", "LoadBalancer", "externalTrafficPolicyLocal", "clientIPAffinity"]
  ) {
    assert.ok((mix[key] ?? 0) > 0, key);
  }
  assert.ok((mix["dualStack"] ?? 0) > 50);
  assert.ok((mix["ClusterIP"] ?? 0) > 1800);
  assert.equal(mix["endpoints"], 10 * (2000 + (mix["dualStack"] ?? 0)));
});

Deno.test("addresses stay inside the bench ranges and are canonical", () => {
  const inV4 = (ip: string) => /^198\.1[89]\./.test(ip);
  assert.ok(inV4(serviceIPv4(63_743)));
  assert.ok(inV4(serviceIPv4(63_744)));
  assert.notEqual(serviceIPv4(63_744), serviceIPv4(0));
  assert.throws(() => serviceIPv4(111_360), /over 111360/);
  assert.equal(freshEndpointIPv4(0), "198.18.250.0");
  assert.equal(freshServiceIPv4(0), "198.19.250.0");
  for (const ip of [serviceIPv6(0), serviceIPv6(70_000), podIPv6(5), podIPv6(300_000)]) {
    assert.ok(ip.startsWith("fd00:"), ip);
    assert.equal(parseIP(ip)?.text, ip, "canonical form");
  }
});

Deno.test("change helpers add and remove one endpoint and make valid new services", () => {
  const slice = syntheticCluster({ services: 1 }).slices[0]!;
  const grown = sliceWithEndpoint(slice, freshEndpointIPv4(3));
  assert.equal((grown["endpoints"] as unknown[]).length, 11);
  const shrunk = sliceWithoutEndpoint(grown, freshEndpointIPv4(3));
  assert.deepEqual(shrunk["endpoints"], slice["endpoints"]);
  const { service, slice: added } = addedService(2, 3, 10);
  assert.equal(toKubeObject(service).kind, "Service");
  assert.equal(toKubeObject(added).kind, "EndpointSlice");
});
