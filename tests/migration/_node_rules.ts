/**
 * Looking at, and adding to, a test node's rules for the migration tests: other programs' rules
 * that must survive every clean-up, what upstream kube-proxy left behind, and kproxy's CLI run
 * inside the namespace.
 *
 * IP plan: a user's client 198.19.0.99 and a user's pod range 198.18.9.0/24 (only written into
 * rules, never routed); fd00:19::99 for IPv6.
 *
 * @module
 */
import { runTool, runToolResult, type ToolResult } from "../../src/apply/run_tool.ts";

const REPO = new URL("../../", import.meta.url).pathname;

/** Runs the kproxy CLI (`deno run src/cli/main.ts ...`) inside `netns`. */
export function kproxyCli(netns: string, args: readonly string[]): Promise<ToolResult> {
  return runToolResult(Deno.execPath(), [
    "run",
    "--allow-all",
    `--config=${REPO}deno.json`,
    `${REPO}src/cli/main.ts`,
    ...args,
  ], { netns, timeoutMs: 120_000 });
}

/** Like {@link kproxyCli}, throwing with its output when it fails. */
export async function kproxyCliOk(netns: string, args: readonly string[]): Promise<string> {
  const r = await kproxyCli(netns, args);
  if (r.code !== 0) {
    throw new Error(`kproxy ${args.join(" ")} exited with ${r.code}:\n${r.stdout}${r.stderr}`);
  }
  return r.stderr;
}

/** nft script of a user's table that must survive. */
const USER_NFT = `table inet user-test {
	chain input {
		type filter hook input priority 10; policy accept;
		tcp dport 9999 counter accept
	}
}
`;

