/**
 * The shared scenario table (scenarios.ts) against the iptables backend, with real packets in
 * throwaway network namespaces — through iptables-nft and iptables-legacy — plus the scenarios
 * only iptables has (localhost NodePorts). IP plan: see scenarios.ts and topology.ts.
 */
import { IptablesApplier, type IptablesVariant } from "../../src/apply/iptables_applier.ts";
import { endpointSlice, local, remote, service, thisNode } from "./manifests.ts";
import type { Scenario } from "./scenario.ts";
import { registerScenarioTests } from "./scenario_runner.ts";
import { runScenarioTable } from "./scenarios.ts";

const LOCALHOST_NODEPORTS: readonly Scenario[] = [
  {
    name: "localhost NodePorts (iptables only, route_localnet set by kproxy)",
    pods: 2,
    settings: { localhostNodePorts: true, nodePortAddresses: [] },
    steps: [{
      name: "NodePort service, localhost NodePorts on",
      objects: [
        thisNode(),
        service("np-lo", {
          type: "NodePort",
          clusterIPs: ["198.18.128.90"],
          ports: [{ name: "http", port: 80, nodePort: 30090 }],
        }),
        endpointSlice("np-lo", {
          ports: [{ name: "http", port: 8080 }],
          endpoints: [local(0), remote(1)],
        }),
      ],
      checks: [{
        name: "the node reaches the NodePort on 127.0.0.1",
        from: "node",
        ip: "127.0.0.1",
        port: 30090,
        probes: 10,
        expect: { kind: "answer", pods: ["pod0", "pod1"] },
      }],
    }],
  },
  {
    name: "localhost NodePorts off",
    pods: 1,
    settings: { localhostNodePorts: false, nodePortAddresses: [] },
    steps: [{
      name: "NodePort service, localhost NodePorts off",
      objects: [
        thisNode(),
        service("np-nolo", {
          type: "NodePort",
          clusterIPs: ["198.18.128.91"],
          ports: [{ name: "http", port: 80, nodePort: 30091 }],
        }),
        endpointSlice("np-nolo", {
          ports: [{ name: "http", port: 8080 }],
          endpoints: [local(0)],
        }),
      ],
      checks: [{
        name: "127.0.0.1 gets no DNAT (nothing listens there: refused)",
        from: "node",
        ip: "127.0.0.1",
        port: 30091,
        expect: { kind: "refused" },
      }],
    }],
  },
];

for (const variant of ["nft", "legacy"] as const satisfies readonly IptablesVariant[]) {
  const backend = {
    name: `iptables-${variant}`,
    makeApplier: (netns: string) => new IptablesApplier({ netns, variant }),
    dropEvidence: variant === "legacy" ? "legacy-counters" as const : "nftrace" as const,
  };
  runScenarioTable(backend);
  registerScenarioTests(backend, LOCALHOST_NODEPORTS);
}
