/**
 * The scenario table every backend runs with real packets (one conformance suite, as Hono runs
 * one router suite against every router). A backend's test file is three lines:
 *
 * ```ts
 * import { runScenarioTable } from "./scenarios.ts";
 * runScenarioTable({ name: "nftables", makeApplier: (netns) => new NftablesApplier({ netns }) });
 * ```
 *
 * IP plan (topology.ts): node 198.18.0.1 (loopback) and primary IP 198.19.0.1 (client link);
 * pods pod<i> = 198.18.1.(10+i) / fd00:1::(10+i); client 198.19.0.2, client2 198.19.1.2;
 * ClusterIPs 198.18.128.0/17 and fd00:128::/64; external and LoadBalancer IPs 198.18.200.0/24.
 * Pod servers answer on TCP and UDP 8080 and 8081. Endpoints on `node-b` are "remote" pods:
 * their packets use the same veths, only the EndpointSlice says they live elsewhere.
 *
 * @module
 */
import { endpointSlice, local, remote, service, thisNode } from "./manifests.ts";
import type { Scenario } from "./scenario.ts";
import {
  registerScenarioTests,
  type ScenarioBackend,
  type ScenarioTableOptions,
} from "./scenario_runner.ts";
import { NODE_PRIMARY_IPV4 } from "./topology.ts";

export type { ScenarioBackend, ScenarioTableOptions };

const NODE_IP = NODE_PRIMARY_IPV4;
const HTTP = [{ name: "http", port: 80 }] as const;
const HTTP_TARGET = [{ name: "http", port: 8080 }] as const;
const DNS = [{ name: "dns", protocol: "UDP", port: 53 }] as const;
const DNS_TARGET = [{ name: "dns", protocol: "UDP", port: 8080 }] as const;
/** Short timeout for checks that expect nothing to come back. */
const DROP_MS = 300;

