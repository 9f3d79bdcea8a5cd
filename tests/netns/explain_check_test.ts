/**
 * Without kernels or root: explain's answer for every check of the scenario table, in both
 * backends, agrees with the check's expectation (which upstream kube-proxy's behaviour set); and
 * the judge the runner uses flags each kind of disagreement with the probes.
 *
 * Explain predicts new flows. A UDP flow with a fixed source port that an earlier step left in
 * conntrack follows its entry instead, until the conntrack reconciler (its pure decision, as
 * after each sync) deletes the entry; checks marked `establishedFlow` are judged by that model:
 * the flow stays where it was, explain's new-flow answer differs (else the mark is not needed) and
 * still names the flow's endpoint (with why new flows avoid it) unless nothing serves.
 *
 * IP plan: see topology.ts.
 */
import assert from "node:assert/strict";
import {
  conntrackCleanupRequired,
  type ConntrackEntry,
  servingFrontends,
  staleConntrackEntries,
} from "../../src/apply/conntrack.ts";
import type { ExplainAnswer, ExplainMode } from "../../src/explain/answer.ts";
import { buildSnapshot, initialProxyState } from "../../src/snapshot/proxy_state.ts";
import type { ProxySnapshot } from "../../src/snapshot/types.ts";
import { compareWithPackets, explainCheck, podOfAddress, sourceOf } from "./explain_check.ts";
import type { ProbeResult } from "./probe.ts";
import type { Expectation, ScenarioCheck } from "./scenario.ts";
import { parseScenarioObjects, scenarioSettings } from "./scenario_runner.ts";
import { SCENARIOS } from "./scenarios.ts";
import { nodeAddresses, podIPv6 } from "./topology.ts";

const MODES: readonly ExplainMode[] = ["nftables", "iptables"];

/** Probe results that meet an expectation exactly (one per allowed pod, client kept or not). */
function resultsMeeting(expect: Expectation, source: string, masqueraded: boolean): ProbeResult[] {
  switch (expect.kind) {
    case "answer":
      return expect.pods.map((pod) => ({
        kind: "answer",
        pod,
        clientIP: masqueraded ? "198.18.0.1" : source,
        localIP: source,
        ms: 1,
      }));
    case "refused":
      return [{ kind: "refused", reason: "ECONNREFUSED", ms: 1 }];
    case "timeout":
    case "dropped":
      return [{ kind: "timeout", reason: "no answer", ms: 300 }];
  }
}

/** A UDP flow with a fixed source port in conntrack, and the pod its entry sends it to. */
interface TrackedFlow {
  readonly entry: ConntrackEntry;
  readonly pod: string;
}

/** The conntrack key of a check's probes: one flow when its source port is fixed, else null. */
function flowKey(check: ScenarioCheck, source: string): string | null {
  if (check.sourcePort === undefined) return null;
  return `${check.protocol ?? "TCP"} ${source} ${check.sourcePort} ${check.ip} ${check.port}`;
}

/** The pods explain sends a new flow to (none unless DNAT). */
function newFlowPods(answer: ExplainAnswer): (string | null)[] {
  return answer.verdict.kind === "dnat" ? answer.endpoints.map((e) => podOfAddress(e.ip)) : [];
}

/** Drops the flows whose entries the conntrack reconciler deletes after a sync to `snapshot`. */
function reconcileFlows(
  flows: Map<string, TrackedFlow>,
  snapshot: ProxySnapshot,
): void {
  for (const [key, flow] of flows) {
    const frontends = servingFrontends(snapshot, flow.entry.family);
    if (staleConntrackEntries(frontends, [flow.entry]).length > 0) flows.delete(key);
  }
}

/**
 * Judges a check against the flow conntrack already holds for it (if any); returns true when the
 * check continues that flow, which explain (new flows only) does not predict.
 */
function judgeTrackedFlow(
  check: ScenarioCheck,
  tracked: TrackedFlow | undefined,
  answer: ExplainAnswer,
  label: string,
): boolean {
  const explained = newFlowPods(answer);
  const alone = tracked !== undefined && explained.length === 1 && explained[0] === tracked.pod;
  if (check.establishedFlow !== true) {
    assert.ok(
      tracked === undefined || alone,
      `${label}: conntrack keeps this flow on ${tracked?.pod}, which explain does not predict ` +
        "for a new flow: mark the check establishedFlow",
    );
    return false;
  }
  assert.ok(tracked, `${label}: an establishedFlow check continues a flow an earlier step made`);
  const expect = check.expect;
  assert.equal(expect.kind, "answer", `${label}: conntrack keeps the flow on ${tracked.pod}`);
  if (expect.kind === "answer") {
    assert.deepEqual(expect.pods, [tracked.pod], `${label}: conntrack keeps the flow there`);
  }
  assert.ok(!alone, `${label}: explain predicts ${tracked.pod} for a new flow too: no mark needed`);
  // Explain names the endpoint the flow is pinned to, used or with why new flows avoid it —
  // unless the service port has nowhere to send new flows (the reconciler leaves those alone).
  if (answer.verdict.kind === "dnat") {
    const { replySrc, replySrcPort } = tracked.entry;
    const named = [...answer.endpoints, ...answer.excluded].some((e) =>
      e.ip === replySrc && e.port === replySrcPort
    );
    assert.ok(named, `${label}: explain names ${replySrc}:${replySrcPort}, where the flow stays`);
  }
  return true;
}

