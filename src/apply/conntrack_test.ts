/**
 * The UDP conntrack reconciler (upstream's CleanStaleEntries): when it runs, which entries are
 * stale, the `conntrack` argv, and the list-then-delete loop against a fake runner.
 * IP plan: ClusterIP 198.18.128.53, external IP 198.19.0.53, endpoints 198.18.1.x (port 5353),
 * client pods 198.18.2.x, node 198.18.0.10, a non-service 198.18.3.3; IPv6 under fd00::/8.
 */
import assert from "node:assert/strict";
import {
  type RawEndpoint,
  rawService,
  rawSlice,
  snapshotOf,
} from "../render/nftables/_fixtures.ts";
import {
  conntrackCleanupRequired,
  conntrackDeleteArgs,
  conntrackDeleteFilters,
  deletedCount,
  parseConntrackList,
  reconcileConntrack,
  servingFrontends,
  staleConntrackEntries,
} from "./conntrack.ts";

const DNS = { name: "dns", protocol: "UDP", port: 53 };

function snapshot(
  endpoints: readonly (string | RawEndpoint)[],
  extra: Record<string, unknown> = {},
) {
  return snapshotOf([
    rawService("dns", {
      type: "NodePort",
      clusterIPs: ["198.18.128.53"],
      externalIPs: ["198.19.0.53"],
      ports: [{ ...DNS, nodePort: 30053 }],
      ...extra,
    }),
    rawService("web", { clusterIPs: ["198.18.128.80"], ports: [{ port: 80 }] }),
    rawSlice(
      "dns",
      { ...DNS, port: 5353 },
      endpoints.map((ep) => typeof ep === "string" ? { ip: ep } : ep),
    ),
  ]);
}

const LISTING = [
  // 40001 pinned to a serving endpoint: kept.
  "udp      17 118 src=198.18.2.1 dst=198.18.128.53 sport=40001 dport=53 src=198.18.1.1 dst=198.18.2.1 sport=5353 dport=40001 [ASSURED] mark=0 use=1",
  // 40002 pinned to an endpoint that is gone: stale.
  "udp      17 29 src=198.18.2.2 dst=198.18.128.53 sport=40002 dport=53 src=198.18.1.9 dst=198.18.2.2 sport=5353 dport=40002 mark=0 use=1",
  // 40003 never NATed (sent before the service had endpoints): stale.
  "udp      17 29 src=198.18.2.3 dst=198.18.128.53 sport=40003 dport=53 [UNREPLIED] src=198.18.128.53 dst=198.18.2.3 sport=53 dport=40003 mark=0 use=1",
  // 40004 to the external IP, pinned to a serving endpoint: kept.
  "udp      17 29 src=198.19.0.2 dst=198.19.0.53 sport=40004 dport=53 src=198.18.1.2 dst=198.19.0.2 sport=5353 dport=40004 mark=0 use=1",
  // 40005 to the NodePort, on a serving endpoint's address but another port: stale.
  "udp      17 29 src=198.19.0.2 dst=198.18.0.10 sport=40005 dport=30053 src=198.18.1.2 dst=198.19.0.2 sport=9999 dport=40005 mark=0 use=1",
  // 40006 to the NodePort, on a serving endpoint: kept.
  "udp      17 29 src=198.19.0.2 dst=198.18.0.10 sport=40006 dport=30053 src=198.18.1.2 dst=198.19.0.2 sport=5353 dport=40006 mark=0 use=1",
  // 40007 not a service: kept.
  "udp      17 29 src=198.18.2.1 dst=198.18.3.3 sport=40007 dport=53 src=198.18.3.3 dst=198.18.2.1 sport=53 dport=40007 mark=0 use=1",
  // 40008 the TCP service's address on UDP: not a UDP service, kept.
  "udp      17 29 src=198.18.2.1 dst=198.18.128.80 sport=40008 dport=80 src=198.18.128.80 dst=198.18.2.1 sport=80 dport=40008 mark=0 use=1",
  // 40010 to the service port, pinned to a serving endpoint's address at another port: stale.
  "udp      17 29 src=198.18.2.4 dst=198.18.128.53 sport=40010 dport=53 src=198.18.1.1 dst=198.18.2.4 sport=9999 dport=40010 mark=0 use=1",
  "tcp      6 431999 ESTABLISHED src=198.18.2.1 dst=198.18.128.53 sport=40009 dport=53 src=198.18.1.9 dst=198.18.2.1 sport=5353 dport=40009 [ASSURED] mark=0 use=1",
  "garbage line",
].join("\n");

