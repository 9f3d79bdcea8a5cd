/**
 * The answer `kproxy explain` gives: which service port a packet matches, where it goes and
 * why, which endpoints cannot get it and why, masquerade, and the rule path in the backend's own
 * chain names. Plain data (JSON as is), written as text by `format.ts`.
 *
 * @module
 */
import type { EndpointExclusion } from "./endpoint_reasons.ts";
import type { ExplainPacket } from "./packet.ts";
import type { PathEvent } from "./trace_engine.ts";

export type { EndpointExclusion, ExplainPacket, PathEvent };

/** The backends explain knows. */
export type ExplainMode = "nftables" | "iptables";

/** How a destination matches a service port. */
export type MatchKind = "ClusterIP" | "NodePort" | "ExternalIP" | "LoadBalancerIP";

/** The service port a packet's destination belongs to. */
export interface ServicePortMatch {
  /** The ServicePortName (`namespace/name:port`). */
  readonly servicePort: string;
  /** Which of its addresses: ClusterIP, NodePort (on a node address), ExternalIP, LB IP. */
  readonly kind: MatchKind;
  /** The destination address. */
  readonly address: string;
  /** The destination port (the NodePort for NodePort traffic). */
  readonly port: number;
  /** `internal` (ClusterIP) or `external` (NodePort, ExternalIP, LoadBalancer IP) traffic. */
  readonly traffic: "internal" | "external";
  /** The traffic policy that applies to it, and its value. */
  readonly policy: {
    readonly name: "internalTrafficPolicy" | "externalTrafficPolicy";
    readonly value: "Cluster" | "Local";
  };
}

/** What finally happens to the packet. */
export interface Verdict {
  /**
   * `dnat`: to one of the endpoints; `reject`: refused at once (TCP reset or ICMP unreachable);
   * `drop`: silently dropped; `local`: delivered to this node's own sockets untouched;
   * `routed`: no service rule changes it, it is routed on as it is.
   */
  readonly kind: "dnat" | "reject" | "drop" | "local" | "routed";
  /** Why, in words. */
  readonly reason: string;
  /** The rule that dropped or rejected it. */
  readonly by?: { readonly table: string; readonly chain: string; readonly rule: string };
}

/** One endpoint that can receive the packet. */
export interface EndpointChoice {
  /** Address. */
  readonly ip: string;
  /** Port. */
  readonly port: number;
  /** Node it runs on, when known. */
  readonly nodeName: string | null;
  /** Zone, when known. */
  readonly zone: string | null;
  /** True when it runs on this node. */
  readonly isLocal: boolean;
  /** Its share of new connections (0–1), from the rules' random picks. */
  readonly share: number;
  /** True when the packet reaches it with the node's address as source. */
  readonly masqueraded: boolean;
  /** `forwarded` (routed to the endpoint), `sent` (by the node), `delivered` (to this node). */
  readonly delivery: "forwarded" | "sent" | "delivered";
  /** The rest of the rule path when this endpoint is picked. */
  readonly path: readonly PathEvent[];
}

/** Masquerade (source NAT to the node's address), with its reason. */
export interface MasqueradeAnswer {
  /** `always`, `never`, or `hairpin` (only when the packet lands on its own source). */
  readonly applies: "always" | "never" | "hairpin";
  /** Why, in words. */
  readonly reason: string;
}

/** ClientIP session affinity of the matched service port. */
export interface AffinityAnswer {
  /** The affinity timeout. */
  readonly timeoutSeconds: number;
  /** The endpoint the source is pinned to (from kernel state), or null (a new client). */
  readonly pinnedTo: string | null;
}

/** Everything explain says about one packet. */
export interface ExplainAnswer {
  /** The packet. */
  readonly packet: ExplainPacket;
  /** True when the node itself sends it (its source is a node address): output hook. */
  readonly fromNode: boolean;
  /** The backend whose rules were traced. */
  readonly mode: ExplainMode;
  /** This node's name. */
  readonly node: string;
  /** The snapshot hash the answer comes from. */
  readonly snapshot: string;
  /** The service port matched, or null. */
  readonly match: ServicePortMatch | null;
  /** What happens. */
  readonly verdict: Verdict;
  /** The endpoints that can receive it (empty unless the verdict is `dnat`). */
  readonly endpoints: readonly EndpointChoice[];
  /** Every other endpoint of the matched service port, with why not. */
  readonly excluded: readonly EndpointExclusion[];
  /** Masquerade, for a `dnat` verdict. */
  readonly masquerade: MasqueradeAnswer | null;
  /** Session affinity, when the service port has it. */
  readonly affinity: AffinityAnswer | null;
  /** The rule path common to every endpoint (all of it for other verdicts). */
  readonly path: readonly PathEvent[];
  /** Near misses and other notes (a ClusterIP with another port, a NodePort elsewhere, …). */
  readonly notes: readonly string[];
}
