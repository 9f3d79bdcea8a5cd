/**
 * The scenario runner's second judge: for every packet check, `kproxy explain`'s prediction from
 * the snapshot must equal what the packets did — the set of pods that answered, masquerade (seen
 * as the client address the pod got), refused for a reject, no answer for a drop, and no DNAT
 * when explain says no service rule changes the packet. Pure; the runner calls it per check.
 *
 * IP plan: see topology.ts (pods 198.18.1.(10+i) / fd00:1::(10+i)).
 *
 * @module
 */
import type { ExplainAnswer } from "../../src/explain/answer.ts";
import { confirmLive, formatLiveReport } from "../../src/explain/live/confirm.ts";
import { explainPacket } from "../../src/explain/explain.ts";
import { formatExplanation } from "../../src/explain/format.ts";
import { packetOf, parseTarget } from "../../src/explain/packet.ts";
import type { ExplainMode } from "../../src/explain/answer.ts";
import type { ProxySnapshot } from "../../src/snapshot/types.ts";
import type { ProbeResult } from "./probe.ts";
import type { ScenarioCheck } from "./scenario.ts";
import {
  CLIENT2_IPV4,
  CLIENT2_IPV6,
  CLIENT_IPV4,
  CLIENT_IPV6,
  NODE_INTERNAL_IPV4,
  NODE_INTERNAL_IPV6,
  podIPv4,
  podIPv6,
} from "./topology.ts";

/** What the judge needs to know of the topology. */
export interface ExplainCheckContext {
  /** Every address of the node. */
  readonly nodeAddresses: readonly string[];
}

/** The pod name of a topology pod address, or null. */
export function podOfAddress(ip: string): string | null {
  const v4 = /^198\.18\.1\.(\d+)$/.exec(ip);
  if (v4 !== null && Number(v4[1]) >= 10) return `pod${Number(v4[1]) - 10}`;
  const v6 = /^fd00:1::([0-9a-f]+)$/.exec(ip);
  if (v6 !== null) {
    // podIPv6(i) writes 10+i in decimal digits, which the address reads as hex.
    const index = Number(v6[1]) - 10;
    if (index >= 0 && podIPv6(index) === ip) return `pod${index}`;
  }
  return null;
}

/** The source address of a check's probes: what the prober's socket used, else its role's. */
export function sourceOf(check: ScenarioCheck, results: readonly ProbeResult[]): string {
  const seen = results.find((r) => r.kind === "answer");
  if (seen !== undefined && seen.kind === "answer") return seen.localIP;
  const v6 = check.ip.includes(":");
  if (check.ip === "127.0.0.1" || check.ip === "::1") return check.ip;
  const pod = /^pod(\d+)$/.exec(check.from);
  if (pod !== null) return v6 ? podIPv6(Number(pod[1])) : podIPv4(Number(pod[1]));
  switch (check.from) {
    case "client":
      return v6 ? CLIENT_IPV6 : CLIENT_IPV4;
    case "client2":
      return v6 ? CLIENT2_IPV6 : CLIENT2_IPV4;
    default:
      return v6 ? NODE_INTERNAL_IPV6 : NODE_INTERNAL_IPV4;
  }
}

/**
 * The interface a check's probes arrive on in the node namespace: a pod's veth (`pod<i>`, or the
 * bridge when the scenario puts the pods behind the BridgeInterface mode's bridge), the clients'
 * links `ext0` / `ext1`; none for the node's own.
 */
export function inputInterfaceOf(
  snapshot: ProxySnapshot,
  check: ScenarioCheck,
): string | undefined {
  const detector = snapshot.options.localDetector;
  if (/^pod\d+$/.test(check.from)) {
    return detector.mode === "BridgeInterface" && detector.interfaceName !== null
      ? detector.interfaceName
      : check.from;
  }
  if (check.from === "client") return "ext0";
  if (check.from === "client2") return "ext1";
  return undefined;
}

/** Explain's answer for a check's packet. */
export function explainCheck(
  snapshot: ProxySnapshot,
  check: ScenarioCheck,
  source: string,
  options: { readonly mode: ExplainMode; readonly nodeAddresses: readonly string[] },
): ExplainAnswer {
  const ip = check.ip.includes(":") ? `[${check.ip}]` : check.ip;
  const target = parseTarget(`${ip}:${check.port}/${(check.protocol ?? "TCP").toLowerCase()}`);
  const inputInterface = inputInterfaceOf(snapshot, check);
  return explainPacket(snapshot, packetOf(target, snapshot, { from: source }), {
    ...options,
    ...(inputInterface === undefined ? {} : { inputInterface }),
  });
}

/** The smallest share an endpoint must have for `probes` probes to miss it with p < 1e-6. */
function surelySeen(share: number, probes: number): boolean {
  return share > 0 && Math.pow(1 - share, probes) < 1e-6;
}

