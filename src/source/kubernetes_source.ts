/**
 * The Kubernetes API source: list+watch of Services, EndpointSlices, this node's Node and the
 * ServiceCIDRs, with the same shape as {@link ManifestSource}. Only validated objects in
 * kproxy's model are kept in memory; each change reaches `onEvents` as upserts and deletes of one
 * kind (never a `replace`, which would wipe the other kinds).
 *
 * ```ts
 * const source = new KubernetesSource({
 *   kubeconfig: "/etc/kproxy/kubeconfig", qps: 5, burst: 10, nodeName: "node-a",
 *   onEvents: (events, errors, triggerTimes) => loop.enqueue(events, triggerTimes),
 *   onSynced: () => loop.markSourcesSynced(),
 * });
 * await source.start();
 * ```
 */
import type { KubeKind, ObjectError } from "../model/kube_object.ts";
import type { ProxyEvent } from "../snapshot/proxy_state.ts";
import type { BackoffPolicy } from "./kube_backoff.ts";
import {
  apiServerURL,
  type KubeClientOptions,
  kubeTransport,
  loadKubeConfig,
} from "./kube_client.ts";
import type { KubeTransport } from "./kube_transport.ts";
import { fetchTransport } from "./kube_fetch_transport.ts";
import { KubeObjectCache } from "./kube_object_cache.ts";
import { RateLimiter } from "./kube_rate_limiter.ts";
import { KubeReflector, type KubeResource, type ReflectorStats } from "./kube_reflector.ts";

/** Services (and slices) that another proxy implements carry this label; kube-proxy skips them. */
export const SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name";
/** The EndpointSlice controller puts this label on the slices of headless services. */
export const HEADLESS_LABEL = "service.kubernetes.io/headless";
/** The label selector kube-proxy puts on its Service and EndpointSlice informers. */
export const PROXY_LABEL_SELECTOR = `!${SERVICE_PROXY_NAME_LABEL},!${HEADLESS_LABEL}`;
/**
 * The field selector on Services: ExternalName and headless Services get no rules, so the API
 * server need not send them (kube-proxy receives them and drops them). A Service that turns into
 * one of them leaves the selection, which a watch reports as a deletion.
 */
export const SERVICE_FIELD_SELECTOR = "spec.type!=ExternalName,spec.clusterIP!=None";

/**
 * The collections kproxy follows, for node `nodeName`. ServiceCIDRs do not hold up the first
 * sync (upstream syncs once Services and EndpointSlices are listed; an API server before 1.33
 * may not serve them).
 */
export function kubeResources(nodeName: string): readonly KubeResource[] {
  return [
    {
      kind: "Service",
      path: "/api/v1/services",
      labelSelector: PROXY_LABEL_SELECTOR,
      fieldSelector: SERVICE_FIELD_SELECTOR,
    },
    {
      kind: "EndpointSlice",
      path: "/apis/discovery.k8s.io/v1/endpointslices",
      labelSelector: PROXY_LABEL_SELECTOR,
    },
    { kind: "Node", path: "/api/v1/nodes", fieldSelector: `metadata.name=${nodeName}` },
    // Upstream's informer for them shares the EndpointSlices' factory, label selector included;
    // MultiCIDRServiceAllocator is GA and locked on in 1.34, so kube-proxy always watches them.
    {
      kind: "ServiceCIDR",
      path: "/apis/networking.k8s.io/v1/servicecidrs",
      labelSelector: PROXY_LABEL_SELECTOR,
      optional: true,
    },
  ];
}

/** Options of {@link KubernetesSource}. */
export interface KubernetesSourceOptions extends KubeClientOptions {
  /** `--kube-api-qps`: list pages and watch starts per second (0 = kube-proxy's default 5). */
  readonly qps: number;
  /** `--kube-api-burst` (0 = kube-proxy's default 10). */
  readonly burst: number;
  /** This node's name: only its Node object is watched. */
  readonly nodeName: string;
  /**
   * Receives each batch of changes, the objects skipped as invalid, and the
   * `last-change-trigger-time`s (ms) of the EndpointSlices changed.
   */
  readonly onEvents: (
    events: ProxyEvent[],
    errors: readonly ObjectError[],
    triggerTimes: number[],
  ) => void;
  /** Called once every kind has been listed once. */
  readonly onSynced?: () => void;
  /** Log sink. */
  readonly log?: (line: string) => void;
  /** A watch with no event and no bookmark for this long is restarted, ms (default 150 s). */
  readonly watchIdleTimeoutMs?: number;
  /** `timeoutSeconds` of each watch (default random 300–600 s). */
  readonly watchTimeoutSeconds?: number;
  /** Retry delays after failures (default 250 ms doubling to 30 s). */
  readonly backoff?: BackoffPolicy;
  /** Items per list page (default 500). */
  readonly pageSize?: number;
  /** The API calls (tests inject fakes); default: client-node over the loaded configuration. */
  readonly transport?: KubeTransport;
}

