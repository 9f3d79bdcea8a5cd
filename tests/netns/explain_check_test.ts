/**
 * Without kernels or root: explain's answer for every check of the scenario table, in both
 * backends, agrees with the check's expectation (which upstream kube-proxy's behaviour set); and
 * the judge the runner uses flags each kind of disagreement with the probes.
 *
 * IP plan: see topology.ts.
 */
import assert from "node:assert/strict";
import type { ExplainMode } from "../../src/explain/answer.ts";
import { buildSnapshot, initialProxyState } from "../../src/snapshot/proxy_state.ts";
import { compareWithPackets, explainCheck, podOfAddress, sourceOf } from "./explain_check.ts";
import type { ProbeResult } from "./probe.ts";
import type { Expectation } from "./scenario.ts";
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
      return [{ kind: "timeout", reason: "no answer", ms: 300 }];
  }
}

for (const mode of MODES) {
  for (const scenario of SCENARIOS) {
    Deno.test(`explain (${mode}) predicts every check of: ${scenario.name}`, () => {
      const settings = scenarioSettings(scenario);
      let snapshot = initialProxyState(settings).snapshot;
      for (const step of scenario.steps) {
        if (step.cleanup) snapshot = initialProxyState(settings).snapshot;
        else if (step.objects !== undefined) {
          snapshot = buildSnapshot(parseScenarioObjects(scenario.name, step.objects), settings);
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
          } else {
            assert.ok(["drop", "routed"].includes(answer.verdict.kind), label);
          }
          // The judge accepts probes that meet the expectation.
          const masq = answer.endpoints[0]?.masqueraded ?? false;
          const problems = compareWithPackets(answer, resultsMeeting(expect, source, masq), {
            nodeAddresses: nodeAddresses(true),
          });
          assert.deepEqual(problems, [], label);
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
