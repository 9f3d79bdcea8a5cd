/** What changed between two snapshots, in words a person reads and in data (pure). */
import type {
  EndpointInfo,
  ProxySnapshot,
  ServicePortFamily,
  ServicePortSnapshot,
} from "./types.ts";

/** One service port present in both snapshots with different content. */
export interface ChangedServicePort {
  /** The entry before. */
  readonly before: ServicePortSnapshot;
  /** The entry after. */
  readonly after: ServicePortSnapshot;
}

/** The difference between two snapshots. */
export interface SnapshotDiff {
  /** Hash of the older snapshot. */
  readonly fromHash: string;
  /** Hash of the newer snapshot. */
  readonly toHash: string;
  /** Service ports only in the newer snapshot. */
  readonly added: readonly ServicePortSnapshot[];
  /** Service ports only in the older snapshot. */
  readonly removed: readonly ServicePortSnapshot[];
  /** Service ports in both, changed. */
  readonly changed: readonly ChangedServicePort[];
  /** Ids of service ports that had usable endpoints and now have none. */
  readonly lostAllEndpoints: readonly string[];
  /** True when node facts or proxy options changed. */
  readonly nodeOrOptionsChanged: boolean;
  /** One line per change, e.g. `default/web:http +endpoint 198.18.1.7:8080 (ready)`. */
  readonly lines: readonly string[];
}

/** `ip:port` (IPv6 in brackets). */
export function endpointAddress(ep: Pick<EndpointInfo, "ip" | "port">): string {
  return ep.ip.includes(":") ? `[${ep.ip}]:${ep.port}` : `${ep.ip}:${ep.port}`;
}

/** The condition words of an endpoint: ready, serving, terminating, and local. */
export function endpointState(ep: EndpointInfo): string {
  const words: string[] = [];
  if (ep.ready) words.push("ready");
  else if (ep.serving) words.push("serving");
  else words.push("not ready");
  if (ep.terminating) words.push("terminating");
  if (ep.isLocal) words.push("local");
  return words.join(", ");
}

/** A one-line summary of a service port: protocol, addresses, endpoint count. */
export function describeServicePort(sp: ServicePortSnapshot): string {
  const parts: string[] = [`${sp.protocol}`];
  for (const f of sp.families) {
    const addr = f.clusterIP.includes(":") ? `[${f.clusterIP}]` : f.clusterIP;
    parts.push(`${addr}:${sp.port}`);
  }
  if (sp.nodePort !== null) parts.push(`nodePort ${sp.nodePort}`);
  const eps = sp.families.reduce((n, f) => n + f.clusterEndpoints.length, 0);
  parts.push(`${eps} endpoint${eps === 1 ? "" : "s"}`);
  return parts.join(" ");
}

function usable(sp: ServicePortSnapshot): boolean {
  return sp.families.some((f) => f.hasAnyEndpoints);
}

function familyLines(
  id: string,
  before: ServicePortFamily | undefined,
  after: ServicePortFamily | undefined,
): string[] {
  const lines: string[] = [];
  const fam = (before ?? after)?.family ?? "";
  if (before === undefined && after !== undefined) {
    lines.push(`${id} +family ${fam} clusterIP ${after.clusterIP}`);
  } else if (after === undefined && before !== undefined) {
    lines.push(`${id} -family ${fam} clusterIP ${before.clusterIP}`);
  }
  const b = before;
  const a = after;
  if (b && a && b.clusterIP !== a.clusterIP) {
    lines.push(`${id} clusterIP ${b.clusterIP} → ${a.clusterIP}`);
  }
  const listDiff = (what: string, x: readonly string[], y: readonly string[]) => {
    for (const v of y) if (!x.includes(v)) lines.push(`${id} +${what} ${v}`);
    for (const v of x) if (!y.includes(v)) lines.push(`${id} -${what} ${v}`);
  };
  listDiff("externalIP", b?.externalIPs ?? [], a?.externalIPs ?? []);
  listDiff("loadBalancerIP", b?.loadBalancerIPs ?? [], a?.loadBalancerIPs ?? []);
  listDiff("sourceRange", b?.loadBalancerSourceRanges ?? [], a?.loadBalancerSourceRanges ?? []);
  const before2 = new Map((b?.endpoints ?? []).map((e) => [endpointAddress(e), e]));
  const after2 = new Map((a?.endpoints ?? []).map((e) => [endpointAddress(e), e]));
  for (const [addr, e] of after2) {
    const old = before2.get(addr);
    if (old === undefined) lines.push(`${id} +endpoint ${addr} (${endpointState(e)})`);
    else if (endpointState(old) !== endpointState(e)) {
      lines.push(`${id} endpoint ${addr} ${endpointState(old)} → ${endpointState(e)}`);
    }
  }
  for (const [addr, e] of before2) {
    if (!after2.has(addr)) lines.push(`${id} -endpoint ${addr} (${endpointState(e)})`);
  }
  const inUse = (f: ServicePortFamily | undefined) =>
    (f?.clusterEndpoints ?? []).map(endpointAddress).join(",") + "|" +
    (f?.localEndpoints ?? []).map(endpointAddress).join(",");
  if (b && a && inUse(b) !== inUse(a) && lines.length === 0) {
    lines.push(
      `${id} endpoints in use (${fam}) ${
        b.clusterEndpoints.map(endpointAddress).join(" ") || "none"
      } → ${a.clusterEndpoints.map(endpointAddress).join(" ") || "none"}`,
    );
  }
  return lines;
}