/** iptables commands (iptables-nft) of a user and of kubelet, all of which must survive. */
const USER_IPTABLES: readonly (readonly string[])[] = [
  [
    "iptables-nft",
    "-A",
    "INPUT",
    "-s",
    "198.19.0.99/32",
    "-m",
    "comment",
    "--comment",
    "user rule",
    "-j",
    "ACCEPT",
  ],
  [
    "iptables-nft",
    "-t",
    "nat",
    "-A",
    "POSTROUTING",
    "-s",
    "198.18.9.0/24",
    "-m",
    "comment",
    "--comment",
    "user masquerade",
    "-j",
    "MASQUERADE",
  ],
  [
    "ip6tables-nft",
    "-A",
    "INPUT",
    "-s",
    "fd00:19::99/128",
    "-m",
    "comment",
    "--comment",
    "user rule",
    "-j",
    "ACCEPT",
  ],
  // kubelet's chains (its iptables hint and canaries).
  ["iptables-nft", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"],
  ["iptables-nft", "-t", "mangle", "-N", "KUBE-KUBELET-CANARY"],
  ["iptables-nft", "-t", "nat", "-N", "KUBE-KUBELET-CANARY"],
  ["iptables-nft", "-t", "filter", "-N", "KUBE-KUBELET-CANARY"],
  ["ip6tables-nft", "-t", "mangle", "-N", "KUBE-KUBELET-CANARY"],
];

/** Adds the user's and kubelet's rules to `netns`. */
export async function addUserRules(netns: string): Promise<void> {
  await runTool("nft", ["-f", "-"], { netns, stdin: USER_NFT });
  for (const argv of USER_IPTABLES) {
    const [tool, ...args] = argv as [string, ...string[]];
    await runTool(tool, ["-w", ...args], { netns });
  }
}

/** Everything of the node's rules as text: nft ruleset, then every iptables-save. */
export async function allRules(netns: string): Promise<string> {
  const parts = [await runTool("nft", ["list", "ruleset"], { netns })];
  for (const tool of SAVES) {
    parts.push(`# ${tool}\n${stripSaveComments(await runTool(tool, [], { netns }))}`);
  }
  return parts.join("\n");
}

const SAVES = [
  "iptables-nft-save",
  "ip6tables-nft-save",
  "iptables-legacy-save",
  "ip6tables-legacy-save",
];

function stripSaveComments(text: string): string {
  return text.split("\n").filter((l) => !l.startsWith("#")).join("\n");
}

/** What of the user's and kubelet's rules is missing from `netns` (empty: all there). */
export async function missingUserRules(netns: string): Promise<string[]> {
  const missing: string[] = [];
  const user = await runToolResult("nft", ["list", "table", "inet", "user-test"], { netns });
  if (user.code !== 0 || !/tcp dport 9999 counter/.test(user.stdout)) {
    missing.push("nft table inet user-test");
  }
  const v4 = await runTool("iptables-nft-save", [], { netns });
  const v6 = await runTool("ip6tables-nft-save", [], { netns });
  const expect: [string, string, RegExp][] = [
    ["IPv4", v4, /^-A INPUT -s 198\.19\.0\.99\/32 -m comment --comment "user rule" -j ACCEPT$/m],
    ["IPv4", v4, /^-A POSTROUTING -s 198\.18\.9\.0\/24 .*"user masquerade" -j MASQUERADE$/m],
    ["IPv6", v6, /^-A INPUT -s fd00:19::99\/128 -m comment --comment "user rule" -j ACCEPT$/m],
    ["IPv6", v6, /^:KUBE-KUBELET-CANARY - /m],
  ];
  for (const [family, text, re] of expect) if (!re.test(text)) missing.push(`${family} ${re}`);
  for (const table of ["mangle", "nat", "filter"]) {
    if (!tableOf(v4, table).includes(":KUBE-KUBELET-CANARY - ")) {
      missing.push(`IPv4 ${table} KUBE-KUBELET-CANARY`);
    }
  }
  if (!tableOf(v4, "mangle").includes(":KUBE-IPTABLES-HINT - ")) {
    missing.push("IPv4 mangle KUBE-IPTABLES-HINT");
  }
  return missing;
}

/** The lines of one table of iptables-save output. */
function tableOf(save: string, table: string): string {
  const start = save.indexOf(`*${table}\n`);
  if (start < 0) return "";
  const end = save.indexOf("COMMIT", start);
  return save.slice(start, end < 0 ? undefined : end);
}

/** Chain names of kubelet (they share the KUBE- prefix and stay). */
const KUBELET_CHAIN = /KUBE-(FIREWALL|KUBELET-CANARY|IPTABLES-HINT)\b/;

/**
 * What upstream kube-proxy (or kproxy, whose iptables chains have the same names) left in
 * `netns`: its nftables tables, and every iptables line naming a KUBE- chain that is not
 * kubelet's, in every implementation and family. Empty means clean.
 */
export async function proxyLeftovers(netns: string): Promise<string[]> {
  const out: string[] = [];
  const tables = await runTool("nft", ["list", "tables"], { netns });
  for (const line of tables.split("\n")) {
    if (/^table (ip|ip6) (kube-proxy|kproxy)$/.test(line.trim())) out.push(`nft ${line.trim()}`);
  }
  for (const tool of SAVES) {
    for (const line of (await runTool(tool, [], { netns })).split("\n")) {
      const names = line.match(/KUBE-[A-Z0-9-]+/g) ?? [];
      if (names.some((n) => !KUBELET_CHAIN.test(n))) out.push(`${tool}: ${line}`);
    }
  }
  return out;
}

/** The `KUBE-FIREWALL` lines of iptables-nft-save (kubelet's chain, which stays). */
export async function kubeFirewallLines(netns: string): Promise<string[]> {
  const v4 = await runTool("iptables-nft-save", [], { netns });
  return v4.split("\n").filter((l) => l.includes("KUBE-FIREWALL"));
}

/**
 * Copies every iptables-nft table of `netns` into iptables-legacy (both families), so both
 * implementations hold the same rules — a node where something wrote through the other
 * iptables. Lines of `-m nfacct` (counters that exist for iptables-nft only) are left out.
 */
export async function copyIptablesNftToLegacy(netns: string): Promise<void> {
  for (const prefix of ["iptables", "ip6tables"]) {
    const saved = await runTool(`${prefix}-nft-save`, [], { netns });
    const text = saved.split("\n").filter((l) => !l.startsWith("#") && !l.includes("nfacct"))
      .join("\n");
    await runTool(`${prefix}-legacy-restore`, ["-w"], { netns, stdin: text });
  }
}

/** What of the user's and kubelet's rules copied into iptables-legacy is missing. */
export async function missingLegacyUserRules(netns: string): Promise<string[]> {
  const missing: string[] = [];
  for (const prefix of ["iptables", "ip6tables"]) {
    const saved = await runTool(`${prefix}-legacy-save`, [], { netns });
    if (!/^-A INPUT -s \S+ -m comment --comment "user rule" -j ACCEPT$/m.test(saved)) {
      missing.push(`${prefix}-legacy user rule`);
    }
    if (!/^:KUBE-KUBELET-CANARY - /m.test(saved)) missing.push(`${prefix}-legacy kubelet canary`);
  }
  return missing;
}
