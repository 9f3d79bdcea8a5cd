/**
 * The in-memory store of one kind that a list+watch fills: only validated objects in kproxy's model
 * (annotations trimmed to the ones kproxy reads), keyed by `namespace/name`. Each list or watch
 * event turns into the {@link ProxyEvent}s that change the reconciler's view of this kind alone.
 * No I/O: the reflector feeds it raw objects.
 */
import { LAST_CHANGE_TRIGGER_TIME_ANNOTATION } from "../model/endpoint_slice.ts";
import {
  type KubeKind,
  type KubeObject,
  type ObjectError,
  parseKubeObject,
  rawObjectName,
} from "../model/kube_object.ts";
import { canonicalJSON, contentHash } from "../snapshot/hash.ts";
import type { ProxyEvent } from "../snapshot/proxy_state.ts";
import { parseRFC3339 } from "./kube_trigger_time.ts";

/** Annotations kept in memory; every other annotation is dropped when an object arrives. */
export const KEPT_ANNOTATIONS: readonly string[] = Object.freeze([
  LAST_CHANGE_TRIGGER_TIME_ANNOTATION,
]);

/** Origin of errors about objects read from the API server. */
export const API_ORIGIN = "api";

/** The apiVersion of each kind kproxy reads. */
export const API_VERSIONS: Readonly<Record<KubeKind, string>> = Object.freeze({
  Service: "v1",
  EndpointSlice: "discovery.k8s.io/v1",
  Node: "v1",
  ServiceCIDR: "networking.k8s.io/v1",
});

/** What one list or watch event changed. */
export interface CacheChange {
  /** Upserts and deletes of this kind only. */
  readonly events: ProxyEvent[];
  /** Objects that failed validation (their last good version, if any, is kept). */
  readonly errors: ObjectError[];
  /** `last-change-trigger-time` (ms) of changed EndpointSlices newer than the cache's start. */
  readonly triggerTimes: number[];
}

/** A watch event type as the API server sends it (BOOKMARK and ERROR are not object changes). */
export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED";

interface Entry {
  readonly object: KubeObject;
  /** Hash of the object's canonical text: tells a real change from a resend, in 32 bytes. */
  readonly digest: string;
}

function asRecord(value: unknown): Record<string, unknown> | null {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : null;
}

function trimAnnotations(
  annotations: Readonly<Record<string, string>> | null | undefined,
): Record<string, string> | null {
  if (annotations === null || annotations === undefined) return null;
  let out: Record<string, string> | null = null;
  for (const name of KEPT_ANNOTATIONS) {
    const value = annotations[name];
    if (value !== undefined) (out ??= {})[name] = value;
  }
  return out;
}

/** The object with only the annotations kproxy reads. */
export function withKeptAnnotations(object: KubeObject): KubeObject {
  const { annotations, ...meta } = object.object.metadata;
  if (annotations === undefined || annotations === null) return object;
  const kept = trimAnnotations(annotations);
  const metadata = kept === null ? meta : { ...meta, annotations: kept };
  switch (object.kind) {
    case "Service":
      return { kind: "Service", object: { ...object.object, metadata } };
    case "EndpointSlice":
      return { kind: "EndpointSlice", object: { ...object.object, metadata } };
    case "Node":
      return { kind: "Node", object: { ...object.object, metadata } };
    case "ServiceCIDR":
      return { kind: "ServiceCIDR", object: { ...object.object, metadata } };
  }
}

/** Canonical text of the parts that matter: everything kept but the resourceVersion. */
function contentText(object: KubeObject): string {
  const { resourceVersion: _rv, ...meta } = object.object.metadata;
  return canonicalJSON({ ...object.object, metadata: meta });
}

function rawTriggerTime(raw: unknown): number | null {
  const annotations = asRecord(asRecord(asRecord(raw)?.["metadata"])?.["annotations"]);
  const text = annotations?.[LAST_CHANGE_TRIGGER_TIME_ANNOTATION];
  return typeof text === "string" ? parseRFC3339(text) : null;
}

/** A list being read into a cache, page by page. */
export interface CacheReplacement {
  /** Adds the raw items of one page. */
  add(items: readonly unknown[]): void;
  /** Swaps the cache to the listed objects and returns what changed. */
  commit(): CacheChange;
}

/** Options of {@link KubeObjectCache}. */
export interface KubeObjectCacheOptions {
  /** Trigger times at or before this (ms) are not reported (they predate this proxy). */
  readonly triggerTimesAfter?: number;
}

/** The validated objects of one kind, as last listed and watched. */
export class KubeObjectCache {
  readonly #kind: KubeKind;
  readonly #since: number;
  #entries = new Map<string, Entry>();

