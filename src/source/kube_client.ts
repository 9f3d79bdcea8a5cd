/**
 * The I/O shell between kproxy and the API server: loads the client configuration with
 * @kubernetes/client-node (`--kubeconfig`, in-cluster service account, `--master`) and offers the
 * two calls a reflector makes — one page of a list, and a watch — as a {@link KubeTransport}.
 *
 * Lists are plain GETs over `node:https` with the agent and headers client-node computes for the
 * kubeconfig (the same path its generated API takes), so list items arrive as the API server's
 * JSON rather than client-node's typed classes (which turn timestamps into `Date`s). Watches use
 * client-node's `Watch`.
 */
import * as http from "node:http";
import * as https from "node:https";
import { createGunzip } from "node:zlib";
import type { KubeConfig } from "@kubernetes/client-node";
import { type KubeTransport, statusError } from "./kube_transport.ts";
import {
  type KubeClientConfig,
  kubeClientConfigNeeds,
  LiteKubeConfig,
} from "./kube_client_config.ts";

/**
 * `@kubernetes/client-node`, loaded on first need only (an auth plugin, TLS verification off, a
 * proxy): importing it costs ~70 MiB of memory (src/source/kube_client_config.ts).
 */
async function clientNode(): Promise<typeof import("@kubernetes/client-node")> {
  await import("./kube_node_warnings.ts");
  return await import("@kubernetes/client-node");
}

/** Where the client configuration comes from. */
export interface KubeClientOptions {
  /** Path of a kubeconfig file; empty or absent for the in-cluster service account. */
  readonly kubeconfig?: string | undefined;
  /** API server URL overriding the kubeconfig's (`--master`). */
  readonly master?: string | undefined;
  /** Root folder prepended to the in-cluster service-account paths (tests only). */
  readonly inClusterRoot?: string | undefined;
}

const SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token";

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function withServer(
  kc: KubeConfig,
  server: string,
  KubeConfigClass: new () => KubeConfig,
): KubeConfig {
  const current = kc.getCurrentCluster();
  const out = new KubeConfigClass();
  out.loadFromOptions({
    // client-node refuses plain http:// unless TLS verification is off (there is no TLS).
    clusters: kc.clusters.map((c) =>
      c.name === current?.name
        ? { ...c, server, ...(server.startsWith("http:") ? { skipTLSVerify: true } : {}) }
        : c
    ),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.getCurrentContext(),
  });
  return out;
}

function checkServer(kc: KubeClientConfig): void {
  const server = kc.getCurrentCluster()?.server ?? "";
  if (!/^https?:\/\/./.test(server)) {
    throw new Error(
      `Cannot use API server URL "${server}": it must start with https:// or http://`,
    );
  }
}

/**
 * Loads the client configuration as kube-proxy does: `--kubeconfig` when given, else the
 * in-cluster service account (token re-read on every request), else `--master` alone (no
 * credentials); `--master` overrides the server in every case. Throws one clear sentence. Read
 * without client-node unless the configuration needs it ({@link kubeClientConfigNeeds}).
 */
