/**
 * `kproxy explain --live` end to end: the real CLI runs inside a node namespace (`ip netns exec`)
 * where kproxy's rules are live, sends its packet and reads the kernel's trace; it agrees with
 * the prediction for a working and a broken destination, exits 1 when the kernel's rules and
 * the manifests it is given disagree, and leaves nothing behind (no trace chain, no table of its
 * own, no TUN device, no conntrack entry of its probe).
 *
 * IP plan: see topology.ts (node 198.18.0.1 / 198.19.0.1, pods 198.18.1.10+, client 198.19.0.2).
 */
import assert from "node:assert/strict";
import { IptablesApplier } from "../../src/apply/iptables_applier.ts";
import { NftablesApplier } from "../../src/apply/nftables_applier.ts";
import type { Applier } from "../../src/apply/applier.ts";
import { runToolResult } from "../../src/apply/run_tool.ts";
import { buildSnapshot } from "../../src/snapshot/proxy_state.ts";
import { conntrack, iptables, netns, nft, requiring } from "../requirements.ts";
import { endpointSlice, local, remote, service, thisNode } from "./manifests.ts";
import { parseScenarioObjects, scenarioSettings } from "./scenario_runner.ts";
import { createTopology, NODE_PRIMARY_IPV4, type Topology } from "./topology.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

const OBJECTS = [
  thisNode(),
  service("web", {
    type: "NodePort",
    clusterIPs: ["198.18.128.10"],
    ports: [{ name: "http", port: 80, nodePort: 30080 }],
  }),
  endpointSlice("web", { ports: [{ name: "http", port: 8080 }], endpoints: [local(0), remote(1)] }),
  service("sticky", {
    clusterIPs: ["198.18.128.12"],
    ports: [{ name: "http", port: 80 }],
    affinitySeconds: 600,
  }),
  endpointSlice("sticky", {
    ports: [{ name: "http", port: 8080 }],
    endpoints: [local(0), local(1), remote(2)],
  }),
];

/** An SCTP service (no pod listens: the trace of the INIT is what is checked). */
const SCTP_OBJECTS = [
  {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "diameter", namespace: "default" },
    spec: {
      clusterIP: "198.18.128.40",
      clusterIPs: ["198.18.128.40"],
      ports: [{ name: "d", protocol: "SCTP", port: 3868 }],
    },
  },
  {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: "diameter-1",
      namespace: "default",
      labels: { "kubernetes.io/service-name": "diameter" },
    },
    addressType: "IPv4",
    ports: [{ name: "d", protocol: "SCTP", port: 3868 }],
    endpoints: [{ addresses: ["198.18.1.10"], nodeName: "node-a" }],
  },
];

/** The same service, but with no endpoint: what the kernel's rules are not. */
const OBJECTS_EMPTY = [
  OBJECTS[0],
  OBJECTS[1],
  endpointSlice("web", {
    ports: [{ name: "http", port: 8080 }],
    endpoints: [],
  }),
];

const SCENARIO = { name: "explain --live", pods: 4, steps: [] };

async function writeManifests(objects: readonly unknown[]): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kproxy-explain-" });
  await Deno.writeTextFile(
    `${dir}/objects.json`,
    JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }),
  );
  return dir;
}

async function explainLive(
  topology: Topology,
  dir: string,
  mode: string,
  args: readonly string[],
): Promise<{ code: number; answer: Record<string, unknown>; stderr: string }> {
  const r = await runToolResult(Deno.execPath(), [
    "run",
    "-A",
    `${ROOT}/src/cli/main.ts`,
    "explain",
    "--live",
    "--manifests",
    dir,
    "--hostname-override",
    "node-a",
    "--cluster-cidr",
    "198.18.1.0/24,fd00:1::/64",
    "--proxy-mode",
    mode,
    "--nodeport-addresses",
    "primary",
    "-o",
    "json",
    ...args,
  ], { netns: topology.nodeNetns });
  let answer: Record<string, unknown> = {};
  try {
    answer = JSON.parse(r.stdout);
  } catch {
    throw new Error(`explain --live printed no JSON (exit ${r.code}): ${r.stdout}${r.stderr}`);
  }
  return { code: r.code, answer, stderr: r.stderr };
}

async function assertNothingLeft(topology: Topology): Promise<void> {
  const tables = await topology.exec("node", ["nft", "list", "tables"]);
  assert.doesNotMatch(tables.stdout, /kproxy-explain/, "no table of explain's own is left");
  const ruleset = await topology.exec("node", ["nft", "list", "ruleset"]);
  assert.doesNotMatch(ruleset.stdout, /explain-(trace|ready)/, "no trace or canary chain is left");
  const links = await topology.exec("node", ["ip", "-o", "link"]);
  assert.doesNotMatch(links.stdout, /: kpx/, "no TUN device is left");
}

