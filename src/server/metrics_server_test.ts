import assert from "node:assert/strict";
import {
  FIXTURE_SETTINGS,
  fixtureStore,
  okRecord,
  SNAPSHOT_A,
  SNAPSHOT_B,
  snapshotOf,
} from "./_fixtures.ts";
import { createMetricsApp } from "./metrics_server.ts";

// IP plan: node 198.18.0.10, pods 198.18.1.0/24, services 198.18.128.0/17.

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);

function synced(options: Parameters<typeof fixtureStore>[0] = {}) {
  const fx = fixtureStore({ now: () => T0 + 5_000, ...options });
  fx.store.recordSync(okRecord(SNAPSHOT_A, T0), SNAPSHOT_A);
  fx.store.recordSync(okRecord(SNAPSHOT_B, T0 + 1_000, false), SNAPSHOT_B);
  fx.health.synced(T0 + 1_000, true);
  return { ...fx, app: createMetricsApp(fx.store) };
}

function empty() {
  const fx = fixtureStore();
  return { ...fx, app: createMetricsApp(fx.store) };
}

async function errorOf(res: Response): Promise<string> {
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  const body = await res.json();
  assert.equal(typeof body.error, "string");
  return body.error;
}

Deno.test("/metrics serves the Prometheus text format", async () => {
  const { app, metrics } = synced();
  metrics.objectSkipped("Service");
  const res = await app.request("/metrics");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await res.text();
  assert.match(text, /^# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram$/m);
  assert.match(text, /^kproxy_skipped_objects_total\{kind="Service"\} 1$/m);
});

Deno.test("/healthz answers ok like upstream's metrics server; /readyz follows the first sync", async () => {
  const { app } = empty();
  const res = await app.request("/healthz");
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "ok");
  assert.equal((await app.request("/readyz")).status, 503);
  assert.equal((await synced().app.request("/readyz")).status, 200);
});

Deno.test("/configz and /proxyMode", async () => {
  const { app } = synced();
  const res = await app.request("/configz");
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body["kubeproxy.config.k8s.io"].mode, "nftables");
  assert.equal(body["kubeproxy.config.k8s.io"].metricsBindAddress, "127.0.0.1:10249");
  assert.equal(await (await app.request("/proxyMode")).text(), "nftables");
});

Deno.test("/snapshot: current, by hash, unknown, malformed, none yet", async () => {
  const { app } = synced();
  const cur = await app.request("/snapshot");
  assert.equal(cur.status, 200);
  const body = await cur.json();
  assert.equal(body.hash, SNAPSHOT_B.hash);
  assert.equal(body.servicePorts.length, 2);
  const old = await app.request(`/snapshot?hash=${SNAPSHOT_A.hash}`);
  assert.equal((await old.json()).hash, SNAPSHOT_A.hash);
  const unknown = await app.request("/snapshot?hash=0123456789abcdef");
  assert.equal(unknown.status, 404);
  assert.match(await errorOf(unknown), /0123456789abcdef is not kept/);
  const bad = await app.request("/snapshot?hash=<script>");
  assert.equal(bad.status, 400);
  assert.match(await errorOf(bad), /not a snapshot hash/);
  const twice = await app.request(`/snapshot?hash=${SNAPSHOT_A.hash}&hash=${SNAPSHOT_B.hash}`);
  assert.equal(twice.status, 400);
  const none = await empty().app.request("/snapshot");
  assert.equal(none.status, 503);
  assert.match(await errorOf(none), /No snapshot/);
});

Deno.test("/diff: services and endpoints changed plus the rule diff", async () => {
  const { app } = synced();
  const res = await app.request(`/diff?from=${SNAPSHOT_A.hash}`);
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.from, SNAPSHOT_A.hash);
  assert.equal(body.to, SNAPSHOT_B.hash);
  assert.deepEqual(body.added, []);
  assert.deepEqual(body.removed, []);
  assert.equal(body.changed.length, 1);
  assert.equal(body.changed[0].id, "default/web:http");
  assert.ok(body.lines.some((l: string) => l.includes("+endpoint 198.18.1.7:8080")));
  assert.equal(body.rules.mode, "nftables");
  assert.match(
    body.rules.diff,
    /^\+ {2}# default\/web:http 198\.18\.128\.10:80 -> 198\.18\.1\.7:8080$/m,
  );
  // Explicit `to`, reversed.
  const back = await (await app.request(`/diff?from=${SNAPSHOT_B.hash}&to=${SNAPSHOT_A.hash}`))
    .json();
  assert.ok(back.lines.some((l: string) => l.includes("-endpoint 198.18.1.7:8080")));
  // Same snapshot: nothing.
  const same = await (await app.request(`/diff?from=${SNAPSHOT_B.hash}`)).json();
  assert.deepEqual([same.changed, same.lines, same.rules.diff], [[], [], ""]);
});

