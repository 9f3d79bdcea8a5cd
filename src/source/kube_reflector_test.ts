/** Reflector behaviour against a scripted fake API server. IP plan: ClusterIPs 198.18.128.0/17. */
import assert from "node:assert/strict";
import {
  KubeApiError,
  type KubeListPage,
  type KubeTransport,
  type WatchHandlers,
} from "./kube_transport.ts";
import { type CacheChange, KubeObjectCache } from "./kube_object_cache.ts";
import { KubeReflector, listQuery } from "./kube_reflector.ts";

interface FakeWatch {
  readonly query: Readonly<Record<string, string | number | boolean>>;
  readonly handlers: WatchHandlers;
  aborted: boolean;
}

/** A fake API server: scripted list answers, and watches the test drives by hand. */
class FakeTransport implements KubeTransport {
  lists: Array<Readonly<Record<string, string>>> = [];
  watches: FakeWatch[] = [];
  listAnswers: Array<KubeListPage | Error> = [];
  hangWatchStart = false;

  list(_path: string, query: Readonly<Record<string, string>>): Promise<KubeListPage> {
    this.lists.push(query);
    const answer = this.listAnswers.shift();
    if (answer === undefined) return Promise.reject(new Error("no list answer scripted"));
    return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
  }

  watch(
    _path: string,
    query: Readonly<Record<string, string | number | boolean>>,
    handlers: WatchHandlers,
  ): Promise<{ abort(): void }> {
    const w: FakeWatch = { query, handlers, aborted: false };
    this.watches.push(w);
    const handle = { abort: () => (w.aborted = true) };
    if (this.hangWatchStart) return new Promise(() => {});
    return Promise.resolve(handle);
  }

  get current(): FakeWatch {
    const w = this.watches.at(-1);
    if (w === undefined) throw new Error("no watch yet");
    return w;
  }
}

function svc(name: string, rv: string, port = 80) {
  return {
    kind: "Service",
    metadata: { name, namespace: "default", resourceVersion: rv },
    spec: { clusterIP: "198.18.128.20", ports: [{ port }] },
  };
}

function page(rv: string, items: unknown[], next = ""): KubeListPage {
  return {
    items: items.map((i) => ({ ...(i as object), kind: undefined })),
    resourceVersion: rv,
    continue: next,
  };
}

