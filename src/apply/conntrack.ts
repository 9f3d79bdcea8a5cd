/**
 * The UDP conntrack reconciler, shared by every kernel backend: upstream kube-proxy's
 * `conntrack.CleanStaleEntries` (pkg/proxy/conntrack/cleanup.go, v1.32+).
 *
 * UDP has no connection end, so conntrack keeps sending a client's datagrams to the endpoint it
 * first picked, even after that endpoint is gone; and datagrams sent to a service before it had
 * endpoints leave un-NATed entries that keep blackholing the flow once endpoints appear. After a
 * sync in which a UDP service port changed, the reconciler lists the UDP conntrack table of each
 * family and deletes the entries sent to a UDP service address (ClusterIP, external or
 * load-balancer IP at the service port, or any address at the NodePort) whose reply does not come
 * from a *serving* endpoint (IP and port) of that service. As upstream:
 *
 * - serving, not "selected": a ready endpoint that becomes terminating but still serves keeps its
 *   flows (graceful drain), and so does one that topology hints or a Local traffic policy no
 *   longer pick — a change to the service must not break flows, as it breaks no TCP connection;
 * - a service with no serving endpoint at all is left alone (nothing to move its flows to);
 * - only UDP: SCTP and TCP flows end by themselves.
 *
 * The pure parts ({@link conntrackCleanupRequired}, {@link servingFrontends},
 * {@link staleConntrackEntries}, {@link conntrackDeleteFilters}) decide; {@link reconcileConntrack}
 * lists and deletes through `conntrack`, one `conntrack -D` per distinct (service address,
 * endpoint) pair, like upstream's netlink filters.
 */
import { canonicalIP } from "../model/ip.ts";
import type { IPFamily, ProxySnapshot, ServicePortSnapshot } from "../snapshot/types.ts";
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

/**
 * Where UDP flows of one family must go: service address and port (`ip port`) → serving
 * endpoints (`ip port`), and NodePort → serving endpoints.
 */
export interface ServingFrontends {
  /** `serviceIP port` → the serving endpoints' `ip port`. */
  readonly byAddress: ReadonlyMap<string, ReadonlySet<string>>;
  /** NodePort → the serving endpoints' `ip port`. */
  readonly byNodePort: ReadonlyMap<number, ReadonlySet<string>>;
}

/** One `conntrack -D` filter: entries of one service address (or NodePort) on one endpoint. */
export interface ConntrackDeleteFilter {
  /** Address family of the entries. */
  readonly family: IPFamily;
  /** Original destination (service IP), or null for a NodePort (any destination address). */
  readonly origDst: string | null;
  /** Original destination port (service port or NodePort). */
  readonly origDstPort: number;
  /** Source address of the reply direction (the endpoint the entry is pinned to). */
  readonly replySrc: string;
  /** Source port of the reply direction. */
  readonly replySrcPort: number;
}

