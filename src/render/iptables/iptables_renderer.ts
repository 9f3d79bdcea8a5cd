/** The iptables {@link RuleRenderer}: both families' full restore input, for render and diffs. */
import type { RuleRenderer } from "../../apply/applier.ts";
import type { IPFamily } from "../../model/ip.ts";
import type { ProxySnapshot } from "../../snapshot/types.ts";
import { registerRenderer } from "../renderers.ts";
import { renderFamilyRestore } from "./full_restore.ts";

/** Options of {@link IptablesRenderer}. */
export interface IptablesRendererOptions {
  /** Families to render (default both: iptables for IPv4, ip6tables for IPv6). */
  readonly families?: readonly IPFamily[];
  /** Add `--random-fully` to MASQUERADE (default true). */
  readonly randomFully?: boolean;
}

/** The restore tool that loads a family's section. */
export function restoreToolOf(family: IPFamily): string {
  return family === "IPv4" ? "iptables-restore" : "ip6tables-restore";
}

/**
 * Renders a snapshot to iptables-restore input: one section per family, each headed by a
 * `#` comment naming the tool that loads it (`--noflush`), deterministic for equal snapshots.
 */
export class IptablesRenderer implements RuleRenderer {
  /** Always `iptables`. */
  readonly mode = "iptables";
  readonly #families: readonly IPFamily[];
  readonly #randomFully: boolean;

  /** Makes a renderer. */
  constructor(options: IptablesRendererOptions = {}) {
    this.#families = options.families ?? ["IPv4", "IPv6"];
    this.#randomFully = options.randomFully ?? true;
  }

  /** Both families' full restore input. */
  render(snapshot: ProxySnapshot): string {
    const parts: string[] = [];
    for (const family of this.#families) {
      const ruleset = renderFamilyRestore(snapshot, family, { randomFully: this.#randomFully });
      parts.push(`# ${family}: ${restoreToolOf(family)} --noflush\n${ruleset.text}`);
    }
    return parts.join("");
  }
}

registerRenderer("iptables", new IptablesRenderer());
