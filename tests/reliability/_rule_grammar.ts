/**
 * Allow-list grammars of kproxy's rendered rule text, for hostile-input tests: every line of an
 * nft script or iptables-restore input must consist of known keywords, kproxy's own object and
 * chain names (hash-prefixed, DNS characters only), numbers, IP addresses that parse, ports in
 * 1..65535 and quoted strings that cannot end early. Anything else (a name that escaped its
 * quotes, a newline in a comment, an address that is not one) is reported with its line.
 *
 * A new keyword in a renderer is added here on purpose: the list is the review.
 *
 * @module
 */
import { parseCIDR, parseIP } from "../../src/model/ip.ts";
import { FIXED } from "../../src/render/nftables/names.ts";

/** Keywords and fixed words of kproxy's nft scripts. */
const NFT_WORDS = new Set([
  ..."add delete flush table chain set map element rule comment type hook priority policy"
    .split(" "),
  ..."accept drop reject return jump goto ct state new status dnat snat masquerade fully-random"
    .split(" "),
  ..."ip ip6 kproxy filter nat prerouting input forward output postrouting saddr daddr fib local"
    .split(" "),
  ..."meta l4proto th dport sport vmap tcp udp sctp mark numgen random mod to addr port update"
    .split(" "),
  ..."with reset flags dynamic timeout interval elements ipv4_addr ipv6_addr inet_proto typeof offset"
    .split(" "),
  ..."inet_service verdict counter icmp icmpv6 admin-prohibited port-unreachable host-unreachable"
    .split(" "),
  ..."size ether nfproto ipv4 ipv6 iif oif iifname oifname lo and or xor persistent random"
    .split(" "),
]);

const NFT_FIXED_NAMES = new Set<string>([
  ...Object.values(FIXED),
  "filter-prerouting",
  "filter-input",
  "filter-forward",
  "filter-output",
  "filter-output-post-dnat",
  "nat-prerouting",
  "nat-output",
  "nat-postrouting",
]);

/** A DNS label/subdomain character run, as validated names are. */
const DNS = "[a-z0-9.-]+";
/**
 * A per-service-port object: `prefix-HASH8-ns/name/proto/portName[__ip/port]`, possibly cut with
 * `...` (the hash keeps it unique).
 */
const SERVICE_PORT_NAME = new RegExp(
  `^(service|local|external|firewall|affinity)-[A-Z2-7]{8}-` +
    `(${DNS}/${DNS}/(tcp|udp|sctp)/[a-z0-9-]*(__[0-9a-f.]+/[0-9]{1,5})?` +
    `|[a-z0-9./_-]*\\.\\.\\.)$`,
);

/** What is wrong with a token, or null. */
type TokenCheck = (token: string, prev: readonly string[]) => string | null;

function isPort(text: string): boolean {
  if (!/^[0-9]{1,5}$/.test(text)) return false;
  const n = Number(text);
  return n >= 1 && n <= 65535;
}

/** An address, CIDR, `ip:port` or `[ip6]:port` token; null if it is none of those. */
function addressProblem(token: string): string | null | undefined {
  const bracket = /^\[([0-9a-fA-F:.]+)\]:([0-9]+)$/.exec(token);
  if (bracket !== null) {
    if (parseIP(bracket[1] as string)?.family !== "IPv6") return `bad IPv6 in ${token}`;
    return isPort(bracket[2] as string) ? null : `bad port in ${token}`;
  }
  const v4port = /^([0-9.]+):([0-9]+)$/.exec(token);
  if (v4port !== null) {
    if (parseIP(v4port[1] as string)?.family !== "IPv4") return `bad IPv4 in ${token}`;
    return isPort(v4port[2] as string) ? null : `bad port in ${token}`;
  }
  if (
    /^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+(\/[0-9]+)?$/.test(token) ||
    /^[0-9a-fA-F]*:[0-9a-fA-F:.]*(\/[0-9]+)?$/.test(token)
  ) {
    const ok = token.includes("/") ? parseCIDR(token) !== null : parseIP(token) !== null;
    return ok ? null : `not an IP address or CIDR: ${token}`;
  }
  return undefined;
}

