/**
 * Reading what the kernel says a packet did (pure): `nft monitor` trace lines (nftables, and
 * iptables-nft's `nat` and `filter` chains), and rule counter deltas of `iptables-save -c`
 * (iptables-legacy, whose TRACE goes to a kernel log that network namespaces do not have).
 *
 * @module
 */

/** What the kernel did with the packet. */
export interface KernelPath {
  /** The chains of kproxy's rules the packet entered, in order, as `table chain`. */
  readonly entered: readonly string[];
  /** Where DNAT sent it, or null. */
  readonly endpoint: { readonly ip: string; readonly port: number } | null;
  /** A masquerade rule of kproxy's fired. */
  readonly masqueraded: boolean;
  /** `passed` (accepted through every hook seen), `drop` or `reject`. */
  readonly verdict: "passed" | "drop" | "reject";
  /** The rule that dropped or rejected it. */
  readonly by: string | null;
}

const NFT_TRACE = /^trace id (\S+) (ip6?|inet) (\S+) (\S+) (packet: |rule |policy )(.*)$/;

/** Which tables' events {@link parseNftTrace} reads, and how it names their chains. */
export interface NftTraceOptions {
  /** nft table (`ip kproxy`, `ip nat`) → the table name a path uses (`ip kproxy`, `nat`). */
  readonly tables: ReadonlyMap<string, string>;
  /** Chains not to report (explain's own trace chains). */
  readonly ignoreChains: (chain: string) => boolean;
  /** Report base chains too (nftables), or only jump/goto targets with this prefix (iptables). */
  readonly targets: "all" | { readonly prefix: string };
}

/**
 * Parses `nft monitor` output: the packet's way through the given tables. Every line of the
 * probe counts, whatever its trace id (a packet looping back through `lo` gets a new one).
 */
export function parseNftTrace(lines: readonly string[], options: NftTraceOptions): KernelPath {
  const entered: string[] = [];
  let endpoint: { ip: string; port: number } | null = null;
  let first: { ip: string; port: number } | null = null;
  let masqueraded = false;
  let verdict: KernelPath["verdict"] = "passed";
  let by: string | null = null;
  const wanted = (chain: string) =>
    options.targets === "all" || chain.startsWith(options.targets.prefix);
  for (const line of lines) {
    const m = NFT_TRACE.exec(line.trim());
    if (m === null) continue;
    const table = options.tables.get(`${m[2]} ${m[3]}`);
    const chain = m[4] as string;
    const kind = (m[5] as string).trim();
    const rest = m[6] as string;
    if (kind === "packet:") {
      const dst = /\bip6? daddr (\S+)/.exec(rest)?.[1];
      const port = /\b(?:tcp|udp|sctp) dport (\d+)/.exec(rest)?.[1];
      if (dst !== undefined && port !== undefined) {
        const here = { ip: dst, port: Number(port) };
        if (first === null) first = here;
        else if (here.ip !== first.ip || here.port !== first.port) endpoint = here;
      }
    }
    if (table === undefined || options.ignoreChains(chain)) continue;
    if (kind === "packet:" && options.targets === "all") entered.push(`${table} ${chain}`);
    if (kind !== "rule") continue;
    const v = /\(verdict (\w+)(?: (\S+))?\)\s*$/.exec(rest);
    if (v === null) continue;
    if ((v[1] === "jump" || v[1] === "goto") && v[2] !== undefined && wanted(v[2])) {
      entered.push(`${table} ${v[2]}`);
    }
    if (v[1] === "accept" && /\bmasquerade\b|"MASQUERADE"/i.test(rest)) masqueraded = true;
    if (v[1] === "drop") {
      verdict = /\breject\b|"REJECT"/i.test(rest) ? "reject" : "drop";
      by = `${table} ${chain}: ${rest.replace(/\s*\(verdict \w+\)\s*$/, "")}`;
    }
  }
  return { entered, endpoint, masqueraded, verdict, by };
}

/** One rule of `iptables-save -c` output with its packet counter. */
interface CountedRule {
  readonly table: string;
  readonly chain: string;
  readonly spec: string;
  readonly packets: bigint;
}

/** Parses `iptables-save -c` output into its rules, in order, with packet counters. */
export function parseSaveCounters(text: string): CountedRule[] {
  const out: CountedRule[] = [];
  let table = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("*")) table = line.slice(1);
    const m = /^\[(\d+):\d+\] -A (\S+) (.*)$/.exec(line);
    if (m !== null) {
      out.push({
        table,
        chain: m[2] as string,
        spec: m[3] as string,
        packets: BigInt(m[1] as string),
      });
    }
  }
  return out;
}

/**
 * What rule counters say one packet did between two `iptables-save -c` outputs: the KUBE-*
 * chains it jumped to (in rule order, which is not always the packet's order), the endpoint of
 * the DNAT rule that counted it, a masquerade, a drop or reject.
 */
export function counterPath(before: string, after: string): KernelPath {
  const old = parseSaveCounters(before);
  const now = parseSaveCounters(after);
  const entered: string[] = [];
  let endpoint: { ip: string; port: number } | null = null;
  let masqueraded = false;
  let verdict: KernelPath["verdict"] = "passed";
  let by: string | null = null;
  now.forEach((r, i) => {
    const o = old[i];
    const same = o !== undefined && o.table === r.table && o.chain === r.chain && o.spec === r.spec;
    const delta = r.packets - (same ? o.packets : 0n);
    if (delta <= 0n) return;
    const target = /-j (\S+)/.exec(r.spec)?.[1] ?? "";
    if (target.startsWith("KUBE-")) entered.push(`${r.table} ${target}`);
    const to = /--to-destination (\S+)/.exec(r.spec)?.[1];
    if (target === "DNAT" && to !== undefined) {
      const hp = /^\[?([^\]]+?)\]?:(\d+)$/.exec(to);
      if (hp !== null) endpoint = { ip: hp[1] as string, port: Number(hp[2]) };
    }
    if (target === "MASQUERADE") masqueraded = true;
    if ((target === "DROP" || target === "REJECT") && r.chain.startsWith("KUBE-")) {
      verdict = target === "DROP" ? "drop" : "reject";
      by = `${r.table} ${r.chain}: ${r.spec}`;
    }
  });
  return { entered, endpoint, masqueraded, verdict, by };
}