Deno.test("/diff: client mistakes are 4xx with an error", async () => {
  const { app } = synced();
  const cases: [string, number, RegExp][] = [
    ["/diff", 400, /from is required/],
    ["/diff?from=", 400, /not a snapshot hash/],
    ["/diff?from=zz", 400, /not a snapshot hash/],
    ["/diff?from=0123456789abcdef", 404, /not kept/],
    [`/diff?from=${SNAPSHOT_A.hash}&to=0123456789abcdef`, 404, /not kept/],
    [`/diff?from=${SNAPSHOT_A.hash}&to=nothex!`, 400, /not a snapshot hash/],
    ["/diff?from=%ZZ", 400, /not a snapshot hash/],
    [`/diff?from=${"a".repeat(100)}`, 400, /not a snapshot hash/],
    ["/snapshot?hash=%E0%A4%A", 400, /not a snapshot hash/],
  ];
  for (const [path, status, message] of cases) {
    const res = await app.request(path);
    assert.equal(res.status, status, path);
    assert.match(await errorOf(res), message, path);
  }
  const none = await empty().app.request(`/diff?from=${SNAPSHOT_A.hash}`);
  assert.equal(none.status, 503);
});

Deno.test("/diff without a renderer has rules null", async () => {
  const { app } = synced({ renderer: null });
  const body = await (await app.request(`/diff?from=${SNAPSHOT_A.hash}`)).json();
  assert.equal(body.rules, null);
});

Deno.test("/rules: live text, rendered by hash, and errors", async () => {
  const { app } = synced({ liveRules: () => Promise.resolve("table ip kproxy { live }\n") });
  const live = await app.request("/rules");
  assert.equal(live.status, 200);
  assert.match(live.headers.get("content-type") ?? "", /text\/plain/);
  assert.equal(await live.text(), "table ip kproxy { live }\n");
  const rendered = await app.request(`/rules?hash=${SNAPSHOT_A.hash}`);
  assert.match(await rendered.text(), /198\.18\.1\.2:8080/);
  assert.equal((await app.request("/rules?hash=0123456789abcdef")).status, 404);
  assert.equal((await app.request("/rules?hash=x")).status, 400);
  const failing = synced({ liveRules: () => Promise.reject(new Error("nft: permission denied")) });
  const res = await failing.app.request("/rules");
  assert.equal(res.status, 503);
  assert.match(await errorOf(res), /Cannot read the live rules: nft: permission denied/);
  const noRenderer = synced({ renderer: null });
  assert.equal((await noRenderer.app.request(`/rules?hash=${SNAPSHOT_A.hash}`)).status, 501);
});

Deno.test("/ renders the status page with escaped values", async () => {
  const { app } = synced();
  const res = await app.request("/");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /text\/html/);
  assert.match(res.headers.get("content-security-policy") ?? "", /default-src 'none'/);
  const page = await res.text();
  assert.match(page, /data-service="default\/web"/);
  assert.match(page, /data-endpoint="198\.18\.1\.7:8080"/);
  assert.match(page, /Latest change/);
  assert.match(page, /\+endpoint 198\.18\.1\.7:8080/);
  const before = await empty().app.request("/");
  assert.equal(before.status, 200);
  assert.match(await before.text(), /No snapshot has been synced yet/);
});

Deno.test("unknown paths are 404 and wrong methods 405, both JSON", async () => {
  const { app } = synced();
  const missing = await app.request("/nope");
  assert.equal(missing.status, 404);
  assert.match(await errorOf(missing), /No such path \/nope/);
  const post = await app.request("/snapshot", { method: "POST" });
  assert.equal(post.status, 405);
  assert.match(await errorOf(post), /POST/);
  const del = await app.request("/", { method: "DELETE" });
  assert.equal(del.status, 405);
});

