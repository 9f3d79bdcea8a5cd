/**
 * The server-rendered status page at `/` (pure): the explain form, this node's services and
 * endpoints, the last syncs, and the latest change. Plain HTML with inline CSS, every value escaped, no scripts.
 */
import type { ProxyConfig } from "../config/proxy_config.ts";
import { endpointAddress, endpointState } from "../snapshot/snapshot_diff.ts";
import type {
  EndpointInfo,
  ProxySnapshot,
  ServicePortFamily,
  ServicePortSnapshot,
} from "../snapshot/types.ts";
import { markup, type SafeHtml, trustedHtml } from "./_html.ts";
import { explainForm } from "./explain_page.ts";
import type { HealthStatus } from "./health.ts";
import type { RuntimeDiff, SyncRecord } from "./runtime.ts";

/** Everything the page shows. */
export interface StatusPageView {
  /** The effective configuration. */
  readonly config: ProxyConfig;
  /** Health now. */
  readonly health: HealthStatus;
  /** The live snapshot, or null before the first sync. */
  readonly snapshot: ProxySnapshot | null;
  /** Recent syncs, newest first. */
  readonly syncs: readonly SyncRecord[];
  /** The latest change (previous live snapshot → current), if one is known. */
  readonly latestDiff: RuntimeDiff | null;
  /** At most this many service ports are listed (default 500). */
  readonly maxServicePorts?: number;
  /** At most this many syncs are listed (default 20). */
  readonly maxSyncs?: number;
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
header{background:#1d3b5a;color:#fff;padding:14px 24px}
header h1{margin:0 0 4px;font-size:20px}
header .meta{opacity:.9;font-size:13px}
header a{color:#cfe3ff}
main{padding:8px 24px 32px;max-width:1200px}
h2{font-size:16px;margin:24px 0 8px;border-bottom:1px solid #d5dae0;padding-bottom:4px}
.badges{margin-top:8px}
.tag{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;margin-right:6px}
.ok{background:#d8f3dc;color:#1b5e20}.bad{background:#fde2e1;color:#8a1c1c}.neutral{background:#e7ecf2;color:#33404d}
.svc{background:#fff;border:1px solid #d5dae0;border-radius:6px;margin:10px 0;padding:8px 12px}
.svc h3{margin:0 0 6px;font-size:15px}
table{border-collapse:collapse;width:100%}
table.ports{table-layout:fixed}
table.ports th:nth-child(1){width:11%}table.ports th:nth-child(2){width:26%}
table.ports th:nth-child(3){width:7%}table.ports th:nth-child(4){width:20%}
th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eceff3;vertical-align:top;font-size:13px}
th{color:#55606b;font-weight:600}
table.syncs{background:#fff;border:1px solid #d5dae0}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
ul.eps{list-style:none;margin:0;padding:0}
ul.eps li{overflow-wrap:anywhere}
li.local code{font-weight:700}
li.unused{color:#7a8590}
pre.diff{background:#fff;border:1px solid #d5dae0;border-radius:6px;padding:8px;overflow:auto;max-height:480px}
.add{color:#1b5e20}.del{color:#8a1c1c}.hunk{color:#1d3b5a}
.muted{color:#6b7680}
form.explain input{font:13px ui-monospace,monospace}
`;

function isoTime(ms: number | null): string {
  if (ms === null) return "never";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function badge(ok: boolean, text: string): SafeHtml {
  return markup`<span class="tag ${ok ? "ok" : "bad"}">${text}</span>`;
}

function endpointItem(ep: EndpointInfo, used: boolean): SafeHtml {
  const classes = ["ep", ep.isLocal ? "local" : "remote", ep.ready ? "ready" : "not-ready"];
  if (!used) classes.push("unused");
  const addr = endpointAddress(ep);
  const where = ep.nodeName !== null && !ep.isLocal ? ` on ${ep.nodeName}` : "";
  const note = `${endpointState(ep)}${where}${used ? "" : " (not used)"}`;
  return markup`<li class="${
    classes.join(" ")
  }" data-endpoint="${addr}"><code>${addr}</code> <span class="muted">${note}</span></li>`;
}

function familyCells(port: ServicePortSnapshot, fam: ServicePortFamily): SafeHtml {
  const useLocal = port.externalTrafficPolicy === "Local" ||
    port.internalTrafficPolicy === "Local";
  const usedList = [...fam.clusterEndpoints, ...(useLocal ? fam.localEndpoints : [])];
  const used = new Set(usedList.map(endpointAddress));
  const external = [...fam.externalIPs, ...fam.loadBalancerIPs];
  const externalHtml = external.length > 0
    ? markup`<br><span class="muted">external</span> <code>${external.join(" ")}</code>`
    : "";
  const endpoints = fam.endpoints.length === 0
    ? markup`<span class="tag bad">no endpoints</span>`
    : markup`<ul class="eps">${
      fam.endpoints.map((ep) => endpointItem(ep, used.has(endpointAddress(ep))))
    }</ul>`;
  return markup`<td><code>${fam.clusterIP}</code>${externalHtml}</td><td>${endpoints}</td>`;
}

function portRows(port: ServicePortSnapshot): SafeHtml[] {
  const notes: string[] = [];
  if (port.nodePort !== null) notes.push(`nodePort ${port.nodePort}`);
  if (port.externalTrafficPolicy === "Local") notes.push("externalTrafficPolicy Local");
  if (port.internalTrafficPolicy === "Local") notes.push("internalTrafficPolicy Local");
  if (port.sessionAffinityTimeoutSeconds !== null) {
    notes.push(`ClientIP affinity ${port.sessionAffinityTimeoutSeconds}s`);
  }
  if (port.healthCheckNodePort !== null) {
    notes.push(`healthCheckNodePort ${port.healthCheckNodePort}`);
  }
  const span = Math.max(1, port.families.length);
  const noteHtml = notes.length > 0
    ? markup`<br><span class="muted">${notes.join(", ")}</span>`
    : "";
  const head = [
    markup`<td rowspan="${span}"><code>${port.portName || "(unnamed)"}</code></td>`,
    markup`<td rowspan="${span}">${port.protocol} ${port.port}${noteHtml}</td>`,
  ];
  if (port.families.length === 0) {
    return [markup`<tr data-port="${port.id}">${head}<td colspan="3"></td></tr>`];
  }
  return port.families.map((fam, i) =>
    markup`<tr data-port="${port.id}">${i === 0 ? head : ""}<td>${fam.family}</td>${
      familyCells(port, fam)
    }</tr>`
  );
}

function servicesSection(snapshot: ProxySnapshot, max: number): SafeHtml {
  const shown = snapshot.servicePorts.slice(0, max);
  const groups = new Map<string, ServicePortSnapshot[]>();
  for (const port of shown) {
    const key = `${port.namespace}/${port.name}`;
    const list = groups.get(key) ?? [];
    list.push(port);
    groups.set(key, list);
  }
  const more = snapshot.servicePorts.length - shown.length;
  const sections = [...groups].map(([key, ports]) =>
    markup`
<section class="svc" data-service="${key}">
<h3>${key} <span class="tag neutral">${ports[0]?.type ?? ""}</span></h3>
<table class="ports"><thead><tr><th>Port</th><th>Service port</th><th>Family</th><th>Addresses</th><th>Endpoints</th></tr></thead>
<tbody>${ports.flatMap(portRows)}</tbody></table>
</section>`
  );
  const moreHtml = more > 0
    ? markup`<p class="muted">… and ${more} more service ports: see <a href="/snapshot">/snapshot</a>.</p>`
    : "";
  const body = groups.size === 0 ? markup`<p class="muted">No services.</p>` : sections;
  return markup`<h2>Services (${snapshot.servicePorts.length} service ports)</h2>${body}${moreHtml}`;
}

function syncRow(s: SyncRecord): SafeHtml {
  const result = s.ok ? badge(true, "ok") : markup`${badge(false, "failed")} ${s.error ?? ""}`;
  return markup`
<tr class="${s.ok ? "sync-ok" : "sync-failed"}"><td>${isoTime(s.startedAt)}</td><td>${
    s.full ? "full" : "partial"
  }</td><td>${result}</td><td>${
    s.durationMs.toFixed(1)
  } ms</td><td>${s.servicePorts}</td><td>${s.changedServicePorts}</td><td>${s.linesSent}</td><td><code>${s.snapshotHash}</code></td></tr>`;
}

function syncsSection(syncs: readonly SyncRecord[], max: number): SafeHtml {
  if (syncs.length === 0) return markup`<h2>Recent syncs</h2><p class="muted">No sync yet.</p>`;
  return markup`<h2>Recent syncs</h2>
<table class="syncs"><thead><tr><th>Started</th><th>Kind</th><th>Result</th><th>Duration</th><th>Service ports</th><th>Changed</th><th>Lines sent</th><th>Snapshot</th></tr></thead>
<tbody>${syncs.slice(0, max).map(syncRow)}</tbody></table>`;
}

function diffLine(line: string): SafeHtml {
  const cls = line.startsWith("@@")
    ? "hunk"
    : line.startsWith("+")
    ? "add"
    : line.startsWith("-")
    ? "del"
    : "";
  const nl = "\n";
  return cls === "" ? markup`${line}${nl}` : markup`<span class="${cls}">${line}</span>${nl}`;
}

function diffSection(diff: RuntimeDiff | null): SafeHtml {
  if (diff === null) {
    return markup`<h2>Latest change</h2><p class="muted">No change since the first sync.</p>`;
  }
  const d = diff.snapshot;
  const summary = `${d.added.length} added, ${d.removed.length} removed, ` +
    `${d.changed.length} changed`;
  const lines = d.lines.length > 0
    ? markup`<pre class="diff changes">${d.lines.map(diffLine)}</pre>`
    : "";
  const rules = diff.rules !== null && diff.rules !== ""
    ? markup`<details><summary>Rule diff</summary><pre class="diff rules">${
      diff.rules.split("\n").map(diffLine)
    }</pre></details>`
    : "";
  return markup`<h2>Latest change</h2>
<p>Snapshot <code>${d.fromHash}</code> → <code>${d.toHash}</code>: ${summary} (<a href="/diff?from=${
    encodeURIComponent(d.fromHash)
  }">JSON</a>).</p>${lines}${rules}`;
}

/** Renders the whole status page. */
export function renderStatusPage(view: StatusPageView): string {
  const { config, health, snapshot } = view;
  const nodeName = snapshot?.node.name ?? (config.hostnameOverride || "this node");
  const title = `kproxy — ${nodeName}`;
  const mode = `${config.mode}${config.dryRun ? " (dry run)" : ""}`;
  const badges = [
    badge(health.healthy && health.nodeEligible, health.healthy ? "healthz ok" : "healthz failing"),
    badge(health.healthy, health.healthy ? "live" : "not live"),
    badge(health.ready, health.ready ? "ready" : "not ready"),
    health.nodeEligible ? "" : badge(false, "node being deleted"),
  ];
  const services = snapshot === null
    ? markup`<h2>Services</h2><p class="muted">No snapshot has been synced yet.</p>`
    : servicesSection(snapshot, view.maxServicePorts ?? 500);
  return markup`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title><style>${trustedHtml(STYLE)}</style></head>
<body>
<header><h1>${title}</h1>
<div class="meta">mode ${mode} · snapshot <code>${
    snapshot?.hash ?? "none yet"
  }</code> · last sync ${
    isoTime(health.lastUpdated)
  } · <a href="/metrics">metrics</a> · <a href="/snapshot">snapshot</a> · <a href="/rules">rules</a> · <a href="/configz">config</a></div>
<div class="badges">${badges}</div></header>
<main>
<h2>Explain a packet</h2>
${explainForm()}
${services}
${syncsSection(view.syncs, view.maxSyncs ?? 20)}
${diffSection(view.latestDiff)}
</main>
</body></html>
`.html;
}
