/**
 * Shared set-up of the in-process benchmarks: a synthetic cluster of a given size, validated
 * into kproxy's model, reconciled once, and a list of one-object changes to reconcile against it.
 *
 * @module
 */
import type { KubeObject } from "../src/model/kube_object.ts";
import {
  initialProxyState,
  type ProxyEvent,
  type ProxyState,
  reconcile,
  type SnapshotSettings,
} from "../src/snapshot/proxy_state.ts";
import {
  addedService,
  BENCH_CLUSTER_CIDRS,
  BENCH_NODE_NAME,
  freshEndpointIPv4,
  kubeObjectsOf,
  type RawObject,
  sliceWithEndpoint,
  type SyntheticCluster,
  syntheticCluster,
  toKubeObject,
} from "./synthetic_cluster.ts";

/** Snapshot settings of every benchmark proxy (node-a, the bench cluster CIDRs). */
export const BENCH_SETTINGS: SnapshotSettings = Object.freeze({
  nodeName: BENCH_NODE_NAME,
  clusterCIDRs: BENCH_CLUSTER_CIDRS,
  masqueradeAll: false,
  masqueradeBit: 14,
  localhostNodePorts: true,
  nodePortAddresses: ["primary"],
  hostAddresses: [],
});

/** A reconciled cluster and changes to apply to it. */
export interface BenchFixture {
  /** Number of services. */
  readonly size: number;
  /** The generated cluster. */
  readonly cluster: SyntheticCluster;
  /** Its objects, validated. */
  readonly objects: readonly KubeObject[];
  /** The state after reconciling all objects. */
  readonly state: ProxyState;
}

const cache = new Map<string, BenchFixture>();

/** The fixture for `size` services × `endpoints` endpoints (built once per process). */
export function benchFixture(size: number, endpoints = 10): BenchFixture {
  let f = cache.get(`${size}x${endpoints}`);
  if (f === undefined) {
    // Rows with many endpoints per service are about that one thing: plain ClusterIP services.
    const cluster = syntheticCluster({
      services: size,
      endpointsPerService: endpoints,
      plain: endpoints > 10,
    });
    const objects = kubeObjectsOf(cluster);
    const state = reconcile(initialProxyState(BENCH_SETTINGS), [{ type: "replace", objects }])
      .state;
    f = { size, cluster, objects, state };
    cache.set(`${size}x${endpoints}`, f);
  }
  return f;
}

/** IPv4 slices spread evenly over the cluster, `count` of them (for varied one-object changes). */
export function spreadSlices(cluster: SyntheticCluster, count: number): RawObject[] {
  const v4 = cluster.slices.filter((s) => s["addressType"] === "IPv4");
  const out: RawObject[] = [];
  const step = v4.length / Math.max(1, count);
  // Fewer slices than changes (one big service): the same slices again, round robin.
  for (let k = 0; k < count && v4.length > 0; k++) {
    out.push(v4[Math.floor(k * step) % v4.length] as RawObject);
  }
  return out;
}

/** `count` one-event batches, each adding one fresh endpoint to a different slice. */
export function endpointChanges(cluster: SyntheticCluster, count: number): ProxyEvent[][] {
  return spreadSlices(cluster, count).map((slice, k) => [{
    type: "upsert",
    object: toKubeObject(sliceWithEndpoint(slice, freshEndpointIPv4(k))),
  }]);
}

/** A one-event batch adding a new service (with its slice in a second batch). */
export function serviceAddChange(k: number): ProxyEvent[] {
  const { service, slice } = addedService(k, 10, 1000 + k * 10);
  return [
    { type: "upsert", object: toKubeObject(service) },
    { type: "upsert", object: toKubeObject(slice) },
  ];
}
