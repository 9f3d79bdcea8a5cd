/**
 * Deliberate differences from kube-proxy, as the comparator recognises them: each is a row of the
 * README's "Differences from kube-proxy" table (its first cell is `readmeRow`), with a predicate
 * that says which divergences it explains. A divergence no row explains is unexplained. Pure.
 *
 * @module
 */
import { type EndpointModel, endpointPod, type ServiceModel } from "./cluster_model.ts";
import type { Cell, HealthCheck } from "./matrix.ts";
import type { CellOutcome, HealthOutcome } from "./outcome.ts";

/** A deliberate, harmless difference (or a known one whose fix is under way elsewhere). */
export interface DeliberateDifference {
  /** Short id, used in reports. */
  readonly id: string;
  /**
   * The first cell of its row in the README's "Differences from kube-proxy" table; for a
   * pending fix, the issue that tracks it.
   */
  readonly readmeRow: string;
  /** True for a known divergence another change is fixing: reported as pending, not hidden. */
  readonly pending?: boolean;
  /** Why it is harmless, in one line. */
  readonly reason: string;
}

/** A divergence before classification (what the predicates look at). */
export type UnclassifiedDivergence =
  & { readonly kinds: readonly string[] }
  & (
    | {
      readonly subject: "cell";
      readonly cell: Cell;
      readonly kproxy: CellOutcome;
      readonly upstream: CellOutcome;
    }
    | {
      readonly subject: "health";
      readonly check: HealthCheck;
      readonly kproxy: HealthOutcome;
      readonly upstream: HealthOutcome;
    }
  );

interface Rule {
  readonly difference: DeliberateDifference;
  readonly explains: (d: UnclassifiedDivergence, service: ServiceModel | undefined) => boolean;
}

/** The rows of the README table this harness can recognise. */
export const DELIBERATE_DIFFERENCES: readonly DeliberateDifference[] = [
  {
    id: "reset-vs-icmp",
    readmeRow: "TCP to a service without endpoints (nftables)",
    reason: "kproxy answers a TCP SYN to a service without endpoints with a reset, kube-proxy " +
      "with ICMP port unreachable; the client sees the same refusal either way",
  },
  {
    id: "conflicting-duplicate-endpoints",
    readmeRow: "one endpoint in several slices, with different conditions",
    reason: "kube-proxy keeps whichever copy its map iteration visits last (or first), which " +
      "changes from sync to sync; kproxy keeps the local, then the most ready copy",
  },
  {
    id: "dual-stack-health-check-node-port",
    readmeRow: "healthCheckNodePort of a dual-stack service (iptables mode)",
    reason: "with nodePortAddresses unset (iptables mode's default) kube-proxy's two per-family " +
      "proxiers both open the port on the wildcard address and the first to bind answers every " +
      "address with its family's count; kproxy's one wildcard server always gives the IPv4 count",
  },
];

function byId(id: string): DeliberateDifference {
  const d = DELIBERATE_DIFFERENCES.find((x) => x.id === id);
  if (d === undefined) throw new Error(`No deliberate difference ${id}`);
  return d;
}

/** What kube-proxy reads of an endpoint copy, apart from its address and port. */
function copyState(ep: EndpointModel): string {
  return JSON.stringify([
    ep.ready ?? true,
    ep.serving ?? true,
    ep.terminating ?? false,
    ep.hintZones === null ? null : [...ep.hintZones].sort(),
    ep.hintNodes === null ? null : [...ep.hintNodes].sort(),
  ]);
}

/**
 * True when some endpoint (address and target port) of the service port appears in several
 * slices with equal locality but different conditions or hints: then kube-proxy's choice of
 * copy is luck. `portName` null: any port of the service.
 */
export function hasConflictingDuplicates(
  svc: ServiceModel,
  family: string | null,
  portName: string | null,
): boolean {
  const copies = new Map<string, Set<string>>();
  for (const slice of svc.slices) {
    if (family !== null && slice.family !== family) continue;
    for (const port of slice.ports) {
      if (portName !== null && port.name !== portName) continue;
      const servicePort = svc.ports.find((p) => p.name === port.name);
      if (servicePort === undefined || servicePort.protocol !== port.protocol) continue;
      for (const ep of slice.endpoints) {
        const local = ep.nodeName && endpointPod(ep).node === "A";
        const key = `${slice.family} ${port.name} ${ep.pod}:${port.port} ${local}`;
        let states = copies.get(key);
        if (states === undefined) copies.set(key, states = new Set());
        states.add(copyState(ep));
      }
    }
  }
  return [...copies.values()].some((states) => states.size > 1);
}

/** Distinct IPs of the service's local ready endpoints in `family` (upstream's per-family count). */
export function localReadyCount(svc: ServiceModel, family: string): number {
  const ips = new Set<string>();
  for (const slice of svc.slices) {
    if (slice.family !== family) continue;
    for (const ep of slice.endpoints) {
      if ((ep.ready ?? true) && ep.nodeName && endpointPod(ep).node === "A") ips.add(ep.pod);
    }
  }
  return ips.size;
}

/**
 * True when a healthCheckNodePort answer of a dual-stack service differs only in the family
 * counted: kproxy's wildcard server gives the IPv4 count, kube-proxy's the IPv6 count (its IPv6
 * proxier bound the wildcard port first), whichever family's address was asked.
 */
function otherFamilyCount(d: UnclassifiedDivergence, svc: ServiceModel | undefined): boolean {
  if (d.subject !== "health" || d.check.kind !== "healthCheckNodePort" || svc === undefined) {
    return false;
  }
  if (svc.ipFamilies.length !== 2) return false;
  const count = (body: string) => {
    try {
      return (JSON.parse(body) as { localEndpoints?: number }).localEndpoints ?? null;
    } catch {
      return null;
    }
  };
  const v4 = localReadyCount(svc, "IPv4");
  const v6 = localReadyCount(svc, "IPv6");
  return v4 !== v6 && count(d.kproxy.body) === v4 && count(d.upstream.body) === v6 &&
    d.upstream.status === (v6 > 0 ? 200 : 503);
}

const RULES: readonly Rule[] = [
  {
    difference: byId("dual-stack-health-check-node-port"),
    explains: otherFamilyCount,
  },
  {
    difference: byId("reset-vs-icmp"),
    explains: (d) =>
      d.subject === "cell" && d.kinds.length === 1 && d.kinds[0] === "refusal type" &&
      d.cell.protocol === "TCP",
  },
  {
    difference: byId("conflicting-duplicate-endpoints"),
    explains: (d, svc) =>
      svc !== undefined &&
      (d.subject === "cell"
        ? hasConflictingDuplicates(svc, d.cell.family, d.cell.portName)
        : hasConflictingDuplicates(svc, null, null)),
  },
];

/** The deliberate difference that explains `d` (about `service`, when known), or null. */
export function classifyDivergence(
  d: UnclassifiedDivergence,
  service?: ServiceModel,
): DeliberateDifference | null {
  return RULES.find((r) => r.explains(d, service))?.difference ?? null;
}
