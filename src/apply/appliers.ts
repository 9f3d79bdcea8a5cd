/** Chooses the applier for a configuration: a kernel backend, or dry-run. */
import type { ProxyConfig, ProxyMode } from "../config/proxy_config.ts";
import type { IPFamily } from "../model/ip.ts";
import { rendererFor } from "../render/renderers.ts";
import type { Applier } from "./applier.ts";
import { DryRunApplier } from "./dry_run_applier.ts";

/** Options every kernel applier takes. */
export interface KernelApplierOptions {
  /** Run the tools inside this network namespace (tests and benches). */
  readonly netns?: string;
  /** Log sink. */
  readonly log?: (line: string) => void;
  /** The IP families to program (default both). */
  readonly families?: readonly IPFamily[];
  /** nftables: send incremental syncs as netlink batches (default true). */
  readonly netlink?: boolean;
}

type ApplierFactory = (options: KernelApplierOptions) => Applier;

const FACTORIES = new Map<ProxyMode, ApplierFactory>();

/** Makes a backend's applier available by mode name (each backend module registers one). */
export function registerApplier(mode: ProxyMode, factory: ApplierFactory): void {
  FACTORIES.set(mode, factory);
}

/** The applier for `config`: dry-run when asked, else the backend of `config.mode`. */
export function applierFor(config: ProxyConfig, options: KernelApplierOptions = {}): Applier {
  if (config.dryRun) return new DryRunApplier({ renderer: rendererFor(config.mode) });
  const factory = FACTORIES.get(config.mode);
  if (factory === undefined) {
    throw new Error(`Cannot program rules: the ${config.mode} backend is not built into kproxy`);
  }
  return factory(options);
}
