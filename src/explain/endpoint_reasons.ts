/**
 * Why an endpoint of a service port cannot receive a packet, in Kubernetes' own words. The
 * reasons come from the snapshot's endpoint conditions and the sets the snapshot already chose
 * (`clusterEndpoints`, `localEndpoints`, `topologyMode`), never from flags.
 *
 * @module
 */
import type { EndpointInfo, ServicePortFamily, ServicePortSnapshot } from "../snapshot/types.ts";
import { hostPort } from "./packet.ts";

/** The kinds of reason, for programs (tests, JSON readers). */
export type ExclusionKind =
  | "not-ready"
  | "terminating"
  | "topology"
  | "traffic-policy"
  | "affinity"
  | "blocked";

/** One reason an endpoint cannot receive the packet. */
export interface ExclusionReason {
  /** What kind of reason. */
  readonly kind: ExclusionKind;
  /** The reason in words. */
  readonly text: string;
}

/** An endpoint that cannot receive the packet, and why. */
export interface EndpointExclusion {
  /** Address. */
  readonly ip: string;
  /** Port. */
  readonly port: number;
  /** The node it runs on, when known. */
  readonly nodeName: string | null;
  /** True when it runs on this node. */
  readonly isLocal: boolean;
  /** Every reason that applies. */
  readonly reasons: readonly ExclusionReason[];
}

/** Which endpoint set the packet's traffic policy picks from. */
export type EndpointSetKind = "cluster" | "local";

/** What the reasons need to know about the packet's policy. */
export interface ReasonContext {
  /** The service port. */
  readonly sp: ServicePortSnapshot;
  /** Its family of the packet. */
  readonly fam: ServicePortFamily;
  /** The set the rules pick from. */
  readonly set: EndpointSetKind;
  /** Which policy made it local: `internalTrafficPolicy` or `externalTrafficPolicy`. */
  readonly policy: "internalTrafficPolicy" | "externalTrafficPolicy";
  /** This node's name. */
  readonly nodeName: string;
  /** This node's zone. */
  readonly zone: string | null;
}

function servingTerminating(ep: EndpointInfo): boolean {
  return ep.serving && ep.terminating;
}

function hinted(ep: EndpointInfo, fam: ServicePortFamily, nodeName: string, zone: string | null) {
  if (fam.topologyMode === "PreferSameNode") return (ep.nodeHints ?? []).includes(nodeName);
  if (fam.topologyMode === "PreferSameZone") return (ep.zoneHints ?? []).includes(zone ?? "");
  return true;
}

/** The reasons endpoint `ep` is not in the set `ctx.set` picks from (never empty). */
export function exclusionReasons(ep: EndpointInfo, ctx: ReasonContext): ExclusionReason[] {
  const { fam, nodeName } = ctx;
  const out: ExclusionReason[] = [];
  if (ctx.set === "local" && !ep.isLocal) {
    const where = ep.nodeName === null ? "no node is named for it" : `it runs on ${ep.nodeName}`;
    out.push({
      kind: "traffic-policy",
      text: `${ctx.policy}: Local sends this traffic only to endpoints on ${
        nodeName || "this node"
      }, and ${where}`,
    });
  }
  if (!ep.ready && !servingTerminating(ep)) {
    out.push({
      kind: "not-ready",
      text: ep.terminating
        ? "terminating and no longer serving"
        : ep.serving
        ? "not ready"
        : "not ready (not serving)",
    });
  } else if (!ep.ready) {
    const pool = ctx.set === "local" ? fam.localEndpoints : fam.clusterEndpoints;
    const ready = pool.filter((e) => e.ready).length;
    if (ready > 0) {
      out.push({
        kind: "terminating",
        text: `terminating (still serving), and ${ready} ${
          ctx.set === "local" ? "local " : ""
        }endpoint${
          ready === 1 ? " is" : "s are"
        } ready: terminating endpoints get traffic only when none is ready`,
      });
    }
  } else if (ctx.set === "cluster" && !hinted(ep, fam, nodeName, ctx.zone)) {
    out.push({
      kind: "topology",
      text: fam.topologyMode === "PreferSameNode"
        ? `its hints (trafficDistribution PreferSameNode) name node ${
          (ep.nodeHints ?? []).join(", ") || "none"
        }, not ${nodeName}`
        : `its topology hints (trafficDistribution / topology-aware routing) name zone ${
          (ep.zoneHints ?? []).join(", ") || "none"
        }, and ${nodeName || "this node"} is in zone ${ctx.zone ?? "(none)"}`,
    });
  }
  if (out.length === 0) {
    out.push({
      kind: "blocked",
      text: `not among the ${ctx.set === "local" ? "local" : "cluster"} endpoints the rules use`,
    });
  }
  return out;
}

/** The exclusion entry of `ep` with the given reasons. */
export function exclusion(
  ep: EndpointInfo,
  reasons: readonly ExclusionReason[],
): EndpointExclusion {
  return { ip: ep.ip, port: ep.port, nodeName: ep.nodeName, isLocal: ep.isLocal, reasons };
}

/** The affinity reason of an endpoint a client is not pinned to. */
export function affinityReason(
  pinned: { readonly ip: string; readonly port: number },
  source: string,
  timeoutSeconds: number,
): ExclusionReason {
  return {
    kind: "affinity",
    text: `ClientIP session affinity pins ${source} to ${
      hostPort(pinned.ip, pinned.port)
    } (for ${timeoutSeconds}s after its last connection)`,
  };
}
