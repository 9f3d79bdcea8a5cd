/**
 * Test fixtures of src/server (private): two snapshots of a small cluster and a runtime store.
 *
 * IP plan: node 198.18.0.10, pods 198.18.1.0/24, services 198.18.128.0/17, IPv6 fd00::/8.
 */
import type { RuleRenderer } from "../apply/applier.ts";
import { DEFAULT_PROXY_CONFIG, type ProxyConfig } from "../config/proxy_config.ts";
import { ProxyMetrics } from "../metrics/proxy_metrics.ts";
import { buildSnapshot, type SnapshotSettings } from "../snapshot/proxy_state.ts";
import type { ProxySnapshot } from "../snapshot/types.ts";
import { parseManifestText } from "../source/manifest_text.ts";
import type { SyncRecord } from "../sync/sync_loop.ts";
import { HealthTracker } from "./health.ts";
import { ProxyRuntimeStore } from "./runtime_store.ts";

/** Snapshot settings of the fixture node. */
export const FIXTURE_SETTINGS: SnapshotSettings = {
  nodeName: "node-a",
  clusterCIDRs: ["198.18.1.0/24"],
  masqueradeAll: false,
  masqueradeBit: 14,
  localhostNodePorts: true,
  nodePortAddresses: [],
  hostAddresses: [],
};

const NODE = `
apiVersion: v1
kind: Node
metadata: { name: node-a }
status: { addresses: [{ type: InternalIP, address: 198.18.0.10 }] }
`;

const WEB = (extraEndpoint: boolean) => `
apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  type: NodePort
  clusterIPs: [198.18.128.10]
  ports: [{ name: http, protocol: TCP, port: 80, nodePort: 30080 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-1, namespace: default, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, protocol: TCP, port: 8080 }]
endpoints:
  - { addresses: [198.18.1.2], nodeName: node-a }
  - { addresses: [198.18.1.3], nodeName: node-b }
${extraEndpoint ? "  - { addresses: [198.18.1.7], nodeName: node-a }" : ""}
`;

const API = `
apiVersion: v1
kind: Service
metadata: { name: api, namespace: shop }
spec:
  type: LoadBalancer
  clusterIPs: [198.18.128.20]
  externalTrafficPolicy: Local
  healthCheckNodePort: 32000
  ports: [{ name: https, protocol: TCP, port: 443, nodePort: 30443 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: api-1, namespace: shop, labels: { kubernetes.io/service-name: api } }
addressType: IPv4
ports: [{ name: https, protocol: TCP, port: 8443 }]
endpoints:
  - { addresses: [198.18.1.30], nodeName: node-a }
  - { addresses: [198.18.1.31], nodeName: node-b }
  - addresses: [198.18.1.32]
    nodeName: node-a
    conditions: { ready: false, serving: true, terminating: true }
`;

/** Builds a snapshot from manifest text (throws on invalid objects). */
export function snapshotOf(text: string, settings = FIXTURE_SETTINGS): ProxySnapshot {
  const parsed = parseManifestText(text, "fixture.yaml");
  if (parsed.errors.length > 0) throw new Error(parsed.errors.map((e) => e.message).join("; "));
  return buildSnapshot(parsed.objects, settings);
}

/** Snapshot A: web with two endpoints, api with externalTrafficPolicy Local. */
export const SNAPSHOT_A: ProxySnapshot = snapshotOf(`${NODE}\n---\n${WEB(false)}\n---\n${API}`);
/** Snapshot B: like A with one more local web endpoint. */
export const SNAPSHOT_B: ProxySnapshot = snapshotOf(`${NODE}\n---\n${WEB(true)}\n---\n${API}`);

/** A renderer that writes one line per endpoint in use (enough for rule diffs). */
export const FAKE_RENDERER: RuleRenderer = {
  mode: "nftables",
  render(snapshot) {
    const lines = ["table ip kproxy {"];
    for (const sp of snapshot.servicePorts) {
      for (const fam of sp.families) {
        for (const ep of fam.clusterEndpoints) {
          lines.push(`  # ${sp.id} ${fam.clusterIP}:${sp.port} -> ${ep.ip}:${ep.port}`);
        }
      }
    }
    lines.push("}");
    return lines.join("\n") + "\n";
  },
};

/** A successful sync record of `snapshot` at `startedAt`. */
export function okRecord(snapshot: ProxySnapshot, startedAt: number, full = true): SyncRecord {
  return {
    startedAt,
    durationMs: 12.5,
    full,
    ok: true,
    error: null,
    snapshotHash: snapshot.hash,
    servicePorts: snapshot.servicePorts.length,
    changedServicePorts: 1,
    linesSent: 42,
  };
}

/** Options of {@link fixtureStore}. */
export interface FixtureStoreOptions {
  /** Clock (ms). */
  readonly now?: () => number;
  /** Live rules reader. */
  readonly liveRules?: () => Promise<string>;
  /** Configuration. */
  readonly config?: ProxyConfig;
  /** Renderer (default {@link FAKE_RENDERER}; null for none). */
  readonly renderer?: RuleRenderer | null;
}

/** A runtime store with fresh metrics and health tracker, nothing synced. */
export function fixtureStore(options: FixtureStoreOptions = {}): {
  store: ProxyRuntimeStore;
  health: HealthTracker;
  metrics: ProxyMetrics;
} {
  const config = options.config ?? { ...DEFAULT_PROXY_CONFIG, hostnameOverride: "node-a" };
  const metrics = new ProxyMetrics({ mode: config.mode });
  const health = new HealthTracker({ healthTimeoutMs: 2 * config.syncPeriodMs });
  const store = new ProxyRuntimeStore({
    config,
    metrics,
    health,
    liveRules: options.liveRules ?? (() => Promise.resolve("table ip kproxy {\n}\n")),
    renderer: options.renderer === undefined ? FAKE_RENDERER : options.renderer,
    ...(options.now !== undefined ? { now: options.now } : {}),
  });
  return { store, health, metrics };
}
