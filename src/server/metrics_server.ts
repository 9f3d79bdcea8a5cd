/**
 * The metrics server (`--metrics-bind-address`, default `127.0.0.1:10249`): upstream's `/metrics`,
 * `/healthz`, `/configz` and `/proxyMode`, plus kproxy's `/snapshot`, `/diff`, `/rules`, `/explain`,
 * `/readyz` and a status page at `/` (with the explain form). A client's mistake is a 4xx with `{"error": "..."}`.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { PROMETHEUS_CONTENT_TYPE } from "../metrics/registry.ts";
import type { ProxySnapshot } from "../snapshot/types.ts";
import { readyzResponse } from "./health.ts";
import { installErrorHandlers, sendHealth } from "./health_server.ts";
import type { ProxyRuntime, RuntimeDiff } from "./runtime.ts";
import { renderStatusPage } from "./status_page.ts";
import { explainPacket } from "../explain/explain.ts";
import { formatExplanation } from "../explain/format.ts";
import { packetOf, PacketSyntaxError, parseTarget } from "../explain/packet.ts";
import { renderExplainPage } from "./explain_page.ts";

/** What a snapshot hash looks like (hex content hash). */
const HASH = /^[0-9a-f]{8,64}$/;

function badRequest(c: Context, error: string): Response {
  return c.json({ error }, 400);
}

function notFound(c: Context, error: string): Response {
  return c.json({ error }, 404);
}

function noSnapshot(c: Context): Response {
  return c.json({ error: "No snapshot has been synced yet" }, 503);
}

/** Reads an optional `hash`-like query parameter; a string is an error message. */
function hashParam(c: Context, name: string): { value: string | undefined } | string {
  const all = c.req.queries(name) ?? [];
  if (all.length > 1) return `Query parameter ${name} is given more than once`;
  const value = all[0];
  if (value === undefined) return { value: undefined };
  if (!HASH.test(value)) {
    return `Query parameter ${name} is not a snapshot hash: ${value.slice(0, 80)}`;
  }
  return { value };
}

/** The JSON shape of `/diff`. */
export function diffJSON(diff: RuntimeDiff, mode: string): Record<string, unknown> {
  const d = diff.snapshot;
  return {
    from: d.fromHash,
    to: d.toHash,
    added: d.added,
    removed: d.removed,
    changed: d.changed.map((c) => ({ id: c.after.id, before: c.before, after: c.after })),
    lostAllEndpoints: d.lostAllEndpoints,
    nodeOrOptionsChanged: d.nodeOrOptionsChanged,
    lines: d.lines,
    rules: diff.rules === null ? null : { mode, diff: diff.rules },
  };
}

/** The previous live snapshot's hash, for the page's "latest change" (from the sync records). */
export function previousLiveHash(runtime: ProxyRuntime): string | null {
  const current = runtime.currentSnapshot();
  if (current === null) return null;
  for (const record of runtime.recentSyncs()) {
    if (record.ok && record.snapshotHash !== current.hash) return record.snapshotHash;
  }
  return null;
}

function methodNotAllowed(c: Context): Response {
  return c.json({ error: `Method ${c.req.method} is not allowed on ${c.req.path}` }, 405);
}

