/**
 * The trace readers on real kernel output (captured from nft 1.0.6 / Linux 6.18 in a test
 * namespace). IP plan: pods 198.18.1.0/24, services 198.18.128.0/17, clients 198.19.0.0/24.
 */
import assert from "node:assert/strict";
import { counterPath, parseNftTrace } from "./trace_parse.ts";

const NFTABLES = `
add chain ip kproxy explain-ready-abc-0
trace id f9ae6bb1 ip kproxy explain-trace-abc-pre packet: iif "kpx1" ip saddr 198.18.1.12 ip daddr 198.18.128.10 ip dscp cs0 ip ecn not-ect ip ttl 64 ip id 1 ip length 40 tcp sport 47798 tcp dport 80 tcp flags == syn tcp window 64240
trace id f9ae6bb1 ip kproxy explain-trace-abc-pre rule ip saddr 198.18.1.12 ip daddr 198.18.128.10 meta nftrace set 1 (verdict continue)
trace id f9ae6bb1 ip kproxy filter-prerouting packet: iif "kpx1" ip saddr 198.18.1.12 ip daddr 198.18.128.10 tcp sport 47798 tcp dport 80 tcp flags == syn
trace id f9ae6bb1 ip kproxy filter-prerouting rule ct state new jump firewall-check (verdict jump firewall-check)
trace id f9ae6bb1 ip kproxy filter-prerouting policy accept
trace id f9ae6bb1 ip kproxy nat-prerouting packet: iif "kpx1" ip saddr 198.18.1.12 ip daddr 198.18.128.10 tcp sport 47798 tcp dport 80 tcp flags == syn
trace id f9ae6bb1 ip kproxy nat-prerouting rule jump services (verdict jump services)
trace id f9ae6bb1 ip kproxy services rule ip daddr . meta l4proto . th dport vmap @service-ips (verdict goto service-SUSTUHLJ-default/web/tcp/http)
trace id f9ae6bb1 ip kproxy service-SUSTUHLJ-default/web/tcp/http rule numgen random mod 2 0 meta l4proto tcp dnat to 198.18.1.10:8080 (verdict accept)
trace id f9ae6bb1 ip kproxy filter-forward packet: iif "kpx1" oif "pod0" ip saddr 198.18.1.12 ip daddr 198.18.1.10 tcp sport 47798 tcp dport 8080 tcp flags == syn
trace id f9ae6bb1 ip kproxy filter-forward rule ct state new jump service-endpoints-check (verdict jump service-endpoints-check)
trace id f9ae6bb1 ip kproxy filter-forward rule ct state new jump cluster-ips-check (verdict jump cluster-ips-check)
trace id f9ae6bb1 ip kproxy filter-forward policy accept
trace id f9ae6bb1 ip kproxy nat-postrouting packet: iif "kpx1" oif "pod0" ip saddr 198.18.1.12 ip daddr 198.18.1.10 tcp sport 47798 tcp dport 8080 tcp flags == syn
trace id f9ae6bb1 ip kproxy nat-postrouting rule jump masquerading (verdict jump masquerading)
trace id f9ae6bb1 ip kproxy masquerading rule meta mark & 0x00004000 == 0x00000000 return (verdict return)
trace id f9ae6bb1 ip kproxy nat-postrouting policy accept
`.trim().split("\n");

Deno.test("nft monitor: kproxy's chains entered, the endpoint, no masquerade", () => {
  const path = parseNftTrace(NFTABLES, {
    tables: new Map([["ip kproxy", "ip kproxy"]]),
    ignoreChains: (c) => c.startsWith("explain-"),
    targets: "all",
  });
  assert.deepEqual(path.entered, [
    "ip kproxy filter-prerouting",
    "ip kproxy firewall-check",
    "ip kproxy nat-prerouting",
    "ip kproxy services",
    "ip kproxy service-SUSTUHLJ-default/web/tcp/http",
    "ip kproxy filter-forward",
    "ip kproxy service-endpoints-check",
    "ip kproxy cluster-ips-check",
    "ip kproxy nat-postrouting",
    "ip kproxy masquerading",
  ]);
  assert.deepEqual(path.endpoint, { ip: "198.18.1.10", port: 8080 });
  assert.equal(path.masqueraded, false);
  assert.equal(path.verdict, "passed");
});

Deno.test("nft monitor: a reject is read as a reject, with its rule", () => {
  const path = parseNftTrace([
    "trace id 1 ip kproxy filter-forward packet: ip saddr 198.18.1.12 ip daddr 198.18.128.10 tcp sport 1 tcp dport 81",
    "trace id 1 ip kproxy filter-forward rule ct state new jump cluster-ips-check (verdict jump cluster-ips-check)",
    "trace id 1 ip kproxy cluster-ips-check rule ip daddr @cluster-ips goto reject-chain (verdict goto reject-chain)",
    "trace id 1 ip kproxy reject-chain rule meta l4proto tcp reject with tcp reset (verdict drop)",
  ], { tables: new Map([["ip kproxy", "ip kproxy"]]), ignoreChains: () => false, targets: "all" });
  assert.equal(path.verdict, "reject");
  assert.match(path.by ?? "", /reject-chain: meta l4proto tcp reject with tcp reset/);
  assert.equal(path.endpoint, null);
});

