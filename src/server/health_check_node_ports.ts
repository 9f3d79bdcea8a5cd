/**
 * Service health-check node ports (upstream `ServiceHealthServer`): for every Service with
 * `externalTrafficPolicy: Local` and a `healthCheckNodePort`, an HTTP server on that port tells
 * load balancers whether this node has local ready endpoints. 200 with the count when it has some
 * and the proxy is healthy, 503 otherwise; any path, any method.
 *
 * {@link desiredHealthCheckNodePorts} (pure) computes the set; {@link HealthCheckNodePortServers}
 * (shell) opens and closes listeners to match it.
 */
import { familyOf, type IPFamily } from "../model/ip.ts";
import type { ProxySnapshot } from "../snapshot/types.ts";

function hostAddresses(): string[] {
  try {
    return Deno.networkInterfaces().map((i) => i.address.replace(/%.*$/, ""));
  } catch {
    return [];
  }
}

/** One health-check node port and what it reports. */
export interface HealthCheckService {
  /** The Service's namespace. */
  readonly namespace: string;
  /** The Service's name. */
  readonly name: string;
  /** `spec.healthCheckNodePort`. */
  readonly port: number;
  /**
   * Distinct IPs of ready endpoints on this node, over all ports, per family of the Service.
   * Upstream runs one proxier per family, each with its own health-check server on that family's
   * node port addresses and its own count, so an IPv4 address answers with the IPv4 count and a
   * family the Service does not have gets no server.
   */
  readonly localEndpoints: Readonly<Partial<Record<IPFamily, number>>>;
}

/** The health-check servers a snapshot asks for, sorted by Service; one port per Service. */
export function desiredHealthCheckNodePorts(snapshot: ProxySnapshot): HealthCheckService[] {
  const byService = new Map<
    string,
    { namespace: string; name: string; port: number; ips: Map<IPFamily, Set<string>> }
  >();
  const portOwner = new Map<number, string>();
  for (const sp of snapshot.servicePorts) {
    if (sp.externalTrafficPolicy !== "Local" || sp.healthCheckNodePort === null) continue;
    const key = `${sp.namespace}/${sp.name}`;
    let entry = byService.get(key);
    if (entry === undefined) {
      const owner = portOwner.get(sp.healthCheckNodePort);
      if (owner !== undefined && owner !== key) continue; // port taken by another Service
      entry = {
        namespace: sp.namespace,
        name: sp.name,
        port: sp.healthCheckNodePort,
        ips: new Map(),
      };
      byService.set(key, entry);
      portOwner.set(sp.healthCheckNodePort, key);
    }
    for (const fam of sp.families) {
      let ips = entry.ips.get(fam.family);
      if (ips === undefined) entry.ips.set(fam.family, ips = new Set());
      // Only ready endpoints: a node with only terminating endpoints must fail the check.
      const local = fam.healthCheckLocalIPs ??
        fam.endpoints.filter((ep) => ep.isLocal && ep.ready).map((ep) => ep.ip);
      for (const ip of local) ips.add(ip);
    }
  }
  return [...byService.values()].map((e) => ({
    namespace: e.namespace,
    name: e.name,
    port: e.port,
    localEndpoints: Object.fromEntries(
      [...e.ips].sort(([a], [b]) => (a < b ? -1 : 1)).map(([family, ips]) => [family, ips.size]),
    ),
  }));
}

/** The count a server of `family` reports (null: the all-addresses server, first family). */
export function localEndpointsFor(service: HealthCheckService, family: IPFamily | null): number {
  if (family !== null) return service.localEndpoints[family] ?? 0;
  return service.localEndpoints.IPv4 ?? service.localEndpoints.IPv6 ?? 0;
}

/** The answer of one health-check node port. */
export interface HealthCheckAnswer {
  /** 200 or 503. */
  readonly status: 200 | 503;
  /** Response headers. */
  readonly headers: Readonly<Record<string, string>>;
  /** The JSON body, formatted like upstream's (tab-indented). */
  readonly body: string;
}

