/**
 * The typed pieces the nftables renderer produces: chains with their rules, sets and maps with
 * their declarations, and elements. A full script and an incremental transaction are both
 * written from these, so the two can never disagree.
 */
import type { IPFamily } from "../../snapshot/types.ts";

/** A regular chain and its rules, in order. */
export interface ChainSpec {
  /** Chain name. */
  readonly name: string;
  /** Rule texts, in order. */
  readonly rules: readonly string[];
}

/** A set or map owned by one service port (affinity state). */
export interface SetSpec {
  /** Set name. */
  readonly name: string;
  /** Declaration body, e.g. `type ipv4_addr; flags dynamic,timeout; timeout 600s;`. */
  readonly declaration: string;
}

/** One element a service port wants in a shared set or map. */
export interface ElementSpec {
  /** The set or map it belongs to. */
  readonly set: string;
  /** Key text, e.g. `198.18.128.10 . tcp . 80`. */
  readonly key: string;
  /** Value text for maps (e.g. `goto service-...`), null for sets. */
  readonly value: string | null;
}

/** Everything one service port contributes to one family's table. */
export interface ServicePortRules {
  /** The service port id (`ns/name:port`). */
  readonly id: string;
  /** Chains only this service port uses. */
  readonly chains: readonly ChainSpec[];
  /** Sets only this service port uses (session affinity). */
  readonly sets: readonly SetSpec[];
  /** Elements it adds to the shared maps and sets. */
  readonly elements: readonly ElementSpec[];
}

/** What the per-family rendering needs beyond the service port itself. */
export interface FamilyContext {
  /** The IP family of the table. */
  readonly family: IPFamily;
  /** `ip` or `ip6`: the table family and the address match keyword. */
  readonly ipX: "ip" | "ip6";
  /** `ipv4_addr` or `ipv6_addr`. */
  readonly addrType: "ipv4_addr" | "ipv6_addr";
  /**
   * Pod source CIDRs of this family (the local detector's: `--cluster-cidr` or the Node's
   * podCIDRs); empty in the interface modes or when local traffic cannot be detected.
   */
  readonly podCIDRs: readonly string[];
  /**
   * The `iifname` pattern pod traffic arrives on (the bridge, or `"<prefix>*"`), quoted as nft
   * lists it; null in the CIDR modes.
   */
  readonly podInterface: string | null;
  /** `--masquerade-all`. */
  readonly masqueradeAll: boolean;
  /** The node's primary IP of this family, if known. */
  readonly nodeIP: string | null;
}