export async function loadKubeConfig(options: KubeClientOptions): Promise<KubeClientConfig> {
  const kubeconfig = options.kubeconfig ?? "";
  const master = options.master ?? "";
  let kc: LiteKubeConfig;
  if (kubeconfig !== "") {
    try {
      const dir = kubeconfig.includes("/") ? kubeconfig.slice(0, kubeconfig.lastIndexOf("/")) : ".";
      kc = LiteKubeConfig.fromText(Deno.readTextFileSync(kubeconfig), dir || "/");
    } catch (e) {
      throw new Error(
        `Cannot read kubeconfig ${kubeconfig}: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    if (kc.getCurrentCluster() === null) {
      throw new Error(`Cannot use kubeconfig ${kubeconfig}: its current context names no cluster`);
    }
  } else {
    const root = options.inClusterRoot ?? "";
    const host = Deno.env.get("KUBERNETES_SERVICE_HOST") ?? "";
    const port = Deno.env.get("KUBERNETES_SERVICE_PORT") ?? "";
    if (host !== "" && port !== "" && exists(`${root}${SERVICE_ACCOUNT_TOKEN}`)) {
      kc = LiteKubeConfig.inCluster(host, port, root);
    } else if (master !== "") {
      kc = new LiteKubeConfig({ name: "master", server: master, skipTLSVerify: false }, {
        name: "anonymous",
      });
    } else {
      throw new Error(
        "Cannot configure the Kubernetes client: no --kubeconfig or --master was given and this " +
          "is not a pod (KUBERNETES_SERVICE_HOST or the service-account token is missing)",
      );
    }
  }
  if (master !== "") kc = kc.withServer(master);
  checkServer(kc);
  if (kubeClientConfigNeeds(kc) === null) return kc;
  const full = await loadClientNodeConfig(options);
  checkServer(full);
  return full;
}

/** The same configuration loaded by client-node (auth plugins, no TLS verification, proxies). */
async function loadClientNodeConfig(options: KubeClientOptions): Promise<KubeConfig> {
  const { KubeConfig: KubeConfigClass } = await clientNode();
  const kubeconfig = options.kubeconfig ?? "";
  const master = options.master ?? "";
  let kc = new KubeConfigClass();
  if (kubeconfig !== "") kc.loadFromFile(kubeconfig);
  else if (master !== "") {
    kc.loadFromClusterAndUser({ name: "master", server: master, skipTLSVerify: false }, {
      name: "anonymous",
    });
  } else kc.loadFromCluster(options.inClusterRoot ?? "");
  if (master !== "") kc = withServer(kc, master, KubeConfigClass);
  return kc;
}

/** The API server's URL in a configuration. */
export function apiServerURL(kc: KubeClientConfig): string {
  return kc.getCurrentCluster()?.server ?? "";
}

/** Default time limit of one list page, ms. */
export const LIST_TIMEOUT_MS = 60_000;

function asRecord(value: unknown): Record<string, unknown> | null {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : null;
}

async function getJSON(
  kc: KubeConfig,
  path: string,
  query: Readonly<Record<string, string>>,
  signal: AbortSignal,
): Promise<unknown> {
  const url = new URL(apiServerURL(kc) + path);
  for (const [k, v] of Object.entries(query)) if (v !== "") url.searchParams.set(k, v);
  const init = await kc.applyToFetchOptions({});
  // Lists above 128 KiB come gzipped when asked (level 1 on the server): a tenth of the bytes.
  const headers: Record<string, string> = {
    Accept: "application/json",
    "Accept-Encoding": "gzip",
  };
  new Headers(init.headers as HeadersInit | undefined).forEach((v, k) => headers[k] = v);
  const agent = init.agent as http.Agent | undefined;
  const what = `list ${path}`;
  const client = url.protocol === "http:" ? http : https;
  try {
    return await new Promise<unknown>((resolve, reject) => {
      const req = client.request(url, { method: "GET", headers, agent, signal }, (res) => {
        const chunks: Uint8Array[] = [];
        const gzipped = /^\s*gzip\s*$/i.test(String(res.headers["content-encoding"] ?? ""));
        const body = gzipped ? res.pipe(createGunzip()) : res;
        if (gzipped) {
          body.on("error", (e: Error) => reject(new Error(`Cannot ${what}: ${e.message}`)));
        }
        body.on("data", (chunk: Uint8Array) => chunks.push(chunk));
        res.on("error", reject);
        body.on("end", () => {
          const text = new TextDecoder().decode(concat(chunks));
          let body: unknown = null;
          try {
            body = JSON.parse(text);
          } catch {
            if ((res.statusCode ?? 0) < 300) {
              reject(new Error(`Cannot ${what}: the response is not JSON`));
              return;
            }
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve(body);
          else reject(statusError(what, status, body ?? { message: text.slice(0, 200) }));
        });
      });
      req.setTimeout(LIST_TIMEOUT_MS, () => {
        req.destroy(new Error(`Cannot ${what}: no answer in ${LIST_TIMEOUT_MS / 1000} s`));
      });
      req.on("error", reject);
      req.end();
    });
  } finally {
    agent?.destroy();
  }
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const c of chunks) size += c.length;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

/**
 * The `node:https` transport over a configuration client-node loaded (the one that needs it:
 * TLS verification off, a proxy); loads client-node.
 */
export async function kubeTransport(config: KubeClientConfig): Promise<KubeTransport> {
  if (!("applyToFetchOptions" in config)) {
    throw new Error("Cannot use the node:https transport without client-node's KubeConfig");
  }
  const kc = config as KubeConfig;
  const { Watch } = await clientNode();
  const watcher = new Watch(kc);
  return {
    async list(path, query, signal) {
      const body = asRecord(await getJSON(kc, path, query, signal));
      const items = body?.["items"];
      const meta = asRecord(body?.["metadata"]);
      if (!Array.isArray(items)) {
        throw new Error(`Cannot list ${path}: the response has no items array`);
      }
      return {
        items,
        resourceVersion: typeof meta?.["resourceVersion"] === "string"
          ? meta["resourceVersion"]
          : "",
        continue: typeof meta?.["continue"] === "string" ? meta["continue"] : "",
      };
    },
    async watch(path, query, handlers) {
      const controller = await watcher.watch(
        path,
        query,
        (type, object) => handlers.onEvent(type, object),
        (error) => handlers.onEnd(error ?? null),
      );
      return { abort: () => controller.abort() };
    },
  };
}
