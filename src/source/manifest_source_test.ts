// IP plan: pods 198.18.1.0/24, services 198.18.128.0/17.
import assert from "node:assert/strict";
import { type ObjectError, objectKey } from "../model/kube_object.ts";
import type { ProxyEvent } from "../snapshot/proxy_state.ts";
import { ManifestSource } from "./manifest_source.ts";

const SERVICE = `apiVersion: v1
kind: Service
metadata: { name: web }
spec:
  clusterIP: 198.18.128.10
  ports: [{ name: http, port: 80 }]
`;

const slice = (name: string, ip: string) =>
  `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${name}
  labels: { kubernetes.io/service-name: web }
addressType: IPv4
ports: [{ name: http, port: 8080 }]
endpoints:
  - addresses: [${ip}]
`;

interface Batch {
  readonly events: ProxyEvent[];
  readonly errors: readonly ObjectError[];
}

/** A ManifestSource over a temp dir that records each batch it reports. */
class Harness {
  readonly batches: Batch[] = [];
  readonly logs: string[] = [];
  synced = 0;
  #waiters: (() => void)[] = [];
  source: ManifestSource | null = null;

  constructor(readonly dir: string) {}

  async start(debounceMs = 40): Promise<void> {
    this.source = new ManifestSource(this.dir, {
      debounceMs,
      onEvents: (events, errors) => {
        this.batches.push({ events, errors });
        for (const w of this.#waiters.splice(0)) w();
      },
      onSynced: () => this.synced++,
      log: (line) => this.logs.push(line),
    });
    await this.source.start();
  }

  /** Waits for the batch number `n` (0-based) to arrive. */
  async batch(n: number, timeoutMs = 5000): Promise<Batch> {
    const deadline = Date.now() + timeoutMs;
    while (this.batches.length <= n) {
      if (Date.now() > deadline) throw new Error(`no batch ${n} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.batches[n] as Batch;
  }

  write(path: string, text: string): Promise<void> {
    return Deno.writeTextFile(`${this.dir}/${path}`, text);
  }
}

async function withSource(
  files: Record<string, string>,
  fn: (h: Harness) => Promise<void>,
  debounceMs?: number,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kproxy-source-" });
  const h = new Harness(dir);
  try {
    for (const [path, text] of Object.entries(files)) await h.write(path, text);
    await h.start(debounceMs);
    await fn(h);
  } finally {
    await h.source?.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

function describe(events: readonly ProxyEvent[]): string[] {
  return events.map((e) => {
    switch (e.type) {
      case "upsert":
        return `upsert ${objectKey(e.object)}`;
      case "delete":
        return `delete ${e.kind}/${e.namespace}/${e.name}`;
      case "replace":
        return `replace ${e.objects.map(objectKey).join(",")}`;
      case "settings":
        return "settings";
    }
  }).sort();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await sleep(10);
  }
}

Deno.test("manifest source: the first load is one replace, then synced", async () => {
  await withSource(
    { "web.yaml": SERVICE, "slices.yaml": slice("web-a", "198.18.1.2") },
    async (h) => {
      const first = await h.batch(0);
      assert.deepEqual(describe(first.events), [
        "replace EndpointSlice/default/web-a,Service/default/web",
      ]);
      assert.equal(h.synced, 1);
    },
  );
});

Deno.test("manifest source: editing a file emits only the changed objects' events", async () => {
  const files = {
    "web.yaml": SERVICE,
    "slices.yaml": `${slice("web-a", "198.18.1.2")}---\n${slice("web-b", "198.18.1.3")}`,
  };
  await withSource(files, async (h) => {
    await h.batch(0);
    await h.write(
      "slices.yaml",
      `${slice("web-a", "198.18.1.7")}---\n${slice("web-b", "198.18.1.3")}`,
    );
    const edit = await h.batch(1);
    assert.deepEqual(describe(edit.events), ["upsert EndpointSlice/default/web-a"]);
    await h.write("slices.yaml", slice("web-a", "198.18.1.7"));
    assert.deepEqual(describe((await h.batch(2)).events), ["delete EndpointSlice/default/web-b"]);
    await Deno.remove(`${h.dir}/web.yaml`);
    assert.deepEqual(describe((await h.batch(3)).events), ["delete Service/default/web"]);
    await Deno.mkdir(`${h.dir}/more`);
    await h.write("more/web.yaml", SERVICE);
    assert.deepEqual(describe((await h.batch(4)).events), ["upsert Service/default/web"]);
  });
});

Deno.test("manifest source: touching a file without changing objects reports nothing", async () => {
  await withSource({ "web.yaml": SERVICE }, async (h) => {
    await h.batch(0);
    await h.write("web.yaml", `# a comment now\n${SERVICE}`);
    await h.write("README.md", "notes\n");
    await sleep(300);
    assert.equal(h.batches.length, 1);
  });
});

Deno.test("manifest source: bursts of edits are coalesced into one batch", async () => {
  await withSource({ "web.yaml": SERVICE, "s.yaml": slice("web-a", "198.18.1.2") }, async (h) => {
    await h.batch(0);
    for (let i = 3; i < 9; i++) await h.write("s.yaml", slice("web-a", `198.18.1.${i}`));
    await h.write("t.yaml", slice("web-t", "198.18.1.20"));
    const burst = await h.batch(1);
    assert.deepEqual(describe(burst.events), [
      "upsert EndpointSlice/default/web-a",
      "upsert EndpointSlice/default/web-t",
    ]);
    const upserted = burst.events.find((e) =>
      e.type === "upsert" && e.object.object.metadata.name === "web-a"
    );
    assert.ok(upserted?.type === "upsert" && upserted.object.kind === "EndpointSlice");
    assert.equal(upserted.object.object.endpoints?.[0]?.addresses[0], "198.18.1.8");
    await sleep(400);
    assert.equal(h.batches.length, 2, "one batch for the whole burst");
  }, 250);
});

Deno.test("manifest source: an object that turns invalid keeps its last good version", async () => {
  await withSource({ "web.yaml": SERVICE, "s.yaml": slice("web-a", "198.18.1.2") }, async (h) => {
    await h.batch(0);
    await h.write("s.yaml", slice("web-a", "198.18.1.300"));
    const bad = await h.batch(1);
    assert.deepEqual(bad.events, [], "no delete for the broken slice");
    assert.deepEqual(bad.errors.map((e) => e.message), [
      `${h.dir}/s.yaml: Cannot read EndpointSlice default/web-a: endpoints[0].addresses[0] is not an IP address`,
    ]);
    assert.ok(h.logs.some((l) => l.startsWith("skipped: ")));
    // Another object changing meanwhile is still picked up.
    await h.write("web.yaml", SERVICE.replace("port: 80", "port: 81"));
    const other = await h.batch(2);
    assert.deepEqual(describe(other.events), ["upsert Service/default/web"]);
    await h.write("s.yaml", slice("web-a", "198.18.1.9"));
    const fixed = await h.batch(3);
    assert.deepEqual(describe(fixed.events), ["upsert EndpointSlice/default/web-a"]);
    assert.deepEqual(fixed.errors, []);
  });
});

Deno.test("manifest source: a file saved half-way keeps every object it held", async () => {
  const two = `${slice("web-a", "198.18.1.2")}---\n${slice("web-b", "198.18.1.3")}`;
  await withSource({ "web.yaml": SERVICE, "s.yaml": two }, async (h) => {
    await h.batch(0);
    await h.write("s.yaml", `${slice("web-a", "198.18.1.2")}---\nkind: EndpointSlice\n  x: [`);
    const broken = await h.batch(1);
    assert.deepEqual(broken.events, []);
    assert.equal(broken.errors.length, 1);
    assert.match(broken.errors[0]?.message ?? "", /s\.yaml: Cannot parse manifest: /);
    await h.write("s.yaml", slice("web-a", "198.18.1.2"));
    const saved = await h.batch(2);
    assert.deepEqual(describe(saved.events), ["delete EndpointSlice/default/web-b"]);
  });
});

Deno.test("manifest source: a single file is followed across atomic replaces", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kproxy-source-file-" });
  const batches: ProxyEvent[][] = [];
  const source = new ManifestSource(`${dir}/web.yaml`, {
    debounceMs: 30,
    onEvents: (events) => batches.push(events),
  });
  try {
    await Deno.writeTextFile(`${dir}/web.yaml`, SERVICE);
    await source.start();
    const replace = async (text: string) => {
      await Deno.writeTextFile(`${dir}/.web.yaml.tmp`, text);
      await Deno.rename(`${dir}/.web.yaml.tmp`, `${dir}/web.yaml`);
    };
    await replace(`${SERVICE}---\n${slice("web-a", "198.18.1.2")}`);
    await waitUntil(() => batches.length === 2);
    assert.deepEqual(describe(batches[1] ?? []), ["upsert EndpointSlice/default/web-a"]);
    await replace(`${SERVICE}---\n${slice("web-a", "198.18.1.3")}`);
    await waitUntil(() => batches.length === 3);
    assert.deepEqual(describe(batches[2] ?? []), ["upsert EndpointSlice/default/web-a"]);
    await Deno.writeTextFile(`${dir}/other.yaml`, slice("web-x", "198.18.1.9"));
    await sleep(200);
    assert.equal(batches.length, 3, "other files in the folder are not read");
  } finally {
    await source.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("manifest source: a throwing callback does not stop later reloads; stop is final", async () => {
  const calls: number[] = [];
  const logs: string[] = [];
  await withSource({ "web.yaml": SERVICE }, async (h) => {
    await h.batch(0);
    const source = new ManifestSource(h.dir, {
      debounceMs: 30,
      onEvents: (events) => {
        calls.push(events.length);
        if (calls.length === 2) throw new Error("callback failed");
      },
      log: (l) => logs.push(l),
    });
    await source.start();
    await h.write("a.yaml", slice("web-a", "198.18.1.2"));
    await waitUntil(() => calls.length === 2);
    await h.write("b.yaml", slice("web-b", "198.18.1.3"));
    await waitUntil(() => calls.length === 3);
    assert.ok(logs.some((l) => l.includes("failed: callback failed")), logs.join("\n"));
    await source.stop();
    await h.write("c.yaml", slice("web-c", "198.18.1.4"));
    await sleep(200);
    assert.equal(calls.length, 3, "nothing after stop");
  });
});

Deno.test("manifest source: start fails clearly on a missing path", async () => {
  const source = new ManifestSource("/nonexistent/kproxy-source", { onEvents: () => {} });
  await assert.rejects(() => source.start(), /^Error: Cannot read manifests at \/nonexistent/);
  await source.stop();
});

Deno.test("manifest source: ServiceCIDR objects are read and follow edits", async () => {
  const cidr = (cidrs: string) =>
    `apiVersion: networking.k8s.io/v1\nkind: ServiceCIDR\nmetadata: { name: extra }\nspec:\n  cidrs: [${cidrs}]\n`;
  await withSource({ "web.yaml": SERVICE, "cidr.yaml": cidr("198.18.128.0/17") }, async (h) => {
    const first = await h.batch(0);
    assert.deepEqual(describe(first.events), ["replace ServiceCIDR/extra,Service/default/web"]);
    assert.deepEqual(first.errors, []);
    await h.write("cidr.yaml", cidr("198.18.128.0/17, fd00:128::/112"));
    const second = await h.batch(1);
    assert.deepEqual(describe(second.events), ["upsert ServiceCIDR/extra"]);
    await h.write("cidr.yaml", cidr("198.18.128.0/33"));
    const third = await h.batch(2);
    assert.match(
      third.errors[0]?.message ?? "",
      /Cannot read ServiceCIDR extra: spec\.cidrs\[0\] is not a CIDR/,
    );
  });
});
