/**
 * Unit tests of the scenario language and the shared table, without kernels or root: every
 * scenario's objects validate and build a snapshot, every check names a namespace and pods that
 * exist, statistical bounds are reachable, addresses follow the IP plan; and `evaluateCheck`
 * judges probe results as documented.
 *
 * IP plan: see topology.ts (pods 198.18.1.10+, node 198.18.0.1 / 198.19.0.1, client
 * 198.19.0.2, VIPs 198.18.128.0/17, external IPs 198.18.200.0/24, IPv6 under fd00::/8).
 */
import assert from "node:assert/strict";
import { cidrContains, parseCIDR, parseIP } from "../../src/model/ip.ts";
import { buildSnapshot } from "../../src/snapshot/proxy_state.ts";
import type { ProbeResult } from "./probe.ts";
import { evaluateCheck, type ScenarioCheck } from "./scenario.ts";
import { parseScenarioObjects, scenarioSettings } from "./scenario_runner.ts";
import { SCENARIOS } from "./scenarios.ts";
import { NODE_INTERNAL_IPV4, nodeAddresses } from "./topology.ts";

const NODE_ADDRESSES = nodeAddresses(true);

function inPlan(ip: string): boolean {
  const parsed = parseIP(ip);
  if (parsed === null) return false;
  return ["198.18.0.0/15", "fd00::/8"].some((c) => cidrContains(parseCIDR(c)!, parsed));
}

Deno.test("scenario table: names are unique", () => {
  const names = SCENARIOS.map((s) => s.name);
  assert.equal(new Set(names).size, names.length);
});

for (const scenario of SCENARIOS) {
  Deno.test(`scenario table: ${scenario.name} is well-formed`, () => {
    const pods = Array.from({ length: scenario.pods }, (_, i) => `pod${i}`);
    const sources = ["node", "client", ...(scenario.secondClient ? ["client2"] : []), ...pods];
    assert.ok(scenario.steps[0]?.objects !== undefined, "the first step has objects");
    let objects: readonly unknown[] = [];
    for (const step of scenario.steps) {
      objects = step.objects ?? objects;
      const parsed = parseScenarioObjects(scenario.name, objects);
      const snapshot = buildSnapshot(parsed, scenarioSettings(scenario));
      assert.ok(step.cleanup || snapshot.servicePorts.length > 0, `${step.name}: has services`);
      assert.ok(snapshot.node.known, `${step.name}: has this node's Node object`);
      for (const sp of snapshot.servicePorts) {
        for (const f of sp.families) {
          for (const ip of [f.clusterIP, ...f.externalIPs, ...f.loadBalancerIPs]) {
            assert.ok(inPlan(ip), `${sp.id}: ${ip} is in the test IP plan`);
          }
        }
      }
      assert.ok(step.checks.length > 0, `${step.name}: has checks`);
      for (const check of step.checks) {
        const where = `${step.name} / ${check.name}`;
        assert.ok(sources.includes(check.from), `${where}: from ${check.from} exists`);
        assert.ok(inPlan(check.ip), `${where}: ${check.ip} is in the test IP plan`);
        const e = check.expect;
        if (e.kind !== "answer") continue;
        for (const p of e.pods) assert.ok(pods.includes(p), `${where}: ${p} exists`);
        if (e.minEach !== undefined) {
          assert.ok(
            (check.probes ?? 1) >= e.minEach * e.pods.length * 2,
            `${where}: enough probes for the spread bound`,
          );
        }
        if (e.samePod) assert.ok((check.probes ?? 1) >= 10, `${where}: enough probes for affinity`);
      }
    }
  });
}

const answer = (pod: string, clientIP = "198.19.0.2", localIP = clientIP): ProbeResult => ({
  kind: "answer",
  pod,
  clientIP,
  localIP,
  ms: 1,
});
const refused: ProbeResult = { kind: "refused", reason: "ECONNREFUSED", ms: 1 };
const timeout: ProbeResult = { kind: "timeout", reason: "no connection", ms: 300 };
const ctx = { nodeAddresses: NODE_ADDRESSES };

function check(expect: ScenarioCheck["expect"]): ScenarioCheck {
  return { name: "c", from: "client", ip: "198.18.128.1", port: 80, expect };
}