/** Upstream's answer: 200 when there are local endpoints and the proxy is healthy, else 503. */
export function healthCheckAnswer(
  service: { readonly namespace: string; readonly name: string; readonly localEndpoints: number },
  proxyHealthy: boolean,
): HealthCheckAnswer {
  const ok = service.localEndpoints !== 0 && proxyHealthy;
  const body = JSON.stringify(
    {
      service: { namespace: service.namespace, name: service.name },
      localEndpoints: service.localEndpoints,
      serviceProxyHealthy: proxyHealthy,
    },
    null,
    "\t",
  );
  return {
    status: ok ? 200 : 503,
    headers: {
      "Content-Type": "application/json",
      "X-Content-Type-Options": "nosniff",
      "X-Load-Balancing-Endpoint-Weight": String(service.localEndpoints),
    },
    body,
  };
}

/** The plan to move from the open servers to the desired ones (pure). */
export interface HealthCheckPlan {
  /** Service keys to close (gone, or their port changed). */
  readonly close: readonly string[];
  /** Services to open. */
  readonly open: readonly HealthCheckService[];
  /** Services already open whose endpoint count is updated in place. */
  readonly keep: readonly HealthCheckService[];
}

/** What the listeners of a service depend on: its port and its families. */
export function listenerSignature(svc: HealthCheckService): string {
  return `${svc.port} ${Object.keys(svc.localEndpoints).sort().join(",")}`;
}

/**
 * Compares open `service key → listener signature` ({@link listenerSignature}) with the desired
 * set, like upstream's SyncServices: a service whose port or families changed is closed and
 * opened again.
 */
export function planHealthCheckNodePorts(
  open: ReadonlyMap<string, string>,
  desired: readonly HealthCheckService[],
): HealthCheckPlan {
  const want = new Map(desired.map((s) => [`${s.namespace}/${s.name}`, s]));
  const close: string[] = [];
  for (const [key, signature] of open) {
    const svc = want.get(key);
    if (svc === undefined || listenerSignature(svc) !== signature) close.push(key);
  }
  const toOpen: HealthCheckService[] = [];
  const keep: HealthCheckService[] = [];
  for (const [key, svc] of want) {
    if (open.get(key) === listenerSignature(svc)) keep.push(svc);
    else toOpen.push(svc);
  }
  return { close: close.sort(), open: toOpen, keep };
}

/** What one {@link HealthCheckNodePortServers.update} did. */
export interface HealthCheckUpdate {
  /** Ports opened. */
  readonly opened: readonly number[];
  /** Ports closed. */
  readonly closed: readonly number[];
  /** Services whose port could not be opened (retried on the next update). */
  readonly failed: readonly { service: string; port: number; error: string }[];
}

/** Options of {@link HealthCheckNodePortServers}. */
export interface HealthCheckNodePortServersOptions {
  /**
   * Addresses to listen on when the snapshot's `node.nodePortIPs` is null (every address), in
   * order, at least one must succeed: default `::` (dual-stack, as upstream's Go listener on
   * `0.0.0.0`) then `0.0.0.0` (where IPv6 is off, or `::` is IPv6-only).
   */
  readonly allAddresses?: readonly string[];
  /**
   * This host's addresses, for a family that takes every local address while the other has a
   * list (default: the interfaces' addresses, read when a listener opens).
   */
  readonly localAddresses?: () => readonly string[];
  /** Log sink. */
  readonly log?: (line: string) => void;
}

interface OpenService {
  service: HealthCheckService;
  servers: Deno.HttpServer<Deno.NetAddr>[];
}

/** Opens and closes the health-check node port listeners as services come and go. */
export class HealthCheckNodePortServers {
  readonly #open = new Map<string, OpenService>();
  readonly #opts: HealthCheckNodePortServersOptions;
  #proxyHealthy: () => boolean = () => true;

  /** Makes a manager with nothing open. */
  constructor(options: HealthCheckNodePortServersOptions = {}) {
    this.#opts = options;
  }