async function until(what: string, check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

function names(changes: CacheChange[]): string[] {
  return changes.flatMap((c) =>
    c.events.map((e) =>
      e.type === "upsert"
        ? `+${e.object.object.metadata.name}`
        : e.type === "delete"
        ? `-${e.name}`
        : e.type
    )
  );
}

function setup(options: { idleTimeoutMs?: number } = {}) {
  const transport = new FakeTransport();
  const changes: CacheChange[] = [];
  let listed = 0;
  const reflector = new KubeReflector({
    resource: { kind: "Service", path: "/api/v1/services", labelSelector: "!x" },
    transport,
    cache: new KubeObjectCache("Service"),
    onChange: (c) => changes.push(c),
    onListed: () => listed++,
    backoff: { initialMs: 5, maxMs: 20, jitter: 0 },
    watchTimeoutSeconds: () => 42,
    idleTimeoutMs: options.idleTimeoutMs ?? 5_000,
    pageSize: 2,
  });
  return { transport, changes, reflector, listed: () => listed };
}

Deno.test("reflector lists page by page, then watches from the list's resourceVersion", async () => {
  const { transport, changes, reflector, listed } = setup();
  transport.listAnswers.push(page("5", [svc("a", "1"), svc("b", "2")], "tok"));
  transport.listAnswers.push(page("6", [svc("c", "3")]));
  reflector.start();
  try {
    await until("a watch", () => transport.watches.length === 1);
    // The first list at "0": the watch cache answers it whole; etcd (no cache) pages it.
    assert.deepEqual(transport.lists, [
      { labelSelector: "!x", resourceVersion: "0", limit: "2" },
      { labelSelector: "!x", limit: "2", continue: "tok" },
    ]);
    assert.equal(listed(), 1);
    assert.deepEqual(names(changes), ["+a", "+b", "+c"]);
    assert.equal(changes.length, 1, "one batch for the whole list");
    assert.deepEqual(transport.current.query, {
      labelSelector: "!x",
      resourceVersion: "6",
      allowWatchBookmarks: true,
      timeoutSeconds: 42,
    });
  } finally {
    await reflector.stop();
  }
});

Deno.test("reflector batches watch events, follows bookmarks and resumes closed watches", async () => {
  const { transport, changes, reflector } = setup();
  transport.listAnswers.push(page("5", []));
  reflector.start();
  try {
    await until("a watch", () => transport.watches.length === 1);
    const w = transport.current;
    w.handlers.onEvent("ADDED", svc("a", "6"));
    w.handlers.onEvent("ADDED", svc("b", "7"));
    w.handlers.onEvent("DELETED", svc("a", "8"));
    await until("a batch", () => changes.length === 1);
    assert.deepEqual(names(changes), ["+a", "+b", "-a"]);
    w.handlers.onEvent("BOOKMARK", { kind: "Service", metadata: { resourceVersion: "12" } });
    assert.equal(reflector.resourceVersion, "12");
    // The server ends the watch (timeoutSeconds): resume at once from 12, without a list.
    w.handlers.onEnd(null);
    await until("a second watch", () => transport.watches.length === 2);
    assert.equal(transport.current.query["resourceVersion"], "12");
    assert.equal(transport.lists.length, 1);
    assert.equal(w.aborted, true);
  } finally {
    await reflector.stop();
  }
});

Deno.test("reflector relists on 410 Gone and deletes what vanished meanwhile", async () => {
  const { transport, changes, reflector, listed } = setup();
  transport.listAnswers.push(page("5", [svc("a", "1"), svc("b", "2")]));
  reflector.start();
  try {
    await until("a watch", () => transport.watches.length === 1);
    transport.listAnswers.push(page("50", [svc("b", "2"), svc("c", "40")]));
    transport.current.handlers.onEvent("ERROR", {
      kind: "Status",
      code: 410,
      reason: "Expired",
      message: "too old resource version: 5 (45)",
    });
    await until("a second watch", () => transport.watches.length === 2);
    assert.equal(listed(), 2);
    assert.equal(reflector.stats.expired, 1);
    assert.deepEqual(names(changes.slice(1)), ["+c", "-a"]);
    // The relist asks for "not older than" the last version seen, without a limit: the watch
    // cache answers it, not etcd.
    assert.deepEqual(transport.lists.at(-1), { labelSelector: "!x", resourceVersion: "5" });
    assert.equal(transport.current.query["resourceVersion"], "50");
    // A watch refused with HTTP 410 does the same.
    transport.listAnswers.push(page("60", [svc("c", "40")]));
    transport.current.handlers.onEnd(Object.assign(new Error("Gone"), { statusCode: 410 }));
    await until("a third watch", () => transport.watches.length === 3);
    assert.deepEqual(names(changes.slice(2)), ["-b"]);
  } finally {
    await reflector.stop();
  }
});

Deno.test("reflector retries failed lists and watches with backoff", async () => {
  const { transport, reflector, listed } = setup();
  transport.listAnswers.push(new Error("connection refused"));
  transport.listAnswers.push(new KubeApiError("list", 503, "ServiceUnavailable", "starting"));
  transport.listAnswers.push(page("5", []));
  reflector.start();
  try {
    await until("a watch", () => transport.watches.length === 1);
    assert.equal(transport.lists.length, 3);
    assert.equal(listed(), 1);
    transport.current.handlers.onEnd(new Error("ECONNRESET"));
    await until("a second watch", () => transport.watches.length === 2);
    assert.equal(transport.current.query["resourceVersion"], "5");
    assert.equal(reflector.stats.failures, 3);
  } finally {
    await reflector.stop();
  }
});

Deno.test("reflector restarts a watch that goes quiet", async () => {
  const { transport, reflector } = setup({ idleTimeoutMs: 60 });
  transport.listAnswers.push(page("5", []));
  reflector.start();
  try {
    await until("a watch", () => transport.watches.length === 1);
    // Events keep it alive...
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 30));
      transport.current.handlers.onEvent("BOOKMARK", { metadata: { resourceVersion: `${6 + i}` } });
    }
    assert.equal(transport.watches.length, 1);
    // ...silence does not.
    await until("a second watch", () => transport.watches.length === 2, 1_000);
    assert.equal(transport.watches[0]?.aborted, true);
    assert.equal(transport.current.query["resourceVersion"], "9");
    assert.equal(reflector.stats.idleRestarts, 1);
  } finally {
    await reflector.stop();
  }
});

Deno.test("reflector gives up on a watch start that hangs, and stops cleanly", async () => {
  const { transport, reflector } = setup({ idleTimeoutMs: 40 });
  transport.listAnswers.push(page("5", []));
  transport.hangWatchStart = true;
  reflector.start();
  await until("a retried watch", () => transport.watches.length >= 2, 1_000);
  await reflector.stop();
  const count = transport.watches.length;
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(transport.watches.length, count, "no watch after stop");
});