const nftToken: TokenCheck = (token, prev) => {
  // The only quoted word kproxy writes is its table's comment.
  if (token === '"rules for kproxy"' && prev[prev.length - 1] === "comment") return null;
  if (token.includes('"')) return `a quote outside a plain quoted word: ${token}`;
  const bare = token.startsWith("@") ? token.slice(1) : token;
  if (NFT_FIXED_NAMES.has(bare) || SERVICE_PORT_NAME.test(bare)) return null;
  if (NFT_WORDS.has(token)) return null;
  if (["{", "}", ".", ":", "!=", "==", "&", "|", "^", "=", "-"].includes(token)) return null;
  const address = addressProblem(token);
  if (address !== undefined) return address;
  if (/^-?[0-9]+$/.test(token)) {
    const p1 = prev[prev.length - 1];
    const p2 = prev[prev.length - 2];
    const portContext = p1 === "dport" || p1 === "sport" ||
      (p1 === "." && (p2 === "tcp" || p2 === "udp" || p2 === "sctp")) ||
      (p1 === "." && p2 !== undefined && parseIP(p2) !== null);
    if (portContext && !isPort(token)) return `port out of range: ${token}`;
    return null;
  }
  if (/^0x[0-9a-f]+$/.test(token) || /^[0-9]+[smhd]$/.test(token)) return null;
  return `token outside the nft grammar: ${JSON.stringify(token)}`;
};

/** Splits a line into words, keeping each `"..."` whole (a quote never closes mid-word). */
function words(line: string): string[] | string {
  const out: string[] = [];
  const re = /"[^"\\\n]*"|[^\s"]+|"/g;
  for (const m of line.matchAll(re)) {
    if (m[0] === '"') return `an unbalanced quote in ${JSON.stringify(line)}`;
    out.push(m[0]);
  }
  return out;
}

/** Problems of one nft script, one per offending line (empty when it is all grammar). */
export function nftProblems(script: string): string[] {
  const problems: string[] = [];
  for (const line of script.split("\n")) {
    if (/[^\t\x20-\x7e]/.test(line)) {
      problems.push(`a control or non-ASCII character in ${JSON.stringify(line)}`);
      continue;
    }
    const ws = words(line);
    if (typeof ws === "string") {
      problems.push(ws);
      continue;
    }
    const tokens = ws.flatMap((w) => (w.startsWith('"') ? [w] : w.split(/[,;]/))).filter((t) =>
      t !== ""
    );
    const seen: string[] = [];
    for (const t of tokens) {
      const problem = nftToken(t, seen);
      if (problem !== null) {
        problems.push(`${problem} in ${JSON.stringify(line)}`);
        break;
      }
      seen.push(t);
    }
  }
  return problems;
}

const IPT_CHAIN =
  /^(KUBE-(SVC|SVL|EXT|FW|SEP)-[A-Z2-7]{16}|KUBE-[A-Z-]+|PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING)$/;
const IPT_WORDS = new Set([
  ..."DNAT MASQUERADE MARK ACCEPT DROP REJECT RETURN tcp udp sctp LOCAL NEW INVALID random"
    .split(" "),
  ..."RELATED,ESTABLISHED RELATED,ESTABLISHED,DNAT conntrack comment addrtype mark statistic"
    .split(" "),
  ..."recent multiport ! - nat filter mangle icmp-port-unreachable icmp6-port-unreachable"
    .split(" "),
  // kube-proxy's nfacct match and counter names.
  ..."nfacct ct_state_invalid_dropped_pkts localhost_nps_accepted_pkts".split(" "),
]);

