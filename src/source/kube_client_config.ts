/**
 * The Kubernetes client configuration for what nearly every node has — a kubeconfig whose user
 * authenticates with a client certificate, a bearer token (or token file) or a password, the
 * in-cluster service account, or `--master` alone — read without loading
 * `@kubernetes/client-node`. Loading client-node evaluates its generated API (936 modules): about
 * 70 MiB of resident memory before any data, more than kproxy's whole table at 1k services. What
 * this does not cover (an `exec` credential plugin, an `auth-provider`, TLS verification off, a
 * proxy) makes {@link kubeClientConfigNeeds} say so, and the caller loads client-node's own
 * `KubeConfig` for it.
 *
 * The shape is the part of client-node's `KubeConfig` kproxy uses (`getCurrentCluster`,
 * `getCurrentUser`, `applyToHTTPSOptions`), so the transports take either.
 *
 * @module
 */
import { load as loadYaml } from "js-yaml";

/** A cluster entry, in client-node's shape. */
export interface KubeCluster {
  /** Name. */
  readonly name: string;
  /** API server URL. */
  readonly server: string;
  /** `insecure-skip-tls-verify`. */
  readonly skipTLSVerify: boolean;
  /** `proxy-url`. */
  readonly proxyUrl?: string;
  /** CA certificate (PEM), from `certificate-authority-data` or the file. */
  readonly caData?: string;
  /** `certificate-authority` file. */
  readonly caFile?: string;
  /** `tls-server-name`. */
  readonly tlsServerName?: string;
}

/** A user entry, in client-node's shape (the parts this module handles). */
export interface KubeUser {
  /** Name. */
  readonly name: string;
  /** Static bearer token. */
  readonly token?: string;
  /** File holding the bearer token (re-read on every request, as tokens rotate). */
  readonly tokenFile?: string;
  /** Client certificate PEM (data) or file. */
  readonly certData?: string;
  /** Client certificate file. */
  readonly certFile?: string;
  /** Client key PEM (data). */
  readonly keyData?: string;
  /** Client key file. */
  readonly keyFile?: string;
  /** Basic auth. */
  readonly username?: string;
  /** Basic auth. */
  readonly password?: string;
  /** Present when the user needs client-node (`exec`, `auth-provider`). */
  readonly needsClientNode?: string;
}

/** What a request needs: TLS material and headers (client-node's `applyToHTTPSOptions` shape). */
export interface HTTPSOptions {
  /** CA PEM. */
  ca?: unknown;
  /** Client certificate PEM. */
  cert?: unknown;
  /** Client key PEM. */
  key?: unknown;
  /** Headers. */
  headers?: Record<string, unknown>;
  /** Basic auth `user:password`. */
  auth?: string;
  /** TLS server name. */
  servername?: string;
}

/** The configuration surface the transports use; client-node's `KubeConfig` has it too. */
export interface KubeClientConfig {
  /** The current context's cluster. */
  getCurrentCluster(): KubeCluster | null;
  /** The current context's user. */
  getCurrentUser(): KubeUser | null;
  /** Puts TLS material and credentials for the next request on `opts`. */
  applyToHTTPSOptions(opts: HTTPSOptions): Promise<void>;
}

type Raw = Record<string, unknown>;

function record(value: unknown): Raw {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? value as Raw : {};
}

