/**
 * Watching what the kernel holds, from outside the proxies: a raw nf_tables notification
 * listener inside a namespace ({@link ./_nf_listener.ts}), and polling a command until its
 * output matches (iptables-legacy has no notifications). A change counts as live when the kernel
 * reports it here, never when a proxy says so.
 *
 * Times are wall-clock milliseconds with sub-millisecond precision (`performance.timeOrigin +
 * performance.now()`), comparable across the bench and listener processes.
 *
 * @module
 */

/** Now, in epoch milliseconds with sub-millisecond precision. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The hex of an IPv4 address's 4 bytes (as nf_tables carries it in rules and set keys). */
export function ipv4Hex(ip: string): string {
  return ip.split(".").map((o) => Number(o).toString(16).padStart(2, "0")).join("");
}

/** The hex of a text's UTF-8 bytes (chain names in notifications). */
export function textHex(text: string): string {
  return Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/** When the kernel committed a watched change, and how big that transaction was. */
export interface KernelSighting {
  /** Epoch ms of the transaction's end (NEWGEN notification). */
  readonly at: number;
  /** nf_tables notifications in that transaction. */
  readonly transactionMessages: number;
}

const LISTENER = new URL("./_nf_listener.ts", import.meta.url).pathname;

/**
 * An nf_tables notification listener in one namespace. Register what to wait for with
 * {@link NfEventWatch.arm} before making the change (the kernel can beat the API's reply).
 */
export class NfEventWatch {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #pending = new Map<string, (s: KernelSighting | null) => void>();
  readonly #armed = new Map<string, () => void>();
  readonly #ready: Promise<void>;
  #lost = 0;
  #next = 0;
  #closed = false;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    let markReady = () => {};
    this.#ready = new Promise((r) => (markReady = r));
    (async () => {
      let rest = "";
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        const parts = (rest + chunk).split("\n");
        rest = parts.pop() ?? "";
        for (const line of parts) {
          const [word, a, b, c] = line.split(" ");
          if (word === "ready") markReady();
          else if (word === "armed" && a !== undefined) {
            this.#armed.get(a)?.();
            this.#armed.delete(a);
          } else if (word === "lost") this.#lost = Number(a);
          else if (word === "hit" && a !== undefined) {
            this.#pending.get(a)?.({ at: Number(b), transactionMessages: Number(c) });
            this.#pending.delete(a);
          }
        }
      }
    })().catch(() => {}).finally(() => {
      this.#closed = true;
      markReady();
      for (const resolve of this.#armed.values()) resolve();
      this.#armed.clear();
      for (const resolve of this.#pending.values()) resolve(null);
      this.#pending.clear();
    });
  }

  /** Starts the listener in `netns` and resolves once it has joined the notification group. */
  static async start(netns: string): Promise<NfEventWatch> {
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", netns, Deno.execPath(), "run", "-A", "--no-lock", LISTENER],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const watch = new NfEventWatch(child);
    await watch.#ready;
    if (watch.#closed) throw new Error(`Cannot start the nf_tables listener in ${netns}`);
    return watch;
  }

  /** True once the listener process has ended (its sightings are then all null). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Receive-buffer overruns so far (events lost during huge transactions). */
  get lost(): number {
    return this.#lost;
  }

  /**
   * Registers a watch and resolves once the listener holds it, so that a change made afterwards
   * is seen. Its `sighting` resolves at the end of the first transaction in which
   * something containing one of `hexPatterns` appeared (more NEW than DEL notifications) or
   * disappeared, or with null after `timeoutMs`.
   */
  async arm(
    direction: "appear" | "disappear",
    hexPatterns: readonly string[],
    timeoutMs: number,
  ): Promise<{ readonly sighting: Promise<KernelSighting | null> }> {
    if (this.#closed) return { sighting: Promise.resolve(null) };
    const id = `w${this.#next++}`;
    const armed = new Promise<void>((r) => this.#armed.set(id, r));
    const sighting = new Promise<KernelSighting | null>((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        this.#send(`unwatch ${id}`).catch(() => {});
        resolve(null);
      }, timeoutMs);
      this.#pending.set(id, (s) => {
        clearTimeout(timer);
        resolve(s);
      });
    });
    await this.#send(`watch ${id} ${direction} ${hexPatterns.join(",")}`);
    await armed;
    return { sighting };
  }

  async #send(line: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(line + "\n"));
  }

  /** Stops the listener. */
  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGTERM");
    } catch { /* gone */ }
    await this.#writer.close().catch(() => {});
    await this.#child.status;
  }
}

/** Runs `argv` until `match(stdout)` holds; the epoch ms when a matching run ended, or null. */
export async function pollUntil(
  argv: readonly string[],
  match: (stdout: string) => boolean,
  options: { intervalMs: number; timeoutMs: number },
): Promise<{ at: number | null; polls: number; lastPollMs: number }> {
  const deadline = nowMs() + options.timeoutMs;
  let polls = 0;
  let lastPollMs = 0;
  while (nowMs() < deadline) {
    const t0 = nowMs();
    const out = await new Deno.Command(argv[0] as string, {
      args: argv.slice(1),
      stdout: "piped",
      stderr: "null",
    }).output();
    polls++;
    lastPollMs = nowMs() - t0;
    if (match(new TextDecoder().decode(out.stdout))) return { at: nowMs(), polls, lastPollMs };
    const wait = options.intervalMs - lastPollMs;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  return { at: null, polls, lastPollMs };
}
