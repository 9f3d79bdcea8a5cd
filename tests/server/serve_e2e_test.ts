/**
 * End to end: the health and metrics servers listen on loopback (port 0) and answer real HTTP,
 * backed by the real sync loop over deploy/examples (dry-run; nothing touches the kernel).
 */
import assert from "node:assert/strict";
import { createHealthApp } from "../../src/server/health_server.ts";
import { createMetricsApp } from "../../src/server/metrics_server.ts";
import { serveApp } from "../../src/server/serve.ts";
import { exampleRuntime } from "./_example_runtime.ts";

Deno.test("health and metrics servers answer over real sockets and stop on abort", async () => {
  const { store, first, second } = await exampleRuntime();
  const abort = new AbortController();
  const health = serveApp(createHealthApp(store), "127.0.0.1:0", abort.signal);
  const metrics = serveApp(createMetricsApp(store), "127.0.0.1:0", abort.signal);
  try {
    assert.ok(health.addr.port > 0 && metrics.addr.port > 0);
    const h = `http://127.0.0.1:${health.addr.port}`;
    const m = `http://127.0.0.1:${metrics.addr.port}`;

    const hz = await fetch(`${h}/healthz`);
    assert.equal(hz.status, 200);
    const hzBody = await hz.json();
    assert.equal(hzBody.nodeEligible, true);
    assert.deepEqual(Object.keys(hzBody.status), ["IPv4", "IPv6"]);
    assert.equal((await fetch(`${h}/livez`).then((r) => r.json())).healthy, true);
    const hidden = await fetch(`${h}/snapshot`);
    assert.equal(hidden.status, 404);
    await hidden.body?.cancel();

    const snap = await fetch(`${m}/snapshot`).then((r) => r.json());
    assert.equal(snap.hash, second.hash);
    assert.ok(snap.servicePorts.some((p: { id: string }) => p.id === "default/web:http"));

    const diff = await fetch(`${m}/diff?from=${first.hash}`).then((r) => r.json());
    assert.ok(diff.lines.some((l: string) => l.includes("+endpoint 198.18.1.9:8080")));
    assert.match(diff.rules.diff, /198\.18\.1\.9/);

    const rules = await fetch(`${m}/rules`).then((r) => r.text());
    assert.match(rules, /table ip kproxy/);
    assert.match(rules, /198\.18\.1\.9/);

    const text = await fetch(`${m}/metrics`).then((r) => r.text());
    assert.match(
      text,
      /^kubeproxy_sync_proxy_rules_duration_seconds_count\{ip_family="IPv4"\} 2$/m,
    );
    assert.match(text, /^kubeproxy_proxy_healthz_total\{code="200"\} 1$/m);
    assert.match(text, /^kproxy_snapshot_service_ports 4$/m);

    const bad = await fetch(`${m}/diff?from=nothex`);
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error, /not a snapshot hash/);
  } finally {
    abort.abort();
    await Promise.all([health.finished, metrics.finished]);
  }
  await assert.rejects(fetch(`http://127.0.0.1:${health.addr.port}/healthz`));
});

Deno.test("serveApp names the address when it cannot listen", () => {
  const abort = new AbortController();
  const first = serveApp({ fetch: () => new Response("x") }, "127.0.0.1:0", abort.signal);
  try {
    assert.throws(
      () => serveApp({ fetch: () => new Response("y") }, `127.0.0.1:${first.addr.port}`),
      new RegExp(`Cannot listen on 127\\.0\\.0\\.1:${first.addr.port}`),
    );
  } finally {
    abort.abort();
  }
  return first.finished;
});
