/**
 * `kproxy explain --live`: the prediction, then the same packet sent for real and traced through
 * the kernel's rules; any difference in the chains entered, the endpoint, masquerade or the
 * verdict is a mismatch. Affinity state is read from the kernel first, so a client the service
 * already pinned is predicted to go where the kernel will send it.
 *
 * @module
 */
import { runToolResult } from "../../apply/run_tool.ts";
import { endpointChainName, endpointText } from "../../render/iptables/chain_names.ts";
import { affinitySetName, TABLE_NAME } from "../../render/nftables/names.ts";
import { findServicePort } from "../../render/nftables/table_plan.ts";
import type { ProxySnapshot } from "../../snapshot/types.ts";
import type { ExplainAnswer, ExplainMode } from "../answer.ts";
import { assumedInputInterface, explainPacket } from "../explain.ts";
import { type ExplainPacket, hostPort } from "../packet.ts";
import { enteredChains, type PathEvent } from "../trace_engine.ts";
import { readInNetns } from "./inject.ts";
import { type KernelTrace, traceInKernel } from "./kernel_trace.ts";

/** Options of {@link confirmLive}. */
export interface LiveOptions {
  /** The backend whose rules are live. */
  readonly mode: ExplainMode;
  /** Every address of the node (the namespace's interfaces). */
  readonly nodeAddresses: readonly string[];
  /** For iptables: `nft` or `legacy` (default: what `iptables --version` says). */
  readonly iptablesVariant?: "nft" | "legacy";
  /** Run in this named network namespace (tests); default: here. */
  readonly netns?: string;
  /** The interface the packet should seem to arrive on (explain's `inputInterface`). */
  readonly inputInterface?: string;
}

/** What `--live` found. */
export interface LiveResult {
  /** How the kernel was read. */
  readonly method: KernelTrace["method"];
  /** True when the kernel did what explain predicted. */
  readonly agrees: boolean;
  /** Each difference, one line. */
  readonly problems: readonly string[];
  /** The chains the kernel's trace entered (kproxy's), in order. */
  readonly kernelPath: readonly string[];
  /** The chains the prediction enters for the endpoint the kernel took (or its only way). */
  readonly predictedPath: readonly string[];
  /** The endpoint the kernel took, or null. */
  readonly endpoint: string | null;
  /** The kernel masqueraded the packet. */
  readonly masqueraded: boolean;
  /** The kernel's verdict. */
  readonly verdict: "passed" | "drop" | "reject";
  /** The probe's source port (find it in conntrack or a capture). */
  readonly sourcePort: number;
}

/** The prediction and the kernel's answer. */
export interface LiveReport {
  /** The prediction (with the kernel's affinity state). */
  readonly answer: ExplainAnswer;
  /** What the kernel did. */
  readonly live: LiveResult;
}

async function readAffinity(
  snapshot: ProxySnapshot,
  first: ExplainAnswer,
  options: LiveOptions,
): Promise<Map<string, string[]> | undefined> {
  const match = first.match;
  if (first.affinity === null || match === null) return undefined;
  const sp = findServicePort(snapshot, match.servicePort);
  const fam = sp?.families.find((f) => f.family === first.packet.family);
  if (sp === undefined || sp === null || fam === undefined) return undefined;
  const netns = options.netns === undefined ? {} : { netns: options.netns };
  const state = new Map<string, string[]>();
  for (const ep of fam.endpoints) {
    if (options.mode === "nftables") {
      const name = affinitySetName(sp, ep);
      const ipX = first.packet.family === "IPv4" ? "ip" : "ip6";
      const r = await runToolResult("nft", ["list", "set", ipX, TABLE_NAME, name], netns);
      if (r.code !== 0) continue;
      const elements = /elements = \{([^}]*)\}/s.exec(r.stdout)?.[1] ?? "";
      state.set(
        name,
        elements.split(",").map((e) => e.trim().split(/\s+/)[0] ?? "").filter((e) => e !== ""),
      );
    } else {
      const name = endpointChainName(sp.id, sp.protocol, endpointText(ep.ip, ep.port));
      // The `recent` lists of this network namespace (the thread's, inside `netns`).
      const text = readInNetns(`/proc/thread-self/net/xt_recent/${name}`, netns);
      if (text === null) continue;
      state.set(name, [...text.matchAll(/src=(\S+)/g)].map((m) => m[1] as string));
    }
  }
  return state;
}

async function iptablesVariantOf(options: LiveOptions): Promise<"nft" | "legacy"> {
  if (options.iptablesVariant !== undefined) return options.iptablesVariant;
  const r = await runToolResult(
    "iptables",
    ["--version"],
    options.netns ? { netns: options.netns } : {},
  );
  return /nf_tables/.test(r.stdout + r.stderr) ? "nft" : "legacy";
}

/** The chains of a predicted path a kernel trace can show, in the trace's own form. */
function comparable(path: readonly PathEvent[], method: KernelTrace["method"]): string[] {
  const entered = enteredChains(path);
  if (method === "nftrace") return entered;
  return entered.filter((e) => / KUBE-/.test(e));
}

/**
 * The TUN device name for a probe meant to arrive on `wanted`: with the pods' prefix when
 * `wanted` has it (InterfaceNamePrefix mode), else `kpx` + random (a bridge cannot be named
 * twice, so in BridgeInterface mode the probe is traced as arriving elsewhere).
 */