/** A source that lists and watches the API server and follows every change. */
export class KubernetesSource {
  readonly #opts: KubernetesSourceOptions;
  readonly #reflectors = new Map<KubeKind, KubeReflector>();
  readonly #caches = new Map<KubeKind, KubeObjectCache>();
  #listed = new Set<KubeKind>();
  #synced = false;

  /** Makes a source; nothing is contacted until {@link start}. */
  constructor(options: KubernetesSourceOptions) {
    this.#opts = options;
  }

  /** True once every kind has been listed. */
  get synced(): boolean {
    return this.#synced;
  }

  /** Counters of each kind's list+watch. */
  stats(): Record<string, ReflectorStats> {
    const out: Record<string, ReflectorStats> = {};
    for (const [kind, r] of this.#reflectors) out[kind] = r.stats;
    return out;
  }

  /** Number of objects held per kind. */
  sizes(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [kind, c] of this.#caches) out[kind] = c.size;
    return out;
  }

  /** Drops every watch as if it had gone quiet; they start again at once (tests). */
  restartWatches(): void {
    for (const r of this.#reflectors.values()) r.restartWatch();
  }

  /**
   * Loads the client configuration (throws when it is unusable) and starts listing and watching in
   * the background; resolves at once, before anything is listed — `onSynced` tells when.
   */
  async start(): Promise<void> {
    if (this.#reflectors.size > 0) return;
    const o = this.#opts;
    const log = o.log ?? (() => {});
    let transport = o.transport;
    if (transport === undefined) {
      const kc = await loadKubeConfig(o);
      // fetch (one HTTP/2 connection for every list and watch) where it can do what the
      // configuration asks; node:https (a connection per watch) where it cannot.
      const viaFetch = fetchTransport(kc);
      log(
        `kubernetes source: API server ${apiServerURL(kc)}, node ${o.nodeName}` +
          (viaFetch === null ? " (node:https: TLS verification off or a proxy)" : ""),
      );
      transport = viaFetch ?? await kubeTransport(kc);
    }
    const limiter = new RateLimiter({
      qps: o.qps > 0 ? o.qps : 5,
      burst: o.burst > 0 ? o.burst : 10,
    });
    const startedAt = Date.now();
    for (const resource of kubeResources(o.nodeName)) {
      const cache = new KubeObjectCache(resource.kind, { triggerTimesAfter: startedAt });
      const reflector = new KubeReflector({
        resource,
        transport,
        cache,
        limiter,
        log,
        ...(o.watchIdleTimeoutMs === undefined ? {} : { idleTimeoutMs: o.watchIdleTimeoutMs }),
        ...(o.watchTimeoutSeconds === undefined
          ? {}
          : { watchTimeoutSeconds: () => o.watchTimeoutSeconds as number }),
        ...(o.backoff === undefined ? {} : { backoff: o.backoff }),
        ...(o.pageSize === undefined ? {} : { pageSize: o.pageSize }),
        onChange: (change) => o.onEvents(change.events, change.errors, change.triggerTimes),
        onListed: () => this.#onListed(resource.kind),
        // The API server answers again: kinds still sleeping out a long backoff retry now.
        onReachable: () => {
          for (const [kind, other] of this.#reflectors) {
            if (kind !== resource.kind) other.retryNow();
          }
        },
      });
      this.#caches.set(resource.kind, cache);
      this.#reflectors.set(resource.kind, reflector);
    }
    for (const r of this.#reflectors.values()) r.start();
  }

  /** Stops every list and watch. */
  async stop(): Promise<void> {
    await Promise.all([...this.#reflectors.values()].map((r) => r.stop()));
  }

  #onListed(kind: KubeKind): void {
    if (this.#synced) return;
    this.#listed.add(kind);
    const required = kubeResources(this.#opts.nodeName).filter((r) => !r.optional);
    if (required.some((r) => !this.#listed.has(r.kind))) return;
    this.#synced = true;
    this.#opts.log?.("kubernetes source: Services, EndpointSlices and Node listed; synced");
    this.#opts.onSynced?.();
  }
}
