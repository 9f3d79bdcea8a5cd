/** A snapshot as a table a person reads (pure). */
import { endpointAddress } from "../snapshot/snapshot_diff.ts";
import type { EndpointInfo, ProxySnapshot } from "../snapshot/types.ts";

function endpointText(ep: EndpointInfo): string {
  const flags = [
    ep.isLocal ? "local" : "",
    ep.ready ? "" : ep.terminating ? "terminating" : "not ready",
  ]
    .filter(Boolean);
  return flags.length > 0 ? `${endpointAddress(ep)} (${flags.join(", ")})` : endpointAddress(ep);
}

/** Renders one row per service port and family, with the endpoints traffic goes to. */
export function formatSnapshotTable(snapshot: ProxySnapshot): string {
  const header = ["SERVICE PORT", "TYPE", "PROTO", "ADDRESS", "NODEPORT", "POLICY", "ENDPOINTS"];
  const rows: string[][] = [];
  for (const sp of snapshot.servicePorts) {
    for (const f of sp.families) {
      const addr = f.clusterIP.includes(":") ? `[${f.clusterIP}]` : f.clusterIP;
      const extra = [...f.externalIPs, ...f.loadBalancerIPs];
      const policy = `ext=${sp.externalTrafficPolicy} int=${sp.internalTrafficPolicy}` +
        (sp.sessionAffinityTimeoutSeconds !== null
          ? ` affinity=${sp.sessionAffinityTimeoutSeconds}s`
          : "");
      const used = new Set([...f.clusterEndpoints, ...f.localEndpoints]);
      const eps = [...used].sort((a, b) => f.endpoints.indexOf(a) - f.endpoints.indexOf(b));
      rows.push([
        sp.id,
        sp.type,
        sp.protocol,
        `${addr}:${sp.port}${extra.length > 0 ? ` +${extra.join(",")}` : ""}`,
        sp.nodePort === null ? "-" : String(sp.nodePort),
        policy,
        eps.length === 0 ? "<none: rejected>" : eps.map(endpointText).join(", "),
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ").trimEnd();
  const nodeLine = `node ${snapshot.node.name || "<unnamed>"}` +
    (snapshot.node.zone ? ` zone ${snapshot.node.zone}` : "") +
    ` · snapshot ${snapshot.hash} · ${snapshot.servicePorts.length} service ports`;
  return [nodeLine, line(header), ...rows.map(line)].join("\n");
}