Deno.test("reflector reports invalid objects without stopping", async () => {
  const { transport, changes, reflector } = setup();
  transport.listAnswers.push(page("5", []));
  reflector.start();
  try {
    await until("a watch", () => transport.watches.length === 1);
    transport.current.handlers.onEvent("ADDED", {
      kind: "Service",
      metadata: { name: "bad", namespace: "default", resourceVersion: "6" },
      spec: { ports: [{ port: 70000 }] },
    });
    transport.current.handlers.onEvent("ADDED", svc("good", "7"));
    await until("a batch", () => changes.length === 1);
    assert.equal(changes[0]?.errors.length, 1);
    assert.match(changes[0]?.errors[0]?.message ?? "", /default\/bad: spec\.ports\[0\]\.port/);
    assert.deepEqual(names(changes), ["+good"]);
    assert.equal(transport.watches.length, 1);
  } finally {
    await reflector.stop();
  }
});

Deno.test("listQuery: client-go's choice of resourceVersion and limit", () => {
  assert.deepEqual(listQuery("0", 500, false), { resourceVersion: "0", limit: "500" });
  assert.deepEqual(listQuery("", 500, false), { limit: "500" });
  assert.deepEqual(listQuery("77", 500, false), { resourceVersion: "77" });
  // A server that paged a list at "0" has no watch cache: keep paging.
  assert.deepEqual(listQuery("77", 500, true), { resourceVersion: "77", limit: "500" });
});

Deno.test("reflector falls back to a consistent list when the version it asks for is gone", async () => {
  const { transport, changes, reflector } = setup();
  transport.listAnswers.push(page("5", [svc("a", "1")]));
  reflector.start();
  try {
    await until("a watch", () => transport.watches.length === 1);
    transport.listAnswers.push(new KubeApiError("list", 410, "Expired", "too old"));
    transport.listAnswers.push(page("90", [svc("a", "1"), svc("b", "80")]));
    transport.current.handlers.onEvent("ERROR", { kind: "Status", code: 410, reason: "Expired" });
    await until("a second watch", () => transport.watches.length === 2);
    assert.deepEqual(transport.lists.slice(1), [
      { labelSelector: "!x", resourceVersion: "5" },
      { labelSelector: "!x", limit: "2" },
    ]);
    assert.deepEqual(names(changes.slice(1)), ["+b"]);
    // A server not caught up yet (just restarted) answers 504: the same fallback.
    transport.listAnswers.push(
      new KubeApiError("list", 504, "Timeout", "Too large resource version: 95, current: 90"),
    );
    transport.listAnswers.push(page("96", [svc("b", "80")]));
    transport.current.handlers.onEvent("ERROR", { kind: "Status", code: 410, reason: "Gone" });
    await until("a third watch", () => transport.watches.length === 3);
    assert.deepEqual(transport.lists.slice(3), [
      { labelSelector: "!x", resourceVersion: "90" },
      { labelSelector: "!x", limit: "2" },
    ]);
    assert.deepEqual(names(changes.slice(2)), ["-a"]);
    assert.equal(transport.current.query["resourceVersion"], "96");
  } finally {
    await reflector.stop();
  }
});

Deno.test("reflector keeps paging when the server paged its first list (no watch cache)", async () => {
  const { transport, reflector } = setup();
  transport.listAnswers.push(page("5", [svc("a", "1"), svc("b", "2")], "tok"));
  transport.listAnswers.push(page("5", [svc("c", "3")]));
  reflector.start();
  try {
    await until("a watch", () => transport.watches.length === 1);
    transport.listAnswers.push(page("9", [svc("a", "1")]));
    transport.current.handlers.onEvent("ERROR", { kind: "Status", code: 410, reason: "Expired" });
    await until("a second watch", () => transport.watches.length === 2);
    assert.deepEqual(transport.lists.at(-1), {
      labelSelector: "!x",
      resourceVersion: "5",
      limit: "2",
    });
  } finally {
    await reflector.stop();
  }
});

Deno.test("reflector: watches the server refuses (403 while it starts) do not count as reachable", async () => {
  const transport = new FakeTransport();
  transport.listAnswers.push(page("5", []));
  let refusals = 0;
  // Refuse the first three watches the way client-node and the fetch transport do: the end comes
  // before the handle.
  const watch = transport.watch.bind(transport);
  transport.watch = (path, query, handlers) => {
    if (refusals < 3) {
      refusals++;
      handlers.onEnd(new KubeApiError("watch", 403, "Forbidden", "RBAC not ready"));
      return Promise.resolve({ abort: () => {} });
    }
    return watch(path, query, handlers);
  };
  let reachable = 0;
  const reflector = new KubeReflector({
    resource: { kind: "Service", path: "/api/v1/services" },
    transport,
    cache: new KubeObjectCache("Service"),
    onChange: () => {},
    onReachable: () => reachable++,
    backoff: { initialMs: 5, maxMs: 50, jitter: 0 },
  });
  reflector.start();
  try {
    await until("a watch that is accepted", () => transport.watches.length === 1);
    assert.equal(refusals, 3);
    assert.equal(reflector.stats.failures, 3);
    // Only the watch it accepted said "reachable again"; none of the refusals did.
    assert.equal(reachable, 1);
  } finally {
    await reflector.stop();
  }
});
