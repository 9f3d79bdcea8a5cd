/**
 * Seeds that found a divergence, kept so the regular suite (`conformance_test.ts`) runs them
 * against upstream again. Each says what it found and carries a predicate on the generated
 * cluster: when the generator changes, `regression_seeds_test.ts` fails until the seed is
 * replaced by one that still builds the cluster that caught the bug. Pure.
 *
 * @module
 */
import { type ClusterModel, endpointPod, familyOf, type ServiceModel } from "./cluster_model.ts";
import type { ConformanceMode } from "./lab.ts";

/** A kept seed. */
export interface RegressionSeed {
  /** The seed. */
  readonly seed: number;
  /** Backends it found the divergence in. */
  readonly modes: readonly ConformanceMode[];
  /** What differed, and what fixed it. */
  readonly found: string;
  /** True when a round of the seed still has the shape that caught the divergence. */
  readonly covers: (cluster: ClusterModel) => boolean;
}

function hasReadyEndpoint(svc: ServiceModel, family: string, node: "A" | "B"): boolean {
  return svc.slices.some((slice) =>
    slice.family === family &&
    slice.ports.some((p) =>
      svc.ports.some((sp) => sp.name === p.name && sp.protocol === p.protocol)
    ) &&
    slice.endpoints.some((ep) =>
      (ep.ready ?? true) && endpointPod(ep).node === node && (node === "B" || ep.nodeName)
    )
  );
}

function localCopies(s: ServiceModel): boolean {
  const local = new Map<string, Set<boolean>>();
  for (const slice of s.slices) {
    for (const ep of slice.endpoints) {
      const key = `${slice.family} ${ep.pod}`;
      if (!local.has(key)) local.set(key, new Set());
      local.get(key)!.add(ep.nodeName && endpointPod(ep).node === "A");
    }
  }
  return [...local.values()].some((v) => v.size === 2);
}

/** True when the slices send an SCTP port of `s` to more endpoints (pod:port) than pods. */
function sctpPodOnSeveralPorts(s: ServiceModel): boolean {
  return s.ports.some((sp) => {
    if (sp.protocol !== "SCTP") return false;
    const endpoints = new Set<string>();
    const pods = new Set<string>();
    for (const slice of s.slices) {
      for (const p of slice.ports) {
        if (p.name !== sp.name || p.protocol !== sp.protocol) continue;
        for (const ep of slice.endpoints) {
          endpoints.add(`${slice.family} ${ep.pod}:${p.port}`);
          pods.add(`${slice.family} ${ep.pod}`);
        }
      }
    }
    return endpoints.size >= pods.size + 2;
  });
}

/** Every kept seed. */
export const REGRESSION_SEEDS: readonly RegressionSeed[] = [
  {
    seed: 2,
    modes: ["nftables"],
    found: "a harness flake, not a proxy difference (main's CI, s2-2): an SCTP port whose " +
      "slices send it to 7 endpoints on 4 pods (a1:8081 and a1:8082...). Probes were counted " +
      "by pods, so endpoint sets differed by luck, and the raw-socket SCTP probe sent its INIT " +
      "once, so one packet lost on a loaded machine read as a drop (1 of 45). Now probes count " +
      "endpoints, the INIT is sent again every second as an SCTP stack does, rechecks wait 3 s",
    covers: (c) => c.services.some(sctpPodOnSeveralPorts),
  },
  {
    seed: 21,
    modes: ["nftables"],
    found: "node A's own traffic to an ExternalIP / LoadBalancer IP of an eTP Local service " +
      "without local endpoints: kube-proxy short-circuits it to the cluster endpoints, kproxy " +
      "dropped it (its no-endpoint check ran before DNAT in the output hook; seed 15 showed the " +
      "same cause as a reject where kube-proxy's source-range firewall drops). Also " +
      "healthCheckNodePort servers per family of the service, as upstream's (seeds 1, 2): " +
      "kproxy answered on every family with the sum",
    covers: (c) =>
      c.services.some((s) => s.healthCheckNodePort !== null && s.ipFamilies.length === 2) &&
      c.services.some((s) =>
        s.externalTrafficPolicy === "Local" &&
        s.ipFamilies.some((f) =>
          !hasReadyEndpoint(s, f, "A") && hasReadyEndpoint(s, f, "B") &&
          [...s.externalIPs, ...s.ingress.filter((i) => i.ipMode !== "Proxy").map((i) => i.ip)]
            .some((ip) => ip !== null && familyOf(ip) === f)
        )
      ),
  },

  {
    seed: 38,
    modes: ["nftables"],
    found: "healthCheckNodePort count: kube-proxy counts local ready endpoints under every port " +
      "name the slices carry, also one no service port matches; kproxy counted only matched ports",
    covers: (c) =>
      c.services.some((s) =>
        s.healthCheckNodePort !== null &&
        s.slices.some((slice) =>
          slice.ports.some((p) =>
            !s.ports.some((sp) => sp.name === p.name && sp.protocol === p.protocol)
          ) &&
          slice.endpoints.some((ep) =>
            ep.nodeName && endpointPod(ep).node === "A" && (ep.ready ?? true)
          )
        )
      ),
  },
  {
    seed: 53,
    modes: ["nftables", "iptables"],
    found: "an endpoint in two slices, once with this node's name and once without: kube-proxy " +
      "keeps the local copy, kproxy kept the readier one",
    covers: (c) => c.services.some(localCopies),
  },
];
