/**
 * UDP conntrack clean-up for the first sync of a process, which has no previous snapshot to
 * compare with (see conntrack.ts for the steady state).
 *
 * Deleting every entry of every UDP service then (as if each had just got its first endpoint)
 * would cut every established UDP flow on each restart, and cost one `conntrack -D` per service
 * address. Instead the table is listed once per family and only entries that are stale are
 * deleted, one by one, as upstream kube-proxy's `CleanStaleEntries` does: flows to a UDP service
 * address (ClusterIP, external or load-balancer IP at the service port, or any address at the
 * NodePort) whose reply does not come from a usable endpoint — flows pinned to endpoints that went
 * away while no kproxy ran, and un-NATed flows from before the service had endpoints. Flows to
 * usable endpoints are kept.
 */
import type { IPFamily, ProxySnapshot } from "../snapshot/types.ts";
import type { ToolResult } from "./run_tool.ts";

/** One UDP conntrack entry, as `conntrack -L` lists it. */
export interface ConntrackEntry {
  /** Address family. */
  readonly family: IPFamily;
  /** Original source address. */
  readonly origSrc: string;
  /** Original destination address (the service address). */
  readonly origDst: string;
  /** Original source port. */
  readonly origSrcPort: number;
  /** Original destination port (service port or NodePort). */
  readonly origDstPort: number;
  /** Source of the reply direction: the endpoint after DNAT, the destination without. */
  readonly replySrc: string;
  /** Source port of the reply direction. */
  readonly replySrcPort: number;
}

/** Parses `conntrack -L -p udp` output; lines it cannot read are skipped. */
export function parseConntrackList(text: string, family: IPFamily): ConntrackEntry[] {
  const out: ConntrackEntry[] = [];
  for (const line of text.split("\n")) {
    if (!/^\s*udp\s/.test(line)) continue;
    const src = [...line.matchAll(/\bsrc=(\S+)/g)].map((m) => m[1] as string);
    const dst = [...line.matchAll(/\bdst=(\S+)/g)].map((m) => m[1] as string);
    const sport = [...line.matchAll(/\bsport=(\d+)/g)].map((m) => Number(m[1]));
    const dport = [...line.matchAll(/\bdport=(\d+)/g)].map((m) => Number(m[1]));
    if (src.length < 2 || dst.length < 1 || sport.length < 2 || dport.length < 1) continue;
    out.push({
      family,
      origSrc: src[0] as string,
      origDst: dst[0] as string,
      origSrcPort: sport[0] as number,
      origDstPort: dport[0] as number,
      replySrc: src[1] as string,
      replySrcPort: sport[1] as number,
    });
  }
  return out;
}

/** The entries of `entries` that are stale for `snapshot` (see the module comment). */
export function staleConntrackEntries(
  snapshot: ProxySnapshot,
  entries: readonly ConntrackEntry[],
): ConntrackEntry[] {
  // Service address and port → usable endpoint IPs; NodePort → usable endpoint `ip port`s.
  const byAddress = new Map<string, Set<string>>();
  const byNodePort = new Map<string, Set<string>>();
  for (const sp of snapshot.servicePorts) {
    if (sp.protocol !== "UDP") continue;
    for (const f of sp.families) {
      const endpoints = [...f.clusterEndpoints, ...f.localEndpoints];
      for (const ip of [f.clusterIP, ...f.externalIPs, ...f.loadBalancerIPs]) {
        const set = byAddress.get(`${ip} ${sp.port}`) ?? new Set<string>();
        for (const ep of endpoints) set.add(ep.ip);
        byAddress.set(`${ip} ${sp.port}`, set);
      }
      if (sp.nodePort !== null) {
        const key = `${f.family} ${sp.nodePort}`;
        const set = byNodePort.get(key) ?? new Set<string>();
        for (const ep of endpoints) set.add(`${ep.ip} ${ep.port}`);
        byNodePort.set(key, set);
      }
    }
  }
  return entries.filter((e) => {
    const service = byAddress.get(`${e.origDst} ${e.origDstPort}`);
    if (service !== undefined) return !service.has(e.replySrc);
    const nodePort = byNodePort.get(`${e.family} ${e.origDstPort}`);
    if (nodePort !== undefined) return !nodePort.has(`${e.replySrc} ${e.replySrcPort}`);
    return false;
  });
}

/** The `conntrack` arguments that delete exactly one entry. */
export function conntrackDeleteEntryArgs(e: ConntrackEntry): string[] {
  return [
    "-D",
    "-f",
    e.family === "IPv4" ? "ipv4" : "ipv6",
    "-p",
    "udp",
    "--orig-src",
    e.origSrc,
    "--orig-dst",
    e.origDst,
    "--orig-port-src",
    String(e.origSrcPort),
    "--orig-port-dst",
    String(e.origDstPort),
  ];
}

/** Runs `conntrack` with some arguments (each applier passes its own way of running tools). */
export type ConntrackRunner = (args: readonly string[]) => Promise<ToolResult>;

/**
 * Lists the UDP conntrack table of each family and deletes the stale entries; failures are
 * logged, not thrown (the rules are already live). Returns the number of entries deleted.
 */
export async function clearStaleConntrackAtStart(
  snapshot: ProxySnapshot,
  families: readonly IPFamily[],
  run: ConntrackRunner,
  log: (line: string) => void = () => {},
): Promise<number> {
  let deleted = 0;
  for (const family of families) {
    const fam = family === "IPv4" ? "ipv4" : "ipv6";
    let listed: ToolResult;
    try {
      listed = await run(["-L", "-f", fam, "-p", "udp"]);
    } catch (error) {
      log(`conntrack -L -f ${fam} -p udp could not run: ${String(error)}`);
      continue;
    }
    if (listed.code !== 0) {
      log(`conntrack -L -f ${fam} -p udp exited with ${listed.code}: ${listed.stderr.trim()}`);
      continue;
    }
    for (
      const entry of staleConntrackEntries(snapshot, parseConntrackList(listed.stdout, family))
    ) {
      const args = conntrackDeleteEntryArgs(entry);
      try {
        const r = await run(args);
        // Exit 1 with "0 flow entries": the entry ended by itself meanwhile.
        if (r.code === 0) deleted++;
        else if (!/0 flow entries/.test(r.stderr)) {
          log(`conntrack ${args.join(" ")} exited with ${r.code}: ${r.stderr.trim()}`);
        }
      } catch (error) {
        log(`conntrack ${args.join(" ")} could not run: ${String(error)}`);
      }
    }
  }
  return deleted;
}
