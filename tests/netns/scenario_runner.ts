/**
 * Runs scenarios against a backend with real packets: per scenario a fresh topology, pod
 * servers, snapshots built by kproxy's own reconciler, one full sync then incremental syncs
 * through the backend's {@link Applier} in the node namespace, probes, and teardown.
 *
 * @module
 */
import type { Applier } from "../../src/apply/applier.ts";
import { parseKubeObject } from "../../src/model/kube_object.ts";
import type { KubeObject } from "../../src/model/kube_object.ts";
import {
  initialProxyState,
  type ProxyState,
  reconcile,
  type SnapshotSettings,
} from "../../src/snapshot/proxy_state.ts";
import type { ExplainMode } from "../../src/explain/answer.ts";
import type { ProxySnapshot } from "../../src/snapshot/types.ts";
import { judgeWithExplain } from "./explain_check.ts";
import { THIS_NODE } from "./manifests.ts";
import { evaluateCheck, type Scenario, type ScenarioCheck } from "./scenario.ts";
import { netns, type Requirement, requiring } from "../requirements.ts";
import { type DropEvidence, traceProbes } from "./drop_trace.ts";
import { createTopology, nodeAddresses, POD_CIDRS, type Topology } from "./topology.ts";

/**
 * A proxy driven through one scenario's steps in one topology: kproxy's applier in process, or
 * a proxy process fed through an API server (upstream kube-proxy, see upstream_backend.ts).
 */
export interface ScenarioDriver {
  /** Makes `objects` (the complete set from now on) live; resolves once the rules are in the kernel. */
  sync(objects: readonly unknown[]): Promise<void>;
  /** Removes every rule the proxy owns (the proxy stops programming). */
  cleanup(): Promise<void>;
  /** The proxy's rules as the kernel holds them now, for failure reports. */
  liveRules(): Promise<string>;
  /** Stops whatever the driver started (not the topology). */
  close(): Promise<void>;
  /**
   * kproxy's snapshot of what is live now (one without services after `cleanup`), for the
   * explain judge; absent for proxies that are not kproxy.
   */
  snapshot?(): ProxySnapshot;
}

/** A backend under test: a name and a way to make its applier for a network namespace. */
export interface ApplierScenarioBackend {
  /** Prefix of the test names, e.g. `nftables`. */
  readonly name: string;
  /** The backend's applier, running its tools in `netns` (the topology's node namespace). */
  makeApplier(netns: string): Applier;
  /**
   * Whose rules `kproxy explain` traces for this backend; every check's probes are also judged
   * against explain's prediction and its packet traced with `--live`. Default: from the name
   * (`iptables…` or `nftables…`); null: not kproxy's rules, no explain.
   */
  readonly explainMode?: ExplainMode | null;
  /** How its drops are proven (default: nf_tables packet traces). */
  readonly dropEvidence?: DropEvidence;
}

/** The iptables variant a backend's name says (`iptables-legacy` → legacy), for `--live`. */
export function iptablesVariantOf(backend: ScenarioBackend): "nft" | "legacy" {
  return backend.name.includes("legacy") ? "legacy" : "nft";
}

/** The explain mode of a backend: given, or from its name (null for other proxies). */
export function explainModeOf(backend: ScenarioBackend): ExplainMode | null {
  if (!("makeApplier" in backend)) return null;
  if (backend.explainMode !== undefined) return backend.explainMode;
  if (backend.name.startsWith("iptables")) return "iptables";
  if (backend.name.startsWith("nftables")) return "nftables";
  return null;
}

/** A backend that runs as its own process in the topology (e.g. upstream kube-proxy). */
export interface ProcessScenarioBackend {
  /** Prefix of the test names, e.g. `upstream-nftables`. */
  readonly name: string;
  /** Starts the proxy for `scenario` in `topology`'s node namespace. */
  open(topology: Topology, scenario: Scenario): Promise<ScenarioDriver>;
  /** What its tests need from the machine beyond network namespaces. */
  readonly requirements?: readonly Requirement[];
  /** How its drops are proven (default: nf_tables packet traces). */
  readonly dropEvidence?: DropEvidence;
}

/** A backend under test. */
export type ScenarioBackend = ApplierScenarioBackend | ProcessScenarioBackend;

/** Options of {@link registerScenarioTests}. */
export interface ScenarioTableOptions {
  /** Run only the scenarios with these names (default: all). */
  readonly only?: readonly string[];
}

