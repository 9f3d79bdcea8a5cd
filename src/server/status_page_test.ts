import assert from "node:assert/strict";
import { DEFAULT_PROXY_CONFIG } from "../config/proxy_config.ts";
import { escapeHtml, markup } from "./_html.ts";
import { okRecord, SNAPSHOT_A, snapshotOf } from "./_fixtures.ts";
import { HealthTracker } from "./health.ts";
import { renderStatusPage } from "./status_page.ts";

// IP plan: pods 198.18.1.0/24, services 198.18.128.0/17.

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);

function health(deleting = false) {
  const t = new HealthTracker({ healthTimeoutMs: 60_000 });
  t.synced(T0, true);
  t.nodeDeleting(deleting);
  return t.status(T0);
}

Deno.test("escapeHtml and markup escape every interpolation", () => {
  assert.equal(
    escapeHtml(`<a href="x">'&'</a>`),
    "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;",
  );
  const inner = markup`<b>${"<i>"}</b>`;
  assert.equal(
    markup`<p>${inner}${["<", 1]}${null}${false}</p>`.html,
    "<p><b>&lt;i&gt;</b>&lt;1</p>",
  );
});

Deno.test("the page lists services, endpoints (local marked) and syncs", () => {
  const page = renderStatusPage({
    config: DEFAULT_PROXY_CONFIG,
    health: health(),
    snapshot: SNAPSHOT_A,
    syncs: [
      { ...okRecord(SNAPSHOT_A, T0), ok: false, error: "nft: <boom>", linesSent: 0 },
      okRecord(SNAPSHOT_A, T0 - 1000),
    ],
    latestDiff: null,
  });
  assert.match(page, /^<!doctype html>/);
  assert.match(page, /<title>kproxy — node-a<\/title>/);
  assert.match(page, /data-service="shop\/api"/);
  assert.match(page, /<li class="ep local ready" data-endpoint="198\.18\.1\.30:8443">/);
  assert.match(page, /<li class="ep remote ready" data-endpoint="198\.18\.1\.31:8443">/);
  assert.match(page, /data-endpoint="198\.18\.1\.32:8443">.*serving, terminating, local/);
  assert.match(page, /healthCheckNodePort 32000/);
  assert.match(page, /nft: &lt;boom&gt;/);
  assert.doesNotMatch(page, /<boom>/);
  assert.match(page, /No change since the first sync/);
  assert.doesNotMatch(page, /<script/i);
});

Deno.test("hostile names are escaped", () => {
  const snap = snapshotOf(`
apiVersion: v1
kind: Service
metadata: { name: x, namespace: default }
spec:
  clusterIPs: [198.18.128.40]
  ports: [{ name: "a-b", port: 80 }]
`);
  const page = renderStatusPage({
    config: { ...DEFAULT_PROXY_CONFIG, hostnameOverride: `<script>alert(1)</script>` },
    health: health(true),
    snapshot: null,
    syncs: [],
    latestDiff: null,
  });
  assert.doesNotMatch(page, /<script>/);
  assert.match(page, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  assert.match(page, /node being deleted/);
  assert.match(page, /No sync yet/);
  const limited = renderStatusPage({
    config: DEFAULT_PROXY_CONFIG,
    health: health(),
    snapshot: snap,
    syncs: [],
    latestDiff: null,
    maxServicePorts: 0,
  });
  assert.match(limited, /and 1 more service ports/);
});

Deno.test("the page offers the explain form", () => {
  const page = renderStatusPage({
    config: DEFAULT_PROXY_CONFIG,
    health: health(),
    snapshot: SNAPSHOT_A,
    syncs: [],
    latestDiff: null,
  });
  assert.match(page, /<form class="explain" method="get" action="\/explain">/);
  assert.match(page, /<input name="to"/);
  assert.match(page, /<input type="hidden" name="o" value="html">/);
});
