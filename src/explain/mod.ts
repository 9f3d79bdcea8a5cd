/**
 * `kproxy explain`: where a packet goes on this node, and why — predicted from the snapshot by
 * tracing it through the rules the active backend renders (same code, same chain names as
 * `/rules`), with the reasons taken from the snapshot's own fields.
 *
 * @module
 */
export type {
  AffinityAnswer,
  EndpointChoice,
  ExplainAnswer,
  ExplainMode,
  MasqueradeAnswer,
  MatchKind,
  ServicePortMatch,
  Verdict,
} from "./answer.ts";
export type { EndpointExclusion, ExclusionKind, ExclusionReason } from "./endpoint_reasons.ts";
export { type ExplainOptions, explainPacket } from "./explain.ts";
export { formatExplanation } from "./format.ts";
export {
  type ExplainPacket,
  type ExplainTarget,
  packetOf,
  PacketSyntaxError,
  parseTarget,
} from "./packet.ts";
export { enteredChains, type PathEvent, RuleShapeError } from "./trace_engine.ts";
