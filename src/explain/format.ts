/**
 * An {@link ExplainAnswer} as text for people (`kproxy explain -o text`, the status page).
 *
 * @module
 */
import type { EndpointChoice, ExplainAnswer, PathEvent } from "./answer.ts";
import { hostPort } from "./packet.ts";

function percent(share: number): string {
  const p = share * 100;
  return `${Number.isInteger(Math.round(p * 10) / 10) ? p.toFixed(0) : p.toFixed(1)}%`;
}

function where(ep: { nodeName: string | null; isLocal: boolean }): string {
  if (ep.nodeName === null) return "node unknown";
  return ep.isLocal ? `${ep.nodeName} (this node)` : ep.nodeName;
}

function isDnat(e: PathEvent): boolean {
  return e.kind === "rule" && /^(dnat|DNAT) to /.test(e.effect);
}

/** Chain headers, and under each the rules that matched there with what they did. */
function pathLines(events: readonly PathEvent[], indent: string, current = ""): string[] {
  const out: string[] = [];
  for (const e of events) {
    const chain = `${e.table} ${e.chain}`;
    if (e.kind === "enter" || chain !== current) {
      out.push(`${indent}${chain}${e.kind === "enter" ? "" : " (continued)"}`);
      current = chain;
    }
    if (e.kind === "rule") {
      const effect = e.rule.endsWith(e.effect) ? "" : `  ⇒ ${e.effect}`;
      out.push(`${indent}    ${e.rule}${effect}`);
    }
  }
  return out;
}

/** Splits an endpoint's path after its DNAT rule: how it was picked, and what follows. */
function splitAtDnat(path: readonly PathEvent[]): [PathEvent[], PathEvent[]] {
  const i = path.findIndex(isDnat);
  return i < 0 ? [[], [...path]] : [path.slice(0, i + 1), path.slice(i + 1)];
}

function lastChain(path: readonly PathEvent[]): string {
  const e = path.at(-1);
  return e === undefined ? "" : `${e.table} ${e.chain}`;
}

function endpointPaths(endpoints: readonly EndpointChoice[], after: string): string[] {
  if (endpoints.length === 0) return [];
  const split = endpoints.map((ep) => splitAtDnat(ep.path));
  const tails = split.map(([, tail]) => JSON.stringify(tail));
  const out: string[] = [];
  if (tails.every((t) => t === tails[0])) {
    const seen = new Set<string>();
    split.forEach(([head], i) => {
      const lines = pathLines(head, "  ", after);
      for (const line of lines) {
        const shown = head.length > 0 && isDnat(head[head.length - 1] as PathEvent) &&
            line === lines.at(-1)
          ? `${line}   (${percent(endpoints[i]?.share ?? 0)})`
          : line;
        if (!seen.has(shown)) {
          seen.add(shown);
          out.push(shown);
        }
      }
    });
    out.push(...pathLines(split[0]?.[1] ?? [], "  ", lastChain(split[0]?.[0] ?? [])));
    return out;
  }
  endpoints.forEach((ep, i) => {
    out.push(`  when ${hostPort(ep.ip, ep.port)} is picked:`);
    const [head, tail] = split[i] ?? [[], []];
    out.push(...pathLines(head, "    ", after), ...pathLines(tail, "    ", lastChain(head)));
  });
  return out;
}

/** The answer as text, one fact per line. */
export function formatExplanation(a: ExplainAnswer): string {
  const p = a.packet;
  const lines: string[] = [];
  const origin = a.fromNode
    ? `sent by ${a.node || "this node"} itself`
    : `arriving at ${a.node || "this node"}`;
  lines.push(
    `packet      ${p.protocol} ${p.source} → ${hostPort(p.destination, p.port)} (${origin})`,
  );
  if (a.match === null) lines.push("match       no service port");
  else {
    const m = a.match;
    const what = m.kind === "NodePort"
      ? `NodePort ${m.port} on node address ${m.address}`
      : `${m.kind} ${hostPort(m.address, m.port)}`;
    lines.push(`match       ${m.servicePort}: ${what} (${m.policy.name} ${m.policy.value})`);
  }
  lines.push(`verdict     ${a.verdict.kind.toUpperCase()}: ${a.verdict.reason}`);
  for (const ep of a.endpoints) {
    const masq = ep.masqueraded ? ", masqueraded" : "";
    lines.push(
      `  → ${hostPort(ep.ip, ep.port).padEnd(22)} ${percent(ep.share).padStart(6)}  ${
        where(ep)
      }${masq}`,
    );
  }
  if (a.affinity !== null && a.verdict.kind === "dnat") {
    lines.push(
      `affinity    ClientIP, ${a.affinity.timeoutSeconds}s: ${
        a.affinity.pinnedTo === null
          ? `${p.source} is a new client: it gets one endpoint at random and keeps it`
          : `${p.source} is pinned to ${a.affinity.pinnedTo}`
      }`,
    );
  }
  if (a.masquerade !== null) {
    const yes = a.masquerade.applies === "always"
      ? "yes"
      : a.masquerade.applies === "never"
      ? "no"
      : "only on hairpin";
    lines.push(`masquerade  ${yes}: ${a.masquerade.reason}`);
  }
  if (a.excluded.length > 0) {
    lines.push("not used");
    for (const ex of a.excluded) {
      const reasons = ex.reasons.map((r) => r.text).join("; ");
      lines.push(`  ✗ ${hostPort(ex.ip, ex.port).padEnd(22)} ${where(ex)}: ${reasons}`);
    }
  }
  for (const note of a.notes) lines.push(`note        ${note}`);
  const table = a.mode === "nftables" ? `table ${a.path[0]?.table ?? ""}` : "tables nat, filter";
  lines.push(`rule path   (${a.mode}, ${table}; the same names as in /rules)`);
  lines.push(...pathLines(a.path, "  "), ...endpointPaths(a.endpoints, lastChain(a.path)));
  return lines.join("\n");
}