/**
 * Compares explain's answer with the probe results; returns the disagreements (empty when they
 * agree), each one line.
 */
export function compareWithPackets(
  answer: ExplainAnswer,
  results: readonly ProbeResult[],
  context: ExplainCheckContext,
): string[] {
  const problems: string[] = [];
  const answered = results.filter((r) => r.kind === "answer");
  const refused = results.filter((r) => r.kind === "refused").length;
  const timeout = results.filter((r) => r.kind === "timeout").length;
  const v = answer.verdict;
  switch (v.kind) {
    case "dnat": {
      if (answered.length !== results.length) {
        problems.push(`explain says DNAT, but ${refused} refused and ${timeout} timed out`);
      }
      const byPod = new Map<string, (typeof answer.endpoints)[number]>();
      for (const ep of answer.endpoints) {
        const pod = podOfAddress(ep.ip);
        if (pod !== null) byPod.set(pod, ep);
      }
      const pods = new Set<string>();
      for (const r of answered) {
        if (r.kind !== "answer") continue;
        pods.add(r.pod);
        const ep = byPod.get(r.pod);
        if (ep === undefined) {
          problems.push(
            `${r.pod} answered, but explain names only ${[...byPod.keys()].join(", ")}`,
          );
          continue;
        }
        // The prober's own address vs. what the pod saw; a node source looks the same either way.
        if (!context.nodeAddresses.includes(r.localIP) && !r.localIP.startsWith("127.")) {
          const masqueraded = r.clientIP !== r.localIP;
          if (masqueraded !== ep.masqueraded) {
            problems.push(
              `explain says ${r.pod} gets it ${
                ep.masqueraded ? "masqueraded" : "with the client's address"
              }, but the pod saw ${r.clientIP} (the client is ${r.localIP})`,
            );
          }
        }
      }
      if (answer.affinity === null) {
        for (const [pod, ep] of byPod) {
          if (!pods.has(pod) && surelySeen(ep.share, answered.length)) {
            problems.push(
              `explain gives ${pod} a ${
                (ep.share * 100).toFixed(0)
              }% share, but none of ${answered.length} probes reached it`,
            );
          }
        }
      }
      break;
    }
    case "reject":
      if (refused !== results.length) {
        problems.push(`explain says reject, but ${answered.length} answered, ${timeout} timed out`);
      }
      break;
    case "drop":
      if (timeout !== results.length) {
        problems.push(`explain says drop, but ${answered.length} answered, ${refused} refused`);
      }
      break;
    case "local":
    case "routed":
      if (answered.length > 0) {
        problems.push(
          `explain says no service rule changes the packet (${v.kind}), but pods answered`,
        );
      }
      break;
  }
  return problems.map((p) => `explain: ${p}`);
}

/** The answer as indented text, for failure reports. */
export function answerReport(answer: ExplainAnswer): string {
  return formatExplanation(answer).split("\n").map((l) => `      ${l}`).join("\n");
}

/** Options of {@link judgeWithExplain}. */
export interface JudgeOptions {
  /** Whose rules to explain. */
  readonly mode: ExplainMode;
  /** Every address of the node. */
  readonly nodeAddresses: readonly string[];
  /** Trace the check's packet with `--live` in this node namespace (null: do not). */
  readonly live: { readonly netns: string; readonly iptablesVariant: "nft" | "legacy" } | null;
}

/**
 * The runner's explain judge for one check: the prediction against the probes, then (with
 * `live`) the same packet sent and traced through the kernel's rules. Returns one problem line
 * per disagreement (each with the answer for the report) and whether a live trace ran.
 */
export async function judgeWithExplain(
  snapshot: ProxySnapshot,
  check: ScenarioCheck,
  results: readonly ProbeResult[],
  options: JudgeOptions,
): Promise<{ problems: string[]; traced: boolean }> {
  const where = `${check.name} (${check.from} → ${check.ip}:${check.port})`;
  const answer = explainCheck(snapshot, check, sourceOf(check, results), options);
  const problems: string[] = [];
  const disagreements = compareWithPackets(answer, results, options);
  if (disagreements.length > 0) {
    problems.push(`${where}: ${disagreements.join("; ")}\n${answerReport(answer)}`);
  }
  if (options.live === null) return { problems, traced: false };
  const inputInterface = inputInterfaceOf(snapshot, check);
  const report = await confirmLive(snapshot, answer.packet, {
    ...(inputInterface === undefined ? {} : { inputInterface }),
    mode: options.mode,
    nodeAddresses: options.nodeAddresses,
    netns: options.live.netns,
    iptablesVariant: options.live.iptablesVariant,
  });
  if (!report.live.agrees) {
    problems.push(
      `${where}: explain --live: ${report.live.problems.join("; ")}\n${
        answerReport(report.answer)
      }\n${formatLiveReport(report)}`,
    );
  }
  return { problems, traced: true };
}