/** The metrics app. */
export function createMetricsApp(runtime: ProxyRuntime): Hono {
  const app = new Hono();

  app.get("/metrics", (c) => {
    c.header("Content-Type", PROMETHEUS_CONTENT_TYPE);
    return c.body(runtime.metrics().render());
  });

  // Upstream's metrics server answers a plain "ok" liveness ping here.
  app.get("/healthz", (c) => c.text("ok"));
  app.get("/readyz", (c) => sendHealth(c, readyzResponse(runtime.health())));

  app.get("/proxyMode", (c) => c.text(runtime.config().mode));

  app.get("/configz", (c) => c.json({ "kubeproxy.config.k8s.io": runtime.config() }));

  app.get("/snapshot", (c) => {
    const hash = hashParam(c, "hash");
    if (typeof hash === "string") return badRequest(c, hash);
    let snapshot: ProxySnapshot | null;
    if (hash.value === undefined) {
      snapshot = runtime.currentSnapshot();
      if (snapshot === null) return noSnapshot(c);
    } else {
      snapshot = runtime.snapshotByHash(hash.value);
      if (snapshot === null) return notFound(c, `Snapshot ${hash.value} is not kept`);
    }
    return c.json(snapshot);
  });

  app.get("/diff", (c) => {
    const from = hashParam(c, "from");
    if (typeof from === "string") return badRequest(c, from);
    if (from.value === undefined) return badRequest(c, "Query parameter from is required");
    const to = hashParam(c, "to");
    if (typeof to === "string") return badRequest(c, to);
    if (runtime.currentSnapshot() === null) return noSnapshot(c);
    if (runtime.snapshotByHash(from.value) === null) {
      return notFound(c, `Snapshot ${from.value} is not kept`);
    }
    if (to.value !== undefined && runtime.snapshotByHash(to.value) === null) {
      return notFound(c, `Snapshot ${to.value} is not kept`);
    }
    const diff = runtime.diffFrom(from.value, to.value);
    if (diff === null) return notFound(c, `Snapshot ${from.value} is not kept`);
    return c.json(diffJSON(diff, runtime.config().mode));
  });

  app.get("/rules", async (c) => {
    const hash = hashParam(c, "hash");
    if (typeof hash === "string") return badRequest(c, hash);
    if (hash.value !== undefined) {
      const snapshot = runtime.snapshotByHash(hash.value);
      if (snapshot === null) return notFound(c, `Snapshot ${hash.value} is not kept`);
      const text = runtime.renderRules(snapshot);
      if (text === null) return c.json({ error: "No rule renderer is configured" }, 501);
      return c.text(text);
    }
    try {
      return c.text(await runtime.liveRules());
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      return c.json({ error: `Cannot read the live rules: ${reason}` }, 503);
    }
  });

  app.get("/explain", (c) => {
    const one = (name: string): string | undefined | null => {
      const all = c.req.queries(name) ?? [];
      return all.length > 1 ? null : all[0];
    };
    const to = one("to");
    const from = one("from");
    const iif = one("iif");
    const output = one("o") ?? "json";
    if (to === null || from === null || iif === null || output === null) {
      return badRequest(c, "Query parameters to, from, iif and o may each be given once");
    }
    if (output !== "json" && output !== "text" && output !== "html") {
      return badRequest(
        c,
        `Query parameter o must be json, text or html, not ${output.slice(0, 40)}`,
      );
    }
    const snapshot = runtime.currentSnapshot();
    const page = (status: 200 | 400 | 503, view: Parameters<typeof renderExplainPage>[0]) => {
      c.header("X-Content-Type-Options", "nosniff");
      c.header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
      return c.html(renderExplainPage(view), status);
    };
    const node = snapshot?.node.name ?? (runtime.config().hostnameOverride || "this node");
    const base = { node, to: to ?? "", from: from ?? "" };
    if (to === undefined || to.trim() === "") {
      if (output === "html") return page(200, { ...base, answer: null, error: null });
      return badRequest(c, "Query parameter to is required (ADDR:PORT[/tcp|udp|sctp])");
    }
    if (snapshot === null) {
      if (output === "html") {
        return page(503, { ...base, answer: null, error: "No snapshot has been synced yet" });
      }
      return noSnapshot(c);
    }
    let answer;
    try {
      const packet = packetOf(parseTarget(to, { label: "to" }), snapshot, {
        from: from === "" ? undefined : from,
        fromLabel: "from",
      });
      answer = explainPacket(snapshot, packet, {
        mode: runtime.config().mode,
        nodeAddresses: runtime.nodeAddresses(),
        // The input interface, for the interface modes of --detect-local-mode.
        ...(iif === undefined || iif === "" ? {} : { inputInterface: iif }),
      });
    } catch (e) {
      if (!(e instanceof PacketSyntaxError)) throw e;
      if (output === "html") return page(400, { ...base, answer: null, error: e.message });
      return badRequest(c, e.message);
    }
    if (output === "html") return page(200, { ...base, answer, error: null });
    if (output === "text") return c.text(formatExplanation(answer) + "\n");
    return c.json(answer);
  });

  app.get("/", (c) => {
    const prev = previousLiveHash(runtime);
    let latestDiff: RuntimeDiff | null = null;
    if (prev !== null) {
      try {
        latestDiff = runtime.diffFrom(prev);
      } catch {
        latestDiff = null; // a failed rule render must not take the page down
      }
    }
    c.header("X-Content-Type-Options", "nosniff");
    c.header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
    return c.html(
      renderStatusPage({
        config: runtime.config(),
        health: runtime.health(),
        snapshot: runtime.currentSnapshot(),
        syncs: runtime.recentSyncs(),
        latestDiff,
      }),
    );
  });

  for (const path of ["/", "/metrics", "/healthz", "/readyz", "/proxyMode", "/configz"]) {
    app.all(path, methodNotAllowed);
  }
  for (const path of ["/snapshot", "/diff", "/rules", "/explain"]) app.all(path, methodNotAllowed);
  installErrorHandlers(app);
  return app;
}
