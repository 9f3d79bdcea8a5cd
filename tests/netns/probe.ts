/**
 * Probes of the netns harness: what a probe asks and what it saw, plus pure helpers that
 * summarise many probes (answers per pod, client IP preservation).
 *
 * @module
 */

/** Transport of a probe (SCTP over raw sockets: an INIT, answered by an INIT ACK). */
export type ProbeProtocol = "TCP" | "UDP" | "SCTP";

/** Where a probe goes. */
export interface ProbeTarget {
  /** TCP (connect and read one line) or UDP (one datagram on a connected socket). */
  readonly protocol: ProbeProtocol;
  /** Destination address (IPv4 or IPv6). */
  readonly ip: string;
  /** Destination port. */
  readonly port: number;
}

/** Options of one probe (or a batch of probes). */
export interface ProbeOptions {
  /** Give up after this long; default {@link DEFAULT_PROBE_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
  /** UDP only: send from this source port, so conntrack sees the same flow each time. */
  readonly sourcePort?: number;
  /** How many probes of a batch run at once (default 8; 1 with a fixed source port). */
  readonly concurrency?: number;
}

/**
 * How long a probe waits for an answer before reporting `timeout`, by default: generous, since
 * it only costs time when nothing answers (checks that expect a drop set a shorter one).
 */
export const DEFAULT_PROBE_TIMEOUT_MS = 1000;

/** The request line the agent reads (internal wire format). */
export interface ProbeRequest extends ProbeTarget {
  /** Request id, echoed in the reply. */
  readonly id: number;
  /** Number of probes. */
  readonly count: number;
  /** Parallel probes. */
  readonly concurrency: number;
  /** Milliseconds per probe. */
  readonly timeoutMs: number;
  /** Fixed UDP source port, or null. */
  readonly sourcePort: number | null;
}

/**
 * What one probe saw: a pod answered (with the client address it saw, and the prober's own
 * source address, to tell whether the client IP was preserved); the connection was refused
 * (TCP RST, ICMP port/host unreachable); or nothing came back in time.
 */
export type ProbeResult =
  | {
    readonly kind: "answer";
    /** Name of the pod that answered. */
    readonly pod: string;
    /** Source address the pod saw. */
    readonly clientIP: string;
    /** Source address the prober's socket used. */
    readonly localIP: string;
    /** The port the pod was reached on (its target port), when the server says. */
    readonly serverPort?: number;
    /** Round trip in milliseconds. */
    readonly ms: number;
  }
  | {
    readonly kind: "refused";
    /** `ECONNREFUSED`, `EHOSTUNREACH`, ... */
    readonly reason: string;
    /** Time to the refusal in milliseconds. */
    readonly ms: number;
  }
  | {
    readonly kind: "timeout";
    /** What was missing. */
    readonly reason: string;
    /** Time waited in milliseconds. */
    readonly ms: number;
  };

/** Summary of many probes. */
export interface Distribution {
  /** Number of probes. */
  readonly total: number;
  /** Answers per pod name. */
  readonly answers: Readonly<Record<string, number>>;
  /** Refused probes. */
  readonly refused: number;
  /** Probes that timed out. */
  readonly timeout: number;
  /** Client IPs the pods saw, with counts. */
  readonly clientIPs: Readonly<Record<string, number>>;
  /** Answers where the pod saw the prober's own source address. */
  readonly preserved: number;
}

/** Counts answers per pod, refusals, timeouts and client IPs of a batch of probes. */
export function distribution(results: readonly ProbeResult[]): Distribution {
  const answers: Record<string, number> = {};
  const clientIPs: Record<string, number> = {};
  let refused = 0;
  let timeout = 0;
  let preserved = 0;
  for (const r of results) {
    if (r.kind === "refused") refused++;
    else if (r.kind === "timeout") timeout++;
    else {
      answers[r.pod] = (answers[r.pod] ?? 0) + 1;
      clientIPs[r.clientIP] = (clientIPs[r.clientIP] ?? 0) + 1;
      if (r.clientIP === r.localIP) preserved++;
    }
  }
  return { total: results.length, answers, refused, timeout, clientIPs, preserved };
}

/** One line describing a distribution, for assertion messages. */
export function formatDistribution(d: Distribution): string {
  const pods = Object.entries(d.answers).sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([pod, n]) => `${pod}=${n}`);
  const ips = Object.entries(d.clientIPs).map(([ip, n]) => `${ip}×${n}`);
  const parts = [`${d.total} probes`];
  if (pods.length > 0) parts.push(`answers ${pods.join(" ")}`);
  if (ips.length > 0) parts.push(`client IPs seen ${ips.join(" ")}`);
  if (d.refused > 0) parts.push(`refused ${d.refused}`);
  if (d.timeout > 0) parts.push(`timeout ${d.timeout}`);
  return parts.join(", ");
}
