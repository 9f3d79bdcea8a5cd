/**
 * Hand-made cluster models for the harness's own tests.
 *
 * IP plan: tests/netns/two_node_plan.ts.
 *
 * @module
 */
import type { EndpointModel, ServiceModel } from "./cluster_model.ts";

/** A ready endpoint of a lab pod, on its node. */
export function readyEndpoint(pod: string, extra: Partial<EndpointModel> = {}): EndpointModel {
  return {
    pod,
    ready: true,
    serving: true,
    terminating: false,
    nodeName: true,
    zone: null,
    hintZones: null,
    hintNodes: null,
    ...extra,
  };
}

/** A dual-stack LoadBalancer with one TCP port, an external IP, eTP Local. */
export function lbService(overrides: Partial<ServiceModel> = {}): ServiceModel {
  return {
    name: "web",
    type: "LoadBalancer",
    headless: false,
    ipFamilyPolicy: "RequireDualStack",
    ipFamilies: ["IPv4", "IPv6"],
    clusterIPs: ["198.18.130.10", "fd00:128::100"],
    ports: [{ name: "http", protocol: "TCP", port: 80, nodePort: 30080, targetPort: 8080 }],
    externalIPs: ["198.18.200.1"],
    ingress: [{ ip: "198.18.200.2", hostname: null, ipMode: null }, {
      ip: "fd00:200::2",
      hostname: null,
      ipMode: "Proxy",
    }],
    sourceRanges: [],
    allocateNodePorts: null,
    externalTrafficPolicy: "Local",
    internalTrafficPolicy: null,
    affinitySeconds: null,
    healthCheckNodePort: 32000,
    trafficDistribution: null,
    slices: [{
      name: "web-0",
      family: "IPv4",
      ports: [{ name: "http", protocol: "TCP", port: 8080 }],
      endpoints: [readyEndpoint("a1"), readyEndpoint("b1")],
    }],
    ...overrides,
  };
}
