/**
 * Writes Services, EndpointSlices, Nodes and ServiceCIDRs to the test API server with client-node, as a
 * controller would.
 *
 * IP plan: pods 198.18.1.10+ (port 8080), ClusterIPs allocated from 198.18.128.0/17.
 *
 * @module
 */
import {
  CoreV1Api,
  DiscoveryV1Api,
  KubeConfig,
  NetworkingV1Api,
  type V1EndpointSlice,
  type V1Service,
} from "@kubernetes/client-node";

/** The annotation the EndpointSlice controller stamps on slices it changes. */
export const TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time";

/** One test endpoint: pod address, ready or not, on which node and zone. */
export interface TestEndpoint {
  /** Pod IP (198.18.1.x). */
  readonly ip: string;
  /** `conditions.ready`; default true. */
  readonly ready?: boolean;
  /** `nodeName`. */
  readonly nodeName?: string;
  /** `zone`. */
  readonly zone?: string;
}

/** The typed API clients of one kubeconfig. */
export class TestApi {
  /** Core v1. */
  readonly core: CoreV1Api;
  /** discovery.k8s.io/v1. */
  readonly discovery: DiscoveryV1Api;
  /** networking.k8s.io/v1. */
  readonly networking: NetworkingV1Api;

  /** Clients for `kubeconfigPath`. */
  constructor(kubeconfigPath: string) {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    this.core = kc.makeApiClient(CoreV1Api);
    this.discovery = kc.makeApiClient(DiscoveryV1Api);
    this.networking = kc.makeApiClient(NetworkingV1Api);
  }

  /** Creates ServiceCIDR `name` with `cidrs`. */
  async createServiceCIDR(name: string, cidrs: readonly string[]): Promise<void> {
    await this.networking.createServiceCIDR({
      body: { metadata: { name }, spec: { cidrs: [...cidrs] } },
    });
  }

  /**
   * Deletes ServiceCIDR `name`, and drops its finalizer (kube-controller-manager, which would
   * release it, does not run in the test cluster).
   */
  async deleteServiceCIDR(name: string): Promise<void> {
    await this.networking.deleteServiceCIDR({ name });
    const left = await this.networking.readServiceCIDR({ name }).catch(() => null);
    if (left === null) return;
    left.metadata = { ...left.metadata, finalizers: [] };
    await this.networking.replaceServiceCIDR({ name, body: left }).catch((e) => {
      if ((e as { code?: number }).code !== 404) throw e;
    });
  }

  /** Creates Service `name` (port `http` 80/TCP → 8080) in `default`; returns its ClusterIP. */
  async createService(name: string, labels: Record<string, string> = {}): Promise<string> {
    const body: V1Service = {
      metadata: { name, namespace: "default", labels },
      spec: {
        selector: { app: name },
        ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }],
      },
    };
    const created = await this.core.createNamespacedService({ namespace: "default", body });
    return created.spec?.clusterIP ?? "";
  }

  /** Deletes Service `name`. */
  async deleteService(name: string): Promise<void> {
    await this.core.deleteNamespacedService({ name, namespace: "default" });
  }

  /** The slice `slice` of Service `service` with `endpoints`, stamped with a trigger time. */
  sliceBody(
    service: string,
    slice: string,
    endpoints: readonly TestEndpoint[],
    labels: Record<string, string> = {},
  ): V1EndpointSlice {
    return {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: {
        name: slice,
        namespace: "default",
        labels: { "kubernetes.io/service-name": service, ...labels },
        annotations: { [TRIGGER_TIME]: new Date().toISOString() },
      },
      addressType: "IPv4",
      endpoints: endpoints.map((e) => ({
        addresses: [e.ip],
        conditions: { ready: e.ready ?? true },
        ...(e.nodeName === undefined ? {} : { nodeName: e.nodeName }),
        ...(e.zone === undefined ? {} : { zone: e.zone }),
      })),
      ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    };
  }

  /** Creates an EndpointSlice. */
  async createSlice(
    service: string,
    slice: string,
    endpoints: readonly TestEndpoint[],
    labels: Record<string, string> = {},
  ): Promise<void> {
    await this.discovery.createNamespacedEndpointSlice({
      namespace: "default",
      body: this.sliceBody(service, slice, endpoints, labels),
    });
  }

  /** Replaces the endpoints of a slice (read, modify, write). */
  async updateSlice(
    service: string,
    slice: string,
    endpoints: readonly TestEndpoint[],
  ): Promise<void> {
    const current = await this.discovery.readNamespacedEndpointSlice({
      name: slice,
      namespace: "default",
    });
    const body = this.sliceBody(service, slice, endpoints);
    body.metadata = { ...body.metadata, resourceVersion: current.metadata?.resourceVersion ?? "" };
    await this.discovery.replaceNamespacedEndpointSlice({
      name: slice,
      namespace: "default",
      body,
    });
  }

  /** Deletes an EndpointSlice. */
  async deleteSlice(slice: string): Promise<void> {
    await this.discovery.deleteNamespacedEndpointSlice({ name: slice, namespace: "default" });
  }

  /** Creates or relabels Node `name` with a topology zone. */
  async setNodeZone(name: string, zone: string): Promise<void> {
    const labels = { "topology.kubernetes.io/zone": zone };
    try {
      const node = await this.core.readNode({ name });
      node.metadata = { ...node.metadata, labels: { ...node.metadata?.labels, ...labels } };
      await this.core.replaceNode({ name, body: node });
    } catch (e) {
      if ((e as { code?: number }).code !== 404) throw e;
      await this.core.createNode({ body: { metadata: { name, labels } } });
    }
  }
}
