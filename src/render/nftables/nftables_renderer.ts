/** The nftables renderer: a snapshot → the full `ip kproxy` + `ip6 kproxy` script (pure). */
import type { RuleRenderer } from "../../apply/applier.ts";
import type { ProxySnapshot } from "../../snapshot/types.ts";
import { registerRenderer } from "../renderers.ts";
import { type FamilyTable, fullTableText, renderFamily } from "./table_plan.ts";

/** Renders both family tables of a snapshot (IPv4 first). */
export function renderTables(snapshot: ProxySnapshot): [FamilyTable, FamilyTable] {
  return [renderFamily(snapshot, "IPv4"), renderFamily(snapshot, "IPv6")];
}

/** Renders the complete nft script for a snapshot: both tables, declaratively, deterministic. */
export function renderNftables(snapshot: ProxySnapshot): string {
  return renderTables(snapshot).map(fullTableText).join("\n");
}

/** The nftables {@link RuleRenderer}, used by `kproxy render`, diffs and the API. */
export class NftablesRenderer implements RuleRenderer {
  /** Always `nftables`. */
  readonly mode = "nftables";
  /** The complete script for `snapshot`. */
  render(snapshot: ProxySnapshot): string {
    return renderNftables(snapshot);
  }
}

registerRenderer("nftables", new NftablesRenderer());
