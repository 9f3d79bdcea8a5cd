/**
 * A userspace TCP load balancer, run inside a lab's client namespace
 * (`ip netns exec NS deno run _balancer_main.ts CONFIG_JSON`): per pool it listens on
 * 127.0.0.1:<free port>, health-checks every node every `intervalMs` (HTTP GET, timeout one
 * interval), and pipes each accepted connection to the next healthy node's NodePort. On `start`
 * (stdin) it also sends its own steady stream of client connections through each pool, one every
 * `loadIntervalMs`, each reading the answering pod's one line; on `stop` it finishes those in
 * flight and exits.
 *
 * stdout: one JSON {@link BalancerEvent} a line (`ready` with the listening ports, every health
 * transition, every client connection, `stopped`).
 *
 * @module
 */
import {
  type BalancerConfig,
  type BalancerEvent,
  BalancerPool,
  type PoolSpec,
} from "./balancer.ts";

const encoder = new TextEncoder();
let writing = Promise.resolve();

function emit(event: BalancerEvent): void {
  const bytes = encoder.encode(JSON.stringify(event) + "\n");
  writing = writing.then(async () => {
    let written = 0;
    while (written < bytes.length) written += await Deno.stdout.write(bytes.subarray(written));
  });
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* closed */ }
}

function timeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function pipe(a: Deno.Conn, b: Deno.Conn): Promise<void> {
  const options = { preventClose: true, preventAbort: true, preventCancel: true };
  await Promise.all([
    a.readable.pipeTo(b.writable, options).catch(() => undefined)
      .then(() => b.closeWrite().catch(() => undefined)),
    b.readable.pipeTo(a.writable, options).catch(() => undefined)
      .then(() => a.closeWrite().catch(() => undefined)),
  ]);
  closeQuietly(a);
  closeQuietly(b);
}

/** One pool: health checks, a listener, and the record of which client port went where. */
class PoolRunner {
  readonly pool: BalancerPool;
  readonly spec: PoolSpec;
  readonly listener: Deno.TcpListener;
  readonly routed = new Map<number, string | null>();
  readonly #checking = new Set<string>();
  readonly #config: BalancerConfig;

  constructor(spec: PoolSpec, config: BalancerConfig) {
    this.spec = spec;
    this.#config = config;
    this.pool = new BalancerPool(spec.name, config.nodes);
    this.listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  }

  get port(): number {
    return this.listener.addr.port;
  }

  checkAll(): void {
    for (const node of this.pool.nodes) {
      if (this.#checking.has(node)) continue;
      this.#checking.add(node);
      void this.#check(node).finally(() => this.#checking.delete(node));
    }
  }

  async #check(node: string): Promise<void> {
    let status = 0;
    try {
      const res = await fetch(`http://${node}:${this.spec.healthPort}${this.spec.healthPath}`, {
        signal: AbortSignal.timeout(this.#config.intervalMs),
      });
      status = res.status;
      await res.body?.cancel();
    } catch {
      status = 0;
    }
    const transition = this.pool.record({ node, status, at: Date.now() });
    if (transition !== null) emit({ type: "health", ...transition });
  }

  async accept(): Promise<void> {
    for await (const conn of this.listener) {
      const node = this.pool.pick();
      this.routed.set(conn.remoteAddr.port, node);
      if (node === null) {
        closeQuietly(conn);
        continue;
      }
      timeout(
        Deno.connect({ hostname: node, port: this.spec.backendPort }),
        this.#config.connectionTimeoutMs,
        `connect ${node}:${this.spec.backendPort}`,
      ).then(
        (backend) => pipe(conn, backend),
        () => closeQuietly(conn),
      );
    }
  }
}

async function oneClient(runner: PoolRunner, config: BalancerConfig): Promise<void> {
  const at = Date.now();
  let port = 0;
  let pod: string | null = null;
  let error: string | null = null;
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: runner.port });
    port = conn.localAddr.port;
    try {
      const text = await timeout(
        new Response(conn.readable).text(),
        config.connectionTimeoutMs,
        "read",
      );
      const first = text.split("\n")[0]?.trim() ?? "";
      if (first === "") error = "closed without an answer";
      else pod = first.split(" ")[0] ?? null;
    } finally {
      closeQuietly(conn);
    }
  } catch (e) {
    error = e instanceof Error ? e.message : String(e);
  }
  const node = runner.routed.get(port) ?? null;
  runner.routed.delete(port);
  emit({
    type: "connection",
    pool: runner.spec.name,
    node,
    at,
    ms: Date.now() - at,
    pod,
    error: pod === null ? (error ?? "no answer") : null,
  });
}

async function main(): Promise<void> {
  const config = JSON.parse(Deno.args[0] ?? "") as BalancerConfig;
  const runners = config.pools.map((p) => new PoolRunner(p, config));
  for (const r of runners) void r.accept().catch(() => undefined);
  const check = () => runners.forEach((r) => r.checkAll());
  check();
  const checker = setInterval(check, config.intervalMs);
  emit({ type: "ready", ports: Object.fromEntries(runners.map((r) => [r.spec.name, r.port])) });

  const inFlight = new Set<Promise<void>>();
  let load: ReturnType<typeof setInterval> | undefined;
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  let rest = "";
  for await (const chunk of lines) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop() ?? "";
    for (const command of parts.map((p) => p.trim())) {
      if (command === "start" && load === undefined) {
        load = setInterval(() => {
          for (const r of runners) {
            const p = oneClient(r, config);
            inFlight.add(p);
            void p.finally(() => inFlight.delete(p));
          }
        }, config.loadIntervalMs);
      } else if (command === "stop") {
        clearInterval(load);
        await Promise.allSettled([...inFlight]);
        clearInterval(checker);
        emit({ type: "stopped" });
        await writing;
        Deno.exit(0);
      }
    }
  }
}

if (import.meta.main) await main();
