/**
 * The iptables renderer: snapshot → iptables-restore input with kube-proxy's chain layout
 * (pure), for full and partial syncs.
 *
 * @module
 */
export {
  endpointChainName,
  endpointText,
  hash16,
  isServiceChainName,
  type ServicePortChainNames,
  servicePortChainNames,
} from "./chain_names.ts";
export { quoteComment } from "./comment.ts";
export { type FamilyContext, familyContext, masqueradeMarkText } from "./family_context.ts";
export {
  type FamilyRuleset,
  type FullRestoreOptions,
  type LiveServicePort,
  renderFamilyRestore,
} from "./full_restore.ts";
export { IptablesRenderer, type IptablesRendererOptions } from "./iptables_renderer.ts";
export {
  changedIds,
  type PartialRestore,
  type PartialRestoreOptions,
  renderPartialRestore,
} from "./partial_restore.ts";
export { probability } from "./probability.ts";
export {
  type IptablesTable,
  type OwnedChain,
  renderServicePort,
  type ServicePortRules,
  type TopRule,
} from "./service_rules.ts";
export { JUMP_RULES, type JumpRule } from "./table_layout.ts";
export {
  cleanupStages,
  kubeRulesOnly,
  missingJumpRules,
  parseSave,
  type SavedTable,
  staleServiceChains,
} from "./saved_rules.ts";
export { IptablesFake, RestoreError, undeclaredJumps } from "./restore_fake.ts";