const IPTABLES_NFT = `
trace id 73f29960 ip nat PREROUTING packet: iif "kpxeds6db" ip saddr 198.19.0.2 ip daddr 198.18.128.91 ip ttl 64 tcp sport 60660 tcp dport 80 tcp flags == syn
trace id 73f29960 ip nat PREROUTING rule  counter packets 3 bytes 174 jump KUBE-SERVICES (verdict jump KUBE-SERVICES)
trace id 73f29960 ip nat KUBE-SERVICES rule meta l4proto tcp ip daddr 198.18.128.91  tcp dport 80 counter packets 0 bytes 0 jump KUBE-SVC-QUMPV5Z3SF2IMFUJ (verdict jump KUBE-SVC-QUMPV5Z3SF2IMFUJ)
trace id 73f29960 ip nat KUBE-SVC-QUMPV5Z3SF2IMFUJ rule meta l4proto tcp ip saddr != 198.18.1.0/24 ip daddr 198.18.128.91  tcp dport 80 counter packets 0 bytes 0 jump KUBE-MARK-MASQ (verdict jump KUBE-MARK-MASQ)
trace id 73f29960 ip nat KUBE-MARK-MASQ rule counter packets 0 bytes 0 meta mark set mark or 0x4000 (verdict continue)
trace id 73f29960 ip nat KUBE-SVC-QUMPV5Z3SF2IMFUJ rule  counter packets 0 bytes 0 jump KUBE-SEP-A6HYZSI4E65Z5UVR (verdict jump KUBE-SEP-A6HYZSI4E65Z5UVR)
trace id 73f29960 ip nat KUBE-SEP-A6HYZSI4E65Z5UVR rule meta l4proto tcp   counter packets 0 bytes 0 dnat to 198.18.1.10:8080 (verdict accept)
trace id 73f29960 ip filter FORWARD packet: iif "kpxeds6db" oif "pod0" ip saddr 198.19.0.2 ip daddr 198.18.1.10 tcp sport 60660 tcp dport 8080 tcp flags == syn
trace id 73f29960 ip filter FORWARD rule ct state new  counter packets 6 bytes 348 jump KUBE-PROXY-FIREWALL (verdict jump KUBE-PROXY-FIREWALL)
trace id 73f29960 ip filter FORWARD rule  counter packets 6 bytes 348 jump KUBE-FORWARD (verdict jump KUBE-FORWARD)
trace id 73f29960 ip filter KUBE-FORWARD rule  meta mark & 0x00004000 == 0x00004000 counter packets 0 bytes 0 accept (verdict accept)
trace id 73f29960 ip nat POSTROUTING packet: iif "kpxeds6db" oif "pod0" ip saddr 198.19.0.2 ip daddr 198.18.1.10 tcp sport 60660 tcp dport 8080 tcp flags == syn
trace id 73f29960 ip nat POSTROUTING rule  counter packets 4 bytes 214 jump KUBE-POSTROUTING (verdict jump KUBE-POSTROUTING)
trace id 73f29960 ip nat KUBE-POSTROUTING rule counter packets 0 bytes 0 meta mark set mark xor 0x4000 (verdict continue)
trace id 73f29960 ip nat KUBE-POSTROUTING rule  counter packets 0 bytes 0 masquerade fully-random (verdict accept)
`.trim().split("\n");

Deno.test("nft monitor of iptables-nft: KUBE-* chains per table, endpoint, masquerade", () => {
  const path = parseNftTrace(IPTABLES_NFT, {
    tables: new Map([["ip nat", "nat"], ["ip filter", "filter"]]),
    ignoreChains: () => false,
    targets: { prefix: "KUBE-" },
  });
  assert.deepEqual(path.entered, [
    "nat KUBE-SERVICES",
    "nat KUBE-SVC-QUMPV5Z3SF2IMFUJ",
    "nat KUBE-MARK-MASQ",
    "nat KUBE-SEP-A6HYZSI4E65Z5UVR",
    "filter KUBE-PROXY-FIREWALL",
    "filter KUBE-FORWARD",
    "nat KUBE-POSTROUTING",
  ]);
  assert.deepEqual(path.endpoint, { ip: "198.18.1.10", port: 8080 });
  assert.equal(path.masqueraded, true);
});

Deno.test("iptables-legacy counters: the rules one packet hit", () => {
  const before = `*nat
[5:300] -A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
[0:0] -A KUBE-SERVICES -d 198.18.128.10/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-A
[0:0] -A KUBE-SVC-A -m statistic --mode random --probability 0.50000000000 -j KUBE-SEP-X
[0:0] -A KUBE-SVC-A -j KUBE-SEP-Y
[0:0] -A KUBE-SEP-X -p tcp -m tcp -j DNAT --to-destination 198.18.1.10:8080
[0:0] -A KUBE-SEP-Y -p tcp -m tcp -j DNAT --to-destination 198.18.1.11:8080
COMMIT
`;
  const after = before
    .replace("[5:300] -A PREROUTING", "[6:360] -A PREROUTING")
    .replace("[0:0] -A KUBE-SERVICES", "[1:60] -A KUBE-SERVICES")
    .replace("[0:0] -A KUBE-SVC-A -j", "[1:60] -A KUBE-SVC-A -j")
    .replace("[0:0] -A KUBE-SEP-Y", "[1:60] -A KUBE-SEP-Y");
  const path = counterPath(before, after);
  assert.deepEqual(path.entered, ["nat KUBE-SERVICES", "nat KUBE-SVC-A", "nat KUBE-SEP-Y"]);
  assert.deepEqual(path.endpoint, { ip: "198.18.1.11", port: 8080 });
  assert.equal(path.verdict, "passed");
});
