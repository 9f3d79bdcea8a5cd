/**
 * UDP conntrack clean-up, shared by every kernel backend.
 *
 * UDP has no connection end, so conntrack keeps sending a client's datagrams to the endpoint it
 * first picked, even after that endpoint is gone; and datagrams sent to a service while it had
 * no endpoints leave un-NATed entries that keep blackholing the flow once endpoints appear.
 * {@link staleConntrackFilters} works out (purely, from the previous and next snapshot) which
 * entries to delete, as kube-proxy does; {@link clearConntrack} runs `conntrack -D` for them.
 */
import type { IPFamily, ProxySnapshot, ServicePortSnapshot } from "../snapshot/types.ts";
import { runToolResult } from "./run_tool.ts";

/** One `conntrack -D` filter: UDP entries to a service address (or NodePort) to delete. */
export interface ConntrackFilter {
  /** Address family of the entries. */
  readonly family: IPFamily;
  /** Original destination (service IP), or null for a NodePort (any local address). */
  readonly origDst: string | null;
  /** Original destination port (service port or NodePort). */
  readonly origDstPort: number;
  /** Only entries DNATed to this endpoint IP, or null for every entry (no endpoint before). */
  readonly dnatTo: string | null;
}

function findById(
  ports: readonly ServicePortSnapshot[],
  id: string,
): ServicePortSnapshot | undefined {
  let lo = 0;
  let hi = ports.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const sp = ports[mid] as ServicePortSnapshot;
    if (sp.id === id) return sp;
    if (sp.id < id) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

function usableIPs(sp: ServicePortSnapshot | undefined, family: IPFamily): Set<string> {
  const fam = sp?.families.find((f) => f.family === family);
  const out = new Set<string>();
  for (const ep of fam?.clusterEndpoints ?? []) out.add(ep.ip);
  for (const ep of fam?.localEndpoints ?? []) out.add(ep.ip);
  return out;
}

function destinations(
  sp: ServicePortSnapshot,
  family: IPFamily,
): { origDst: string | null; port: number }[] {
  const fam = sp.families.find((f) => f.family === family);
  if (fam === undefined) return [];
  const out: { origDst: string | null; port: number }[] = [];
  for (const ip of [fam.clusterIP, ...fam.externalIPs, ...fam.loadBalancerIPs]) {
    out.push({ origDst: ip, port: sp.port });
  }
  if (sp.nodePort !== null) out.push({ origDst: null, port: sp.nodePort });
  return out;
}

/**
 * The UDP conntrack entries that must go after moving from `prev` to `next`: flows DNATed to
 * endpoints that are no longer usable, and every flow to a service port that had no usable
 * endpoint before and has one now. `changed` limits the work to those service port ids.
 */
export function staleConntrackFilters(
  prev: ProxySnapshot | null,
  next: ProxySnapshot,
  changed?: readonly string[],
): ConntrackFilter[] {
  // With `changed`, look ports up by binary search (ports are sorted by id): O(change).
  const lookup = (snapshot: ProxySnapshot | null) => {
    if (snapshot === null) return () => undefined;
    if (changed === undefined) {
      const byId = new Map(snapshot.servicePorts.map((sp) => [sp.id, sp]));
      return (id: string) => byId.get(id);
    }
    return (id: string) => findById(snapshot.servicePorts, id);
  };
  const prevById = lookup(prev);
  const nextById = lookup(next);
  const ids = changed !== undefined
    ? [...new Set(changed)].sort()
    : [...new Set([...(prev?.servicePorts ?? []), ...next.servicePorts].map((sp) => sp.id))]
      .sort();
  const filters: ConntrackFilter[] = [];
  const seen = new Set<string>();
  const push = (f: ConntrackFilter) => {
    const key = JSON.stringify(f);
    if (seen.has(key)) return;
    seen.add(key);
    filters.push(f);
  };
  for (const id of ids) {
    const before = prevById(id);
    const after = nextById(id);
    if (before?.protocol !== "UDP" && after?.protocol !== "UDP") continue;
    for (const family of ["IPv4", "IPv6"] as const) {
      const was = before?.protocol === "UDP" ? usableIPs(before, family) : new Set<string>();
      const now = after?.protocol === "UDP" ? usableIPs(after, family) : new Set<string>();
      if (before !== undefined && before.protocol === "UDP") {
        for (const ip of was) {
          if (now.has(ip)) continue;
          for (const d of destinations(before, family)) {
            push({ family, origDst: d.origDst, origDstPort: d.port, dnatTo: ip });
          }
        }
      }
      if (after !== undefined && after.protocol === "UDP" && was.size === 0 && now.size > 0) {
        for (const d of destinations(after, family)) {
          push({ family, origDst: d.origDst, origDstPort: d.port, dnatTo: null });
        }
      }
    }
  }
  return filters;
}

/** The `conntrack` arguments that delete the entries of one filter. */
export function conntrackDeleteArgs(filter: ConntrackFilter): string[] {
  const args = ["-D", "-f", filter.family === "IPv4" ? "ipv4" : "ipv6", "-p", "udp"];
  if (filter.origDst !== null) args.push("--orig-dst", filter.origDst);
  args.push("--orig-port-dst", String(filter.origDstPort));
  if (filter.dnatTo !== null) args.push("--dst-nat", filter.dnatTo);
  return args;
}

/** Options of {@link clearConntrack}. */
export interface ClearConntrackOptions {
  /** Run inside this network namespace (tests and benches). */
  readonly netns?: string;
  /** The conntrack binary (default `conntrack`). */
  readonly conntrackPath?: string;
  /** Log sink for failures. */
  readonly log?: (line: string) => void;
}

/**
 * Runs `conntrack -D` for each filter; "nothing matched" counts as success and failures are
 * logged, not thrown (the rules are already live). Returns how many filters ran cleanly.
 */
export async function clearConntrack(
  filters: readonly ConntrackFilter[],
  options: ClearConntrackOptions = {},
): Promise<number> {
  const tool = options.conntrackPath ?? "conntrack";
  let cleared = 0;
  for (const filter of filters) {
    const args = conntrackDeleteArgs(filter);
    try {
      const result = await runToolResult(tool, args, {
        ...(options.netns !== undefined ? { netns: options.netns } : {}),
        timeoutMs: 10_000,
      });
      // conntrack exits 1 when no entry matched ("0 flow entries have been deleted").
      if (result.code === 0 || /0 flow entries/.test(result.stderr)) cleared++;
      else {
        options.log?.(
          `conntrack ${args.join(" ")} exited with ${result.code}: ${result.stderr.trim()}`,
        );
      }
    } catch (error) {
      options.log?.(`conntrack ${args.join(" ")} could not run: ${String(error)}`);
    }
  }
  return cleared;
}
