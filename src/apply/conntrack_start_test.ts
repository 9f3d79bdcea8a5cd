/**
 * First-sync UDP conntrack clean-up: parsing `conntrack -L`, choosing stale entries, and the
 * list-then-delete loop against a fake runner. IP plan: see render/nftables/_fixtures.ts
 * (ClusterIP 198.18.128.53, endpoints 198.18.1.x, client pods 198.18.2.x, node 198.18.0.10).
 */
import assert from "node:assert/strict";
import { rawService, rawSlice, snapshotOf } from "../render/nftables/_fixtures.ts";
import {
  clearStaleConntrackAtStart,
  conntrackDeleteEntryArgs,
  parseConntrackList,
  staleConntrackEntries,
} from "./conntrack_start.ts";

const DNS = { name: "dns", protocol: "UDP", port: 53 };

function snapshot(endpoints: string[]) {
  return snapshotOf([
    rawService("dns", {
      type: "NodePort",
      clusterIPs: ["198.18.128.53"],
      externalIPs: ["198.19.0.53"],
      ports: [{ ...DNS, nodePort: 30053 }],
    }),
    rawService("web", { clusterIPs: ["198.18.128.80"], ports: [{ port: 80 }] }),
    rawSlice("dns", { ...DNS, port: 5353 }, endpoints.map((ip) => ({ ip }))),
  ]);
}

const LISTING = [
  // Pinned to a usable endpoint: kept.
  "udp      17 118 src=198.18.2.1 dst=198.18.128.53 sport=40001 dport=53 src=198.18.1.1 dst=198.18.2.1 sport=5353 dport=40001 [ASSURED] mark=0 use=1",
  // Pinned to an endpoint that is gone: stale.
  "udp      17 29 src=198.18.2.2 dst=198.18.128.53 sport=40002 dport=53 src=198.18.1.9 dst=198.18.2.2 sport=5353 dport=40002 mark=0 use=1",
  // Never NATed (sent before the service had endpoints): stale.
  "udp      17 29 src=198.18.2.3 dst=198.18.128.53 sport=40003 dport=53 [UNREPLIED] src=198.18.128.53 dst=198.18.2.3 sport=53 dport=40003 mark=0 use=1",
  // To the external IP, pinned to a usable endpoint: kept.
  "udp      17 29 src=198.19.0.2 dst=198.19.0.53 sport=40004 dport=53 src=198.18.1.2 dst=198.19.0.2 sport=5353 dport=40004 mark=0 use=1",
  // To the NodePort, on a usable endpoint but the wrong port: stale.
  "udp      17 29 src=198.19.0.2 dst=198.18.0.10 sport=40005 dport=30053 src=198.18.1.2 dst=198.19.0.2 sport=9999 dport=40005 mark=0 use=1",
  // To the NodePort, on a usable endpoint: kept.
  "udp      17 29 src=198.19.0.2 dst=198.18.0.10 sport=40006 dport=30053 src=198.18.1.2 dst=198.19.0.2 sport=5353 dport=40006 mark=0 use=1",
  // Not a service: kept.
  "udp      17 29 src=198.18.2.1 dst=198.18.3.3 sport=40007 dport=53 src=198.18.3.3 dst=198.18.2.1 sport=53 dport=40007 mark=0 use=1",
  // The TCP service's address on UDP: not a UDP service, kept.
  "udp      17 29 src=198.18.2.1 dst=198.18.128.80 sport=40008 dport=80 src=198.18.128.80 dst=198.18.2.1 sport=80 dport=40008 mark=0 use=1",
  "tcp      6 431999 ESTABLISHED src=198.18.2.1 dst=198.18.128.53 sport=40009 dport=53 src=198.18.1.9 dst=198.18.2.1 sport=5353 dport=40009 [ASSURED] mark=0 use=1",
  "garbage line",
].join("\n");

Deno.test("parseConntrackList reads UDP entries and skips the rest", () => {
  const entries = parseConntrackList(LISTING, "IPv4");
  assert.equal(entries.length, 8);
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
    "udp      17 29 src=fd00:2::1 dst=fd00:128::35 sport=1 dport=53 src=fd00:1::1 dst=fd00:2::1 sport=5353 dport=1 mark=0 use=1",
    "IPv6",
  );
  assert.equal(v6[0]?.replySrc, "fd00:1::1");
});

Deno.test("staleConntrackEntries keeps flows to usable endpoints only", () => {
  const stale = staleConntrackEntries(
    snapshot(["198.18.1.1", "198.18.1.2"]),
    parseConntrackList(LISTING, "IPv4"),
  );
  assert.deepEqual(stale.map((e) => e.origSrcPort), [40002, 40003, 40005]);
  // Without endpoints, every flow to the service is stale.
  const none = staleConntrackEntries(snapshot([]), parseConntrackList(LISTING, "IPv4"));
  assert.deepEqual(none.map((e) => e.origSrcPort), [40001, 40002, 40003, 40004, 40005, 40006]);
});

Deno.test("conntrackDeleteEntryArgs names exactly one flow", () => {
  const [entry] = parseConntrackList(LISTING, "IPv4");
  assert.deepEqual(conntrackDeleteEntryArgs(entry!), [
    "-D",
    "-f",
    "ipv4",
    "-p",
    "udp",
    "--orig-src",
    "198.18.2.1",
    "--orig-dst",
    "198.18.128.53",
    "--orig-port-src",
    "40001",
    "--orig-port-dst",
    "53",
  ]);
});

Deno.test("clearStaleConntrackAtStart lists each family once and deletes stale flows", async () => {
  const calls: string[] = [];
  const logs: string[] = [];
  const deleted = await clearStaleConntrackAtStart(
    snapshot(["198.18.1.1", "198.18.1.2"]),
    ["IPv4", "IPv6"],
    (args) => {
      calls.push(args.join(" "));
      if (args[0] === "-L") {
        return Promise.resolve(
          args[2] === "ipv4"
            ? { code: 0, stdout: LISTING, stderr: "" }
            : { code: 1, stdout: "", stderr: "conntrack: operation failed" },
        );
      }
      // The second flow ended by itself meanwhile.
      return Promise.resolve(
        args.includes("40003")
          ? { code: 1, stdout: "", stderr: "0 flow entries have been deleted." }
          : { code: 0, stdout: "", stderr: "" },
      );
    },
    (line) => logs.push(line),
  );
  assert.equal(deleted, 2);
  assert.deepEqual(calls.filter((c) => c.startsWith("-L")), [
    "-L -f ipv4 -p udp",
    "-L -f ipv6 -p udp",
  ]);
  assert.equal(calls.filter((c) => c.startsWith("-D")).length, 3);
  assert.deepEqual(logs, [
    "conntrack -L -f ipv6 -p udp exited with 1: conntrack: operation failed",
  ]);
});
