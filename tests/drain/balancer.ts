/**
 * The decisions of a cloud-style TCP load balancer in front of a Kubernetes service (pure): each
 * pool knows its backend nodes, takes the answer of each node's health check (an HTTP GET of the
 * service's `healthCheckNodePort` for `externalTrafficPolicy: Local`, or kube-proxy's `/healthz`
 * on 10256 for `Cluster`, as cloud load balancers do since KEP-3836), and sends each new
 * connection to the next healthy node, round robin. A node starts unhealthy and is healthy while
 * its last check answered 2xx; the view changes on the first answer that differs (no thresholds,
 * so the view follows the health answers within one check interval).
 *
 * The I/O around it (listening, checking, piping) is `_balancer_main.ts`.
 *
 * @module
 */

/** One health check's answer. */
export interface HealthAnswer {
  /** The node (its address). */
  readonly node: string;
  /** HTTP status, or 0 when nothing answered in time. */
  readonly status: number;
  /** When the answer came, epoch ms. */
  readonly at: number;
}

/** A change of the pool's view of one node. */
export interface HealthTransition {
  /** The pool. */
  readonly pool: string;
  /** The node. */
  readonly node: string;
  /** Healthy now? */
  readonly healthy: boolean;
  /** The status that changed it. */
  readonly status: number;
  /** When, epoch ms. */
  readonly at: number;
}

/** A pool of backend nodes for one service. */
export class BalancerPool {
  /** The pool's name. */
  readonly name: string;
  readonly #nodes: readonly string[];
  readonly #healthy = new Set<string>();
  #next = 0;

  /** A pool over `nodes`, all unhealthy until checked. */
  constructor(name: string, nodes: readonly string[]) {
    this.name = name;
    this.#nodes = [...nodes];
  }

  /** The nodes, in order. */
  get nodes(): readonly string[] {
    return this.#nodes;
  }

  /** Healthy nodes, in pool order. */
  healthy(): string[] {
    return this.#nodes.filter((n) => this.#healthy.has(n));
  }

  /** Takes a health answer; returns the transition it caused, if any. */
  record(answer: HealthAnswer): HealthTransition | null {
    if (!this.#nodes.includes(answer.node)) return null;
    const healthy = answer.status >= 200 && answer.status < 300;
    if (healthy === this.#healthy.has(answer.node)) return null;
    if (healthy) this.#healthy.add(answer.node);
    else this.#healthy.delete(answer.node);
    return { pool: this.name, node: answer.node, healthy, status: answer.status, at: answer.at };
  }

  /** The node for the next connection (round robin over healthy nodes), or null if none. */
  pick(): string | null {
    const n = this.#nodes.length;
    for (let i = 0; i < n; i++) {
      const node = this.#nodes[(this.#next + i) % n] as string;
      if (this.#healthy.has(node)) {
        this.#next = (this.#next + i + 1) % n;
        return node;
      }
    }
    return null;
  }
}

/** What one pool of a balancer is: where its backends listen and how they are checked. */
export interface PoolSpec {
  /** Name, e.g. `local` or `cluster`. */
  readonly name: string;
  /** The service's NodePort on every node. */
  readonly backendPort: number;
  /** The health check port on every node. */
  readonly healthPort: number;
  /** The health check path (`/` for a healthCheckNodePort, `/healthz` for kube-proxy's). */
  readonly healthPath: string;
}

/** The balancer process's configuration (its one argument, as JSON). */
export interface BalancerConfig {
  /** The nodes' addresses. */
  readonly nodes: readonly string[];
  /** The pools. */
  readonly pools: readonly PoolSpec[];
  /** Health check interval (and timeout), ms. */
  readonly intervalMs: number;
  /** One client connection per pool every this many ms, once traffic starts. */
  readonly loadIntervalMs: number;
  /** How long a client waits for the answer, ms. */
  readonly connectionTimeoutMs: number;
}

/** One client connection through the balancer. */
export interface ConnectionRecord {
  /** The pool. */
  readonly pool: string;
  /** The node the balancer sent it to (null: no healthy node). */
  readonly node: string | null;
  /** When it started, epoch ms. */
  readonly at: number;
  /** How long until the answer or the failure, ms. */
  readonly ms: number;
  /** The pod that answered, or null when it failed. */
  readonly pod: string | null;
  /** Why it failed. */
  readonly error: string | null;
}

/** What the balancer process prints, one JSON object a line. */
export type BalancerEvent =
  | { readonly type: "ready"; readonly ports: Readonly<Record<string, number>> }
  | ({ readonly type: "health" } & HealthTransition)
  | ({ readonly type: "connection" } & ConnectionRecord)
  | { readonly type: "stopped" };
