/** Serves a Hono app on a `host:port` bind address with Deno.serve (the I/O shell). */

/** Anything with a fetch handler (a Hono app). */
export interface FetchApp {
  /** Answers one request. */
  fetch(request: Request): Response | Promise<Response>;
}

/** A parsed `host:port`. */
export interface BindAddress {
  /** Address to listen on; `0.0.0.0` or `::` for all. */
  readonly hostname: string;
  /** Port; 0 picks a free one. */
  readonly port: number;
}

/** A listening server. */
export interface ServedApp {
  /** The address actually bound (the real port when 0 was asked for). */
  readonly addr: BindAddress;
  /** Resolves once the server has shut down. */
  readonly finished: Promise<void>;
  /** Stops accepting connections and waits for open requests. */
  shutdown(): Promise<void>;
}

/**
 * Parses `host:port`, `[ipv6]:port` or `:port` (every IPv4 address, as Go does for `:port`).
 * Throws on anything else.
 */
export function parseBindAddress(text: string): BindAddress {
  const fail = (why: string) =>
    new Error(`Cannot use bind address ${JSON.stringify(text)}: ${why}`);
  let host: string;
  let portText: string;
  const v6 = /^\[([0-9a-fA-F:.%a-zA-Z]+)\]:(\d+)$/.exec(text);
  if (v6 !== null) {
    host = v6[1] as string;
    portText = v6[2] as string;
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) throw fail("expected host:port");
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(":")) throw fail("IPv6 addresses must be in brackets");
  }
  if (!/^\d+$/.test(portText)) throw fail("the port is not a number");
  const port = Number(portText);
  if (port > 65535) throw fail("the port is out of range");
  return { hostname: host === "" ? "0.0.0.0" : host, port };
}

/** Listens on `bindAddress` and serves `app` until `signal` aborts; throws if it cannot listen. */
export function serveApp(app: FetchApp, bindAddress: string, signal?: AbortSignal): ServedApp {
  const { hostname, port } = parseBindAddress(bindAddress);
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve(
      { hostname, port, onListen: () => {}, ...(signal !== undefined ? { signal } : {}) },
      (request) => app.fetch(request),
    );
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new Error(`Cannot listen on ${bindAddress}: ${reason}`);
  }
  return {
    addr: { hostname: server.addr.hostname, port: server.addr.port },
    finished: server.finished,
    shutdown: () => server.shutdown(),
  };
}