function staleSourcePorts(snap: ReturnType<typeof snapshot>): number[] {
  const entries = parseConntrackList(LISTING, "IPv4");
  return staleConntrackEntries(servingFrontends(snap, "IPv4"), entries).map((e) => e.origSrcPort);
}

Deno.test("parseConntrackList reads UDP entries, canonical addresses, and skips the rest", () => {
  const entries = parseConntrackList(LISTING, "IPv4");
  assert.equal(entries.length, 9);
  assert.deepEqual(entries[2], {
    family: "IPv4",
    origSrc: "198.18.2.3",
    origDst: "198.18.128.53",
    origSrcPort: 40003,
    origDstPort: 53,
    replySrc: "198.18.128.53",
    replySrcPort: 53,
  });
  const v6 = parseConntrackList(
    "udp      17 29 src=fd00:2:0::1 dst=fd00:128::35 sport=1 dport=53 src=fd00:1::1 dst=fd00:2::1 sport=5353 dport=1 mark=0 use=1",
    "IPv6",
  );
  assert.equal(v6[0]?.origSrc, "fd00:2::1");
  assert.equal(v6[0]?.replySrc, "fd00:1::1");
});

Deno.test("stale: flows whose reply does not come from a serving endpoint (address and port)", () => {
  assert.deepEqual(staleSourcePorts(snapshot(["198.18.1.1", "198.18.1.2"])), [
    40002,
    40003,
    40005,
    40010,
  ]);
});

Deno.test("a service without serving endpoints is left alone, as upstream", () => {
  assert.deepEqual(staleSourcePorts(snapshot([])), []);
  assert.deepEqual(
    staleSourcePorts(snapshot([{ ip: "198.18.1.1", ready: false, serving: false }])),
    [],
  );
});

Deno.test("terminating-but-serving endpoints keep their flows (graceful drain)", () => {
  // 198.18.1.1 is terminating but serving; 198.18.1.2 is ready: the rules send new flows only
  // to .2, but flows pinned to .1 stay where they are.
  const snap = snapshot([
    { ip: "198.18.1.1", ready: false, serving: true, terminating: true },
    "198.18.1.2",
  ]);
  const dns = snap.servicePorts.find((sp) => sp.name === "dns")?.families[0];
  assert.deepEqual(dns?.clusterEndpoints.map((ep) => ep.ip), ["198.18.1.2"]);
  assert.deepEqual(staleSourcePorts(snap), [40002, 40003, 40005, 40010]);
  // Once it stops serving, its flows go.
  const gone = snapshot([
    { ip: "198.18.1.1", ready: false, serving: false, terminating: true },
    "198.18.1.2",
  ]);
  assert.deepEqual(staleSourcePorts(gone), [40001, 40002, 40003, 40005, 40010]);
});

Deno.test("endpoints a traffic policy does not pick keep their flows", () => {
  // internalTrafficPolicy Local: only this node's endpoint gets new ClusterIP flows; the remote
  // one still serves, so flows pinned to it stay.
  const snap = snapshot([{ ip: "198.18.1.1", node: "node-b" }, "198.18.1.2"], {
    type: "ClusterIP",
    externalIPs: [],
    ports: [DNS],
    internalTrafficPolicy: "Local",
  });
  const dns = snap.servicePorts.find((sp) => sp.name === "dns")?.families[0];
  assert.deepEqual(dns?.localEndpoints.map((ep) => ep.ip), ["198.18.1.2"]);
  assert.deepEqual(staleSourcePorts(snap), [40002, 40003, 40010]);
});

