/**
 * List+watch of one kind, kept alive: client-go's reflector in small. It lists, hands the
 * differences to its {@link KubeObjectCache}, then watches from the list's resourceVersion with
 * bookmarks on. A watch that the server closes is resumed at once from the last resourceVersion
 * seen, without a list; one that fails is resumed with backoff; one that answers `410 Gone`
 * leads to a list that replaces the cache; one that goes quiet longer than `idleTimeoutMs` (no
 * event, no bookmark) is dropped and started again.
 *
 * Which resourceVersion a list asks for is client-go's choice, so that the API server answers
 * from its watch cache instead of reading etcd (what matters when a whole fleet relists at once):
 * the first list asks for `0` (any version; the cache ignores `limit` and answers in one piece);
 * a relist after `410` asks for the last version seen ("not older than", again from the cache,
 * without `limit`, which would send it to etcd); only when the server answers that this version
 * is gone or not there yet does the reflector fall back to a consistent list (`""`), paged.
 */
import type { KubeKind } from "../model/kube_object.ts";
import { backoffDelayMs, type BackoffPolicy, DEFAULT_BACKOFF } from "./kube_backoff.ts";
import {
  isExpired,
  isTooLargeResourceVersion,
  type KubeTransport,
  statusError,
} from "./kube_transport.ts";
import type { CacheChange, KubeObjectCache, WatchEventType } from "./kube_object_cache.ts";
import type { RateLimiter } from "./kube_rate_limiter.ts";

/** A collection kproxy lists and watches. */
export interface KubeResource {
  /** Kind of its items. */
  readonly kind: KubeKind;
  /** Collection path across namespaces, e.g. `/api/v1/services`. */
  readonly path: string;
  /** Label selector, e.g. `!service.kubernetes.io/service-proxy-name`. */
  readonly labelSelector?: string;
  /** Field selector, e.g. `metadata.name=node-a`. */
  readonly fieldSelector?: string;
  /**
   * The first sync need not wait for it (ServiceCIDRs: upstream's proxier syncs once Services
   * and EndpointSlices are listed, and an API server before 1.33 does not serve them).
   */
  readonly optional?: boolean;
}

/** Options of {@link KubeReflector}. */
export interface KubeReflectorOptions {
  /** What to list and watch. */
  readonly resource: KubeResource;
  /** The API calls. */
  readonly transport: KubeTransport;
  /** The store the events go through. */
  readonly cache: KubeObjectCache;
  /** Client-side rate limit every list page and watch start waits on. */
  readonly limiter?: RateLimiter;
  /** Receives each list's and each watch batch's changes. */
  readonly onChange: (change: CacheChange) => void;
  /** Called after every successful list. */
  readonly onListed?: () => void;
  /**
   * Called when a list succeeds or a watch is accepted after failures: the API server answers
   * again. {@link KubernetesSource} uses it to cut the other kinds' backoff short.
   */
  readonly onReachable?: () => void;
  /** Log sink. */
  readonly log?: (line: string) => void;
  /** `timeoutSeconds` asked of each watch; default a random 300–600 s like client-go. */
  readonly watchTimeoutSeconds?: () => number;
  /** A watch with no event and no bookmark for this long is restarted; default 150 s. */
  readonly idleTimeoutMs?: number;
  /** Retry delays after failures. */
  readonly backoff?: BackoffPolicy;
  /** Items per list page; default 500. */
  readonly pageSize?: number;
}

/** Counters for tests, logs and metrics. */
export interface ReflectorStats {
  /** Successful lists. */
  readonly lists: number;
  /** Watches started. */
  readonly watches: number;
  /** Relists caused by `410 Gone`. */
  readonly expired: number;
  /** Watches dropped for being quiet too long. */
  readonly idleRestarts: number;
  /** Failed lists and watches. */
  readonly failures: number;
}

type WatchEnd =
  | { readonly kind: "closed"; readonly events: number; readonly ms: number }
  | { readonly kind: "expired"; readonly error: unknown }
  | { readonly kind: "idle" }
  | {
    readonly kind: "error";
    readonly error: unknown;
    /** The watch had been working (events, or open ≥ 1 s) before it failed. */
    readonly healthy?: boolean;
  }
  | { readonly kind: "stopped" };

