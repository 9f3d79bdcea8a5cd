/** The fetch transport against a scripted loopback HTTP server (no API server needed). */
import assert from "node:assert/strict";
import { KubeConfig } from "@kubernetes/client-node";
import { fetchTransport } from "./kube_fetch_transport.ts";
import { isExpired, KubeApiError } from "./kube_transport.ts";

function kubeconfigFor(server: string, extra: Record<string, unknown> = {}): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server, skipTLSVerify: true, ...extra }],
    users: [{ name: "u", token: "secret-token" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return kc;
}

/** What the server saw of a request (read at once: a served Request closes with its answer). */
interface Seen {
  readonly url: URL;
  readonly headers: Headers;
}

async function withServer(
  handler: (req: Request) => Response | Promise<Response>,
  fn: (kc: KubeConfig, seen: Seen[]) => Promise<void>,
): Promise<void> {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    seen.push({ url: new URL(req.url), headers: new Headers(req.headers) });
    return handler(req);
  });
  try {
    await fn(kubeconfigFor(`http://127.0.0.1:${server.addr.port}`), seen);
  } finally {
    await server.shutdown();
  }
}

Deno.test("fetch transport: one list page, with the token and the query", async () => {
  await withServer(
    () =>
      Response.json({
        kind: "ServiceList",
        metadata: { resourceVersion: "42", continue: "next" },
        items: [{ metadata: { name: "a" } }],
      }),
    async (kc, seen) => {
      const t = fetchTransport(kc);
      assert.ok(t !== null);
      const page = await t.list(
        "/api/v1/services",
        { labelSelector: "!x", limit: "500", resourceVersion: "0" },
        new AbortController().signal,
      );
      assert.deepEqual(page, {
        items: [{ metadata: { name: "a" } }],
        resourceVersion: "42",
        continue: "next",
      });
      const url = seen[0]!.url;
      assert.equal(url.pathname, "/api/v1/services");
      assert.equal(url.searchParams.get("labelSelector"), "!x");
      assert.equal(url.searchParams.get("resourceVersion"), "0");
      assert.equal(seen[0]!.headers.get("authorization"), "Bearer secret-token");
      assert.match(seen[0]!.headers.get("accept-encoding") ?? "", /gzip/);
    },
  );
});

Deno.test("fetch transport: a refused list is a KubeApiError with the Status reason", async () => {
  await withServer(
    () =>
      Response.json({ kind: "Status", code: 410, reason: "Expired", message: "too old" }, {
        status: 410,
      }),
    async (kc) => {
      const t = fetchTransport(kc)!;
      const error = await t.list("/api/v1/services", {}, new AbortController().signal).then(
        () => null,
        (e) => e,
      );
      assert.ok(error instanceof KubeApiError);
      assert.equal(error.status, 410);
      assert.ok(isExpired(error));
    },
  );
});

Deno.test("fetch transport: watch events across chunk boundaries, then the end", async () => {
  const lines = [
    { type: "ADDED", object: { metadata: { name: "a", resourceVersion: "1" } } },
    { type: "BOOKMARK", object: { metadata: { resourceVersion: "2" } } },
  ].map((e) => JSON.stringify(e) + "\n").join("");
  await withServer(
    () =>
      new Response(
        new ReadableStream({
          start(c) {
            const bytes = new TextEncoder().encode(lines);
            c.enqueue(bytes.subarray(0, 17));
            c.enqueue(bytes.subarray(17));
            c.close();
          },
        }),
      ),
    async (kc, seen) => {
      const t = fetchTransport(kc)!;
      const events: string[] = [];
      const ended = Promise.withResolvers<unknown>();
      await t.watch("/api/v1/services", { resourceVersion: "0", allowWatchBookmarks: true }, {
        onEvent: (type, object) =>
          events.push(
            `${type} ${
              (object as { metadata: { resourceVersion: string } }).metadata.resourceVersion
            }`,
          ),
        onEnd: (error) => ended.resolve(error),
      });
      assert.equal(await ended.promise, null);
      assert.deepEqual(events, ["ADDED 1", "BOOKMARK 2"]);
      assert.equal(seen[0]!.url.searchParams.get("watch"), "true");
    },
  );
});

Deno.test("fetch transport: a refused watch ends with its error; an aborted one ends silently", async () => {
  let refuse = true;
  await withServer(
    () =>
      refuse
        ? Response.json({ kind: "Status", code: 410, reason: "Gone" }, { status: 410 })
        : new Response(new ReadableStream({ start() {} })),
    async (kc) => {
      const t = fetchTransport(kc)!;
      let refusal: unknown = undefined;
      await t.watch("/api/v1/services", {}, {
        onEvent: () => {},
        onEnd: (e) => refusal = e,
      });
      // Ended before the handle came back: the reflector never counts it as a started watch.
      assert.ok(isExpired(refusal));
      refuse = false;
      let endCalls = 0;
      const h = await t.watch("/api/v1/services", {}, {
        onEvent: () => {},
        onEnd: () => endCalls++,
      });
      h.abort();
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(endCalls, 0);
      t.reset?.();
    },
  );
});

Deno.test("fetch transport: none for a proxy or TLS verification off (node:https does those)", () => {
  assert.equal(fetchTransport(kubeconfigFor("https://127.0.0.1:6443")), null);
  assert.equal(
    fetchTransport(kubeconfigFor("https://127.0.0.1:6443", {
      skipTLSVerify: false,
      proxyUrl: "http://proxy:3128",
    })),
    null,
  );
  assert.notEqual(
    fetchTransport(kubeconfigFor("https://127.0.0.1:6443", { skipTLSVerify: false })),
    null,
  );
});
