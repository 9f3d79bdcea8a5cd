/**
 * A loopback TCP relay in front of the test API server, so a test can cut, refuse or silence the
 * source's connections while the API server itself stays up (and writes still go straight to it).
 *
 * IP plan: listens on 127.0.0.1:<free port>, forwards to 127.0.0.1:<apiserver port>.
 *
 * @module
 */

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

interface Link {
  readonly client: Deno.Conn;
  readonly upstream: Deno.Conn;
  frozen: boolean;
}

/** A relay from 127.0.0.1:`port` to a target port on loopback. */
export class TcpRelay {
  readonly #target: number;
  #port = 0;
  #listener: Deno.Listener | null = null;
  #accepting: Promise<void> = Promise.resolve();
  readonly #links = new Set<Link>();

  private constructor(target: number) {
    this.#target = target;
  }

  /** Starts relaying to 127.0.0.1:`targetPort`. */
  static start(targetPort: number): TcpRelay {
    const relay = new TcpRelay(targetPort);
    relay.#listen(0);
    return relay;
  }

  /** The port the relay listens on. */
  get port(): number {
    return this.#port;
  }

  /** Connections currently relayed. */
  get connections(): number {
    return this.#links.size;
  }

  /** `https://127.0.0.1:<port>`: a --master for the source. */
  get url(): string {
    return `https://127.0.0.1:${this.#port}`;
  }

  #listen(port: number): void {
    const listener = Deno.listen({ hostname: "127.0.0.1", port });
    this.#listener = listener;
    this.#port = (listener.addr as Deno.NetAddr).port;
    this.#accepting = (async () => {
      try {
        for await (const client of listener) {
          Deno.connect({ hostname: "127.0.0.1", port: this.#target }).then(
            (upstream) => this.#relay({ client, upstream, frozen: false }),
            () => closeQuietly(client),
          );
        }
      } catch {
        // listener closed
      }
    })();
  }

  async #pump(from: Deno.Conn, to: Deno.Conn, link: Link): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    while (true) {
      const n = await from.read(buffer).catch(() => null);
      if (n === null) return;
      // A frozen link swallows bytes: the peer sees a connection that stays open and silent.
      if (link.frozen) continue;
      let offset = 0;
      while (offset < n) {
        const written = await to.write(buffer.subarray(offset, n)).catch(() => -1);
        if (written < 0) return;
        offset += written;
      }
    }
  }

  async #relay(link: Link): Promise<void> {
    this.#links.add(link);
    await Promise.race([
      this.#pump(link.client, link.upstream, link),
      this.#pump(link.upstream, link.client, link),
    ]);
    closeQuietly(link.client);
    closeQuietly(link.upstream);
    this.#links.delete(link);
  }

  /** Silences every open connection (kept open, nothing passes); new connections work. */
  freeze(): number {
    for (const link of this.#links) link.frozen = true;
    return this.#links.size;
  }

  /** Cuts every connection and refuses new ones until {@link resume}. */
  async pause(): Promise<void> {
    this.#listener?.close();
    this.#listener = null;
    await this.#accepting;
    for (const link of this.#links) {
      closeQuietly(link.client);
      closeQuietly(link.upstream);
    }
  }

  /** Accepts connections again on the same port. */
  resume(): void {
    if (this.#listener === null) this.#listen(this.#port);
  }

  /** Stops relaying. */
  async close(): Promise<void> {
    await this.pause();
  }
}