  /** An empty cache for `kind`. */
  constructor(kind: KubeKind, options: KubeObjectCacheOptions = {}) {
    this.#kind = kind;
    this.#since = options.triggerTimesAfter ?? -Infinity;
  }

  /** The kind held. */
  get kind(): KubeKind {
    return this.#kind;
  }

  /** Number of objects held. */
  get size(): number {
    return this.#entries.size;
  }

  /** The object stored under `namespace/name` (or `name`), if any. */
  get(key: string): KubeObject | undefined {
    return this.#entries.get(key)?.object;
  }

  /** Every object held. */
  objects(): KubeObject[] {
    return [...this.#entries.values()].map((e) => e.object);
  }

  /**
   * A fresh list replaces the cache: upserts for new and changed objects, deletes for the ones the
   * list no longer has. An object that is now invalid keeps its last good version.
   */
  replace(items: readonly unknown[]): CacheChange {
    const replacement = this.startReplace();
    replacement.add(items);
    return replacement.commit();
  }

  /**
   * Starts a replacement fed page by page (so raw pages need not be held); nothing changes until
   * `commit()`, and an abandoned replacement leaves the cache as it was.
   */
  startReplace(): CacheReplacement {
    const change: CacheChange = { events: [], errors: [], triggerTimes: [] };
    const next = new Map<string, Entry>();
    let committed = false;
    return {
      add: (items) => {
        for (const raw of items) {
          const key = rawObjectName(raw);
          const parsed = this.#parse(raw);
          const old = this.#entries.get(key);
          if (parsed === null) continue;
          if ("error" in parsed) {
            change.errors.push(parsed.error);
            if (old !== undefined) next.set(key, old);
            continue;
          }
          next.set(key, parsed);
          if (old === undefined || old.digest !== parsed.digest) {
            this.#upserted(parsed, raw, change);
          }
        }
      },
      commit: () => {
        if (committed) throw new Error(`Cannot commit a ${this.#kind} list twice`);
        committed = true;
        for (const [key, old] of this.#entries) {
          if (!next.has(key)) change.events.push(this.#deleteEvent(old.object));
        }
        this.#entries = next;
        return change;
      },
    };
  }

  /** Applies one watch event. */
  apply(type: WatchEventType, raw: unknown): CacheChange {
    const change: CacheChange = { events: [], errors: [], triggerTimes: [] };
    const key = rawObjectName(raw);
    if (type === "DELETED") {
      const old = this.#entries.get(key);
      if (old === undefined) return change;
      this.#entries.delete(key);
      change.events.push(this.#deleteEvent(old.object));
      this.#trigger(raw, change);
      return change;
    }
    const parsed = this.#parse(raw);
    if (parsed === null) return change;
    if ("error" in parsed) {
      change.errors.push(parsed.error);
      return change;
    }
    const old = this.#entries.get(key);
    this.#entries.set(key, parsed);
    if (old === undefined || old.digest !== parsed.digest) this.#upserted(parsed, raw, change);
    return change;
  }

  #parse(raw: unknown): Entry | { error: ObjectError } | null {
    const record = asRecord(raw);
    // List items come without kind and apiVersion; the cache knows what it lists.
    const input = record !== null && record["kind"] === undefined
      ? {
        ...record,
        kind: this.#kind,
        apiVersion: record["apiVersion"] ?? API_VERSIONS[this.#kind],
      }
      : raw;
    const result = parseKubeObject(input, API_ORIGIN);
    if (result.ok === "ignored") return null;
    if (result.ok === false) return { error: result.error };
    if (result.value.kind !== this.#kind) {
      const name = rawObjectName(raw);
      return {
        error: {
          origin: API_ORIGIN,
          kind: result.value.kind,
          name,
          field: "kind",
          message: `${API_ORIGIN}: Cannot read ${this.#kind} ${name}: kind is ${result.value.kind}`,
        },
      };
    }
    const object = withKeptAnnotations(result.value);
    return { object, digest: contentHash(contentText(object)) };
  }

  #upserted(entry: Entry, raw: unknown, change: CacheChange): void {
    change.events.push({ type: "upsert", object: entry.object });
    this.#trigger(raw, change);
  }

  #trigger(raw: unknown, change: CacheChange): void {
    if (this.#kind !== "EndpointSlice") return;
    const t = rawTriggerTime(raw);
    if (t !== null && t > this.#since) change.triggerTimes.push(t);
  }

  #deleteEvent(object: KubeObject): ProxyEvent {
    const meta = object.object.metadata;
    return {
      type: "delete",
      kind: object.kind,
      namespace: object.kind === "Node" ? null : meta.namespace ?? "default",
      name: meta.name,
    };
  }
}
