/**
 * Explain in every `--detect-local-mode`, in both backends: the packet's input interface (a pod's
 * traffic arrives on its veth or the bridge; the node's own and outside traffic do not) decides
 * the interface modes, the Node's podCIDRs decide NodeCIDR, for the ClusterIP masquerade and the
 * externalTrafficPolicy Local short-circuit alike. IP plan: see _fixtures.ts; node-a's pod CIDR
 * (NodeCIDR) 198.18.1.0/25, inside the cluster CIDR 198.18.1.0/24.
 */
import assert from "node:assert/strict";
import { node, NODE_IP, OUTSIDE_CLIENT, POD_CLIENT, slice, snapshotOf, svc } from "./_fixtures.ts";
import type { ExplainAnswer, ExplainMode } from "./answer.ts";
import { explainPacket } from "./explain.ts";
import { formatExplanation } from "./format.ts";
import { packetOf, parseTarget } from "./packet.ts";
import type { LocalMode, ProxySnapshot } from "../snapshot/types.ts";

const BACKENDS: readonly ExplainMode[] = ["nftables", "iptables"];
const HTTP = { name: "http", port: 80 };
/** A pod of node-a outside its NodeCIDR pod CIDR (but inside the cluster CIDR). */
const OTHER_POD_RANGE = "198.18.1.200";

function snapshotIn(mode: LocalMode): ProxySnapshot {
  return snapshotOf([
    { ...node(), spec: { podCIDR: "198.18.1.0/25", podCIDRs: ["198.18.1.0/25"] } },
    svc("web", { clusterIPs: ["198.18.128.10"], ports: [HTTP] }),
    slice("web", [{ ip: "198.18.1.10", node: "node-b" }]),
    // eTP Local with its only endpoint elsewhere: only pod traffic may reach it.
    svc("lb", {
      type: "LoadBalancer",
      clusterIPs: ["198.18.128.11"],
      externalTrafficPolicy: "Local",
      ports: [{ ...HTTP, nodePort: 30081 }],
    }, ["198.18.200.11"]),
    slice("lb", [{ ip: "198.18.1.11", node: "node-b" }]),
  ], { detectLocal: { mode, bridgeInterface: "cbr0", interfaceNamePrefix: "veth" } });
}

function ask(
  snapshot: ProxySnapshot,
  to: string,
  from: string | undefined,
  backend: ExplainMode,
  inputInterface?: string,
): ExplainAnswer {
  const answer = explainPacket(snapshot, packetOf(parseTarget(to), snapshot, { from }), {
    mode: backend,
    ...(inputInterface === undefined ? {} : { inputInterface }),
  });
  assert.doesNotThrow(() => formatExplanation(answer));
  return answer;
}

/** [mode, a pod's packet (source, interface), an outside packet (source, interface)]. */
const CASES: readonly [LocalMode, [string, string], [string, string | undefined], RegExp][] = [
  ["ClusterCIDR", [OTHER_POD_RANGE, "eth9"], [OUTSIDE_CLIENT, undefined], /cluster CIDR/],
  ["NodeCIDR", [POD_CLIENT, "eth9"], [OTHER_POD_RANGE, undefined], /node's pod CIDR/],
  ["BridgeInterface", [OUTSIDE_CLIENT, "cbr0"], [POD_CLIENT, "veth1"], /bridge "cbr0"/],
  ["InterfaceNamePrefix", [OUTSIDE_CLIENT, "veth1a2b"], [POD_CLIENT, "cbr0"], /"veth\*"/],
];

for (const backend of BACKENDS) {
  for (const [mode, [podSource, podIf], [outSource, outIf], words] of CASES) {
    const snapshot = snapshotIn(mode);
    Deno.test(`${backend} explain, ${mode}: a pod's packet to a ClusterIP keeps its source`, () => {
      const a = ask(snapshot, "198.18.128.10:80", podSource, backend, podIf);
      assert.equal(a.verdict.kind, "dnat");
      assert.equal(a.masquerade?.applies, "never", a.masquerade?.reason);
      assert.match(a.masquerade?.reason ?? "", words);
      assert.match(a.masquerade?.reason ?? "", /pod traffic keeps its address/);
    });
    Deno.test(`${backend} explain, ${mode}: other traffic to a ClusterIP is masqueraded`, () => {
      const a = ask(snapshot, "198.18.128.10:80", outSource, backend, outIf);
      assert.equal(a.masquerade?.applies, "always", a.masquerade?.reason);
      assert.match(a.masquerade?.reason ?? "", words);
      // The node's own packet has no input interface: never a pod's.
      const fromNode = ask(snapshot, "198.18.128.10:80", undefined, backend, podIf);
      assert.equal(fromNode.packet.source, NODE_IP);
      assert.equal(fromNode.masquerade?.applies, "always", fromNode.masquerade?.reason);
    });
    Deno.test(`${backend} explain, ${mode}: eTP Local short-circuit for pods only`, () => {
      const pod = ask(snapshot, "198.18.200.11:80", podSource, backend, podIf);
      assert.equal(pod.verdict.kind, "dnat", pod.verdict.reason);
      assert.deepEqual(pod.endpoints.map((e) => [e.ip, e.masqueraded]), [["198.18.1.11", false]]);
      const outside = ask(snapshot, "198.18.200.11:80", outSource, backend, outIf);
      assert.equal(outside.verdict.kind, "drop", outside.verdict.reason);
    });
  }

  Deno.test(`${backend} explain: a local endpoint's packet is assumed to come from its pod's interface`, () => {
    // 198.18.1.12 is an endpoint on node-a: without --iif, explain takes the pod's interface.
    const snapshot = snapshotOf([
      svc("web", { clusterIPs: ["198.18.128.10"], ports: [HTTP] }),
      slice("web", [{ ip: "198.18.1.10", node: "node-b" }]),
      svc("here", { clusterIPs: ["198.18.128.12"], ports: [HTTP] }),
      slice("here", [{ ip: "198.18.1.12" }]),
    ], {
      detectLocal: { mode: "BridgeInterface", bridgeInterface: "cbr0", interfaceNamePrefix: "" },
    });
    const a = ask(snapshot, "198.18.128.10:80", "198.18.1.12", backend);
    assert.equal(a.masquerade?.applies, "never", a.masquerade?.reason);
    assert.match(a.masquerade?.reason ?? "", /arrives on "cbr0"/);
    const b = ask(snapshot, "198.18.128.10:80", POD_CLIENT, backend);
    assert.equal(b.masquerade?.applies, "always", b.masquerade?.reason);
  });
}
