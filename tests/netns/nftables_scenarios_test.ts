/**
 * The shared scenario table (scenarios.ts) against the nftables backend, with real packets in
 * throwaway network namespaces. IP plan: see scenarios.ts and topology.ts.
 */
import { NftablesApplier } from "../../src/apply/nftables_applier.ts";
import { runScenarioTable } from "./scenarios.ts";

runScenarioTable({ name: "nftables", makeApplier: (netns) => new NftablesApplier({ netns }) });
