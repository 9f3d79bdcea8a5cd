/**
 * The curated commands of the byte tests: every rule shape, element kind and object command
 * kproxy's nftables renderer and applier produce, in both families, against a small base table
 * that holds what they refer to. tests/golden/netlink/commands.txt holds nft 1.0.6's bytes for
 * them (written by tests/netns/netlink_oracle_test.ts with KPROXY_UPDATE_GOLDEN=1); the unit test
 * checks the compiler against that file, the netns test checks the file against a live nft.
 * IP plan: ClusterIPs 198.18.128.0/17 and fd00:128::/64, pods 198.18.1.0/24 and fd00:1::/64,
 * external IPs 198.18.200.0/24, clients 198.19.0.0/24.
 *
 * @module
 */

/** The sets the commands use, by `family name`. */
export const ORACLE_SETS: Readonly<Record<string, string>> = Object.freeze({
  "ip cluster-cidrs": "type ipv4_addr; flags interval;",
  "ip cluster-ips": "type ipv4_addr;",
  "ip hairpin-endpoints": "type ipv4_addr . ipv4_addr;",
  "ip service-ips": "type ipv4_addr . inet_proto . inet_service : verdict;",
  "ip service-nodeports": "type inet_proto . inet_service : verdict;",
  "ip no-endpoint-services": "type ipv4_addr . inet_proto . inet_service : verdict;",
  "ip no-endpoint-nodeports": "type inet_proto . inet_service : verdict;",
  "ip firewall-ips": "type ipv4_addr . inet_proto . inet_service : verdict;",
  "ip affinity-a": "type ipv4_addr; flags dynamic,timeout; timeout 10800s;",
  "ip clusterip-cluster-services": "type ipv4_addr . inet_proto . inet_service;",
  "ip nodeport-local-services": "type inet_proto . inet_service;",
  "ip cluster-endpoints":
    "typeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport;",
  "ip nodeport-local-endpoints":
    "typeof meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport;",
  "ip6 local-endpoints":
    "typeof ip6 daddr . meta l4proto . th dport . numgen random mod 1 : ip6 daddr . th dport;",
  "ip6 cluster-ips": "type ipv6_addr;",
  "ip6 service-cidrs": "type ipv6_addr; flags interval;",
  "ip6 hairpin-endpoints": "type ipv6_addr . ipv6_addr;",
  "ip6 service-ips": "type ipv6_addr . inet_proto . inet_service : verdict;",
  "ip6 affinity-b": "type ipv6_addr; flags dynamic,timeout; timeout 600s;",
});

/** The base tables: the sets above, the chains the rules jump to, the elements deleted. */
export function oracleBaseScript(): string {
  const out: string[] = [];
  for (const family of ["ip", "ip6"]) {
    out.push(`table ${family} kproxy {`);
    for (const [key, decl] of Object.entries(ORACLE_SETS)) {
      const [f, name] = key.split(" ");
      if (f !== family) continue;
      const kind = decl.includes(" : ") ? "map" : "set";
      const elements = name === "cluster-cidrs"
        ? " elements = { 198.18.0.0/17, 10.0.0.0/8 }"
        : name === "service-cidrs"
        ? " elements = { fd00:128::/112 }"
        : "";
      out.push(`\t${kind} ${name} { ${decl}${elements} }`);
    }
    for (const chain of ["mark-for-masquerade", "reject-chain", "service-x", "local-x", "gone-x"]) {
      out.push(`\tchain ${chain} {\n\t}`);
    }
    out.push("}");
  }
  const v4 = [
    "cluster-ips { 198.18.128.9 }",
    "hairpin-endpoints { 198.18.1.9 . 198.18.1.9 }",
    "service-ips { 198.18.128.9 . tcp . 80 : goto service-x }",
    "service-nodeports { udp . 30053 : goto service-x }",
    "cluster-endpoints { 198.18.128.9 . tcp . 80 . 65536 : 198.18.1.9 . 8080 }",
  ];
  for (const e of v4) out.push(`add element ip kproxy ${e}`);
  out.push("add element ip6 kproxy service-ips { fd00:128::9 . tcp . 80 : goto service-x }");
  return out.join("\n") + "\n";
}