/** Timings and counts of one scenario run. */
export interface ScenarioReport {
  /** Scenario name. */
  readonly name: string;
  /** Milliseconds to build the topology and start the pod servers. */
  readonly topologyMs: number;
  /** Milliseconds spent in `applier.sync` (all steps). */
  readonly syncMs: number;
  /** Milliseconds spent probing (all steps). */
  readonly probeMs: number;
  /** Milliseconds to tear down. */
  readonly teardownMs: number;
  /** Probes sent. */
  readonly probes: number;
  /** Checks confirmed with `kproxy explain --live`. */
  readonly liveChecks: number;
}

/** The snapshot settings scenarios use, unless a scenario overrides some. */
export function scenarioSettings(scenario: Scenario): SnapshotSettings {
  return {
    nodeName: THIS_NODE,
    clusterCIDRs: POD_CIDRS,
    masqueradeAll: false,
    masqueradeBit: 14,
    localhostNodePorts: false,
    nodePortAddresses: ["primary"],
    hostAddresses: nodeAddresses(scenario.secondClient ?? false),
    ...scenario.settings,
  };
}

/** Validates a scenario's plain objects with kproxy's own parser; throws on any bad object. */
export function parseScenarioObjects(scenario: string, raws: readonly unknown[]): KubeObject[] {
  const out: KubeObject[] = [];
  for (const raw of raws) {
    const r = parseKubeObject(raw, `scenario ${scenario}`);
    if (r.ok === true) out.push(r.value);
    else if (r.ok === false) throw new Error(r.error.message);
    else throw new Error(`Scenario ${scenario} has an object of kind ${r.kind} kproxy ignores`);
  }
  return out;
}

const MAX_RULE_LINES = 400;

async function rulesForReport(driver: ScenarioDriver): Promise<string> {
  try {
    const text = await driver.liveRules();
    const lines = text.split("\n");
    const head = lines.slice(0, MAX_RULE_LINES).join("\n");
    return lines.length > MAX_RULE_LINES
      ? `${head}\n... (${lines.length - MAX_RULE_LINES} more lines)`
      : head;
  } catch (e) {
    return `(liveRules failed: ${e instanceof Error ? e.message : String(e)})`;
  }
}

async function runCheck(topology: Topology, check: ScenarioCheck) {
  const count = check.probes ?? 1;
  const samePod = check.expect.kind === "answer" && check.expect.samePod === true;
  return await topology.probeMany(
    check.from,
    { protocol: check.protocol ?? "TCP", ip: check.ip, port: check.port },
    count,
    {
      ...(check.timeoutMs === undefined ? {} : { timeoutMs: check.timeoutMs }),
      ...(check.sourcePort === undefined ? {} : { sourcePort: check.sourcePort }),
      // Affinity is judged one connection after another, as a client would.
      ...(samePod ? { concurrency: 1 } : {}),
    },
  );
}

/** kproxy's reconciler and `applier` as a {@link ScenarioDriver}: full sync first, then incremental. */
export function applierDriver(applier: Applier, scenario: Scenario): ScenarioDriver {
  const initial: ProxyState = initialProxyState(scenarioSettings(scenario));
  let state = initial;
  let synced = false;
  let cleanedUp = false;
  return {
    async sync(raws) {
      const objects = parseScenarioObjects(scenario.name, raws);
      const result = reconcile(state, [{ type: "replace", objects }]);
      state = result.state;
      const full = !synced || result.nodeOrOptionsChanged;
      const snapshot = state.snapshot;
      await applier.sync({
        snapshot,
        changedServicePorts: full
          ? snapshot.servicePorts.map((sp) => sp.id)
          : result.changedServicePorts,
        full,
      });
      synced = true;
      cleanedUp = false;
    },
    async cleanup() {
      await applier.cleanup();
      cleanedUp = true;
    },
    liveRules: () => applier.liveRules(),
    close: () => Promise.resolve(),
    snapshot: () => cleanedUp ? initial.snapshot : state.snapshot,
  };
}

/** Opens `backend`'s driver for a scenario in a topology. */
export function openDriver(
  backend: ScenarioBackend,
  topology: Topology,
  scenario: Scenario,
): Promise<ScenarioDriver> {
  if ("makeApplier" in backend) {
    return Promise.resolve(applierDriver(backend.makeApplier(topology.nodeNetns), scenario));
  }
  return backend.open(topology, scenario);
}

/**
 * Runs one scenario against a backend; throws an error listing every failed check of the
 * failing step (with the live rules) and always tears the topology down.
 */
