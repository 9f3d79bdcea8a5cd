/**
 * The snapshots behind tests/golden/nftables/*.nft, shared by the golden test and the netns
 * syntax check. IP plan: see `_fixtures.ts` (node 198.18.0.10, pods 198.18.1.0/24 and
 * fd00:1::/64, ClusterIPs 198.18.128.0/17 and fd00:128::/64, external IPs 198.18.200.0/24,
 * LB IPs 198.18.250.0/24, clients 198.19.0.0/24).
 */
import { loadManifests } from "../../source/manifest_loader.ts";
import type { ProxySnapshot } from "../../snapshot/types.ts";
import { buildSnapshot } from "../../snapshot/proxy_state.ts";
import { FIXTURE_SETTINGS, rawNode, rawService, rawSlice, snapshotOf } from "./_fixtures.ts";

const HTTP = { name: "http", protocol: "TCP", port: 80 };
const HTTP_TARGET = { name: "http", protocol: "TCP", port: 8080 };

/** Golden case name → snapshot. */
export async function goldenCases(): Promise<Map<string, ProxySnapshot>> {
  const cases = new Map<string, ProxySnapshot>();
  const examples = await loadManifests(
    new URL("../../../deploy/examples", import.meta.url).pathname,
  );
  cases.set("examples", buildSnapshot(examples.objects, FIXTURE_SETTINGS));

  cases.set(
    "no_endpoints",
    snapshotOf([
      rawNode(),
      rawService("empty", { clusterIPs: ["198.18.128.1"], ports: [HTTP] }),
      rawService("dns", {
        type: "NodePort",
        clusterIPs: ["198.18.128.2"],
        externalIPs: ["198.18.200.2"],
        ports: [{ name: "dns", protocol: "UDP", port: 53, nodePort: 30053 }],
      }),
      rawService("unready", { clusterIPs: ["198.18.128.3"], ports: [HTTP] }),
      rawSlice("unready", HTTP_TARGET, [{ ip: "198.18.1.3", ready: false, serving: false }]),
    ]),
  );

  cases.set(
    "local_policies",
    snapshotOf([
      rawNode(),
      rawService("etp-remote-only", {
        type: "NodePort",
        clusterIPs: ["198.18.128.11"],
        externalIPs: ["198.18.200.11"],
        externalTrafficPolicy: "Local",
        ports: [{ ...HTTP, nodePort: 30011 }],
      }),
      rawSlice("etp-remote-only", HTTP_TARGET, [{ ip: "198.18.1.11", node: "node-b" }]),
      rawService("itp-remote-only", {
        clusterIPs: ["198.18.128.12"],
        internalTrafficPolicy: "Local",
        ports: [HTTP],
      }),
      rawSlice("itp-remote-only", HTTP_TARGET, [{ ip: "198.18.1.12", node: "node-b" }]),
      rawService("itp-local", {
        clusterIPs: ["198.18.128.13"],
        internalTrafficPolicy: "Local",
        ports: [HTTP],
      }),
      rawSlice("itp-local", HTTP_TARGET, [
        { ip: "198.18.1.13" },
        { ip: "198.18.1.14", node: "node-b" },
      ]),
      rawService("terminating", { clusterIPs: ["198.18.128.14"], ports: [HTTP] }),
      rawSlice("terminating", HTTP_TARGET, [
        { ip: "198.18.1.15", ready: false, serving: true, terminating: true },
      ]),
    ]),
  );

  const many = Array.from({ length: 20 }, (_, i) => ({ ip: `198.18.1.${100 + i}` }));
  cases.set(
    "masquerade_all",
    snapshotOf(
      [
        rawNode(),
        rawService("sctp", {
          type: "NodePort",
          clusterIPs: ["198.18.128.21"],
          ports: [{ name: "s", protocol: "SCTP", port: 9000, nodePort: 30900 }],
        }),
        rawSlice("sctp", { name: "s", protocol: "SCTP", port: 9000 }, [{ ip: "198.18.1.21" }]),
        rawService("big", { clusterIPs: ["198.18.128.22"], ports: [HTTP] }),
        rawSlice("big", HTTP_TARGET, many),
      ],
      {
        clusterCIDRs: [],
        masqueradeAll: true,
        masqueradeBit: 13,
        nodePortAddresses: ["198.18.0.0/24", "127.0.0.0/8"],
        hostAddresses: ["198.18.0.10", "127.0.0.1", "198.19.9.9"],
      },
    ),
  );

  cases.set(
    "ipv6_firewall_conflicts",
    snapshotOf(
      [
        rawNode(),
        rawService("v6", {
          clusterIPs: ["fd00:128::6"],
          ipFamilies: ["IPv6"],
          ports: [{ name: "dns", protocol: "UDP", port: 53 }],
        }),
        rawSlice("v6", { name: "dns", protocol: "UDP", port: 5353 }, [
          { ip: "fd00:1::6" },
          { ip: "fd00:1::7", node: "node-b" },
        ]),
        rawService("lb", {
          type: "LoadBalancer",
          clusterIPs: ["198.18.128.31"],
          loadBalancerSourceRanges: ["198.19.0.0/24", "198.18.0.0/24"],
          ports: [{ ...HTTP, nodePort: 30031 }],
        }, ["198.18.250.31"]),
        rawSlice("lb", HTTP_TARGET, [{ ip: "198.18.1.31" }]),
        rawService("claims-a", {
          clusterIPs: ["198.18.128.32"],
          externalIPs: ["198.18.200.32"],
          ports: [HTTP],
        }),
        rawSlice("claims-a", HTTP_TARGET, [{ ip: "198.18.1.32" }]),
        rawService("claims-b", {
          clusterIPs: ["198.18.128.33"],
          externalIPs: ["198.18.200.32"],
          ports: [HTTP],
        }),
        rawSlice("claims-b", HTTP_TARGET, [{ ip: "198.18.1.33" }]),
      ],
      { clusterCIDRs: ["198.18.1.0/24", "198.18.2.0/24", "fd00:1::/64"] },
    ),
  );
  return cases;
}
