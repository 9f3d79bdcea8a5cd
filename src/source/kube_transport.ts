/**
 * What a reflector needs from the API server, without the client library: the transport interface
 * (one list page, one watch) and the API's error shape.
 */
import { STATUS_CODES } from "node:http";

/** A failed API call: HTTP status and the Status reason the server gave. */
export class KubeApiError extends Error {
  /** HTTP status, or the `code` of an ERROR watch event. */
  readonly status: number;
  /** The Status `reason` (e.g. `Expired`, `Gone`, `Forbidden`), or "". */
  readonly reason: string;

  /** Makes an error for a call to `what`. */
  constructor(what: string, status: number, reason: string, message: string) {
    super(`Cannot ${what}: HTTP ${status}${reason === "" ? "" : ` ${reason}`}: ${message}`);
    this.name = "KubeApiError";
    this.status = status;
    this.reason = reason;
  }
}

/** True for `410 Gone`: the resourceVersion asked for was compacted away, so relist. */
export function isExpired(error: unknown): boolean {
  if (error instanceof KubeApiError) {
    return error.status === 410 || error.reason === "Expired" || error.reason === "Gone";
  }
  const e = error as { statusCode?: unknown; code?: unknown } | null;
  return e?.statusCode === 410 || e?.code === 410;
}

/**
 * True when the server has not caught up with the resourceVersion asked for (a list at
 * "not older than" a version its watch cache has not seen yet, e.g. just after a restart):
 * HTTP 504 "Too large resource version". client-go then lists again at the newest version.
 */
export function isTooLargeResourceVersion(error: unknown): boolean {
  return error instanceof KubeApiError && error.status === 504 &&
    /too large resource version/i.test(error.message);
}

/** One page of a list. */
export interface KubeListPage {
  /** The raw items (without `kind`; the caller knows what it listed). */
  readonly items: readonly unknown[];
  /** The list's resourceVersion: watch from here. */
  readonly resourceVersion: string;
  /** Continue token of the next page, or "". */
  readonly continue: string;
}

/** Callbacks of one watch. */
export interface WatchHandlers {
  /** One event line: ADDED, MODIFIED, DELETED, BOOKMARK or ERROR with its object. */
  onEvent(type: string, object: unknown): void;
  /** The stream ended: `null` when the server closed it, else the error. */
  onEnd(error: unknown): void;
}

/** What a reflector needs from the API server; the real one is {@link kubeTransport}. */
export interface KubeTransport {
  /** GETs one page of the collection at `path`. */
  list(
    path: string,
    query: Readonly<Record<string, string>>,
    signal: AbortSignal,
  ): Promise<KubeListPage>;
  /**
   * Drops the open connections, so the next request opens a new one: a watch went quiet, and
   * the connection under it (shared by every watch over HTTP/2) may be dead without knowing it.
   */
  reset?(): void;
  /** Starts a watch; resolves with a handle once the request is under way. */
  watch(
    path: string,
    query: Readonly<Record<string, string | number | boolean>>,
    handlers: WatchHandlers,
  ): Promise<{ abort(): void }>;
}

function asRecord(value: unknown): Record<string, unknown> | null {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : null;
}

/** A KubeApiError from a Status object (a failed response body or an ERROR watch event). */
export function statusError(what: string, status: number, body: unknown): KubeApiError {
  const record = asRecord(body);
  const code = typeof record?.["code"] === "number" ? record["code"] : status;
  const reason = typeof record?.["reason"] === "string" ? record["reason"] : "";
  const message = typeof record?.["message"] === "string"
    ? record["message"]
    : STATUS_CODES[code] ?? "request failed";
  return new KubeApiError(what, code, reason, message);
}
