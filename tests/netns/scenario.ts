/**
 * The language of the shared scenario table: a scenario is a topology size, a few steps of
 * manifests, and packet checks ("probe from X to ip:port, expect ..."), plus the pure function
 * that judges a check's probe results. Every backend runs the same table (scenarios.ts).
 *
 * @module
 */
import type { SnapshotSettings } from "../../src/snapshot/proxy_state.ts";
import { distribution, formatDistribution, type ProbeProtocol, type ProbeResult } from "./probe.ts";
import { isProxyChain, type PacketTrace } from "./drop_trace.ts";

/** What a check expects of every one of its probes. */
export type Expectation =
  | {
    /** A pod answered every probe. */
    readonly kind: "answer";
    /** Only these pods may answer. */
    readonly pods: readonly string[];
    /** Each of `pods` must answer at least this many probes (a statistical spread bound). */
    readonly minEach?: number;
    /** All probes were answered by one single pod (session affinity). */
    readonly samePod?: boolean;
    /**
     * The source address the pod saw: the prober's own (`preserved`), or one of the node's
     * addresses (`node`: masqueraded, or sent by the node itself).
     */
    readonly clientIP?: "preserved" | "node";
  }
  | {
    /** Every probe was refused (TCP RST, ICMP unreachable). */
    readonly kind: "refused";
    /** ... each within this many milliseconds (REJECT answers at once). */
    readonly withinMs?: number;
  }
  | {
    /** No probe got any answer: nothing handles the address (no rule, unrouted). */
    readonly kind: "timeout";
  }
  | {
    /**
     * No probe got any answer, and the node's packet trace shows each probe's packets ended by
     * a drop verdict in one of the proxy's chains (not merely lost).
     */
    readonly kind: "dropped";
  };

/** One packet check: probes from a namespace to an address, and what they must see. */
export interface ScenarioCheck {
  /** What is being shown, in words. */
  readonly name: string;
  /** `node`, `client`, `client2`, or a pod name (`pod0`...). */
  readonly from: string;
  /** Default TCP. */
  readonly protocol?: ProbeProtocol;
  /** Destination address. */
  readonly ip: string;
  /** Destination port. */
  readonly port: number;
  /** Number of probes (default 1). */
  readonly probes?: number;
  /** UDP only: fixed source port, so every probe is the same conntrack flow. */
  readonly sourcePort?: number;
  /**
   * The probes continue a flow conntrack already tracks from an earlier step, and may go where
   * the rules would no longer send a new flow: `kproxy explain` (which predicts new flows) does
   * not judge them.
   */
  readonly establishedFlow?: boolean;
  /** Per-probe timeout in ms (default: the probe default). */
  readonly timeoutMs?: number;
  /** What every probe must see. */
  readonly expect: Expectation;
}

/** One step of a scenario: make the manifests live (or clean up), then run the checks. */
export interface ScenarioStep {
  /** What this step shows. */
  readonly name: string;
  /**
   * The complete set of objects from now on (Services, EndpointSlices, the Node), as plain
   * Kubernetes objects. The first step must have them; later steps without them keep the
   * previous set. Steps after the first sync incrementally (changed service ports only).
   */
  readonly objects?: readonly unknown[];
  /** Instead of syncing, call the applier's `cleanup()` (everything kproxy owns goes away). */
  readonly cleanup?: boolean;
  /** Packet checks run after the sync. */
  readonly checks: readonly ScenarioCheck[];
}

/** One scenario of the table. */
export interface Scenario {
  /** Test name (after `<backend>: `). */
  readonly name: string;
  /** Number of pods in the topology (`pod0`... at 198.18.1.10...). */
  readonly pods: number;
  /** Also build the second external client (`client2`, 198.19.1.2). */
  readonly secondClient?: boolean;
  /** Put the pods behind a bridge of this name (see TopologySpec.podBridge). */
  readonly podBridge?: string;
  /** Overrides of the default snapshot settings. */
  readonly settings?: Partial<SnapshotSettings>;
  /** Steps, run in order; a failing step stops the scenario. */
  readonly steps: readonly ScenarioStep[];
}

/** What evaluating a check needs to know of the topology. */
export interface CheckContext {
  /** Every address of the node (for `clientIP: "node"`). */
  readonly nodeAddresses: readonly string[];
  /** The node's trace of the probes' packets (for `dropped`). */
  readonly traces?: readonly PacketTrace[];
}

function describeTarget(check: ScenarioCheck): string {
  const ip = check.ip.includes(":") ? `[${check.ip}]` : check.ip;
  return `${check.protocol ?? "TCP"} ${check.from} → ${ip}:${check.port}`;
}

/**
 * Judges a check's probe results; returns the problems (empty when the check passed), each one
 * line naming the check and what was seen.
 */
export function evaluateCheck(
  check: ScenarioCheck,
  results: readonly ProbeResult[],
  context: CheckContext,
): string[] {
  const d = distribution(results);
  const where = `${check.name} (${describeTarget(check)}): `;
  const seen = ` — saw ${formatDistribution(d)}`;
  const problems: string[] = [];
  const expect = check.expect;
  switch (expect.kind) {
    case "answer": {
      if (d.refused + d.timeout > 0) {
        const first = results.find((r) => r.kind !== "answer");
        const why = first !== undefined && "reason" in first
          ? ` (${first.kind}: ${first.reason})`
          : "";
        problems.push(`expected every probe answered${why}`);
      }
      const stray = Object.keys(d.answers).filter((p) => !expect.pods.includes(p));
      if (stray.length > 0) {
        problems.push(`expected answers only from ${expect.pods.join(", ")}`);
      }
      if (expect.minEach !== undefined) {
        const few = expect.pods.filter((p) => (d.answers[p] ?? 0) < expect.minEach!);
        if (few.length > 0) {
          problems.push(`expected each of ${expect.pods.join(", ")} to answer ≥ ${expect.minEach}`);
        }
      }
      if (expect.samePod && Object.keys(d.answers).length > 1) {
        problems.push("expected one single pod to answer every probe (affinity)");
      }
      const answers = results.filter((r) => r.kind === "answer");
      if (expect.clientIP === "preserved" && d.preserved !== answers.length) {
        problems.push("expected the pods to see the client's own address");
      }
      if (
        expect.clientIP === "node" &&
        answers.some((r) => !context.nodeAddresses.includes(r.clientIP))
      ) {
        problems.push("expected the pods to see a node address (masquerade)");
      }
      break;
    }
    case "refused": {
      if (d.refused !== d.total) problems.push("expected every probe refused");
      const slow = results.filter((r) => r.kind === "refused" && r.ms > (expect.withinMs ?? 1e9));
      if (slow.length > 0) {
        problems.push(`expected refusals within ${expect.withinMs} ms, ${slow.length} were slower`);
      }
      break;
    }
    case "timeout":
      if (d.timeout !== d.total) problems.push("expected every probe dropped (no answer)");
      break;
    case "dropped": {
      if (d.timeout !== d.total) problems.push("expected every probe dropped (no answer)");
      const traces = context.traces ?? [];
      if (traces.length < d.total) {
        problems.push(`expected ≥ ${d.total} traced packets, the node traced ${traces.length}`);
      }
      for (const t of traces) {
        if (t.droppedIn === null || !isProxyChain(t.droppedIn)) {
          const end = t.droppedIn === null ? "not dropped" : `dropped in ${t.droppedIn}`;
          problems.push(
            `expected packet ${t.id} dropped by a proxy rule: ${end} after ${t.chains.join(" → ")}`,
          );
        }
      }
      break;
    }
  }
  return problems.map((p) => where + p + seen);
}
