/**
 * kproxy's nftables backend renderer (pure): snapshot → `ip kproxy` / `ip6 kproxy` tables.
 *
 * Structure, chosen by measurement with nft 1.0.6 and Linux 6.18 (see docs/ARCHITECTURE.md):
 * every change the kernel must validate costs O(table) at commit (a new jump, goto or dnat rule,
 * or a goto element, makes nf_tables walk every reachable chain: ~30–100 ms at 10k services), and
 * every named set costs O(sets) to create or look up by name. So most service ports are elements
 * only, in a few shared sets and maps: the entry sets send a ClusterIP, external/LB address or
 * NodePort to the fixed chain of its policy, and the endpoint maps hold `entry . N·65536+i :
 * endpoint`, picked by `numgen random mod N offset N·65536` in the fixed selection chains
 * (one rule per N ≤ 16; a miss falls through to the next). An endpoint change, or a service
 * coming or going, then commits in well under a millisecond at 100k services. Ports with session
 * affinity (per-endpoint affinity sets) or more than 16 endpoints keep chains of their own,
 * reached through the verdict maps, with a cascade of `numgen random mod k 0 … dnat` rules or
 * one anonymous numgen map.
 *
 * @module
 */
export { CASCADE_MAX_ENDPOINTS, renderServicePort } from "./service_port_rules.ts";
export { familyContext, fixedRules, masqueradeMark } from "./fixed_rules.ts";
export type { BaseChainSpec, FixedRules, SharedSetSpec } from "./fixed_rules.ts";
export type { ChainSpec, ElementSpec, FamilyContext, ServicePortRules, SetSpec } from "./model.ts";
export { FIXED, TABLE_NAME, tableFamily } from "./names.ts";
export {
  type ElementClaims,
  type FamilyTable,
  findServicePort,
  fullTableText,
  type IncrementalPlan,
  planIncremental,
  renderFamily,
  ruleCount,
  servicePortObjects,
} from "./table_plan.ts";
export { NftablesRenderer, renderNftables, renderTables } from "./nftables_renderer.ts";
export { checkReferences } from "./references.ts";