function liveInputInterface(snapshot: ProxySnapshot, wanted: string): string {
  const random = Math.random().toString(36).slice(2, 8).padEnd(6, "0");
  const d = snapshot.options.localDetector;
  if (d.mode === "InterfaceNamePrefix" && d.interfaceName !== null) {
    if (wanted.startsWith(d.interfaceName)) return `${d.interfaceName}${random}`.slice(0, 15);
  }
  return `kpx${random}`;
}

/** Explains `packet`, sends it for real, and compares. */
export async function confirmLive(
  snapshot: ProxySnapshot,
  packet: ExplainPacket,
  options: LiveOptions,
): Promise<LiveReport> {
  // The probe arrives on a TUN device: explain is asked about that device, named so that the
  // interface modes see what was asked where they can (a pod interface by its prefix).
  const tunName = liveInputInterface(
    snapshot,
    options.inputInterface ?? assumedInputInterface(snapshot, packet),
  );
  const base = {
    mode: options.mode,
    nodeAddresses: options.nodeAddresses,
    inputInterface: tunName,
  };
  const first = explainPacket(snapshot, packet, base);
  const affinity = await readAffinity(snapshot, first, options);
  const answer = affinity === undefined
    ? first
    : explainPacket(snapshot, packet, { ...base, affinity });
  const variant = options.mode === "iptables" ? await iptablesVariantOf(options) : undefined;
  const trace = await traceInKernel(packet, {
    mode: options.mode,
    fromNode: answer.fromNode,
    inputInterface: tunName,
    ...(variant === undefined ? {} : { iptablesVariant: variant }),
    ...(options.netns === undefined ? {} : { netns: options.netns }),
  });
  const k = trace.path;
  const problems: string[] = [];
  const taken = k.endpoint === null ? null : hostPort(k.endpoint.ip, k.endpoint.port);
  let predicted: string[] = comparable(answer.path, trace.method);
  if (answer.verdict.kind === "dnat") {
    const ep = answer.endpoints.find((e) => hostPort(e.ip, e.port) === taken);
    if (taken === null) {
      problems.push(`the kernel did not DNAT the packet (${k.verdict}${k.by ? `: ${k.by}` : ""})`);
    } else if (ep === undefined) {
      problems.push(
        `the kernel sent it to ${taken}, which explain does not name (${
          answer.endpoints.map((e) => hostPort(e.ip, e.port)).join(", ")
        })`,
      );
    } else {
      predicted = comparable([...answer.path, ...ep.path], trace.method);
      if (ep.masqueraded !== k.masqueraded) {
        problems.push(
          `explain says ${ep.masqueraded ? "masqueraded" : "not masqueraded"}, the kernel ${
            k.masqueraded ? "masqueraded it" : "did not masquerade it"
          }`,
        );
      }
    }
  } else {
    if (taken !== null) {
      problems.push(`the kernel sent it to ${taken}; explain says ${answer.verdict.kind}`);
    }
    const expected = answer.verdict.kind === "drop" || answer.verdict.kind === "reject"
      ? answer.verdict.kind
      : "passed";
    if (k.verdict !== expected) {
      problems.push(
        `explain says ${answer.verdict.kind}, the kernel: ${k.verdict}${k.by ? ` (${k.by})` : ""}`,
      );
    }
  }
  const kernelPath = [...k.entered];
  const sameChains = trace.method === "counters"
    ? countersAgree(predicted, kernelPath)
    : predicted.join("\n") === kernelPath.join("\n");
  if (!sameChains) {
    problems.push(
      `the chains differ: explain ${predicted.join(" → ")}; kernel ${kernelPath.join(" → ")}`,
    );
  }
  return {
    answer,
    live: {
      method: trace.method,
      agrees: problems.length === 0,
      problems,
      kernelPath,
      predictedPath: predicted,
      endpoint: taken,
      masqueraded: k.masqueraded,
      verdict: k.verdict,
      sourcePort: trace.sourcePort,
    },
  };
}

/** A service port's own chains: only a new connection's NAT lookup can enter them. */
function isServicePortChain(entry: string): boolean {
  return / KUBE-(SVC|SVL|EXT|FW|SEP)-/.test(entry);
}

/**
 * Counters also count the probe's replies (the endpoint's answer, the spoofed source's reset),
 * which can enter the shared chains again, but never a service port's own chains: those must be
 * exactly the predicted ones, and every predicted chain must have counted the probe.
 */
function countersAgree(predicted: readonly string[], counted: readonly string[]): boolean {
  const seen = new Set(counted);
  if (!predicted.every((c) => seen.has(c))) return false;
  const own = (list: readonly string[]) => [...new Set(list.filter(isServicePortChain))].sort();
  return own(predicted).join("\n") === own(counted).join("\n");
}

/** The live part of the text answer. */
export function formatLiveReport(report: LiveReport): string {
  const l = report.live;
  const how = l.method === "nftrace"
    ? "nft monitor trace"
    : l.method === "nftrace-iptables"
    ? "nft monitor trace of iptables-nft"
    : "rule counters (iptables-legacy)";
  const did = l.endpoint !== null
    ? `DNAT to ${l.endpoint}${l.masqueraded ? ", masqueraded" : ""}`
    : l.verdict;
  const lines = [
    `live        ${
      l.agrees ? "agrees" : "MISMATCH"
    }: the kernel (${how}, source port ${l.sourcePort}) did ${did}`,
    `kernel      ${l.kernelPath.join(" → ")}`,
  ];
  for (const p of l.problems) lines.push(`  ✗ ${p}`);
  return lines.join("\n");
}
