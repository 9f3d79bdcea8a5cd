/**
 * The health server (`--healthz-bind-address`, default `0.0.0.0:10256`): `/healthz`, `/livez` and
 * `/readyz`, nothing that reveals topology, since it listens on every address for load balancers.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { type HealthResponse, healthzResponse, livezResponse, readyzResponse } from "./health.ts";
import type { ProxyRuntime } from "./runtime.ts";

/** Sends a health answer with upstream's headers. */
export function sendHealth(c: Context, response: HealthResponse): Response {
  c.header("X-Content-Type-Options", "nosniff");
  c.header("Cache-Control", "no-store");
  return c.json(response.body, response.code);
}

/** Routes every server shares: JSON 404 and 405 answers and no 500 for a client's mistake. */
export function installErrorHandlers(app: Hono): void {
  app.notFound((c) => c.json({ error: `No such path ${c.req.path}` }, 404));
  app.onError((err, c) => {
    const message = err instanceof Error ? err.message : String(err);
    return c.json({ error: message }, 500);
  });
}

/** The health app: kube-proxy's `/healthz` and `/livez`, plus `/readyz`. */
export function createHealthApp(runtime: ProxyRuntime): Hono {
  const app = new Hono();
  app.get("/healthz", (c) => {
    const response = healthzResponse(runtime.health());
    runtime.metrics().healthzServed(response.code);
    return sendHealth(c, response);
  });
  app.get("/livez", (c) => {
    const response = livezResponse(runtime.health());
    runtime.metrics().livezServed(response.code);
    return sendHealth(c, response);
  });
  app.get("/readyz", (c) => sendHealth(c, readyzResponse(runtime.health())));
  app.all("/healthz", (c) => c.json({ error: `Method ${c.req.method} is not allowed` }, 405));
  app.all("/livez", (c) => c.json({ error: `Method ${c.req.method} is not allowed` }, 405));
  app.all("/readyz", (c) => c.json({ error: `Method ${c.req.method} is not allowed` }, 405));
  installErrorHandlers(app);
  return app;
}