for (const mode of ["nftables", "iptables"] as const) {
  Deno.test(requiring([netns, nft, iptables, conntrack], {
    name: `kproxy explain --live (${mode}) in a node namespace: agrees, and catches a disagreement`,
    sanitizeResources: false,
    async fn() {
      const topology = await createTopology({ pods: 4 });
      const dirs: string[] = [];
      try {
        const applier: Applier = mode === "nftables"
          ? new NftablesApplier({ netns: topology.nodeNetns })
          : new IptablesApplier({ netns: topology.nodeNetns });
        const snapshot = buildSnapshot(
          parseScenarioObjects(SCENARIO.name, [...OBJECTS, ...SCTP_OBJECTS]),
          scenarioSettings(SCENARIO),
        );
        await applier.sync({
          snapshot,
          changedServicePorts: snapshot.servicePorts.map((sp) => sp.id),
          full: true,
        });
        const dir = await writeManifests([...OBJECTS, ...SCTP_OBJECTS]);
        dirs.push(dir);

        // A working service: a pod to the ClusterIP (arrives through a TUN device).
        const pod = await explainLive(topology, dir, mode, [
          "--to",
          "198.18.128.10:80",
          "--from",
          "198.18.1.12",
        ]);
        assert.equal(pod.code, 0, pod.stderr);
        const live = pod.answer["live"] as {
          agrees: boolean;
          endpoint: string;
          problems: string[];
        };
        assert.ok(live.agrees, live.problems.join("; "));
        assert.ok(["198.18.1.10:8080", "198.18.1.11:8080"].includes(live.endpoint), live.endpoint);

        // The node itself to its NodePort (a raw socket): DNAT and masquerade.
        const node = await explainLive(topology, dir, mode, ["--to", `${NODE_PRIMARY_IPV4}:30080`]);
        assert.equal(node.code, 0, node.stderr);
        assert.ok((node.answer["live"] as { agrees: boolean }).agrees);

        // A broken destination: a port the service does not have.
        const wrong = await explainLive(topology, dir, mode, [
          "--to",
          "198.18.128.10:81",
          "--from",
          "198.19.0.2",
        ]);
        assert.equal(wrong.code, 0, wrong.stderr);
        assert.equal(
          (wrong.answer["verdict"] as { kind: string }).kind,
          mode === "nftables" ? "reject" : "routed",
        );

        // SCTP: an INIT with its CRC-32C, DNATed like any first packet.
        const sctp = await explainLive(topology, dir, mode, [
          "--to",
          "198.18.128.40:3868/sctp",
          "--from",
          "198.18.1.12",
        ]);
        assert.equal(sctp.code, 0, sctp.stderr);
        assert.equal((sctp.answer["live"] as { endpoint: string }).endpoint, "198.18.1.10:3868");

        // ClientIP affinity: once pod3 is pinned, explain reads the kernel's affinity state and
        // predicts that one endpoint, and the kernel agrees.
        const first = await topology.probe("pod3", {
          protocol: "TCP",
          ip: "198.18.128.12",
          port: 80,
        });
        assert.equal(first.kind, "answer");
        const sticky = await explainLive(topology, dir, mode, [
          "--to",
          "198.18.128.12:80",
          "--from",
          "198.18.1.13",
        ]);
        assert.equal(sticky.code, 0, sticky.stderr);
        const pinned = sticky.answer["affinity"] as { pinnedTo: string | null };
        const index = first.kind === "answer" ? Number(first.pod.slice(3)) : -1;
        assert.equal(
          pinned.pinnedTo,
          `198.18.1.${10 + index}:8080`,
          "the kernel's affinity state is read",
        );
        assert.equal((sticky.answer["endpoints"] as unknown[]).length, 1);
        assert.ok((sticky.answer["live"] as { agrees: boolean }).agrees);

        // Manifests that say "no endpoints" while the kernel still DNATs: exit 1, named.
        const stale = await writeManifests(OBJECTS_EMPTY);
        dirs.push(stale);
        const mismatch = await explainLive(topology, stale, mode, [
          "--to",
          "198.18.128.10:80",
          "--from",
          "198.18.1.12",
        ]);
        assert.equal(mismatch.code, 1, "a disagreement is exit 1");
        const m = mismatch.answer["live"] as { agrees: boolean; problems: string[] };
        assert.equal(m.agrees, false);
        assert.match(
          m.problems.join("\n"),
          /the kernel sent it to 198\.18\.1\.1[01]:8080; explain says reject/,
        );

        await assertNothingLeft(topology);
        const ct = await topology.exec("node", [
          "conntrack",
          "-L",
          "-p",
          "tcp",
          "--orig-src",
          "198.18.1.12",
        ]);
        assert.doesNotMatch(ct.stdout, /dport=80 /, "the probes' conntrack entries are gone");
      } finally {
        for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
        await topology.teardown();
      }
    },
  }));
}
