/**
 * The program the netns harness runs inside each namespace (`ip netns exec NS deno run ...`).
 *
 * - As a **pod server** (`--tcp`/`--udp` ports): answers every TCP connection and every UDP
 *   datagram with one line `<name> <clientIP> <port>` (the port it was reached on), on IPv4 and
 *   IPv6 (one dual-stack socket each).
 * - As a **prober**: reads JSON requests from stdin, one a line, and writes one JSON reply a line
 *   to stdout (`{ id, results }` or `{ id, error }`), so one long-lived process serves many probes.
 *
 * Prints `{"ready":true}` once every listener is bound. Exits when stdin closes.
 *
 * - SCTP (`--sctp` ports, and probes with protocol SCTP) goes over raw sockets, so it works on
 *   kernels without SCTP sockets (`_sctp_probe.ts`).
 *
 * Usage: `_agent_main.ts --name pod0 [--tcp 8080,8081] [--udp 8080] [--sctp 8080]`
 *
 * @module
 */
import { sctpProbe, serveSctp } from "./_sctp_probe.ts";
import { udpProbe } from "./_udp_probe.ts";
import type { ProbeRequest, ProbeResult } from "./probe.ts";

function arg(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

function ports(text: string | undefined): number[] {
  if (text === undefined || text === "") return [];
  return text.split(",").map((p) => Number(p));
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; other addresses unchanged. */
function plainIP(ip: string): string {
  return ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip;
}

const name = arg("name") ?? "agent";
const encoder = new TextEncoder();

async function serveTcp(listener: Deno.TcpListener, port: number): Promise<void> {
  for await (const conn of listener) {
    const client = plainIP(conn.remoteAddr.hostname);
    (async () => {
      try {
        await conn.write(encoder.encode(`${name} ${client} ${port}\n`));
      } catch { /* the prober went away */ }
      try {
        conn.close();
      } catch { /* already closed */ }
    })();
  }
}

async function serveUdp(socket: Deno.DatagramConn, port: number): Promise<void> {
  for await (const [, remote] of socket) {
    const addr = remote as Deno.NetAddr;
    try {
      await socket.send(encoder.encode(`${name} ${plainIP(addr.hostname)} ${port}\n`), addr);
    } catch { /* unreachable sender: nothing to do */ }
  }
}

for (const port of ports(arg("tcp"))) {
  serveTcp(Deno.listen({ hostname: "::", port, transport: "tcp" }), port);
}
if (ports(arg("sctp")).length > 0) serveSctp(name, ports(arg("sctp")));
for (const port of ports(arg("udp"))) {
  serveUdp(Deno.listenDatagram({ hostname: "::", port, transport: "udp" }), port);
}

function parseAnswer(text: string, localIP: string, ms: number): ProbeResult {
  const [pod = "", clientIP = "", port = ""] = text.trim().split(" ");
  const serverPort = Number(port);
  return {
    kind: "answer",
    pod,
    clientIP,
    localIP: plainIP(localIP),
    ms,
    ...(port !== "" && Number.isInteger(serverPort) ? { serverPort } : {}),
  };
}

function errorReason(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof Deno.errors.ConnectionRefused || /os error 111/.test(message)) {
    return "ECONNREFUSED";
  }
  if (/os error 113/.test(message)) return "EHOSTUNREACH";
  // A netfilter drop in the sender's own OUTPUT hook.
  if (/os error 1\)/.test(message)) return "EPERM";
  if (/os error 101/.test(message)) return "ENETUNREACH";
  return message;
}

async function readLine(conn: Deno.TcpConn, deadline: number): Promise<string | null> {
  const buf = new Uint8Array(256);
  let text = "";
  while (!text.includes("\n")) {
    const left = deadline - performance.now();
    if (left <= 0) return null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), left);
    });
    const n = await Promise.race([conn.read(buf), timeout]).finally(() => clearTimeout(timer));
    if (n === "timeout") return null;
    if (n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text;
}