/** The commands, one batch each. */
export const ORACLE_COMMANDS: readonly string[] = Object.freeze([
  // Objects.
  "add chain ip kproxy service-new",
  "flush chain ip kproxy service-x",
  "delete chain ip kproxy gone-x",
  "add set ip kproxy affinity-new { type ipv4_addr; flags dynamic,timeout; timeout 10800s; }",
  "add set ip6 kproxy affinity-new { type ipv6_addr; flags dynamic,timeout; timeout 600s; }",
  "delete set ip kproxy affinity-a",
  // Elements.
  "add element ip kproxy cluster-ips { 198.18.128.10 }",
  "delete element ip kproxy cluster-ips { 198.18.128.9 }",
  "add element ip kproxy hairpin-endpoints { 198.18.1.10 . 198.18.1.10 }",
  "delete element ip kproxy hairpin-endpoints { 198.18.1.9 . 198.18.1.9 }",
  "add element ip kproxy service-ips { 198.18.128.10 . tcp . 80 : goto service-x }",
  "add element ip kproxy service-ips { 198.18.200.10 . sctp . 9000 : goto local-x }",
  "delete element ip kproxy service-ips { 198.18.128.9 . tcp . 80 }",
  "add element ip kproxy service-nodeports { tcp . 30080 : goto service-x }",
  "delete element ip kproxy service-nodeports { udp . 30053 }",
  "add element ip kproxy no-endpoint-services { 198.18.128.11 . udp . 53 : goto reject-chain }",
  "add element ip kproxy no-endpoint-services { 198.18.200.11 . tcp . 443 : drop }",
  "add element ip kproxy no-endpoint-nodeports { tcp . 30443 : drop }",
  "add element ip kproxy firewall-ips { 198.18.250.1 . tcp . 80 : goto service-x }",
  "add element ip6 kproxy cluster-ips { fd00:128::10 }",
  // Interval sets (the service CIDRs): each range is its start and its end's successor.
  "add element ip kproxy cluster-cidrs { 198.19.128.0/24 }",
  "add element ip kproxy cluster-cidrs { 198.19.0.0/25, 198.19.1.1 }",
  "delete element ip kproxy cluster-cidrs { 198.18.0.0/17 }",
  "add element ip6 kproxy service-cidrs { fd00:129::/64 }",
  "delete element ip6 kproxy service-cidrs { fd00:128::/112 }",
  "add element ip kproxy clusterip-cluster-services { 198.18.128.10 . tcp . 80 }",
  "add element ip kproxy nodeport-local-services { udp . 30053 }",
  "add element ip kproxy cluster-endpoints { 198.18.128.10 . tcp . 80 . 655363 : 198.18.1.10 . 8080 }",
  "add element ip kproxy cluster-endpoints { 198.18.128.10 . sctp . 9000 . 65536 : 198.18.1.11 . 9000 }",
  "add element ip kproxy nodeport-local-endpoints { udp . 30053 . 131073 : 198.18.1.12 . 53 }",
  "add element ip6 kproxy local-endpoints { fd00:128::10 . tcp . 80 . 1048591 : fd00:1::10 . 8080 }",
  "add element ip6 kproxy hairpin-endpoints { fd00:1::10 . fd00:1::10 }",
  "add element ip6 kproxy service-ips { fd00:128::10 . udp . 53 : goto service-x }",
  "delete element ip6 kproxy service-ips { fd00:128::9 . tcp . 80 }",
  "delete element ip kproxy cluster-endpoints { 198.18.128.9 . tcp . 80 . 65536 }",
  // Rules: masquerade of ClusterIP traffic.
  "add rule ip kproxy service-x ip daddr 198.18.128.10 tcp dport 80 ip saddr != 198.18.0.0/17 jump mark-for-masquerade",
  "add rule ip kproxy service-x ip daddr 198.18.128.10 udp dport 53 ip saddr != @cluster-cidrs jump mark-for-masquerade",
  "add rule ip kproxy service-x ip daddr 198.18.128.10 sctp dport 9000 jump mark-for-masquerade",
  "add rule ip kproxy service-x ip daddr 198.18.128.10 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade",
  "add rule ip kproxy service-x ip daddr 198.18.128.10 tcp dport 80 ip saddr != 198.18.0.0/16 jump mark-for-masquerade",
  "add rule ip6 kproxy service-x ip6 daddr fd00:128::10 tcp dport 80 ip6 saddr != fd00:1::/64 jump mark-for-masquerade",
  "add rule ip6 kproxy service-x ip6 daddr fd00:128::10 tcp dport 80 ip6 saddr != fd00:1::/60 jump mark-for-masquerade",
  // Rules: the interface modes of --detect-local-mode (bridge name, name prefix).
  'add rule ip kproxy service-x ip daddr 198.18.128.10 tcp dport 80 iifname != "cbr0" jump mark-for-masquerade',
  'add rule ip6 kproxy service-x ip6 daddr fd00:128::10 tcp dport 80 iifname != "veth*" jump mark-for-masquerade',
  'add rule ip kproxy service-x iifname "veth*" goto service-x',
  'add rule ip6 kproxy service-x iifname "cbr0" goto service-x',
  // Rules: endpoint selection.
  "add rule ip kproxy service-x numgen random mod 3 0 meta l4proto tcp dnat to 198.18.1.10:8080",
  "add rule ip kproxy service-x meta l4proto udp dnat to 198.18.1.11:53",
  "add rule ip kproxy service-x meta l4proto sctp dnat to 198.18.1.12:9000",
  "add rule ip kproxy service-x ip saddr @affinity-a update @affinity-a { ip saddr } meta l4proto tcp dnat to 198.18.1.10:8080",
  "add rule ip kproxy service-x numgen random mod 2 0 update @affinity-a { ip saddr } meta l4proto tcp dnat to 198.18.1.10:8080",
  "add rule ip kproxy service-x update @affinity-a { ip saddr } meta l4proto tcp dnat to 198.18.1.11:8080",
  "add rule ip kproxy service-x meta l4proto tcp dnat ip addr . port to numgen random mod 3 map { 0 : 198.18.1.10 . 8080, 1 : 198.18.1.11 . 8080, 2 : 198.18.1.12 . 8080 }",
  "add rule ip6 kproxy service-x numgen random mod 2 0 meta l4proto tcp dnat to [fd00:1::10]:8080",
  "add rule ip6 kproxy service-x ip6 saddr @affinity-b update @affinity-b { ip6 saddr } meta l4proto udp dnat to [fd00:1::11]:53",
  "add rule ip6 kproxy service-x meta l4proto tcp dnat ip6 addr . port to numgen random mod 2 map { 0 : fd00:1::10 . 8080, 1 : fd00:1::11 . 8080 }",
  // Rules: external, firewall and policy chains.
  "add rule ip kproxy service-x jump mark-for-masquerade",
  "add rule ip kproxy service-x ip saddr 198.18.0.0/17 goto service-x",
  "add rule ip kproxy service-x ip saddr @cluster-cidrs goto service-x",
  "add rule ip kproxy service-x fib saddr type local jump mark-for-masquerade",
  "add rule ip kproxy service-x fib saddr type local goto service-x",
  "add rule ip kproxy service-x goto local-x",
  "add rule ip kproxy service-x ip saddr 198.19.0.0/24 return",
  "add rule ip kproxy service-x ip saddr 198.18.250.1 return",
  "add rule ip kproxy service-x drop",
  "add rule ip6 kproxy service-x ip6 saddr fd00:19::/64 return",
  "add rule ip6 kproxy service-x fib saddr type local goto service-x",
]);

/** Where `tests/golden/netlink/commands.txt` is. */
export const ORACLE_GOLDEN: URL = new URL(
  "../../../tests/golden/netlink/commands.txt",
  import.meta.url,
);

/** The golden file's text for `batches` (command → normalised messages). */
export function goldenText(batches: ReadonlyMap<string, readonly string[]>): string {
  const out = [
    "# nft 1.0.6's netlink batches for src/apply/netlink/_oracle_cases.ts, normalised",
    "# (src/apply/netlink/_normalize.ts): one command, then `message-number:hex` per message.",
  ];
  for (const [command, messages] of batches) out.push(command, ...messages.map((m) => `\t${m}`));
  return out.join("\n") + "\n";
}

/** Reads the golden file back. */
export function parseGolden(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | null = null;
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("\t")) current?.push(line.slice(1));
    else out.set(line, current = []);
  }
  return out;
}