function changeLines(before: ServicePortSnapshot, after: ServicePortSnapshot): string[] {
  const id = after.id;
  const lines: string[] = [];
  const scalar = (what: string, x: unknown, y: unknown) => {
    if (x !== y) lines.push(`${id} ${what} ${x ?? "none"} → ${y ?? "none"}`);
  };
  scalar("type", before.type, after.type);
  scalar("protocol", before.protocol, after.protocol);
  scalar("port", before.port, after.port);
  scalar("nodePort", before.nodePort, after.nodePort);
  scalar("healthCheckNodePort", before.healthCheckNodePort, after.healthCheckNodePort);
  scalar(
    "sessionAffinityTimeout",
    before.sessionAffinityTimeoutSeconds,
    after.sessionAffinityTimeoutSeconds,
  );
  scalar("externalTrafficPolicy", before.externalTrafficPolicy, after.externalTrafficPolicy);
  scalar("internalTrafficPolicy", before.internalTrafficPolicy, after.internalTrafficPolicy);
  for (const family of ["IPv4", "IPv6"] as const) {
    lines.push(
      ...familyLines(
        id,
        before.families.find((f) => f.family === family),
        after.families.find((f) => f.family === family),
      ),
    );
  }
  if (usable(before) && !usable(after)) {
    lines.push(`${id} lost all endpoints: connections will be rejected`);
  }
  return lines;
}

/** Compares two snapshots service port by service port (linear merge of the sorted lists). */
export function describeSnapshotDiff(from: ProxySnapshot, to: ProxySnapshot): SnapshotDiff {
  const added: ServicePortSnapshot[] = [];
  const removed: ServicePortSnapshot[] = [];
  const changed: ChangedServicePort[] = [];
  const lost: string[] = [];
  const lines: string[] = [];
  if (from.hash !== to.hash) {
    const a = from.servicePorts;
    const b = to.servicePorts;
    let i = 0;
    let j = 0;
    while (i < a.length || j < b.length) {
      const x = a[i];
      const y = b[j];
      if (y === undefined || (x !== undefined && x.id < y.id)) {
        removed.push(x as ServicePortSnapshot);
        lines.push(`-service ${x!.id} ${describeServicePort(x!)}`);
        i++;
      } else if (x === undefined || y.id < x.id) {
        added.push(y);
        lines.push(`+service ${y.id} ${describeServicePort(y)}`);
        j++;
      } else {
        if (x.hash !== y.hash) {
          changed.push({ before: x, after: y });
          lines.push(...changeLines(x, y));
          if (usable(x) && !usable(y)) lost.push(y.id);
        }
        i++;
        j++;
      }
    }
  }
  const nodeOrOptionsChanged = JSON.stringify([from.node, from.options]) !==
    JSON.stringify([to.node, to.options]);
  if (nodeOrOptionsChanged) {
    if (JSON.stringify(from.node) !== JSON.stringify(to.node)) {
      lines.push(`node ${to.node.name}: ${JSON.stringify(from.node)} → ${JSON.stringify(to.node)}`);
    }
    if (JSON.stringify(from.options) !== JSON.stringify(to.options)) {
      lines.push(`options: ${JSON.stringify(from.options)} → ${JSON.stringify(to.options)}`);
    }
  }
  const gone = from.serviceCIDRs.filter((c) => !to.serviceCIDRs.includes(c));
  const come = to.serviceCIDRs.filter((c) => !from.serviceCIDRs.includes(c));
  if (gone.length > 0 || come.length > 0) {
    lines.push(
      `service CIDRs: ${[...come.map((c) => `+${c}`), ...gone.map((c) => `-${c}`)].join(" ")}`,
    );
  }
  return {
    fromHash: from.hash,
    toHash: to.hash,
    added,
    removed,
    changed,
    lostAllEndpoints: lost,
    nodeOrOptionsChanged,
    lines,
  };
}