async function probeTcp(ip: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  const start = performance.now();
  const deadline = start + timeoutMs;
  const elapsed = () => Math.round((performance.now() - start) * 10) / 10;
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({
      hostname: ip,
      port,
      transport: "tcp",
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    if (e instanceof DOMException && (e.name === "TimeoutError" || e.name === "AbortError")) {
      return { kind: "timeout", reason: "no connection", ms: elapsed() };
    }
    const reason = errorReason(e);
    if (reason.startsWith("E")) return { kind: "refused", reason, ms: elapsed() };
    return { kind: "timeout", reason, ms: elapsed() };
  }
  try {
    const line = await readLine(conn, deadline);
    if (line === null || line.trim() === "") {
      return { kind: "timeout", reason: "connected but no answer", ms: elapsed() };
    }
    return parseAnswer(line, conn.localAddr.hostname, elapsed());
  } catch (e) {
    const reason = errorReason(e);
    return { kind: "refused", reason: `after connect: ${reason}`, ms: elapsed() };
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

async function probeUdp(
  ip: string,
  port: number,
  timeoutMs: number,
  sourcePort: number | undefined,
): Promise<ProbeResult> {
  const start = performance.now();
  const outcome = await udpProbe(ip, port, {
    timeoutMs,
    payload: "probe\n",
    ...(sourcePort === undefined ? {} : { sourcePort }),
  });
  const ms = Math.round((performance.now() - start) * 10) / 10;
  switch (outcome.kind) {
    case "reply":
      return parseAnswer(outcome.text, outcome.localIP, ms);
    case "error":
      return { kind: "refused", reason: outcome.name, ms };
    case "timeout":
      return { kind: "timeout", reason: "no answer", ms };
  }
}

async function probeSctp(ip: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  const start = performance.now();
  const outcome = await sctpProbe(ip, port, timeoutMs);
  const ms = Math.round((performance.now() - start) * 10) / 10;
  switch (outcome.kind) {
    case "reply":
      return parseAnswer(outcome.text, outcome.localIP, ms);
    case "error":
      return { kind: "refused", reason: outcome.name, ms };
    case "timeout":
      return { kind: "timeout", reason: "no answer", ms };
  }
}

function probeOnce(req: ProbeRequest): Promise<ProbeResult> {
  switch (req.protocol) {
    case "UDP":
      return probeUdp(req.ip, req.port, req.timeoutMs, req.sourcePort ?? undefined);
    case "SCTP":
      return probeSctp(req.ip, req.port, req.timeoutMs);
    default:
      return probeTcp(req.ip, req.port, req.timeoutMs);
  }
}

async function handle(req: ProbeRequest): Promise<ProbeResult[]> {
  const results: ProbeResult[] = new Array(req.count);
  // A fixed source port can only be used by one socket at a time.
  const width = req.sourcePort ? 1 : Math.max(1, Math.min(req.concurrency, req.count));
  let next = 0;
  const worker = async () => {
    while (next < req.count) {
      const i = next++;
      results[i] = await probeOnce(req);
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return results;
}

async function writeLine(value: unknown): Promise<void> {
  const bytes = encoder.encode(JSON.stringify(value) + "\n");
  let written = 0;
  while (written < bytes.length) written += await Deno.stdout.write(bytes.subarray(written));
}

let writing = Promise.resolve();
function reply(value: unknown): void {
  writing = writing.then(() => writeLine(value));
}

reply({ ready: true, name });

const decoder = new TextDecoder();
let pending = "";
for await (const chunk of Deno.stdin.readable) {
  pending += decoder.decode(chunk, { stream: true });
  let nl: number;
  while ((nl = pending.indexOf("\n")) >= 0) {
    const line = pending.slice(0, nl);
    pending = pending.slice(nl + 1);
    if (line.trim() === "") continue;
    let id: unknown = null;
    try {
      const req = JSON.parse(line) as ProbeRequest;
      id = req.id;
      handle(req).then(
        (results) => reply({ id, results }),
        (e) => reply({ id, error: e instanceof Error ? e.message : String(e) }),
      );
    } catch (e) {
      reply({ id, error: e instanceof Error ? e.message : String(e) });
    }
  }
}
await writing;
Deno.exit(0);