Deno.test("delete filters: one per service address and pinned endpoint, NodePorts on any address", () => {
  const snap = snapshot(["198.18.1.1", "198.18.1.2"]);
  const frontends = servingFrontends(snap, "IPv4");
  const entries = parseConntrackList(LISTING, "IPv4");
  // Two flows pinned to the same gone endpoint make one filter.
  const twice = [...entries, { ...entries[1]!, origSrc: "198.18.2.9", origSrcPort: 41000 }];
  const filters = conntrackDeleteFilters(frontends, staleConntrackEntries(frontends, twice));
  assert.deepEqual(filters.map(conntrackDeleteArgs).map((a) => a.join(" ")), [
    "-D -f ipv4 -p udp --orig-dst 198.18.128.53 --orig-port-dst 53 --reply-src 198.18.1.9 --reply-port-src 5353",
    "-D -f ipv4 -p udp --orig-dst 198.18.128.53 --orig-port-dst 53 --reply-src 198.18.128.53 --reply-port-src 53",
    "-D -f ipv4 -p udp --orig-port-dst 30053 --reply-src 198.18.1.2 --reply-port-src 9999",
    "-D -f ipv4 -p udp --orig-dst 198.18.128.53 --orig-port-dst 53 --reply-src 198.18.1.1 --reply-port-src 9999",
  ]);
});

Deno.test("conntrackCleanupRequired: first sync with UDP, and UDP service ports that changed", () => {
  const one = snapshot(["198.18.1.1"]);
  const two = snapshot(["198.18.1.1", "198.18.1.2"]);
  const tcpOnly = snapshotOf([
    rawService("web", { clusterIPs: ["198.18.128.80"], ports: [{ port: 80 }] }),
  ]);
  assert.equal(conntrackCleanupRequired(null, one), true);
  assert.equal(conntrackCleanupRequired(null, tcpOnly), false);
  assert.equal(conntrackCleanupRequired(one, one), false);
  assert.equal(conntrackCleanupRequired(one, two), true);
  assert.equal(conntrackCleanupRequired(one, two, ["default/dns:dns"]), true);
  assert.equal(conntrackCleanupRequired(one, two, ["default/web"]), false);
  // A UDP service that went away.
  assert.equal(conntrackCleanupRequired(one, tcpOnly), true);
});

Deno.test("deletedCount reads conntrack's summary line", () => {
  const r = (stderr: string, code = 0) => ({ code, stdout: "", stderr });
  assert.equal(
    deletedCount(r("conntrack v1.4.7 (conntrack-tools): 3 flow entries have been deleted.\n")),
    3,
  );
  assert.equal(deletedCount(r("conntrack v1.4.7: 0 flow entries have been deleted.", 1)), 0);
  assert.equal(deletedCount(r("conntrack: operation failed", 1)), 0);
});

Deno.test("reconcileConntrack lists each family once, deletes stale flows, and reports", async () => {
  const calls: string[] = [];
  const logs: string[] = [];
  let clock = 0;
  const reports = await reconcileConntrack(
    snapshot(["198.18.1.1", "198.18.1.2"]),
    ["IPv4", "IPv6"],
    (args) => {
      calls.push(args.join(" "));
      clock += 5;
      if (args[0] === "-L") return Promise.resolve({ code: 0, stdout: LISTING, stderr: "" });
      // The never-NATed flow ended by itself meanwhile.
      return Promise.resolve(
        args.includes("198.18.128.53") && args.includes("--reply-src") &&
          args[args.indexOf("--reply-src") + 1] === "198.18.128.53"
          ? { code: 1, stdout: "", stderr: "0 flow entries have been deleted." }
          : { code: 0, stdout: "", stderr: "1 flow entries have been deleted." },
      );
    },
    { log: (line) => logs.push(line), now: () => clock },
  );
  // The snapshot has no IPv6 UDP service: that table is not even listed.
  assert.deepEqual(calls.filter((c) => c.startsWith("-L")), ["-L -f ipv4 -p udp"]);
  assert.equal(calls.filter((c) => c.startsWith("-D")).length, 4);
  assert.deepEqual(reports, [
    { family: "IPv4", deleted: 3, durationSeconds: 0.025 },
    { family: "IPv6", deleted: 0, durationSeconds: 0 },
  ]);
  assert.deepEqual(logs, []);
});

Deno.test("reconcileConntrack: a table that cannot be listed is logged and not reported", async () => {
  const logs: string[] = [];
  const reports = await reconcileConntrack(
    snapshot(["198.18.1.1"]),
    ["IPv4"],
    () => Promise.resolve({ code: 1, stdout: "", stderr: "conntrack: operation failed\n" }),
    { log: (line) => logs.push(line) },
  );
  assert.deepEqual(reports, []);
  assert.deepEqual(logs, [
    "conntrack -L -f ipv4 -p udp exited with 1: conntrack: operation failed",
  ]);
});