for (const mode of MODES) {
  for (const scenario of SCENARIOS) {
    Deno.test(`explain (${mode}) predicts every check of: ${scenario.name}`, () => {
      const settings = scenarioSettings(scenario);
      let snapshot = initialProxyState(settings).snapshot;
      const flows = new Map<string, TrackedFlow>();
      for (const step of scenario.steps) {
        if (step.cleanup) {
          snapshot = initialProxyState(settings).snapshot;
          flows.clear();
        } else if (step.objects !== undefined) {
          const before = snapshot;
          snapshot = buildSnapshot(parseScenarioObjects(scenario.name, step.objects), settings);
          if (conntrackCleanupRequired(before, snapshot)) reconcileFlows(flows, snapshot);
        }
        for (const check of step.checks) {
          const source = sourceOf(check, []);
          const answer = explainCheck(snapshot, check, source, {
            mode,
            nodeAddresses: settings.hostAddresses,
          });
          const label =
            `${step.name} / ${check.name}: ${answer.verdict.kind} ${answer.verdict.reason}`;
          const expect = check.expect;
          const key = flowKey(check, source);
          const tracked = key === null ? undefined : flows.get(key);
          if (judgeTrackedFlow(check, tracked, answer, label)) continue;
          if (key !== null) flows.delete(key);
          if (expect.kind === "answer") {
            assert.equal(answer.verdict.kind, "dnat", label);
            const pods = answer.endpoints.map((e) => podOfAddress(e.ip));
            assert.deepEqual([...pods].sort(), [...expect.pods].sort(), label);
            if (expect.clientIP === "preserved") {
              assert.ok(answer.endpoints.every((e) => !e.masqueraded), `${label}: kept`);
            }
            if (expect.clientIP === "node" && !answer.fromNode) {
              assert.ok(answer.endpoints.every((e) => e.masqueraded), `${label}: masqueraded`);
            }
            if (expect.samePod) assert.ok(answer.affinity !== null, `${label}: affinity`);
          } else if (expect.kind === "refused") {
            assert.ok(["reject", "local"].includes(answer.verdict.kind), label);
          } else if (expect.kind === "dropped") {
            assert.equal(answer.verdict.kind, "drop", label);
          } else {
            assert.ok(["drop", "routed"].includes(answer.verdict.kind), label);
          }
          // The judge accepts probes that meet the expectation.
          const masq = answer.endpoints[0]?.masqueraded ?? false;
          const problems = compareWithPackets(answer, resultsMeeting(expect, source, masq), {
            nodeAddresses: nodeAddresses(true),
          });
          assert.deepEqual(problems, [], label);
          // A new flow with a fixed source port stays where its first datagram went.
          const [pod, more] = newFlowPods(answer);
          const ep = answer.endpoints[0];
          if (key !== null && typeof pod === "string" && more === undefined && ep !== undefined) {
            flows.set(key, {
              pod,
              entry: {
                family: check.ip.includes(":") ? "IPv6" : "IPv4",
                origSrc: source,
                origDst: check.ip,
                origSrcPort: check.sourcePort ?? 0,
                origDstPort: check.port,
                replySrc: ep.ip,
                replySrcPort: ep.port,
              },
            });
          }
        }
      }
    });
  }
}

Deno.test("the judge flags a stray pod, a wrong masquerade, and wrong refusals or drops", () => {
  const scenario = SCENARIOS.find((s) => s.name.startsWith("ClusterIP from the node"));
  assert.ok(scenario);
  const step = scenario.steps[0];
  assert.ok(step?.objects);
  const settings = scenarioSettings(scenario);
  const snapshot = buildSnapshot(parseScenarioObjects(scenario.name, step.objects), settings);
  const check = step.checks[1];
  assert.ok(check);
  const answer = explainCheck(snapshot, check, "198.18.1.12", {
    mode: "nftables",
    nodeAddresses: settings.hostAddresses,
  });
  const ok: ProbeResult = {
    kind: "answer",
    pod: "pod0",
    clientIP: "198.18.1.12",
    localIP: "198.18.1.12",
    ms: 1,
  };
  const ctx = { nodeAddresses: nodeAddresses(false) };
  assert.deepEqual(compareWithPackets(answer, [ok], ctx), []);
  assert.match(
    compareWithPackets(answer, [{ ...ok, pod: "pod2" }], ctx).join(),
    /pod2 answered, but explain names only pod0, pod1/,
  );
  assert.match(
    compareWithPackets(answer, [{ ...ok, clientIP: "198.18.0.1" }], ctx).join(),
    /with the client's address, but the pod saw 198\.18\.0\.1/,
  );
  assert.match(
    compareWithPackets(answer, [{ kind: "refused", reason: "ECONNREFUSED", ms: 1 }], ctx).join(),
    /explain says DNAT, but 1 refused/,
  );
  const many = Array.from({ length: 40 }, () => ok);
  assert.match(
    compareWithPackets(answer, many, ctx).join(),
    /explain gives pod1 a 50% share, but none of 40 probes reached it/,
  );
});

Deno.test("pod addresses map back to pod names", () => {
  assert.equal(podOfAddress("198.18.1.10"), "pod0");
  assert.equal(podOfAddress("198.18.1.13"), "pod3");
  assert.equal(podOfAddress(podIPv6(2)), "pod2");
  assert.equal(podOfAddress("198.18.0.1"), null);
});
