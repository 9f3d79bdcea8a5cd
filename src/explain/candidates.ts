/**
 * Which service ports can take part in a packet's way: those whose addresses, endpoints or node
 * ports the packet (or a DNAT of it) can meet. Rendering only these keeps an explanation cheap
 * on a node with 10,000 services, and loses nothing: every map element, set element and rule a
 * service port renders is keyed on its own addresses, endpoints and ports.
 *
 * @module
 */
import type { IPFamily, ServicePortFamily, ServicePortSnapshot } from "../snapshot/types.ts";
import type { ProxySnapshot } from "../snapshot/types.ts";

/** A service port and its part in one family. */
export interface FamilyPort {
  /** The service port. */
  readonly sp: ServicePortSnapshot;
  /** Its addresses and endpoints in the packet's family. */
  readonly fam: ServicePortFamily;
}

function mentions(fp: FamilyPort, ips: ReadonlySet<string>, ports: ReadonlySet<number>): boolean {
  const { sp, fam } = fp;
  if (ips.has(fam.clusterIP)) return true;
  if (fam.externalIPs.some((ip) => ips.has(ip))) return true;
  if (fam.loadBalancerIPs.some((ip) => ips.has(ip))) return true;
  if (fam.endpoints.some((ep) => ips.has(ep.ip))) return true;
  if (sp.nodePort !== null && ports.has(sp.nodePort)) return true;
  return sp.healthCheckNodePort !== null && ports.has(sp.healthCheckNodePort);
}

/**
 * The service ports of `family` that mention one of `ips` or `ports`, then those that mention
 * what the first ones can DNAT to (their endpoints); in snapshot order (sorted by id).
 */
export function candidatePorts(
  snapshot: ProxySnapshot,
  family: IPFamily,
  ips: readonly string[],
  ports: readonly number[],
): FamilyPort[] {
  const all: FamilyPort[] = [];
  for (const sp of snapshot.servicePorts) {
    const fam = sp.families.find((f) => f.family === family);
    if (fam !== undefined) all.push({ sp, fam });
  }
  const ipSet = new Set(ips);
  const portSet = new Set(ports);
  const first = all.filter((fp) => mentions(fp, ipSet, portSet));
  for (const { fam } of first) {
    for (const ep of fam.endpoints) {
      ipSet.add(ep.ip);
      portSet.add(ep.port);
    }
  }
  return all.filter((fp) => mentions(fp, ipSet, portSet));
}