/** A ServicePortName as comments spell it: `ns/name` or `ns/name:port`. */
const ID = "[a-z0-9.-]{1,253}/[a-z0-9.-]{1,253}(:[a-z0-9-]{1,63})?";
const ENDPOINT = "([0-9.]+|\\[[0-9a-f:.]+\\]):[0-9]{1,5}";
/** Every comment kproxy writes, as a pattern over the text between the quotes. */
const IPT_COMMENTS = new RegExp(
  "^(" + [
    `${ID}`,
    `${ID} (cluster IP|external IP|loadbalancer IP|has no endpoints|has no local endpoints)`,
    `${ID} health check node port`,
    `${ID} -> ${ENDPOINT}`,
    `${ID} traffic not accepted by KUBE-FW-[A-Z2-7]{16}`,
    `(masquerade|masquerade LOCAL|pod|route LOCAL) traffic for ${ID} external destinations`,
    `other traffic to ${ID} will be dropped by KUBE-PROXY-FIREWALL`,
    "kubernetes (service portals|externally-visible service portals|health check service ports)",
    "kubernetes (forwarding rules|forwarding conntrack rule|load balancer firewall)",
    "kubernetes (postrouting rules|service traffic requiring SNAT)",
    "kubernetes service nodeports; NOTE: this must be the last rule in this chain",
    "block incoming localnet connections",
  ].join("|") + ")$",
);

const iptToken: TokenCheck = (token, prev) => {
  if (token.startsWith('"')) {
    // iptables-restore's quoting: printable ASCII, no quote, backslash or apostrophe inside.
    if (!/^"[\x20\x21\x23-\x26\x28-\x5b\x5d-\x7e]*"$/.test(token) || token.length > 257) {
      return `a comment that could escape its quotes: ${token}`;
    }
    if (prev[prev.length - 1] !== "--comment") return `a quoted word outside a comment: ${token}`;
    const text = token.slice(1, -1);
    // quoteComment cuts comments at the kernel's limit: a cut one need only start like one.
    if (text.length === 255 && /^[a-z0-9.-]+\/[a-z0-9.:/ -]*$/.test(text)) return null;
    return IPT_COMMENTS.test(text) ? null : `not a kproxy comment: ${token}`;
  }
  if (/^-[A-Za-z]$/.test(token) || /^--[a-z][a-z-]*$/.test(token)) return null;
  if (IPT_CHAIN.test(token) || IPT_WORDS.has(token)) return null;
  const address = addressProblem(token);
  if (address !== undefined) return address;
  if (/^[0-9]+$/.test(token)) {
    const option = prev[prev.length - 1];
    if ((option === "--dport" || option === "--sport") && !isPort(token)) {
      return `port out of range: ${token}`;
    }
    return null;
  }
  if (/^[0-9]+(,[0-9]+)+$/.test(token)) {
    return token.split(",").every(isPort) ? null : `port out of range: ${token}`;
  }
  if (/^0x[0-9a-f]+(\/0x[0-9a-f]+)?$/.test(token) || /^0\.[0-9]+$/.test(token)) return null;
  if (/^\[[0-9]+:[0-9]+\]$/.test(token)) return null; // chain counters
  return `token outside the iptables-restore grammar: ${JSON.stringify(token)}`;
};

/** Problems of iptables-restore input, one per offending line. */
export function iptablesProblems(input: string): string[] {
  const problems: string[] = [];
  for (const line of input.split("\n")) {
    if (line === "" || line === "COMMIT" || line === "*nat" || line === "*filter") continue;
    if (/^# IPv[46]: ip6?tables-restore --noflush$/.test(line)) continue;
    if (/[^\x20-\x7e]/.test(line)) {
      problems.push(`a control or non-ASCII character in ${JSON.stringify(line)}`);
      continue;
    }
    const declaration = /^:(\S+) (-|ACCEPT|DROP) \[0:0\]$/.exec(line);
    if (declaration !== null) {
      if (!IPT_CHAIN.test(declaration[1] as string)) problems.push(`bad chain in ${line}`);
      continue;
    }
    if (!/^-[AIDX] /.test(line)) {
      problems.push(`not a rule line: ${JSON.stringify(line)}`);
      continue;
    }
    const ws = words(line);
    if (typeof ws === "string") {
      problems.push(ws);
      continue;
    }
    if (ws.filter((w) => w === "-j").length > 1 || ws.filter((w) => w === "--comment").length > 1) {
      problems.push(`more than one target or comment in ${JSON.stringify(line)}`);
      continue;
    }
    const seen: string[] = [];
    for (const t of ws) {
      const problem = iptToken(t, seen);
      if (problem !== null) {
        problems.push(`${problem} in ${JSON.stringify(line)}`);
        break;
      }
      seen.push(t);
    }
  }
  return problems;
}