export async function runScenario(
  backend: ScenarioBackend,
  scenario: Scenario,
): Promise<ScenarioReport> {
  const t0 = performance.now();
  const topology = await createTopology({
    pods: scenario.pods,
    secondClient: scenario.secondClient ?? false,
    ...(scenario.podBridge === undefined ? {} : { podBridge: scenario.podBridge }),
  });
  const topologyMs = performance.now() - t0;
  let syncMs = 0;
  let probeMs = 0;
  let probes = 0;
  let liveChecks = 0;
  let teardownMs = 0;
  let driver: ScenarioDriver | null = null;
  try {
    const s0 = performance.now();
    driver = await openDriver(backend, topology, scenario);
    syncMs += performance.now() - s0;
    let synced = false;
    let cleanedUp = false;
    const explainMode = explainModeOf(backend);
    for (const [index, step] of scenario.steps.entries()) {
      const label = `${backend.name}: ${scenario.name}, step ${index + 1} (${step.name})`;
      const s0 = performance.now();
      if (step.cleanup) {
        await driver.cleanup();
        cleanedUp = true;
      } else if (step.objects !== undefined || !synced) {
        if (step.objects === undefined) throw new Error(`${label}: the first step needs objects`);
        // Bad objects are the scenario's mistake, whichever backend runs it.
        parseScenarioObjects(scenario.name, step.objects);
        try {
          await driver.sync(step.objects);
        } catch (e) {
          throw new Error(`${label}: sync failed: ${e instanceof Error ? e.message : String(e)}`);
        }
        synced = true;
        cleanedUp = false;
      }
      syncMs += performance.now() - s0;
      const p0 = performance.now();
      const problems: string[] = [];
      const context = { nodeAddresses: topology.node.addresses };
      // After a cleanup nothing of kproxy's is live: explain a snapshot without services.
      const live = driver.snapshot?.() ?? null;
      for (const check of step.checks) {
        if (check.expect.kind === "dropped") {
          const target = { protocol: check.protocol ?? "TCP", ip: check.ip, port: check.port };
          const traced = await traceProbes(
            topology.nodeNetns,
            target,
            () => runCheck(topology, check),
            backend.dropEvidence,
          );
          probes += traced.value.length;
          problems.push(
            ...evaluateCheck(check, traced.value, { ...context, traces: traced.traces }),
          );
          continue;
        }
        const results = await runCheck(topology, check);
        probes += results.length;
        problems.push(...evaluateCheck(check, results, context));
        if (explainMode === null || live === null || check.establishedFlow === true) continue;
        const judged = await judgeWithExplain(live, check, results, {
          mode: explainMode,
          nodeAddresses: topology.node.addresses,
          // After a cleanup kproxy's tables are gone: nothing to trace.
          live: cleanedUp
            ? null
            : { netns: topology.nodeNetns, iptablesVariant: iptablesVariantOf(backend) },
        });
        problems.push(...judged.problems);
        if (judged.traced) liveChecks++;
      }
      probeMs += performance.now() - p0;
      if (problems.length > 0) {
        throw new Error(
          `${label} failed:\n  - ${problems.join("\n  - ")}\n` +
            `live rules in ${topology.nodeNetns}:\n${await rulesForReport(driver)}`,
        );
      }
    }
  } finally {
    const d0 = performance.now();
    try {
      await driver?.close();
    } finally {
      await topology.teardown();
    }
    teardownMs = performance.now() - d0;
  }
  return { name: scenario.name, topologyMs, syncMs, probeMs, teardownMs, probes, liveChecks };
}

/**
 * Registers one `Deno.test` per scenario, named `<backend>: <scenario>`, needing network
 * namespaces (and whatever a process backend needs besides): skipped without them, failing
 * under CI (tests/requirements.ts). Set `KPROXY_NETNS_TIMING=1` to print each scenario's timings.
 */
export function registerScenarioTests(
  backend: ScenarioBackend,
  scenarios: readonly Scenario[],
  options: ScenarioTableOptions = {},
): void {
  const timing = Deno.env.get("KPROXY_NETNS_TIMING") === "1";
  const needs = [netns, ...("requirements" in backend ? backend.requirements ?? [] : [])];
  const process = !("makeApplier" in backend);
  for (const scenario of scenarios) {
    if (options.only !== undefined && !options.only.includes(scenario.name)) continue;
    Deno.test(requiring(needs, {
      name: `${backend.name}: ${scenario.name}`,
      // A process backend keeps its API server (and its client) across the tests of a file.
      ...(process ? { sanitizeOps: false, sanitizeResources: false } : {}),
      async fn() {
        const r = await runScenario(backend, scenario);
        if (timing) {
          console.log(
            `  ${r.name}: topology ${r.topologyMs.toFixed(0)} ms, sync ${
              r.syncMs.toFixed(0)
            } ms, ${r.probes} probes and ${r.liveChecks} live traces ${
              r.probeMs.toFixed(0)
            } ms, teardown ${r.teardownMs.toFixed(0)} ms`,
          );
        }
      },
    }));
  }
}