function text(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function decode(base64: string | undefined): string | undefined {
  if (base64 === undefined) return undefined;
  return new TextDecoder().decode(Uint8Array.from(atob(base64.trim()), (c) => c.charCodeAt(0)));
}

function named(list: unknown, name: string | undefined, field: string): Raw | null {
  if (!Array.isArray(list) || name === undefined) return null;
  const hit = list.map(record).find((e) => e["name"] === name);
  return hit === undefined ? null : record(hit[field]);
}

/** A kubeconfig read (pure: paths are kept as paths, relative ones resolved against `dir`). */
export class LiteKubeConfig implements KubeClientConfig {
  readonly #cluster: KubeCluster | null;
  readonly #user: KubeUser | null;

  /** A configuration of one cluster and one user. */
  constructor(cluster: KubeCluster | null, user: KubeUser | null) {
    this.#cluster = cluster;
    this.#user = user;
  }

  /** Reads kubeconfig text (YAML or JSON); relative file paths resolve against `dir`. */
  static fromText(source: string, dir: string): LiteKubeConfig {
    const doc = record(loadYaml(source));
    const current = text(doc["current-context"]);
    const context = named(doc["contexts"], current, "context");
    const clusterName = text(context?.["cluster"]);
    const userName = text(context?.["user"]) ?? "";
    const c = named(doc["clusters"], clusterName, "cluster");
    const u = named(doc["users"], userName, "user") ?? {};
    const path = (p: string | undefined) =>
      p === undefined ? undefined : p.startsWith("/") ? p : `${dir}/${p}`;
    const cluster: KubeCluster | null = c === null ? null : {
      name: clusterName as string,
      server: text(c["server"]) ?? "",
      skipTLSVerify: c["insecure-skip-tls-verify"] === true,
      ...opt("proxyUrl", text(c["proxy-url"])),
      ...opt("caData", decode(text(c["certificate-authority-data"]))),
      ...opt("caFile", path(text(c["certificate-authority"]))),
      ...opt("tlsServerName", text(c["tls-server-name"])),
    };
    const needs = u["exec"] !== undefined
      ? "an exec credential plugin"
      : u["auth-provider"] !== undefined
      ? "an auth-provider"
      : undefined;
    const user: KubeUser = {
      name: userName,
      ...opt("token", text(u["token"])),
      ...opt("tokenFile", path(text(u["tokenFile"]))),
      ...opt("certData", decode(text(u["client-certificate-data"]))),
      ...opt("certFile", path(text(u["client-certificate"]))),
      ...opt("keyData", decode(text(u["client-key-data"]))),
      ...opt("keyFile", path(text(u["client-key"]))),
      ...opt("username", text(u["username"])),
      ...opt("password", text(u["password"])),
      ...opt("needsClientNode", needs),
    };
    return new LiteKubeConfig(cluster, user);
  }

  /** The in-cluster service account under `root` (tests prefix a temporary folder). */
  static inCluster(host: string, port: string, root: string): LiteKubeConfig {
    const sa = `${root}/var/run/secrets/kubernetes.io/serviceaccount`;
    const server = host.includes(":") ? `https://[${host}]:${port}` : `https://${host}:${port}`;
    return new LiteKubeConfig(
      { name: "inCluster", server, skipTLSVerify: false, caFile: `${sa}/ca.crt` },
      { name: "inClusterUser", tokenFile: `${sa}/token` },
    );
  }

  /** The same configuration with another API server URL (`--master`). */
  withServer(server: string): LiteKubeConfig {
    const c = this.#cluster ?? { name: "master", server, skipTLSVerify: false };
    return new LiteKubeConfig(
      { ...c, server, ...(server.startsWith("http:") ? { skipTLSVerify: true } : {}) },
      this.#user,
    );
  }

  /** The cluster. */
  getCurrentCluster(): KubeCluster | null {
    return this.#cluster;
  }

  /** The user. */
  getCurrentUser(): KubeUser | null {
    return this.#user;
  }

  /** TLS material and credentials, files read now (rotated tokens and certificates are seen). */
  // deno-lint-ignore require-await
  async applyToHTTPSOptions(opts: HTTPSOptions): Promise<void> {
    const c = this.#cluster;
    const u = this.#user;
    const read = (path: string | undefined) =>
      path === undefined ? undefined : Deno.readTextFileSync(path);
    const ca = c?.caData ?? read(c?.caFile);
    if (ca !== undefined && ca !== "") opts.ca = ca;
    if (c?.tlsServerName !== undefined) opts.servername = c.tlsServerName;
    const cert = u?.certData ?? read(u?.certFile);
    const key = u?.keyData ?? read(u?.keyFile);
    if (cert !== undefined && key !== undefined) {
      opts.cert = cert;
      opts.key = key;
    }
    const token = u?.token ?? read(u?.tokenFile)?.trim();
    if (token !== undefined && token !== "") {
      opts.headers = { ...(opts.headers ?? {}), Authorization: `Bearer ${token}` };
    } else if (u?.username !== undefined && u.password !== undefined) {
      opts.auth = `${u.username}:${u.password}`;
    }
  }
}

function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/**
 * Why `kc` needs client-node's own `KubeConfig` (an auth plugin, no TLS verification over
 * https, a proxy — what the lite configuration and the fetch transport do not do), or null.
 */
export function kubeClientConfigNeeds(kc: KubeClientConfig): string | null {
  const c = kc.getCurrentCluster();
  const needs = kc.getCurrentUser()?.needsClientNode;
  if (needs !== undefined) return needs;
  if (c === null) return null;
  if ((c.proxyUrl ?? "") !== "") return "a proxy";
  if (c.skipTLSVerify && !c.server.startsWith("http:")) return "TLS verification off";
  return null;
}