  /** Ports currently open, sorted. */
  ports(): number[] {
    return [...this.#open.values()].map((o) => o.service.port).sort((a, b) => a - b);
  }

  /**
   * Matches the open servers to `snapshot` (call after each successful sync). `proxyHealthy` is
   * asked at request time, as upstream asks its health server (pass the `/livez` verdict).
   */
  async update(snapshot: ProxySnapshot, proxyHealthy: () => boolean): Promise<HealthCheckUpdate> {
    this.#proxyHealthy = proxyHealthy;
    const desired = desiredHealthCheckNodePorts(snapshot);
    const signatures = new Map([...this.#open].map(([k, o]) => [k, listenerSignature(o.service)]));
    const plan = planHealthCheckNodePorts(signatures, desired);
    const closed: number[] = [];
    for (const key of plan.close) {
      const entry = this.#open.get(key);
      if (entry === undefined) continue;
      this.#open.delete(key);
      await Promise.all(entry.servers.map((s) => s.shutdown()));
      closed.push(entry.service.port);
      this.#opts.log?.(`closed health check node port ${entry.service.port} of ${key}`);
    }
    for (const svc of plan.keep) {
      const entry = this.#open.get(`${svc.namespace}/${svc.name}`);
      if (entry !== undefined) entry.service = svc;
    }
    const opened: number[] = [];
    const failed: { service: string; port: number; error: string }[] = [];
    const { IPv4: v4, IPv6: v6 } = snapshot.node.nodePortIPs;
    // Every address of both families: wildcard listeners. Otherwise one listener per address,
    // a family without a list taking every local address of its own (a wildcard of one family
    // would overlap the other family's addresses).
    const explicit = v4 === null && v6 === null ? null : [
      ...(v4 ?? this.#localAddresses("IPv4")),
      ...(v6 ?? this.#localAddresses("IPv6")),
    ];
    for (const svc of plan.open) {
      const key = `${svc.namespace}/${svc.name}`;
      const entry: OpenService = { service: svc, servers: [] };
      try {
        if (explicit !== null) {
          // One server per address of a family the Service has, reporting that family's count.
          for (const ip of explicit) {
            const family = familyOf(ip);
            if (family === null || svc.localEndpoints[family] === undefined) continue;
            entry.servers.push(this.#listen(key, ip, svc.port, family));
          }
        } else {
          let firstError: unknown = null;
          for (const ip of this.#opts.allAddresses ?? ["::", "0.0.0.0"]) {
            try {
              entry.servers.push(this.#listen(key, ip, svc.port, null));
            } catch (e) {
              // Covered by a dual-stack listener already, or the family is unavailable.
              firstError ??= e;
            }
          }
          if (entry.servers.length === 0) throw firstError;
        }
      } catch (e) {
        await Promise.all(entry.servers.map((s) => s.shutdown()));
        const error = e instanceof Error ? e.message : String(e);
        failed.push({ service: key, port: svc.port, error });
        this.#opts.log?.(`cannot open health check node port ${svc.port} of ${key}: ${error}`);
        continue;
      }
      this.#open.set(key, entry);
      opened.push(svc.port);
      this.#opts.log?.(`opened health check node port ${svc.port} of ${key}`);
    }
    return { opened, closed, failed };
  }

  /** This host's addresses of `family` that a listener can bind (no link-local ones). */
  #localAddresses(family: IPFamily): string[] {
    const all = this.#opts.localAddresses?.() ?? hostAddresses();
    return all.filter((ip) => familyOf(ip) === family && !ip.toLowerCase().startsWith("fe80:"));
  }

  #listen(
    key: string,
    hostname: string,
    port: number,
    family: IPFamily | null,
  ): Deno.HttpServer<Deno.NetAddr> {
    return Deno.serve({ hostname, port, onListen: () => {} }, () => {
      const entry = this.#open.get(key);
      if (entry === undefined) return new Response(null, { status: 503 });
      const answer = healthCheckAnswer(
        { ...entry.service, localEndpoints: localEndpointsFor(entry.service, family) },
        this.#proxyHealthy(),
      );
      return new Response(answer.body, { status: answer.status, headers: answer.headers });
    });
  }

  /** Closes every listener. */
  async close(): Promise<void> {
    const entries = [...this.#open.values()];
    this.#open.clear();
    await Promise.all(entries.flatMap((e) => e.servers.map((s) => s.shutdown())));
  }
}