Deno.test("evaluateCheck: answers from allowed pods pass, strays and failures do not", () => {
  const c = check({ kind: "answer", pods: ["pod0", "pod1"] });
  assert.deepEqual(evaluateCheck(c, [answer("pod0"), answer("pod1")], ctx), []);
  const stray = evaluateCheck(c, [answer("pod0"), answer("pod2")], ctx);
  assert.equal(stray.length, 1);
  assert.match(stray[0]!, /only from pod0, pod1 — saw 2 probes, answers pod0=1 pod2=1/);
  assert.match(evaluateCheck(c, [answer("pod0"), timeout], ctx)[0]!, /\(timeout: no connection\)/);
  assert.equal(evaluateCheck(c, [refused], ctx).length, 1);
});

Deno.test("evaluateCheck: minEach is a per-pod floor", () => {
  const c = check({ kind: "answer", pods: ["pod0", "pod1"], minEach: 2 });
  assert.deepEqual(
    evaluateCheck(c, [answer("pod0"), answer("pod0"), answer("pod1")], ctx).length,
    1,
  );
  assert.deepEqual(
    evaluateCheck(c, [answer("pod0"), answer("pod0"), answer("pod1"), answer("pod1")], ctx),
    [],
  );
});

Deno.test("evaluateCheck: samePod and client IP expectations", () => {
  const same = check({ kind: "answer", pods: ["pod0", "pod1"], samePod: true });
  assert.deepEqual(evaluateCheck(same, [answer("pod1"), answer("pod1")], ctx), []);
  assert.equal(evaluateCheck(same, [answer("pod0"), answer("pod1")], ctx).length, 1);

  const preserved = check({ kind: "answer", pods: ["pod0"], clientIP: "preserved" });
  assert.deepEqual(evaluateCheck(preserved, [answer("pod0")], ctx), []);
  assert.match(
    evaluateCheck(preserved, [answer("pod0", NODE_INTERNAL_IPV4, "198.19.0.2")], ctx)[0]!,
    /client's own address/,
  );

  const node = check({ kind: "answer", pods: ["pod0"], clientIP: "node" });
  assert.deepEqual(
    evaluateCheck(node, [answer("pod0", NODE_INTERNAL_IPV4, "198.19.0.2")], ctx),
    [],
  );
  assert.match(evaluateCheck(node, [answer("pod0")], ctx)[0]!, /node address/);
});

Deno.test("evaluateCheck: refused (with a time bound) and timeout", () => {
  const r = check({ kind: "refused", withinMs: 50 });
  assert.deepEqual(evaluateCheck(r, [refused, refused], ctx), []);
  assert.equal(evaluateCheck(r, [refused, answer("pod0")], ctx).length, 1);
  assert.match(evaluateCheck(r, [{ ...refused, ms: 120 }], ctx)[0]!, /within 50 ms, 1 were slower/);
  const t = check({ kind: "timeout" });
  assert.deepEqual(evaluateCheck(t, [timeout], ctx), []);
  assert.equal(evaluateCheck(t, [refused], ctx).length, 1);
  assert.equal(evaluateCheck(t, [answer("pod0")], ctx).length, 1);
});

Deno.test("evaluateCheck: dropped needs no answer and a proxy drop verdict for every packet", () => {
  const d = check({ kind: "dropped" });
  const byProxy = (id: string, where = "ip kproxy filter-prerouting") => ({
    id,
    chains: ["ip kproxy filter-prerouting"],
    droppedIn: where,
  });
  assert.deepEqual(
    evaluateCheck(d, [timeout, timeout], { ...ctx, traces: [byProxy("a"), byProxy("b")] }),
    [],
  );
  assert.deepEqual(
    evaluateCheck(d, [timeout], {
      ...ctx,
      traces: [byProxy("a", "ip filter KUBE-EXTERNAL-SERVICES")],
    }),
    [],
  );
  const untraced = evaluateCheck(d, [timeout, timeout], { ...ctx, traces: [byProxy("a")] });
  assert.match(untraced[0]!, /expected ≥ 2 traced packets, the node traced 1/);
  const lost = evaluateCheck(d, [timeout], {
    ...ctx,
    traces: [{ id: "c", chains: ["ip kproxy nat-output"], droppedIn: null }],
  });
  assert.match(
    lost[0]!,
    /packet c dropped by a proxy rule: not dropped after ip kproxy nat-output/,
  );
  const elsewhere = evaluateCheck(d, [timeout], {
    ...ctx,
    traces: [byProxy("e", "inet fw input")],
  });
  assert.match(elsewhere[0]!, /dropped in inet fw input/);
  assert.equal(evaluateCheck(d, [answer("pod0")], { ...ctx, traces: [byProxy("a")] }).length, 1);
  assert.equal(evaluateCheck(d, [timeout], ctx).length, 1, "no trace, no proof");
});