/** Default `idleTimeoutMs`: bookmarks arrive about once a minute on a healthy watch. */
export const DEFAULT_WATCH_IDLE_TIMEOUT_MS = 150_000;

function randomWatchTimeout(): number {
  return 300 + Math.floor(Math.random() * 300);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function resourceVersionOf(object: unknown): string | null {
  const meta = (object as { metadata?: { resourceVersion?: unknown } } | null)?.metadata;
  return typeof meta?.resourceVersion === "string" && meta.resourceVersion !== ""
    ? meta.resourceVersion
    : null;
}

/** The list query for a list at `resourceVersion` (client-go's reflector's choice). */
export function listQuery(
  resourceVersion: string,
  pageSize: number,
  paginated: boolean,
): Record<string, string> {
  // "0": the watch cache answers in one piece whatever the limit, and etcd (no cache) pages.
  // "": a consistent read, paged. Anything else: no limit, so the watch cache answers it —
  // unless the server showed that it pages (no watch cache).
  const paged = resourceVersion === "" || resourceVersion === "0" || paginated;
  return {
    ...(resourceVersion === "" ? {} : { resourceVersion }),
    ...(paged ? { limit: String(pageSize) } : {}),
  };
}

/** Keeps one kind's cache in step with the API server until stopped. */
export class KubeReflector {
  readonly #opts: KubeReflectorOptions;
  readonly #log: (line: string) => void;
  readonly #name: string;
  #resourceVersion = "";
  /** The last resourceVersion is gone or not there yet: the next list is a consistent read. */
  #resourceVersionUnavailable = false;
  /** A list at "0" came back paged: the server has no watch cache for this kind. */
  #paginated = false;
  #stopped = true;
  #running: Promise<void> | null = null;
  #abortList: AbortController | null = null;
  #lifetime = new AbortController();
  #endWatch: (() => void) | null = null;
  #wake: (() => void) | null = null;
  #pending: CacheChange | null = null;
  /** Failed lists and watches since the last one that worked. */
  #failures = 0;
  #inBackoff = false;
  #stats = { lists: 0, watches: 0, expired: 0, idleRestarts: 0, failures: 0 };

  /** Makes a reflector; call {@link start}. */
  constructor(options: KubeReflectorOptions) {
    this.#opts = options;
    this.#log = options.log ?? (() => {});
    this.#name = options.resource.kind;
  }

  /** The last resourceVersion seen (list, event or bookmark). */
  get resourceVersion(): string {
    return this.#resourceVersion;
  }

  /** Counters so far. */
  get stats(): ReflectorStats {
    return { ...this.#stats };
  }

  /** Starts listing and watching in the background. */
  start(): void {
    if (this.#running !== null) return;
    this.#stopped = false;
    this.#lifetime = new AbortController();
    this.#running = this.#run();
  }

  /** Stops at once: aborts the list or watch under way. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#lifetime.abort(new Error("stopped"));
    this.#abortList?.abort(new Error("stopped"));
    this.#endWatch?.();
    this.#wake?.();
    await this.#running;
    this.#running = null;
  }

  /**
   * Ends a backoff wait now, if one is under way: another kind reached the API server, so this
   * one should not sleep out a delay grown while the server was away.
   */
  retryNow(): void {
    if (this.#inBackoff) this.#wake?.();
  }

  /** Drops the current watch as if it had gone quiet (tests). */
  restartWatch(): void {
    this.#endWatch?.();
  }

  async #run(): Promise<void> {
    let needList = true;
    while (!this.#stopped) {
      if (needList) {
        try {
          await this.#list();
          needList = false;
          this.#recovered("list");
        } catch (error) {
          if (this.#stopped) break;
          this.#failures++;
          this.#stats.failures++;
          needList = true;
          const delay = backoffDelayMs(this.#failures, this.#opts.backoff ?? DEFAULT_BACKOFF);
          this.#log(`${this.#name} list failed (retry in ${delay} ms): ${message(error)}`);
          await this.#backoff(delay);
          continue;
        }
      }
      const end = await this.#watch();
      if (this.#stopped || end.kind === "stopped") break;
      switch (end.kind) {
        case "expired":
          this.#stats.expired++;
          this.#log(
            `${this.#name} watch: resourceVersion ${this.#resourceVersion} is gone (410); ` +
              `relisting`,
          );
          needList = true;
          this.#failures = 0;
          break;
        case "idle":
          this.#stats.idleRestarts++;
          this.#opts.transport.reset?.();
          this.#log(
            `${this.#name} watch was quiet for ${this.#idleMs() / 1000} s; restarting it`,
          );
          this.#failures = 0;
          break;
        case "closed":
          // A server that closes at once, again and again, is failing: back off.
          if (end.events > 0 || end.ms >= 1_000) this.#failures = 0;
          else {
            this.#failures++;
            await this.#backoff(
              backoffDelayMs(this.#failures, this.#opts.backoff ?? DEFAULT_BACKOFF),
            );
          }
          break;
        case "error": {
          // A watch that worked and then broke (the API server went away) starts a new series
          // of retries: the first comes quickly, whatever earlier outages cost.
          if (end.healthy === true) this.#failures = 0;
          this.#failures++;
          this.#stats.failures++;
          const delay = backoffDelayMs(this.#failures, this.#opts.backoff ?? DEFAULT_BACKOFF);
          this.#log(`${this.#name} watch failed (retry in ${delay} ms): ${message(end.error)}`);
          await this.#backoff(delay);
          break;
        }
      }
    }
  }

  async #backoff(ms: number): Promise<void> {
    this.#inBackoff = true;
    try {
      await this.#sleep(ms);
    } finally {
      this.#inBackoff = false;
    }
  }

  /** A list succeeded or a watch was accepted: the API server answers this kind again. */
  #recovered(what: "list" | "watch"): void {
    if (this.#failures > 0) {
      this.#log(
        `${this.#name} ${what} resumed after ${this.#failures} failed attempt` +
          `${this.#failures === 1 ? "" : "s"}`,
      );
      this.#opts.onReachable?.();
    }
    // A list proves the server works; a watch only once it has lasted (see the "error" end).
    if (what === "list") this.#failures = 0;
  }

  #idleMs(): number {
    return this.#opts.idleTimeoutMs ?? DEFAULT_WATCH_IDLE_TIMEOUT_MS;
  }

  #selectors(): Record<string, string> {
    const r = this.#opts.resource;
    const out: Record<string, string> = {};
    if (r.labelSelector !== undefined && r.labelSelector !== "") {
      out["labelSelector"] = r.labelSelector;
    }
    if (r.fieldSelector !== undefined && r.fieldSelector !== "") {
      out["fieldSelector"] = r.fieldSelector;
    }
    return out;
  }

  #sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = null;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
    });
  }

  /** The resourceVersion the next list asks for. */
  #relistResourceVersion(): string {
    if (this.#resourceVersionUnavailable) return "";
    return this.#resourceVersion === "" ? "0" : this.#resourceVersion;
  }

  async #list(): Promise<void> {
    const controller = new AbortController();
    this.#abortList = controller;
    if (this.#stopped) controller.abort(new Error("stopped"));
    try {
      const at = this.#relistResourceVersion();
      try {
        await this.#listAt(at, controller.signal);
      } catch (error) {
        if (this.#stopped || at === "" || !(isExpired(error) || isTooLargeResourceVersion(error))) {
          throw error;
        }
        this.#log(
          `${this.#name} list at resourceVersion ${at} refused (${message(error)}); ` +
            `listing the newest`,
        );
        this.#resourceVersionUnavailable = true;
        await this.#listAt("", controller.signal);
      }
      this.#resourceVersionUnavailable = false;
    } finally {
      this.#abortList = null;
    }
  }

  async #listAt(at: string, signal: AbortSignal): Promise<void> {
    const replacement = this.#opts.cache.startReplace();
    const pageSize = this.#opts.pageSize ?? 500;
    let next = "";
    let resourceVersion = "";
    let pages = 0;
    do {
      await this.#opts.limiter?.wait(signal);
      const query = next === ""
        ? { ...this.#selectors(), ...listQuery(at, pageSize, this.#paginated) }
        : { ...this.#selectors(), limit: String(pageSize), continue: next };
      const page = await this.#opts.transport.list(this.#opts.resource.path, query, signal);
      replacement.add(page.items);
      resourceVersion = page.resourceVersion;
      next = page.continue;
      pages++;
    } while (next !== "" && !this.#stopped);
    if (this.#stopped) return;
    if (at === "0" && pages > 1) this.#paginated = true;
    const change = replacement.commit();
    this.#resourceVersion = resourceVersion;
    this.#stats.lists++;
    this.#log(
      `${this.#name} listed: ${this.#opts.cache.size} objects at resourceVersion ` +
        `${resourceVersion}${at === "" ? "" : ` (asked ${at})`}, ${change.events.length} changes`,
    );
    this.#emit(change);
    this.#opts.onListed?.();
  }

  #emit(change: CacheChange): void {
    if (change.events.length === 0 && change.errors.length === 0) return;
    try {
      this.#opts.onChange(change);
    } catch (error) {
      // A failing consumer must not kill the watch (client-node would swallow it silently).
      this.#log(`${this.#name} change handler failed: ${message(error)}`);
    }
  }

  #queue(change: CacheChange): void {
    if (change.events.length === 0 && change.errors.length === 0) return;
    if (this.#pending === null) {
      this.#pending = { events: [], errors: [], triggerTimes: [] };
      // Lines of one network read arrive in one loop: hand them over as one batch.
      queueMicrotask(() => this.#flush());
    }
    this.#pending.events.push(...change.events);
    this.#pending.errors.push(...change.errors);
    this.#pending.triggerTimes.push(...change.triggerTimes);
  }

  #flush(): void {
    const pending = this.#pending;
    this.#pending = null;
    if (pending !== null) this.#emit(pending);
  }

  async #watch(): Promise<WatchEnd> {
    try {
      await this.#opts.limiter?.wait(this.#lifetime.signal);
    } catch (error) {
      return this.#stopped ? { kind: "stopped" } : { kind: "error", error };
    }
    if (this.#stopped) return { kind: "stopped" };
    this.#stats.watches++;
    const started = Date.now();
    const query = {
      ...this.#selectors(),
      resourceVersion: this.#resourceVersion,
      allowWatchBookmarks: true,
      timeoutSeconds: (this.#opts.watchTimeoutSeconds ?? randomWatchTimeout)(),
    };
    return await new Promise<WatchEnd>((resolve) => {
      let finished = false;
      let handle: { abort(): void } | null = null;
      let events = 0;
      let idleTimer: ReturnType<typeof setTimeout> | undefined;
      const finish = (end: WatchEnd) => {
        if (finished) return;
        finished = true;
        clearTimeout(idleTimer);
        this.#endWatch = null;
        this.#flush();
        handle?.abort();
        resolve(end);
      };
      const armIdle = () => {
        clearTimeout(idleTimer);
        idleTimer = setTimeout(() => finish({ kind: "idle" }), this.#idleMs());
      };
      this.#endWatch = () => finish(this.#stopped ? { kind: "stopped" } : { kind: "idle" });
      armIdle();
      this.#opts.transport.watch(this.#opts.resource.path, query, {
        onEvent: (type, object) => {
          if (finished) return;
          armIdle();
          if (type === "ERROR") {
            const error = statusError(`watch ${this.#opts.resource.path}`, 500, object);
            finish(isExpired(error) ? { kind: "expired", error } : { kind: "error", error });
            return;
          }
          events++;
          const rv = resourceVersionOf(object);
          if (type === "ADDED" || type === "MODIFIED" || type === "DELETED") {
            this.#queue(this.#opts.cache.apply(type as WatchEventType, object));
          }
          if (rv !== null) this.#resourceVersion = rv;
        },
        onEnd: (error) => {
          if (finished) return;
          if (error === null) finish({ kind: "closed", events, ms: Date.now() - started });
          else if (isExpired(error)) finish({ kind: "expired", error });
          else {
            // Only a watch the server accepted had been working: one it refused (a restarting
            // API server's 403, however slow) keeps the backoff growing.
            const healthy = handle !== null && (events > 0 || Date.now() - started >= 1_000);
            finish({ kind: "error", error, healthy });
          }
        },
      }).then(
        (h) => {
          if (finished) h.abort();
          else {
            handle = h;
            this.#recovered("watch");
          }
        },
        (error) => finish({ kind: "error", error }),
      );
    });
  }
}
