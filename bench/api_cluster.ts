/**
 * Creating a synthetic cluster through a real API server with @kubernetes/client-node, a bounded
 * number of requests in flight, and the single writes the end-to-end benchmark times.
 *
 * @module
 */
import {
  CoreV1Api,
  DiscoveryV1Api,
  KubeConfig,
  type V1EndpointSlice,
  type V1Namespace,
  type V1Node,
  type V1Service,
} from "@kubernetes/client-node";
import type { RawObject, SyntheticCluster } from "./synthetic_cluster.ts";

/** The typed API clients the bench writes with. */
export interface ApiClients {
  /** core/v1. */
  readonly core: CoreV1Api;
  /** discovery.k8s.io/v1. */
  readonly discovery: DiscoveryV1Api;
}

/** Clients for the cluster a kubeconfig names. */
export function apiClients(kubeconfigPath: string): ApiClients {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return { core: kc.makeApiClient(CoreV1Api), discovery: kc.makeApiClient(DiscoveryV1Api) };
}

/** How the creation went. */
export interface CreationStats {
  /** Objects created (namespaces, node, services, slices, LB status updates). */
  readonly objects: number;
  /** Wall time, ms. */
  readonly ms: number;
  /** Objects per second. */
  readonly perSecond: number;
  /** Requests in flight. */
  readonly concurrency: number;
}

/** Runs `fn` over `items` with at most `concurrency` in flight; rejects on the first failure. */
export async function forEachConcurrent<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

function nsOf(o: RawObject): string {
  return o.metadata.namespace ?? "default";
}

function asService(o: RawObject): V1Service {
  const { status: _status, ...rest } = o;
  return rest as unknown as V1Service;
}

/** Creates every object of `cluster` (LoadBalancer ingress through the status subresource). */
export async function createCluster(
  clients: ApiClients,
  cluster: SyntheticCluster,
  options: { concurrency?: number; log?: (line: string) => void } = {},
): Promise<CreationStats> {
  const concurrency = options.concurrency ?? 32;
  const log = options.log ?? (() => {});
  const t0 = performance.now();
  let done = 0;
  const progress = () => {
    done++;
    if (done % 2000 === 0) {
      const s = (performance.now() - t0) / 1000;
      log(`    created ${done} objects in ${s.toFixed(0)} s (${(done / s).toFixed(0)}/s)`);
    }
  };
  await forEachConcurrent(cluster.namespaces, concurrency, async (ns) => {
    await clients.core.createNamespace({ body: ns as unknown as V1Namespace });
    progress();
  });
  await clients.core.createNode({ body: cluster.node as unknown as V1Node });
  const nodeStatus = await clients.core.readNode({ name: cluster.node.metadata.name });
  nodeStatus.status = (cluster.node as unknown as V1Node).status ?? {};
  await clients.core.replaceNodeStatus({ name: cluster.node.metadata.name, body: nodeStatus });
  progress();
  await forEachConcurrent(cluster.services, concurrency, async (svc) => {
    const created = await clients.core.createNamespacedService({
      namespace: nsOf(svc),
      body: asService(svc),
    });
    progress();
    const status = svc["status"] as V1Service["status"] | undefined;
    if (status?.loadBalancer?.ingress !== undefined) {
      created.status = status;
      await clients.core.replaceNamespacedServiceStatus({
        name: svc.metadata.name,
        namespace: nsOf(svc),
        body: created,
      });
      progress();
    }
  });
  await forEachConcurrent(cluster.slices, concurrency, async (slice) => {
    await clients.discovery.createNamespacedEndpointSlice({
      namespace: nsOf(slice),
      body: slice as unknown as V1EndpointSlice,
    });
    progress();
  });
  const ms = performance.now() - t0;
  return { objects: done, ms, perSecond: done / (ms / 1000), concurrency };
}

/** Creates a Service. */
export async function createService(clients: ApiClients, svc: RawObject): Promise<void> {
  await clients.core.createNamespacedService({ namespace: nsOf(svc), body: asService(svc) });
}

/** Creates an EndpointSlice. */
export async function createSlice(clients: ApiClients, slice: RawObject): Promise<void> {
  await clients.discovery.createNamespacedEndpointSlice({
    namespace: nsOf(slice),
    body: slice as unknown as V1EndpointSlice,
  });
}

/** Reads an EndpointSlice as the API server has it (for its resourceVersion). */
export async function readSlice(clients: ApiClients, slice: RawObject): Promise<V1EndpointSlice> {
  return await clients.discovery.readNamespacedEndpointSlice({
    name: slice.metadata.name,
    namespace: nsOf(slice),
  });
}

/** Replaces an EndpointSlice's endpoints (an update at `resourceVersion`). */
export async function replaceSliceEndpoints(
  clients: ApiClients,
  current: V1EndpointSlice,
  endpoints: unknown,
): Promise<V1EndpointSlice> {
  const body = { ...current, endpoints } as V1EndpointSlice;
  return await clients.discovery.replaceNamespacedEndpointSlice({
    name: current.metadata?.name ?? "",
    namespace: current.metadata?.namespace ?? "default",
    body,
  });
}

/** Deletes a Service. */
export async function deleteService(clients: ApiClients, svc: RawObject): Promise<void> {
  await clients.core.deleteNamespacedService({ name: svc.metadata.name, namespace: nsOf(svc) });
}

/** Deletes an EndpointSlice. */
export async function deleteSlice(clients: ApiClients, slice: RawObject): Promise<void> {
  await clients.discovery.deleteNamespacedEndpointSlice({
    name: slice.metadata.name,
    namespace: nsOf(slice),
  });
}
