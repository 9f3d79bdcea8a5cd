/**
 * `kproxy explain`: where a packet goes on this node, and why. The snapshot comes from manifests
 * or from one list of the API server; the answer is explain's pure function; `--live` then
 * traces the packet through the kernel's own rules and fails when the kernel disagrees.
 */
import type { ProxyConfig } from "../config/proxy_config.ts";
import type { ExplainAnswer } from "../explain/answer.ts";
import { explainPacket } from "../explain/explain.ts";
import { formatExplanation } from "../explain/format.ts";
import { packetOf, PacketSyntaxError, parseTarget } from "../explain/packet.ts";
import { initialProxyState, type ProxyState, reconcile } from "../snapshot/proxy_state.ts";
import type { ProxySnapshot } from "../snapshot/types.ts";
import { UsageError } from "./flags.ts";
import { snapshotFromManifests } from "./offline_commands.ts";
import { hostAddresses, snapshotSettingsOf } from "./settings.ts";

/** How long one list of the API server may take before explain gives up. */
const API_LIST_TIMEOUT_MS = 30_000;

/** The flags `explain` adds to kube-proxy's. */
export const EXPLAIN_FLAGS = {
  to: ["string", "the destination: ADDR:PORT[/tcp|udp|sctp] (IPv6 as [ADDR]:PORT)"],
  from: ["string", "the source address (default: this node itself)"],
  iif: [
    "string",
    "the interface the packet arrives on (default: a pod's if --from is an endpoint here)",
  ],
  live: ["boolean", "also send the packet and trace it through the kernel's rules (root)"],
} as const;

/** Help text of `kproxy explain`. */
export const EXPLAIN_HELP =
  `kproxy explain (--manifests PATH | --kubeconfig FILE | in-cluster) --to ADDR:PORT[/tcp|udp|sctp]
               [--from ADDR] [--iif NAME] [--hostname-override NODE]
               [--proxy-mode nftables|iptables] [-o text|json]

Says where a new connection to ADDR:PORT goes on this node, and why: the service port it matches
(ClusterIP, NodePort on which node address, ExternalIP, LoadBalancer IP) or that none does, the
endpoints that can receive it with their shares, every other endpoint with the reason it cannot
(not ready, terminating, topology hints, traffic policy Local, affinity), the verdict (DNAT,
reject, drop), masquerade and why, and the rule path in the backend's own chain names (/rules).
Without --from the packet is one the node sends itself. --iif names the interface it arrives on
(--detect-local-mode BridgeInterface and InterfaceNamePrefix tell pods by it); without it, a
source that is an endpoint on this node arrives on its pod's interface, any other on one that is
neither the bridge nor a pod's.

--live (root, on the node, kproxy running): sends that packet for real — on a raw socket when
its source is a node address, else through a TUN device made for the moment — and traces it
through the kernel's rules (nftables: meta nftrace in kproxy's own table; iptables-nft: a table
of explain's own; iptables-legacy: rule counters), removes what it added, and compares: exit 1
when the chains, the endpoint, masquerade or the verdict differ from the prediction.`;

/** Lists Services, EndpointSlices and this node once from the API server; the snapshot. */
async function snapshotFromApi(config: ProxyConfig, nodeName: string): Promise<ProxySnapshot> {
  const { KubernetesSource } = await import("../source/kubernetes_source.ts");
  let state: ProxyState = initialProxyState(snapshotSettingsOf(config, nodeName, []));
  let synced!: () => void;
  const listed = new Promise<void>((resolve) => (synced = resolve));
  const source = new KubernetesSource({
    kubeconfig: config.kubeconfig || undefined,
    master: config.master || undefined,
    qps: config.kubeApiQps,
    burst: config.kubeApiBurst,
    nodeName,
    onEvents: (events) => {
      state = reconcile(state, events).state;
    },
    onSynced: () => synced(),
  });
  await source.start();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(`Cannot list the API server's objects within ${API_LIST_TIMEOUT_MS / 1000}s`),
        ),
      API_LIST_TIMEOUT_MS,
    );
  });
  try {
    await Promise.race([listed, timeout]);
  } finally {
    clearTimeout(timer);
    await source.stop();
  }
  return state.snapshot;
}

/** What `kproxy explain` prints and returns. */
export interface ExplainRun {
  /** The answer. */
  readonly answer: ExplainAnswer;
  /** Output text. */
  readonly text: string;
  /** Exit code. */
  readonly code: number;
}

/** Runs `kproxy explain` with parsed flag values. */
export async function runExplain(
  values: Readonly<Record<string, string>>,
  config: ProxyConfig,
  nodeName: string,
): Promise<ExplainRun> {
  const to = values["to"];
  if (to === undefined || to === "") {
    throw new UsageError("explain needs --to ADDR:PORT[/tcp|udp|sctp]");
  }
  const output = values["output"] ?? "text";
  if (output !== "text" && output !== "json") {
    throw new UsageError(`-o must be text or json, not ${JSON.stringify(output)}`);
  }
  let target;
  try {
    target = parseTarget(to);
  } catch (e) {
    if (e instanceof PacketSyntaxError) throw new UsageError(e.message);
    throw e;
  }
  const snapshot = config.manifests
    ? await snapshotFromManifests(config.manifests, config, nodeName)
    : await snapshotFromApi(config, nodeName);
  let packet;
  try {
    packet = packetOf(target, snapshot, { from: values["from"] });
  } catch (e) {
    if (e instanceof PacketSyntaxError) throw new UsageError(e.message);
    throw e;
  }
  const iif = values["iif"] === undefined || values["iif"] === "" ? undefined : values["iif"];
  if (values["live"] !== "true") {
    // Offline, the node's addresses are what the snapshot knows (primary and NodePort IPs).
    const answer = explainPacket(snapshot, packet, {
      mode: config.mode,
      nodeAddresses: [],
      ...(iif === undefined ? {} : { inputInterface: iif }),
    });
    const text = output === "json" ? JSON.stringify(answer, null, 2) : formatExplanation(answer);
    return { answer, text, code: 0 };
  }
  // On the node: its interfaces' addresses are local, and the kernel has the last word.
  const { confirmLive, formatLiveReport } = await import("../explain/live/confirm.ts");
  const report = await confirmLive(snapshot, packet, {
    mode: config.mode,
    nodeAddresses: hostAddresses(),
    ...(iif === undefined ? {} : { inputInterface: iif }),
  });
  const text = output === "json"
    ? JSON.stringify({ ...report.answer, live: report.live }, null, 2)
    : `${formatExplanation(report.answer)}\n${formatLiveReport(report)}`;
  return { answer: report.answer, text, code: report.live.agrees ? 0 : 1 };
}