/** The shared scenario table, in the order the tests run. */
export const SCENARIOS: readonly Scenario[] = [
  {
    name: "ClusterIP from the node and from a pod",
    pods: 3,
    steps: [
      {
        name: "two endpoints, one local and one remote",
        objects: [
          thisNode(),
          service("web", { clusterIPs: ["198.18.128.10"], ports: HTTP }),
          endpointSlice("web", { ports: HTTP_TARGET, endpoints: [local(0), remote(1)] }),
        ],
        checks: [
          {
            name: "the node reaches both endpoints",
            from: "node",
            ip: "198.18.128.10",
            port: 80,
            probes: 20,
            expect: { kind: "answer", pods: ["pod0", "pod1"], minEach: 2, clientIP: "node" },
          },
          {
            name: "a pod reaches both endpoints with its own address",
            from: "pod2",
            ip: "198.18.128.10",
            port: 80,
            probes: 20,
            expect: { kind: "answer", pods: ["pod0", "pod1"], minEach: 2, clientIP: "preserved" },
          },
        ],
      },
      {
        name: "cleanup removes what kproxy owns",
        cleanup: true,
        checks: [{
          name: "the ClusterIP no longer answers",
          from: "node",
          ip: "198.18.128.10",
          port: 80,
          timeoutMs: DROP_MS,
          expect: { kind: "timeout" },
        }],
      },
    ],
  },
  {
    name: "traffic spreads over three endpoints",
    pods: 3,
    steps: [{
      name: "three ready endpoints",
      objects: [
        thisNode(),
        service("spread", { clusterIPs: ["198.18.128.11"], ports: HTTP }),
        endpointSlice("spread", {
          ports: HTTP_TARGET,
          endpoints: [local(0), local(1), remote(2)],
        }),
      ],
      checks: [{
        name: "every endpoint gets a share (60 probes, each ≥ 5)",
        from: "node",
        ip: "198.18.128.11",
        port: 80,
        probes: 60,
        expect: { kind: "answer", pods: ["pod0", "pod1", "pod2"], minEach: 5 },
      }],
    }],
  },
  {
    name: "ClientIP session affinity keeps a client on one pod",
    pods: 4,
    steps: [{
      name: "affinity service with three endpoints",
      objects: [
        thisNode(),
        service("sticky", {
          clusterIPs: ["198.18.128.12"],
          ports: HTTP,
          affinitySeconds: 600,
        }),
        endpointSlice("sticky", {
          ports: HTTP_TARGET,
          endpoints: [local(0), local(1), remote(2)],
        }),
      ],
      checks: [
        {
          name: "the node always reaches the same pod",
          from: "node",
          ip: "198.18.128.12",
          port: 80,
          probes: 20,
          expect: { kind: "answer", pods: ["pod0", "pod1", "pod2"], samePod: true },
        },
        {
          name: "a pod always reaches the same pod",
          from: "pod3",
          ip: "198.18.128.12",
          port: 80,
          probes: 20,
          expect: { kind: "answer", pods: ["pod0", "pod1", "pod2"], samePod: true },
        },
      ],
    }],
  },
  {
    name: "NodePort and ExternalIP with externalTrafficPolicy Cluster",
    pods: 3,
    steps: [{
      name: "NodePort service with an external IP, endpoints on both nodes",
      objects: [
        thisNode(),
        service("np-cluster", {
          type: "NodePort",
          clusterIPs: ["198.18.128.13"],
          ports: [{ name: "http", port: 80, nodePort: 30080 }],
          externalIPs: ["198.18.200.10"],
          externalTrafficPolicy: "Cluster",
        }),
        endpointSlice("np-cluster", {
          ports: HTTP_TARGET,
          endpoints: [local(0), remote(1), remote(2)],
        }),
      ],
      checks: [
        {
          name: "the NodePort reaches every endpoint, masqueraded",
          from: "client",
          ip: NODE_IP,
          port: 30080,
          probes: 60,
          expect: { kind: "answer", pods: ["pod0", "pod1", "pod2"], minEach: 5, clientIP: "node" },
        },
        {
          name: "the external IP reaches every endpoint, masqueraded",
          from: "client",
          ip: "198.18.200.10",
          port: 80,
          probes: 60,
          expect: { kind: "answer", pods: ["pod0", "pod1", "pod2"], minEach: 5, clientIP: "node" },
        },
        {
          name: "the node reaches its own NodePort",
          from: "node",
          ip: NODE_IP,
          port: 30080,
          probes: 10,
          expect: { kind: "answer", pods: ["pod0", "pod1", "pod2"] },
        },
      ],
    }],
  },
  {
    name: "NodePort and ExternalIP with externalTrafficPolicy Local",
    pods: 4,
    steps: [{
      name: "Local services with local and only-remote endpoints",
      objects: [
        thisNode(),
        service("np-local", {
          type: "NodePort",
          clusterIPs: ["198.18.128.14"],
          ports: [{ name: "http", port: 80, nodePort: 30081 }],
          externalIPs: ["198.18.200.11"],
          externalTrafficPolicy: "Local",
        }),
        endpointSlice("np-local", {
          ports: HTTP_TARGET,
          endpoints: [local(0), local(1), remote(2)],
        }),
        service("np-remote", {
          type: "NodePort",
          clusterIPs: ["198.18.128.15"],
          ports: [{ name: "http", port: 80, nodePort: 30082 }],
          externalTrafficPolicy: "Local",
        }),
        endpointSlice("np-remote", { ports: HTTP_TARGET, endpoints: [remote(2)] }),
      ],
      checks: [
        {
          name: "the NodePort reaches only local endpoints, client IP preserved",
          from: "client",
          ip: NODE_IP,
          port: 30081,
          probes: 40,
          expect: { kind: "answer", pods: ["pod0", "pod1"], minEach: 5, clientIP: "preserved" },
        },
        {
          name: "the external IP reaches only local endpoints, client IP preserved",
          from: "client",
          ip: "198.18.200.11",
          port: 80,
          probes: 40,
          expect: { kind: "answer", pods: ["pod0", "pod1"], minEach: 5, clientIP: "preserved" },
        },
        {
          name: "a Local NodePort without local endpoints drops",
          from: "client",
          ip: NODE_IP,
          port: 30082,
          probes: 2,
          timeoutMs: DROP_MS,
          expect: { kind: "dropped" },
        },
        {
          name: "pods reaching the external IP use every endpoint (short-circuit)",
          from: "pod3",
          ip: "198.18.200.11",
          port: 80,
          probes: 40,
          expect: { kind: "answer", pods: ["pod0", "pod1", "pod2"], minEach: 3 },
        },
      ],
    }],
  },
  {
    name: "internalTrafficPolicy Local",
    pods: 4,
    steps: [{
      name: "Local internal policy with local and only-remote endpoints",
      objects: [
        thisNode(),
        service("itp-local", {
          clusterIPs: ["198.18.128.16"],
          ports: HTTP,
          internalTrafficPolicy: "Local",
        }),
        endpointSlice("itp-local", {
          ports: HTTP_TARGET,
          endpoints: [local(0), remote(1), local(2)],
        }),
        service("itp-remote", {
          clusterIPs: ["198.18.128.17"],
          ports: HTTP,
          internalTrafficPolicy: "Local",
        }),
        endpointSlice("itp-remote", { ports: HTTP_TARGET, endpoints: [remote(1)] }),
      ],
      checks: [
        {
          name: "a pod reaches only the local endpoints",
          from: "pod3",
          ip: "198.18.128.16",
          port: 80,
          probes: 40,
          expect: { kind: "answer", pods: ["pod0", "pod2"], minEach: 5, clientIP: "preserved" },
        },
        {
          name: "the node reaches only the local endpoints",
          from: "node",
          ip: "198.18.128.16",
          port: 80,
          probes: 20,
          expect: { kind: "answer", pods: ["pod0", "pod2"] },
        },
        {
          name: "without local endpoints the traffic is dropped",
          from: "pod3",
          ip: "198.18.128.17",
          port: 80,
          probes: 2,
          timeoutMs: DROP_MS,
          expect: { kind: "dropped" },
        },
      ],
    }],
  },
  {
    name: "a service without endpoints refuses connections at once",
    pods: 1,
    steps: [{
      name: "NodePort service, TCP and UDP, no endpoints",
      objects: [
        thisNode(),
        service("empty", {
          type: "NodePort",
          clusterIPs: ["198.18.128.18"],
          ports: [
            { name: "http", port: 80, nodePort: 30083 },
            { name: "dns", protocol: "UDP", port: 53, nodePort: 30084 },
          ],
        }),
        endpointSlice("empty", { ports: [...HTTP_TARGET, ...DNS_TARGET], endpoints: [] }),
      ],
      checks: [
        {
          name: "TCP from the node is refused",
          from: "node",
          ip: "198.18.128.18",
          port: 80,
          expect: { kind: "refused", withinMs: 200 },
        },
        {
          name: "TCP from a pod is refused",
          from: "pod0",
          ip: "198.18.128.18",
          port: 80,
          expect: { kind: "refused", withinMs: 200 },
        },
        {
          name: "UDP from a pod gets port unreachable",
          from: "pod0",
          protocol: "UDP",
          ip: "198.18.128.18",
          port: 53,
          expect: { kind: "refused", withinMs: 200 },
        },
        {
          name: "the NodePort from the client is refused",
          from: "client",
          ip: NODE_IP,
          port: 30083,
          expect: { kind: "refused", withinMs: 200 },
        },
      ],
    }],
  },
  {
    name: "UDP follows endpoint changes (stale conntrack entries are cleared)",
    pods: 4,
    steps: [
      {
        name: "one endpoint, pod0",
        objects: [
          thisNode(),
          service("dns", { clusterIPs: ["198.18.128.19"], ports: DNS }),
          endpointSlice("dns", { ports: DNS_TARGET, endpoints: [local(0)] }),
        ],
        checks: [{
          name: "one flow reaches pod0",
          from: "pod3",
          protocol: "UDP",
          ip: "198.18.128.19",
          port: 53,
          sourcePort: 40053,
          probes: 3,
          expect: { kind: "answer", pods: ["pod0"], clientIP: "preserved" },
        }],
      },
      {
        name: "the endpoint moves to pod1",
        objects: [
          thisNode(),
          service("dns", { clusterIPs: ["198.18.128.19"], ports: DNS }),
          endpointSlice("dns", { ports: DNS_TARGET, endpoints: [remote(1)] }),
        ],
        checks: [
          {
            name: "the same flow now reaches pod1",
            from: "pod3",
            protocol: "UDP",
            ip: "198.18.128.19",
            port: 53,
            sourcePort: 40053,
            probes: 3,
            expect: { kind: "answer", pods: ["pod1"] },
          },
          {
            name: "a new flow reaches pod1",
            from: "node",
            protocol: "UDP",
            ip: "198.18.128.19",
            port: 53,
            probes: 3,
            expect: { kind: "answer", pods: ["pod1"] },
          },
        ],
      },
      {
        name: "no endpoints",
        objects: [
          thisNode(),
          service("dns", { clusterIPs: ["198.18.128.19"], ports: DNS }),
          endpointSlice("dns", { ports: DNS_TARGET, endpoints: [] }),
        ],
        checks: [
          {
            // As upstream: a service without serving endpoints is left alone (its flows have
            // nowhere to go), and the reject rules only see new flows.
            name: "the same flow stays on pod1",
            from: "pod3",
            protocol: "UDP",
            ip: "198.18.128.19",
            port: 53,
            sourcePort: 40053,
            establishedFlow: true,
            expect: { kind: "answer", pods: ["pod1"] },
          },
          {
            name: "a new flow is refused",
            from: "node",
            protocol: "UDP",
            ip: "198.18.128.19",
            port: 53,
            expect: { kind: "refused" },
          },
        ],
      },
      {
        name: "an endpoint again, pod2",
        objects: [
          thisNode(),
          service("dns", { clusterIPs: ["198.18.128.19"], ports: DNS }),
          endpointSlice("dns", { ports: DNS_TARGET, endpoints: [local(2)] }),
        ],
        checks: [{
          name: "the same flow reaches pod2",
          from: "pod3",
          protocol: "UDP",
          ip: "198.18.128.19",
          port: 53,
          sourcePort: 40053,
          probes: 3,
          expect: { kind: "answer", pods: ["pod2"] },
        }],
      },
    ],
  },
  {
    // Upstream's conntrack reconciler (v1.32+): a flow is moved only when its endpoint no longer
    // serves, not when the rules stop picking it for new flows.
    name: "UDP flows stay on an endpoint while it serves (graceful drain, traffic policy)",
    pods: 4,
    steps: [
      {
        name: "one endpoint, pod0",
        objects: [
          thisNode(),
          service("drain", { clusterIPs: ["198.18.128.21"], ports: DNS }),
          endpointSlice("drain", { ports: DNS_TARGET, endpoints: [local(0)] }),
        ],
        checks: [{
          name: "a flow reaches pod0",
          from: "pod3",
          protocol: "UDP",
          ip: "198.18.128.21",
          port: 53,
          sourcePort: 40054,
          probes: 2,
          expect: { kind: "answer", pods: ["pod0"] },
        }],
      },
      {
        name: "pod0 terminating but serving, pod1 ready",
        objects: [
          thisNode(),
          service("drain", { clusterIPs: ["198.18.128.21"], ports: DNS }),
          endpointSlice("drain", {
            ports: DNS_TARGET,
            endpoints: [local(0, { ready: false, serving: true, terminating: true }), remote(1)],
          }),
        ],
        checks: [
          {
            name: "the flow stays on pod0",
            from: "pod3",
            protocol: "UDP",
            ip: "198.18.128.21",
            port: 53,
            sourcePort: 40054,
            probes: 2,
            establishedFlow: true,
            expect: { kind: "answer", pods: ["pod0"] },
          },
          {
            name: "new flows go to pod1",
            from: "node",
            protocol: "UDP",
            ip: "198.18.128.21",
            port: 53,
            probes: 4,
            expect: { kind: "answer", pods: ["pod1"] },
          },
        ],
      },
      {
        name: "pod0 stops serving",
        objects: [
          thisNode(),
          service("drain", { clusterIPs: ["198.18.128.21"], ports: DNS }),
          endpointSlice("drain", {
            ports: DNS_TARGET,
            endpoints: [local(0, { ready: false, serving: false, terminating: true }), remote(1)],
          }),
        ],
        checks: [{
          name: "the flow moves to pod1",
          from: "pod3",
          protocol: "UDP",
          ip: "198.18.128.21",
          port: 53,
          sourcePort: 40054,
          probes: 2,
          expect: { kind: "answer", pods: ["pod1"] },
        }],
      },
      {
        name: "internalTrafficPolicy Local: pod2 here, pod1 elsewhere",
        objects: [
          thisNode(),
          service("drain", {
            clusterIPs: ["198.18.128.21"],
            ports: DNS,
            internalTrafficPolicy: "Local",
          }),
          endpointSlice("drain", { ports: DNS_TARGET, endpoints: [local(2), remote(1)] }),
        ],
        checks: [
          {
            name: "the flow stays on pod1, which still serves",
            from: "pod3",
            protocol: "UDP",
            ip: "198.18.128.21",
            port: 53,
            sourcePort: 40054,
            probes: 2,
            establishedFlow: true,
            expect: { kind: "answer", pods: ["pod1"] },
          },
          {
            name: "new flows go to the local pod2",
            from: "node",
            protocol: "UDP",
            ip: "198.18.128.21",
            port: 53,
            probes: 4,
            expect: { kind: "answer", pods: ["pod2"] },
          },
        ],
      },
    ],
  },
  {
    name: "terminating endpoints still serve when none is ready",
    pods: 3,
    steps: [{
      name: "only serving-terminating endpoints (and one not serving)",
      objects: [
        thisNode(),
        service("draining", { clusterIPs: ["198.18.128.20"], ports: HTTP }),
        endpointSlice("draining", {
          ports: HTTP_TARGET,
          endpoints: [
            local(0, { ready: false, serving: true, terminating: true }),
            remote(1, { ready: false, serving: true, terminating: true }),
            local(2, { ready: false, serving: false, terminating: true }),
          ],
        }),
      ],
      checks: [{
        name: "the serving endpoints answer, the non-serving one never",
        from: "node",
        ip: "198.18.128.20",
        port: 80,
        probes: 30,
        expect: { kind: "answer", pods: ["pod0", "pod1"], minEach: 3 },
      }],
    }],
  },
  {
    name: "loadBalancerSourceRanges admit only listed sources",
    pods: 2,
    secondClient: true,
    steps: [{
      name: "LoadBalancer open to 198.19.0.0/24 only",
      objects: [
        thisNode(),
        service("lb-ranges", {
          type: "LoadBalancer",
          clusterIPs: ["198.18.128.21"],
          ports: [{ name: "http", port: 80, nodePort: 30085 }],
          loadBalancerIPs: ["198.18.200.20"],
          loadBalancerSourceRanges: ["198.19.0.0/24"],
        }),
        endpointSlice("lb-ranges", { ports: HTTP_TARGET, endpoints: [local(0), local(1)] }),
      ],
      checks: [
        {
          name: "the listed client reaches the LoadBalancer IP",
          from: "client",
          ip: "198.18.200.20",
          port: 80,
          probes: 10,
          expect: { kind: "answer", pods: ["pod0", "pod1"] },
        },
        {
          name: "the other client is dropped",
          from: "client2",
          ip: "198.18.200.20",
          port: 80,
          probes: 2,
          timeoutMs: DROP_MS,
          expect: { kind: "dropped" },
        },
        {
          name: "the other client still reaches the NodePort (ranges apply to LB IPs only)",
          from: "client2",
          ip: NODE_IP,
          port: 30085,
          probes: 10,
          expect: { kind: "answer", pods: ["pod0", "pod1"] },
        },
      ],
    }],
  },
  {
    name: "hairpin: a pod reaches itself through its service",
    pods: 2,
    steps: [{
      name: "service whose only endpoint is pod0",
      objects: [
        thisNode(),
        service("hairpin", { clusterIPs: ["198.18.128.22"], ports: HTTP }),
        endpointSlice("hairpin", { ports: HTTP_TARGET, endpoints: [local(0)] }),
      ],
      checks: [
        {
          name: "pod0 reaches itself, masqueraded to the node",
          from: "pod0",
          ip: "198.18.128.22",
          port: 80,
          probes: 5,
          expect: { kind: "answer", pods: ["pod0"], clientIP: "node" },
        },
        {
          name: "pod1 reaches pod0 with its own address",
          from: "pod1",
          ip: "198.18.128.22",
          port: 80,
          probes: 5,
          expect: { kind: "answer", pods: ["pod0"], clientIP: "preserved" },
        },
      ],
    }],
  },
  {
    name: "LoadBalancer IP from the external client",
    pods: 3,
    steps: [{
      name: "LoadBalancer with a VIP-mode and a Proxy-mode ingress IP",
      objects: [
        thisNode(),
        service("lb", {
          type: "LoadBalancer",
          clusterIPs: ["198.18.128.23"],
          ports: [{ name: "http", port: 80, nodePort: 30086 }],
          loadBalancerIPs: ["198.18.200.30", { ip: "198.18.200.31", ipMode: "Proxy" }],
        }),
        endpointSlice("lb", { ports: HTTP_TARGET, endpoints: [local(0), local(1), remote(2)] }),
      ],
      checks: [
        {
          name: "the LoadBalancer IP reaches every endpoint",
          from: "client",
          ip: "198.18.200.30",
          port: 80,
          probes: 60,
          expect: { kind: "answer", pods: ["pod0", "pod1", "pod2"], minEach: 5, clientIP: "node" },
        },
        {
          name: "its NodePort works too",
          from: "client",
          ip: NODE_IP,
          port: 30086,
          probes: 10,
          expect: { kind: "answer", pods: ["pod0", "pod1", "pod2"] },
        },
        {
          name: "a Proxy-mode ingress IP gets no rules",
          from: "client",
          ip: "198.18.200.31",
          port: 80,
          timeoutMs: DROP_MS,
          expect: { kind: "timeout" },
        },
      ],
    }],
  },
  {
    name: "IPv6 ClusterIP",
    pods: 3,
    steps: [{
      name: "IPv6 service with TCP and UDP ports",
      objects: [
        thisNode(),
        service("web6", { clusterIPs: ["fd00:128::10"], ports: [...HTTP, ...DNS] }),
        endpointSlice("web6", {
          family: "IPv6",
          ports: [...HTTP_TARGET, ...DNS_TARGET],
          endpoints: [local(0), remote(1)],
        }),
      ],
      checks: [
        {
          name: "the node reaches both endpoints",
          from: "node",
          ip: "fd00:128::10",
          port: 80,
          probes: 30,
          expect: { kind: "answer", pods: ["pod0", "pod1"], minEach: 3, clientIP: "node" },
        },
        {
          name: "a pod reaches both endpoints with its own address (TCP)",
          from: "pod2",
          ip: "fd00:128::10",
          port: 80,
          probes: 10,
          expect: { kind: "answer", pods: ["pod0", "pod1"], clientIP: "preserved" },
        },
        {
          name: "a pod reaches both endpoints with its own address (UDP)",
          from: "pod2",
          protocol: "UDP",
          ip: "fd00:128::10",
          port: 53,
          probes: 10,
          expect: { kind: "answer", pods: ["pod0", "pod1"], clientIP: "preserved" },
        },
      ],
    }],
  },
];

/**
 * Registers the shared scenario table as `Deno.test`s named `<backend>: <scenario>`, each on
 * its own topology. Ignored (with a warning) without root or `ip netns`.
 */
export function runScenarioTable(
  backend: ScenarioBackend,
  options: ScenarioTableOptions = {},
): void {
  registerScenarioTests(backend, SCENARIOS, options);
}