Deno.test("HEAD works where GET does", async () => {
  const { app } = synced();
  const res = await app.request("/metrics", { method: "HEAD" });
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "");
});

Deno.test("/explain: JSON, text and HTML answers from the live snapshot", async () => {
  const { app } = synced();
  const res = await app.request("/explain?to=198.18.128.10:80&from=198.18.1.50");
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.match.servicePort, "default/web:http");
  assert.equal(body.match.kind, "ClusterIP");
  assert.equal(body.verdict.kind, "dnat");
  assert.equal(body.mode, "nftables");
  assert.equal(body.snapshot, SNAPSHOT_B.hash);
  assert.deepEqual(
    body.endpoints.map((e: { ip: string }) => e.ip),
    ["198.18.1.2", "198.18.1.3", "198.18.1.7"],
  );
  const text = await (await app.request("/explain?to=198.18.0.10:30080&from=198.19.0.2&o=text"))
    .text();
  assert.match(text, /^match +default\/web:http: NodePort 30080 on node address 198\.18\.0\.10/m);
  assert.match(text, /^masquerade +yes: externalTrafficPolicy Cluster/m);
  const html = await app.request("/explain?o=html&to=198.18.128.10:80");
  assert.equal(html.status, 200);
  assert.match(html.headers.get("content-security-policy") ?? "", /default-src 'none'/);
  const page = await html.text();
  assert.match(page, /<pre class="answer">packet +TCP 198\.18\.0\.10 → 198\.18\.128\.10:80/);
  assert.match(page, /data-verdict="dnat"/);
  // Without `to`, the HTML form alone.
  const form = await (await app.request("/explain?o=html")).text();
  assert.match(form, /<form class="explain" method="get" action="\/explain">/);
});

Deno.test("/explain: mistakes are 4xx naming the parameter, none before the first sync", async () => {
  const { app } = synced();
  assert.match(await errorOf(await app.request("/explain")), /to is required/);
  const bad = await app.request("/explain?to=198.18.128.10");
  assert.equal(bad.status, 400);
  assert.match(await errorOf(bad), /^to "198\.18\.128\.10" is not ADDR:PORT/);
  assert.match(
    await errorOf(await app.request("/explain?to=198.18.128.10:80&from=nope")),
    /^from "nope" is not an IP address/,
  );
  assert.match(await errorOf(await app.request("/explain?to=1.2.3.4:1&o=xml")), /o must be json/);
  assert.match(await errorOf(await app.request("/explain?to=a:1&to=b:2")), /once/);
  const htmlBad = await app.request("/explain?o=html&to=%3Cscript%3E");
  assert.equal(htmlBad.status, 400);
  const page = await htmlBad.text();
  assert.ok(!page.includes("<script>"), "the bad input is escaped");
  assert.equal((await empty().app.request("/explain?to=198.18.128.10:80")).status, 503);
  assert.equal((await app.request("/explain", { method: "POST" })).status, 405);
});

Deno.test("/explain: iif names the input interface the interface detect-local modes test", async () => {
  const snapshot = snapshotOf(
    `apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec: { clusterIPs: [198.18.128.10], ports: [{ name: http, port: 80 }] }
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-1, namespace: default, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
ports: [{ name: http, port: 8080 }]
endpoints: [{ addresses: [198.18.1.2], nodeName: node-b }]
`,
    {
      ...FIXTURE_SETTINGS,
      detectLocal: {
        mode: "InterfaceNamePrefix",
        bridgeInterface: "",
        interfaceNamePrefix: "veth",
      },
    },
  );
  const fx = fixtureStore({ now: () => T0 + 5_000 });
  fx.store.recordSync(okRecord(snapshot, T0), snapshot);
  const app = createMetricsApp(fx.store);
  const ask = async (query: string) =>
    (await (await app.request(`/explain?to=198.18.128.10:80&from=198.18.1.50${query}`)).json())
      .masquerade;
  assert.equal((await ask("&iif=veth7")).applies, "never");
  const other = await ask("&iif=eth0");
  assert.equal(other.applies, "always");
  assert.match(other.reason, /arrives on "eth0", not an interface named "veth\*"/);
  assert.equal((await ask("")).applies, "always");
  const twice = await app.request("/explain?to=198.18.128.10:80&iif=a&iif=b");
  assert.equal(twice.status, 400);
});
