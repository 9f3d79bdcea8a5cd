/**
 * Counting the requests each fleet node makes, on the API server's side: its audit log (JSON
 * lines, level Metadata) records every request of the fleet's users — one client-certificate
 * user per node, all in group {@link FLEET_GROUP} — whatever the client's wire format (upstream's
 * protobuf over HTTP/2, kproxy's JSON over HTTP/2). Everyone else's requests are not logged.
 *
 * A request is counted once, at its first audit event (`ResponseStarted` for a watch, else
 * `ResponseComplete` or `Panic`); a watch is open from its `ResponseStarted` until its
 * `ResponseComplete`.
 *
 * @module
 */

/** The group of every fleet node's user; RBAC binds it to `system:node-proxier`. */
export const FLEET_GROUP = "kproxy:fleet";

/** The audit policy: Metadata for the fleet, nothing for anyone else. */
export const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  userGroups: ["${FLEET_GROUP}"]
- level: None
`;

/** Writes the policy into `dir`; the kube-apiserver flags that turn auditing on. */
export async function auditApiServerArgs(dir: string): Promise<{
  readonly args: readonly string[];
  readonly logPath: string;
}> {
  const policyPath = `${dir}/fleet-audit-policy.yaml`;
  const logPath = `${dir}/fleet-audit.log`;
  await Deno.writeTextFile(policyPath, AUDIT_POLICY);
  return {
    args: [
      `--audit-policy-file=${policyPath}`,
      `--audit-log-path=${logPath}`,
      "--audit-log-format=json",
      "--audit-log-maxsize=0",
      "--audit-log-mode=batch",
      "--audit-log-batch-max-wait=1s",
    ],
    logPath,
  };
}

/** What one user's requests add up to. */
export interface RequestTally {
  /** Requests made (each counted once). */
  requests: number;
  /** Requests per verb (`list`, `watch`, `get`, `create`, ...). */
  readonly byVerb: Record<string, number>;
  /** Watches that asked for a streamed list (`sendInitialEvents=true`). */
  watchLists: number;
  /** Requests answered 410 Gone (expired resourceVersion). */
  gone: number;
  /** Requests answered 429 or 5xx. */
  failed: number;
  /** Watches open now (started, not complete). */
  openWatches: number;
}

/** An empty tally. */
export function emptyTally(): RequestTally {
  return { requests: 0, byVerb: {}, watchLists: 0, gone: 0, failed: 0, openWatches: 0 };
}

/** `b - a`, per field (open watches: `b`'s). */
export function tallyDelta(a: RequestTally, b: RequestTally): RequestTally {
  const byVerb: Record<string, number> = {};
  for (const [verb, n] of Object.entries(b.byVerb)) {
    const d = n - (a.byVerb[verb] ?? 0);
    if (d !== 0) byVerb[verb] = d;
  }
  return {
    requests: b.requests - a.requests,
    byVerb,
    watchLists: b.watchLists - a.watchLists,
    gone: b.gone - a.gone,
    failed: b.failed - a.failed,
    openWatches: b.openWatches,
  };
}

/** A copy of a tally. */
export function copyTally(t: RequestTally): RequestTally {
  return { ...t, byVerb: { ...t.byVerb } };
}

interface AuditEvent {
  readonly auditID?: string;
  readonly stage?: string;
  readonly verb?: string;
  readonly requestURI?: string;
  readonly user?: { readonly username?: string };
  readonly responseStatus?: { readonly code?: number };
}

/**
 * Tallies of audit events per user name (pure state machine over audit lines; feed it lines in
 * log order).
 */
export class AuditTallies {
  readonly #tallies = new Map<string, RequestTally>();
  readonly #openWatches = new Map<string, string>();
  #malformed = 0;

  /** Lines that were not audit events. */
  get malformed(): number {
    return this.#malformed;
  }

  /** Takes one line of the audit log. */
  add(line: string): void {
    if (line.trim() === "") return;
    let event: AuditEvent;
    try {
      event = JSON.parse(line) as AuditEvent;
    } catch {
      this.#malformed++;
      return;
    }
    const user = event.user?.username;
    const id = event.auditID;
    if (user === undefined || id === undefined) {
      this.#malformed++;
      return;
    }
    const tally = this.#tallyOf(user);
    const verb = event.verb ?? "unknown";
    if (event.stage === "ResponseStarted") {
      this.#count(tally, verb, event);
      if (verb === "watch") {
        this.#openWatches.set(id, user);
        tally.openWatches++;
      }
      return;
    }
    if (event.stage !== "ResponseComplete" && event.stage !== "Panic") return;
    if (this.#openWatches.delete(id)) {
      tally.openWatches--;
      return;
    }
    this.#count(tally, verb, event);
  }

  /** The tally of `user` (an empty one when it made no request). */
  of(user: string): RequestTally {
    return copyTally(this.#tallies.get(user) ?? emptyTally());
  }

  /** Every user seen. */
  users(): string[] {
    return [...this.#tallies.keys()];
  }

  #tallyOf(user: string): RequestTally {
    let t = this.#tallies.get(user);
    if (t === undefined) {
      t = emptyTally();
      this.#tallies.set(user, t);
    }
    return t;
  }

  #count(tally: RequestTally, verb: string, event: AuditEvent): void {
    tally.requests++;
    tally.byVerb[verb] = (tally.byVerb[verb] ?? 0) + 1;
    if (verb === "watch" && /[?&]sendInitialEvents=true/.test(event.requestURI ?? "")) {
      tally.watchLists++;
    }
    const code = event.responseStatus?.code ?? 0;
    if (code === 410) tally.gone++;
    if (code === 429 || code >= 500) tally.failed++;
  }
}

/** Follows an audit log file as it grows, feeding {@link AuditTallies}. */
export class AuditLogReader {
  readonly #path: string;
  readonly tallies = new AuditTallies();
  #offset = 0;
  #rest = "";

  /** Reads `path` (which may not exist yet). */
  constructor(path: string) {
    this.#path = path;
  }

  /** Reads whatever was appended since the last call. */
  async catchUp(): Promise<void> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.#path, { read: true });
    } catch {
      return;
    }
    try {
      await file.seek(this.#offset, Deno.SeekMode.Start);
      const decoder = new TextDecoder();
      const buffer = new Uint8Array(1 << 20);
      for (;;) {
        const n = await file.read(buffer);
        if (n === null || n === 0) break;
        this.#offset += n;
        const parts = (this.#rest + decoder.decode(buffer.subarray(0, n), { stream: true }))
          .split("\n");
        this.#rest = parts.pop() ?? "";
        for (const line of parts) this.tallies.add(line);
      }
    } finally {
      file.close();
    }
  }
}