/** What one reconcile of one family did (for upstream's `kubeproxy_conntrack_reconciler_*`). */
export interface ConntrackReconcileReport {
  /** The family whose table was reconciled. */
  readonly family: IPFamily;
  /** Entries deleted. */
  readonly deleted: number;
  /** Wall time of the list and the deletes, in seconds. */
  readonly durationSeconds: number;
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

/**
 * True when a sync from `prev` to `next` may have made UDP flows stale: the first sync with any
 * UDP service port, or a UDP service port that was added, removed or changed (upstream: "any UDP
 * service port changed endpoints"). `changed` limits the look to those service port ids.
 */
export function conntrackCleanupRequired(
  prev: ProxySnapshot | null,
  next: ProxySnapshot,
  changed?: readonly string[],
): boolean {
  if (prev === null) return next.servicePorts.some((sp) => sp.protocol === "UDP");
  const differs = (before: ServicePortSnapshot | undefined, after?: ServicePortSnapshot) =>
    (before?.protocol === "UDP" || after?.protocol === "UDP") && before?.hash !== after?.hash;
  if (changed !== undefined) {
    return changed.some((id) =>
      differs(findById(prev.servicePorts, id), findById(next.servicePorts, id))
    );
  }
  const before = new Map(prev.servicePorts.map((sp) => [sp.id, sp]));
  for (const sp of next.servicePorts) {
    if (differs(before.get(sp.id), sp)) return true;
    before.delete(sp.id);
  }
  for (const sp of before.values()) if (sp.protocol === "UDP") return true;
  return false;
}

/** The service addresses of `snapshot`'s UDP ports in `family` and their serving endpoints. */
export function servingFrontends(snapshot: ProxySnapshot, family: IPFamily): ServingFrontends {
  const byAddress = new Map<string, Set<string>>();
  const byNodePort = new Map<number, Set<string>>();
  const add = <K>(map: Map<K, Set<string>>, key: K, endpoints: readonly string[]) => {
    const set = map.get(key) ?? new Set<string>();
    for (const ep of endpoints) set.add(ep);
    map.set(key, set);
  };
  for (const sp of snapshot.servicePorts) {
    if (sp.protocol !== "UDP") continue;
    const f = sp.families.find((x) => x.family === family);
    if (f === undefined) continue;
    // Every serving endpoint, whatever topology, traffic policy or termination say.
    const serving = f.endpoints.filter((ep) => ep.serving).map((ep) => `${ep.ip} ${ep.port}`);
    // A service without serving endpoints needs no clean-up (its flows have nowhere to go).
    if (serving.length === 0) continue;
    for (const ip of [f.clusterIP, ...f.externalIPs, ...f.loadBalancerIPs]) {
      add(byAddress, `${ip} ${sp.port}`, serving);
    }
    if (sp.nodePort !== null) add(byNodePort, sp.nodePort, serving);
  }
  return { byAddress, byNodePort };
}

/** The entries of `entries` that are stale for `frontends` (see the module comment). */
export function staleConntrackEntries(
  frontends: ServingFrontends,
  entries: readonly ConntrackEntry[],
): ConntrackEntry[] {
  return entries.filter((e) => {
    const reply = `${e.replySrc} ${e.replySrcPort}`;
    const service = frontends.byAddress.get(`${e.origDst} ${e.origDstPort}`);
    if (service !== undefined && !service.has(reply)) return true;
    const nodePort = frontends.byNodePort.get(e.origDstPort);
    return nodePort !== undefined && !nodePort.has(reply);
  });
}

/**
 * The `conntrack -D` filters that delete `stale` (and only stale entries): per entry, its
 * service address and port with the endpoint it is pinned to — or, for a NodePort entry, any
 * destination at that port — deduplicated, in a stable order.
 */
export function conntrackDeleteFilters(
  frontends: ServingFrontends,
  stale: readonly ConntrackEntry[],
): ConntrackDeleteFilter[] {
  const out = new Map<string, ConntrackDeleteFilter>();
  const push = (f: ConntrackDeleteFilter) => {
    const key = `${f.origDst ?? "*"} ${f.origDstPort} ${f.replySrc} ${f.replySrcPort}`;
    if (!out.has(key)) out.set(key, f);
  };
  for (const e of stale) {
    const reply = `${e.replySrc} ${e.replySrcPort}`;
    const base = { family: e.family, replySrc: e.replySrc, replySrcPort: e.replySrcPort };
    const service = frontends.byAddress.get(`${e.origDst} ${e.origDstPort}`);
    if (service !== undefined && !service.has(reply)) {
      push({ ...base, origDst: e.origDst, origDstPort: e.origDstPort });
    }
    const nodePort = frontends.byNodePort.get(e.origDstPort);
    if (nodePort !== undefined && !nodePort.has(reply)) {
      push({ ...base, origDst: null, origDstPort: e.origDstPort });
    }
  }
  return [...out.values()];
}

/** `conntrack` family name of an IP family. */
function familyArg(family: IPFamily): string {
  return family === "IPv4" ? "ipv4" : "ipv6";
}

/** The `conntrack` arguments that list one family's UDP table. */
export function conntrackListArgs(family: IPFamily): string[] {
  return ["-L", "-f", familyArg(family), "-p", "udp"];
}

/** The `conntrack` arguments that delete the entries of one filter. */
export function conntrackDeleteArgs(filter: ConntrackDeleteFilter): string[] {
  const args = ["-D", "-f", familyArg(filter.family), "-p", "udp"];
  if (filter.origDst !== null) args.push("--orig-dst", filter.origDst);
  args.push(
    "--orig-port-dst",
    String(filter.origDstPort),
    "--reply-src",
    filter.replySrc,
    "--reply-port-src",
    String(filter.replySrcPort),
  );
  return args;
}

/** Parses `conntrack -L -p udp` output; lines it cannot read are skipped. */
export function parseConntrackList(text: string, family: IPFamily): ConntrackEntry[] {
  const out: ConntrackEntry[] = [];
  for (const line of text.split("\n")) {
    if (!/^\s*udp\s/.test(line)) continue;
    const src = [...line.matchAll(/\bsrc=(\S+)/g)].map((m) => canonicalIP(m[1] as string));
    const dst = [...line.matchAll(/\bdst=(\S+)/g)].map((m) => canonicalIP(m[1] as string));
    const sport = [...line.matchAll(/\bsport=(\d+)/g)].map((m) => Number(m[1]));
    const dport = [...line.matchAll(/\bdport=(\d+)/g)].map((m) => Number(m[1]));
    const [origSrc, replySrc] = src;
    const [origDst] = dst;
    const [origSrcPort, replySrcPort] = sport;
    const [origDstPort] = dport;
    if (
      origSrc == null || replySrc == null || origDst == null || origSrcPort === undefined ||
      replySrcPort === undefined || origDstPort === undefined
    ) continue;
    out.push({ family, origSrc, origDst, origSrcPort, origDstPort, replySrc, replySrcPort });
  }
  return out;
}

/** How many entries a `conntrack -D` run says it deleted (0 when it does not say). */
export function deletedCount(result: ToolResult): number {
  const m = /(\d+) flow entr(?:y has|ies have) been deleted/.exec(result.stderr + result.stdout);
  return m === null ? 0 : Number(m[1]);
}

/** Runs `conntrack` with some arguments (each applier passes its own way of running tools). */
export type ConntrackRunner = (args: readonly string[]) => Promise<ToolResult>;

/** Options of {@link reconcileConntrack}. */
export interface ReconcileConntrackOptions {
  /** Log sink for failures. */
  readonly log?: (line: string) => void;
  /** Clock in ms (tests). */
  readonly now?: () => number;
}

/**
 * Lists the UDP conntrack table of each family and deletes the entries that are stale for
 * `snapshot`. Failures are logged, not thrown (the rules are already live); a family whose
 * table cannot be listed gets no report, as upstream records nothing then.
 */
export async function reconcileConntrack(
  snapshot: ProxySnapshot,
  families: readonly IPFamily[],
  run: ConntrackRunner,
  options: ReconcileConntrackOptions = {},
): Promise<ConntrackReconcileReport[]> {
  const log = options.log ?? (() => {});
  const now = options.now ?? (() => performance.now());
  const reports: ConntrackReconcileReport[] = [];
  for (const family of families) {
    const started = now();
    const frontends = servingFrontends(snapshot, family);
    if (frontends.byAddress.size === 0 && frontends.byNodePort.size === 0) {
      // Nothing can be stale: skip listing the table (upstream lists it and matches nothing).
      reports.push({ family, deleted: 0, durationSeconds: (now() - started) / 1000 });
      continue;
    }
    const list = conntrackListArgs(family);
    let listed: ToolResult;
    try {
      listed = await run(list);
    } catch (error) {
      log(`conntrack ${list.join(" ")} could not run: ${String(error)}`);
      continue;
    }
    if (listed.code !== 0) {
      log(`conntrack ${list.join(" ")} exited with ${listed.code}: ${listed.stderr.trim()}`);
      continue;
    }
    const stale = staleConntrackEntries(frontends, parseConntrackList(listed.stdout, family));
    let deleted = 0;
    for (const filter of conntrackDeleteFilters(frontends, stale)) {
      const args = conntrackDeleteArgs(filter);
      try {
        const r = await run(args);
        // Exit 1 with "0 flow entries": the entries ended by themselves meanwhile.
        deleted += deletedCount(r);
        if (r.code !== 0 && !/0 flow entries/.test(r.stderr)) {
          log(`conntrack ${args.join(" ")} exited with ${r.code}: ${r.stderr.trim()}`);
        }
      } catch (error) {
        log(`conntrack ${args.join(" ")} could not run: ${String(error)}`);
      }
    }
    reports.push({ family, deleted, durationSeconds: (now() - started) / 1000 });
  }
  return reports;
}
