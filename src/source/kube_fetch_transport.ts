/**
 * The API calls over Deno's `fetch`: one HTTP client per set of credentials, so lists and every
 * watch share one HTTP/2 connection (ALPN, as client-go does) instead of one TCP and TLS
 * connection each; responses come gzipped when large (fetch asks for it and decodes). The
 * credentials are client-node's — CA, client certificate, bearer token or exec plugin — asked
 * for again on every request, so rotated tokens are picked up.
 *
 * `fetch` cannot skip TLS verification or go through a kubeconfig's `proxy-url`:
 * {@link fetchTransport} returns null for such a configuration and the caller keeps the
 * `node:https` transport.
 */
import type { KubeClientConfig as KubeConfig } from "./kube_client_config.ts";
import { apiServerURL, LIST_TIMEOUT_MS } from "./kube_client.ts";
import {
  type KubeListPage,
  type KubeTransport,
  statusError,
  type WatchHandlers,
} from "./kube_transport.ts";

interface Credentials {
  readonly tls: { caCerts?: string[]; cert?: string; key?: string };
  readonly headers: Record<string, string>;
}

function pem(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value;
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  return String(value);
}

/** What client-node would put on a request for `kc` now (its TLS material and headers). */
async function credentials(kc: KubeConfig): Promise<Credentials> {
  const opts: {
    ca?: unknown;
    cert?: unknown;
    key?: unknown;
    headers?: Record<string, unknown>;
    auth?: string;
  } = {};
  // deno-lint-ignore no-explicit-any
  await kc.applyToHTTPSOptions(opts as any);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.headers ?? {})) {
    if (typeof v === "string" || typeof v === "number") headers[k] = String(v);
  }
  if (opts.auth !== undefined) headers["Authorization"] = `Basic ${btoa(opts.auth)}`;
  const ca = pem(opts.ca);
  const cert = pem(opts.cert);
  const key = pem(opts.key);
  return {
    tls: {
      ...(ca === undefined ? {} : { caCerts: [ca] }),
      ...(cert === undefined || key === undefined ? {} : { cert, key }),
    },
    headers,
  };
}

function asRecord(value: unknown): Record<string, unknown> | null {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : null;
}

function urlOf(
  kc: KubeConfig,
  path: string,
  query: Readonly<Record<string, string | number | boolean>>,
): URL {
  const url = new URL(apiServerURL(kc) + path);
  for (const [k, v] of Object.entries(query)) if (v !== "") url.searchParams.set(k, String(v));
  return url;
}

async function failure(what: string, res: Response): Promise<Error> {
  const text = await res.text().catch(() => "");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = { message: text.slice(0, 200) };
  }
  return statusError(what, res.status, body);
}

/**
 * The transport for `kc`, or null when `fetch` cannot do what the configuration asks (TLS
 * verification off, a proxy).
 */
export function fetchTransport(kc: KubeConfig): KubeTransport | null {
  const cluster = kc.getCurrentCluster();
  if (cluster === null || (cluster.proxyUrl ?? "") !== "") return null;
  // Plain http:// has no TLS to verify (client-node wants skipTLSVerify set for it anyway).
  if (cluster.skipTLSVerify === true && !cluster.server.startsWith("http:")) return null;
  let client: { key: string; client: Deno.HttpClient } | null = null;
  const clientFor = (c: Credentials): Deno.HttpClient => {
    const key = JSON.stringify(c.tls);
    if (client?.key !== key) {
      // New credentials (a rotated client certificate): a new connection. The old client is
      // left to its open streams; they end with their watches.
      client = { key, client: Deno.createHttpClient({ ...c.tls, http2: true, http1: true }) };
    }
    return client.client;
  };
  const request = async (url: URL, signal: AbortSignal): Promise<Response> => {
    const c = await credentials(kc);
    return await fetch(url, {
      client: clientFor(c),
      headers: { Accept: "application/json", ...c.headers },
      signal,
    });
  };
  return {
    reset() {
      // Closing the client ends its connection and every stream on it: the other watches fail
      // and come back at once on a new connection.
      const old = client;
      client = null;
      old?.client.close();
    },
    async list(path, query, signal): Promise<KubeListPage> {
      const what = `list ${path}`;
      const url = urlOf(kc, path, query);
      // An idle limit, not a total one: a big list on a busy API server may take minutes to
      // arrive, and cutting it off only makes the next attempt cost the server as much again.
      const idle = new AbortController();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(
          () => idle.abort(new Error(`no data for ${LIST_TIMEOUT_MS / 1000} s`)),
          LIST_TIMEOUT_MS,
        );
      };
      arm();
      let text: string;
      try {
        const res = await request(url, AbortSignal.any([signal, idle.signal]));
        if (!res.ok) throw await failure(what, res);
        const decoder = new TextDecoder();
        const parts: string[] = [];
        if (res.body !== null) {
          for await (const chunk of res.body) {
            arm();
            parts.push(decoder.decode(chunk, { stream: true }));
          }
        }
        parts.push(decoder.decode());
        text = parts.join("");
      } catch (e) {
        if (idle.signal.aborted && !signal.aborted) {
          throw new Error(`Cannot ${what}: ${(idle.signal.reason as Error).message}`);
        }
        throw e;
      } finally {
        clearTimeout(timer);
      }
      let body: Record<string, unknown> | null;
      try {
        body = asRecord(JSON.parse(text));
      } catch (e) {
        throw new Error(
          `Cannot ${what}: the response is not JSON (${text.length} characters: ${
            e instanceof Error ? e.message : e
          })`,
        );
      }
      const items = body?.["items"];
      const meta = asRecord(body?.["metadata"]);
      if (!Array.isArray(items)) throw new Error(`Cannot ${what}: the response has no items array`);
      return {
        items,
        resourceVersion: typeof meta?.["resourceVersion"] === "string"
          ? meta["resourceVersion"]
          : "",
        continue: typeof meta?.["continue"] === "string" ? meta["continue"] : "",
      };
    },
    async watch(path, query, handlers: WatchHandlers) {
      const controller = new AbortController();
      const what = `watch ${path}`;
      const res = await request(urlOf(kc, path, { ...query, watch: "true" }), controller.signal);
      let ended = false;
      const end = (error: unknown) => {
        if (ended || controller.signal.aborted) return;
        ended = true;
        handlers.onEnd(error);
      };
      if (!res.ok) {
        // As client-node's Watch: a refused watch (410 included) ends through onEnd, before the
        // handle is returned — so the caller never takes it for a watch that started (a 403
        // from a restarting API server is not "reachable again").
        end(await failure(what, res));
        return { abort: () => controller.abort() };
      }
      const body = res.body;
      void (async () => {
        if (body === null) return end(null);
        let rest = "";
        try {
          for await (const chunk of body.pipeThrough(new TextDecoderStream())) {
            const lines = (rest + chunk).split("\n");
            rest = lines.pop() ?? "";
            for (const line of lines) {
              if (line.trim() === "" || ended) continue;
              const event = asRecord(JSON.parse(line));
              handlers.onEvent(String(event?.["type"] ?? ""), event?.["object"]);
            }
          }
          end(null);
        } catch (e) {
          end(e);
        }
      })();
      return { abort: () => controller.abort() };
    },
  };
}
