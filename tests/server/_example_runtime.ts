/**
 * A runtime for the server tests (private to tests/server): deploy/examples as node-a, synced
 * through the real sync loop with the dry-run applier and the nftables renderer, then one more
 * local web endpoint, so the page and `/diff` have a latest change.
 *
 * IP plan (deploy/examples): node 198.18.0.10, pods 198.18.1.0/24, services 198.18.128.0/17,
 * IPv6 fd00::/8. Nothing touches the kernel.
 */
import { fileURLToPath } from "node:url";
import { DryRunApplier } from "../../src/apply/dry_run_applier.ts";
import { DEFAULT_PROXY_CONFIG, type ProxyConfig } from "../../src/config/proxy_config.ts";
import { ProxyMetrics } from "../../src/metrics/proxy_metrics.ts";
import { NftablesRenderer } from "../../src/render/nftables/mod.ts";
import { HealthTracker } from "../../src/server/health.ts";
import { ProxyRuntimeStore } from "../../src/server/runtime_store.ts";
import { buildSnapshot, type SnapshotSettings } from "../../src/snapshot/proxy_state.ts";
import type { ProxySnapshot } from "../../src/snapshot/types.ts";
import { loadManifests } from "../../src/source/manifest_loader.ts";
import { parseManifestText } from "../../src/source/manifest_text.ts";
import { SyncLoop } from "../../src/sync/sync_loop.ts";

/** The examples folder. */
export const EXAMPLES = fileURLToPath(new URL("../../deploy/examples", import.meta.url));

/** Settings of the example node. */
export const EXAMPLE_SETTINGS: SnapshotSettings = {
  nodeName: "node-a",
  clusterCIDRs: ["198.18.1.0/24"],
  masqueradeAll: false,
  masqueradeBit: 14,
  localhostNodePorts: true,
  nodePortAddresses: [],
  hostAddresses: [],
};

/** One more web endpoint on node-a (the "latest change"). */
const EXTRA_SLICE = `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-new01, namespace: default, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, protocol: TCP, port: 8080 }]
endpoints: [{ addresses: [198.18.1.9], nodeName: node-a, zone: zone-a }]
`;

/** The example runtime after two syncs. */
export interface ExampleRuntime {
  /** The runtime the servers read. */
  readonly store: ProxyRuntimeStore;
  /** The snapshot of deploy/examples as is. */
  readonly first: ProxySnapshot;
  /** The snapshot with the extra endpoint (current). */
  readonly second: ProxySnapshot;
}

/** Loads deploy/examples, syncs it, adds an endpoint, syncs again; the loop is stopped after. */
export async function exampleRuntime(): Promise<ExampleRuntime> {
  const { objects, errors } = await loadManifests(EXAMPLES);
  if (errors.length > 0) throw new Error(errors.map((e) => e.message).join("; "));
  const extra = parseManifestText(EXTRA_SLICE, "extra.yaml").objects;
  const config: ProxyConfig = {
    ...DEFAULT_PROXY_CONFIG,
    hostnameOverride: "node-a",
    clusterCIDRs: EXAMPLE_SETTINGS.clusterCIDRs,
    manifests: EXAMPLES,
    dryRun: true,
  };
  const renderer = new NftablesRenderer();
  const applier = new DryRunApplier({ renderer, print: () => {} });
  const metrics = new ProxyMetrics({ mode: "nftables", ipFamilies: ["IPv4", "IPv6"] });
  const health = new HealthTracker({
    healthTimeoutMs: 2 * config.syncPeriodMs,
    ipFamilies: ["IPv4", "IPv6"],
  });
  const store = new ProxyRuntimeStore({
    config,
    metrics,
    health,
    renderer,
    liveRules: () => applier.liveRules(),
  });
  const loop = new SyncLoop({
    applier,
    settings: EXAMPLE_SETTINGS,
    minSyncPeriodMs: 0,
    syncPeriodMs: config.syncPeriodMs,
    hooks: store.syncLoopHooks(),
  });
  loop.start();
  try {
    loop.enqueue([{ type: "replace", objects }]);
    loop.markSourcesSynced();
    await loop.settled(10_000);
    loop.enqueue([{ type: "upsert", object: extra[0]! }]);
    await loop.settled(10_000);
  } finally {
    await loop.stop();
  }
  return {
    store,
    first: buildSnapshot(objects, EXAMPLE_SETTINGS),
    second: buildSnapshot([...objects, ...extra], EXAMPLE_SETTINGS),
  };
}
