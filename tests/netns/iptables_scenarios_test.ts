/**
 * The shared scenario table (scenarios.ts) against the iptables backend, with real packets in
 * throwaway network namespaces — through iptables-nft and iptables-legacy.
 * IP plan: see scenarios.ts and topology.ts.
 */
import { IptablesApplier } from "../../src/apply/iptables_applier.ts";
import { runScenarioTable } from "./scenarios.ts";

runScenarioTable({
  name: "iptables-nft",
  makeApplier: (netns) => new IptablesApplier({ netns, variant: "nft" }),
});
runScenarioTable({
  name: "iptables-legacy",
  makeApplier: (netns) => new IptablesApplier({ netns, variant: "legacy" }),
});
