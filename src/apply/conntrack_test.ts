/**
 * Which UDP conntrack entries go when endpoints change (pure), and the `conntrack` argv.
 * IP plan: ClusterIPs 198.18.128.0/17, external IPs 198.18.200.0/24, pods 198.18.1.0/24.
 */
import assert from "node:assert/strict";
import { rawService, rawSlice, snapshotOf } from "../render/nftables/_fixtures.ts";
import { conntrackDeleteArgs, staleConntrackFilters } from "./conntrack.ts";

const DNS = { name: "dns", protocol: "UDP", port: 53 };
const DNS_SPEC = {
  type: "NodePort",
  clusterIPs: ["198.18.128.53"],
  externalIPs: ["198.18.200.53"],
  ports: [{ ...DNS, nodePort: 30053 }],
};

function dns(endpoints: string[], protocol = "UDP") {
  const port = { ...DNS, protocol };
  return snapshotOf([
    rawService("dns", { ...DNS_SPEC, ports: [{ ...port, nodePort: 30053 }] }),
    ...(endpoints.length > 0 ? [rawSlice("dns", port, endpoints.map((ip) => ({ ip })))] : []),
  ]);
}

Deno.test("a UDP endpoint that goes away: its flows to every service address are deleted", () => {
  const filters = staleConntrackFilters(dns(["198.18.1.1", "198.18.1.2"]), dns(["198.18.1.2"]));
  assert.deepEqual(filters, [
    { family: "IPv4", origDst: "198.18.128.53", origDstPort: 53, dnatTo: "198.18.1.1" },
    { family: "IPv4", origDst: "198.18.200.53", origDstPort: 53, dnatTo: "198.18.1.1" },
    { family: "IPv4", origDst: null, origDstPort: 30053, dnatTo: "198.18.1.1" },
  ]);
});

Deno.test("a UDP service that gets its first endpoint: every flow to it is deleted", () => {
  const filters = staleConntrackFilters(dns([]), dns(["198.18.1.1"]));
  assert.deepEqual(filters, [
    { family: "IPv4", origDst: "198.18.128.53", origDstPort: 53, dnatTo: null },
    { family: "IPv4", origDst: "198.18.200.53", origDstPort: 53, dnatTo: null },
    { family: "IPv4", origDst: null, origDstPort: 30053, dnatTo: null },
  ]);
  // From nothing at all (first sync) too; unchanged ports and TCP need nothing.
  assert.equal(staleConntrackFilters(null, dns(["198.18.1.1"])).length, 3);
  assert.deepEqual(staleConntrackFilters(dns(["198.18.1.1"]), dns(["198.18.1.1"])), []);
  assert.deepEqual(staleConntrackFilters(dns(["198.18.1.1"], "TCP"), dns([], "TCP")), []);
  // `changed` limits the work to those ids.
  assert.deepEqual(staleConntrackFilters(dns([]), dns(["198.18.1.1"]), ["default/other"]), []);
});

Deno.test("a deleted UDP service: flows to its endpoints are deleted", () => {
  const filters = staleConntrackFilters(dns(["198.18.1.1"]), snapshotOf([]));
  assert.equal(filters.length, 3);
  assert.ok(filters.every((f) => f.dnatTo === "198.18.1.1"));
});

Deno.test("conntrack argv names family, protocol, destination and NAT target", () => {
  assert.deepEqual(
    conntrackDeleteArgs({
      family: "IPv4",
      origDst: "198.18.128.53",
      origDstPort: 53,
      dnatTo: "198.18.1.1",
    }),
    [
      "-D",
      "-f",
      "ipv4",
      "-p",
      "udp",
      "--orig-dst",
      "198.18.128.53",
      "--orig-port-dst",
      "53",
      "--dst-nat",
      "198.18.1.1",
    ],
  );
  assert.deepEqual(
    conntrackDeleteArgs({ family: "IPv6", origDst: null, origDstPort: 30053, dnatTo: null }),
    ["-D", "-f", "ipv6", "-p", "udp", "--orig-port-dst", "30053"],
  );
});
