/**
 * The packet-trace reader: real `nft monitor` lines (nft 1.0.6) into per-packet paths and verdicts.
 * IP plan: node 198.18.0.1, ClusterIP 198.18.128.17, client 198.19.0.2.
 */
import assert from "node:assert/strict";
import { countedDrops, isProxyChain, parseDropCounters, parsePacketTraces } from "./drop_trace.ts";

const MONITOR = `add table inet kproxy-test-trace
# new generation 3 by process 26940 (nft)
trace id 153321fa inet kproxy-test-trace output packet: oif "null0" ip saddr 198.18.0.1 ip daddr 198.18.128.17 tcp dport 80
trace id 153321fa inet kproxy-test-trace output unknown rule handle 2 (verdict continue)
trace id 153321fa inet kproxy-test-trace output policy accept
trace id 153321fa ip kproxy nat-output packet: oif "null0" ip saddr 198.18.0.1 ip daddr 198.18.128.17
trace id 153321fa ip kproxy nat-output rule jump services (verdict jump services)
trace id 153321fa ip kproxy services rule ip daddr . meta l4proto . th dport vmap @service-ips (verdict continue)
trace id 153321fa ip kproxy filter-output rule ip daddr 198.18.128.17 tcp dport 80 drop (verdict drop)
trace id 9a0b1c2d ip filter KUBE-EXTERNAL-SERVICES packet: iif "ext0" ip saddr 198.19.0.2
trace id 9a0b1c2d ip filter KUBE-EXTERNAL-SERVICES rule tcp dport 30082 counter packets 1 bytes 60 drop (verdict drop)
trace id 77777777 ip raw PREROUTING packet: iif "ext0" ip saddr 198.19.0.2
trace id 77777777 ip raw PREROUTING policy accept
`;

Deno.test("parsePacketTraces: one path per packet, the first drop verdict, the trace table left out", () => {
  assert.deepEqual(parsePacketTraces(MONITOR), [
    {
      id: "153321fa",
      chains: ["ip kproxy nat-output", "ip kproxy services", "ip kproxy filter-output"],
      droppedIn: "ip kproxy filter-output",
    },
    {
      id: "9a0b1c2d",
      chains: ["ip filter KUBE-EXTERNAL-SERVICES"],
      droppedIn: "ip filter KUBE-EXTERNAL-SERVICES",
    },
    { id: "77777777", chains: ["ip raw PREROUTING"], droppedIn: null },
  ]);
  assert.deepEqual(parsePacketTraces("add table inet x\n"), []);
});

Deno.test("isProxyChain: kproxy's nftables tables and KUBE-* iptables chains only", () => {
  assert.equal(isProxyChain("ip kproxy filter-output"), true);
  assert.equal(isProxyChain("ip6 kproxy services"), true);
  assert.equal(isProxyChain("ip filter KUBE-SERVICES"), true);
  assert.equal(isProxyChain("ip filter INPUT"), false);
  assert.equal(isProxyChain("inet firewalld filter_INPUT"), false);
});

Deno.test("legacy counters: each packet a KUBE-* DROP rule counted is one dropped packet", () => {
  const save = (n: number) =>
    `*filter
:INPUT ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
[3:180] -A INPUT -s 198.19.0.2/32 -j DROP
[${n}:${
      n * 60
    }] -A KUBE-SERVICES -d 198.18.128.17/32 -p tcp -m comment --comment "default/itp-remote:http has no local endpoints" -m tcp --dport 80 -j DROP
[9:540] -A KUBE-SERVICES -j ACCEPT
COMMIT
`;
  const before = parseDropCounters("ip", save(1));
  assert.deepEqual([...before], [["ip filter INPUT", 3], ["ip filter KUBE-SERVICES", 1]]);
  const after = parseDropCounters("ip", save(3));
  assert.deepEqual(countedDrops(before, after).map((t) => t.id), [
    "ip filter KUBE-SERVICES#1",
    "ip filter KUBE-SERVICES#2",
  ]);
  assert.deepEqual(countedDrops(after, after), [], "nothing counted, nothing proven");
});
