// IP plan: nodes 198.18.0.0/24, pods 198.18.1.0/24, services 198.18.128.0/17.
import assert from "node:assert/strict";
import { objectKey } from "../model/kube_object.ts";
import { listManifestFiles, loadManifestFiles, loadManifests } from "./manifest_loader.ts";

const service = (name: string, ip: string) =>
  `apiVersion: v1\nkind: Service\nmetadata: { name: ${name} }\nspec:\n  clusterIP: ${ip}\n  ports: [{ port: 80 }]\n`;

async function withTree(
  files: Record<string, string>,
  fn: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kproxy-manifests-" });
  try {
    for (const [path, text] of Object.entries(files)) {
      const full = `${dir}/${path}`;
      await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
      await Deno.writeTextFile(full, text);
    }
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("manifest loader: nested folders, sorted, only .yaml/.yml/.json, hidden skipped", async () => {
  await withTree({
    "b.yaml": service("b", "198.18.128.2"),
    "a/z.yml": service("z", "198.18.128.26"),
    "a/deeper/c.json": JSON.stringify({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "c" },
      spec: { clusterIP: "198.18.128.3", ports: [{ port: 80 }] },
    }),
    "README.md": "# not a manifest\n",
    "notes.txt": "kind: Service\n",
    "kustomization.yaml.bak": "x: [",
    ".hidden.yaml": service("hidden", "198.18.128.9"),
    ".git/config.yaml": service("git", "198.18.128.8"),
  }, async (dir) => {
    const files = await listManifestFiles(dir);
    assert.deepEqual(files.map((f) => f.slice(dir.length + 1)), [
      "a/deeper/c.json",
      "a/z.yml",
      "b.yaml",
    ]);
    const loaded = await loadManifests(dir);
    assert.deepEqual(loaded.errors, []);
    assert.deepEqual(loaded.objects.map(objectKey), [
      "Service/default/c",
      "Service/default/z",
      "Service/default/b",
    ]);
    assert.deepEqual(await listManifestFiles(`${dir}/`), files.map((f) => f.replace(dir, dir)));
  });
});

Deno.test("manifest loader: a single file path", async () => {
  await withTree({ "web.yaml": service("web", "198.18.128.10") }, async (dir) => {
    const loaded = await loadManifests(`${dir}/web.yaml`);
    assert.deepEqual(loaded.objects.map(objectKey), ["Service/default/web"]);
  });
});

Deno.test("manifest loader: symbolic links are followed, as in a mounted ConfigMap", async () => {
  await withTree({
    "..2024_01_01/web.yaml": service("web", "198.18.128.10"),
    "..2024_01_01/sub/db.yaml": service("db", "198.18.128.30"),
  }, async (dir) => {
    await Deno.symlink("..2024_01_01", `${dir}/..data`);
    await Deno.symlink("..data/web.yaml", `${dir}/web.yaml`);
    await Deno.symlink("..data/sub", `${dir}/sub`);
    await Deno.symlink("missing.yaml", `${dir}/dangling.yaml`);
    await Deno.symlink(".", `${dir}/sub-loop`);
    const loaded = await loadManifests(dir);
    assert.deepEqual(loaded.errors, []);
    assert.deepEqual(loaded.objects.map(objectKey), ["Service/default/db", "Service/default/web"]);
  });
});

Deno.test("manifest loader: bad files and objects become errors, the rest loads", async () => {
  await withTree({
    "a.yaml": "kind: Service\n  bad: [indent\n",
    "b.yaml": service("b", "198.18.128.300") + "---\n" + service("ok", "198.18.128.4"),
    "c.yaml": service("c", "198.18.128.3"),
  }, async (dir) => {
    const loaded = await loadManifests(dir);
    assert.deepEqual(loaded.objects.map(objectKey), ["Service/default/ok", "Service/default/c"]);
    assert.equal(loaded.errors.length, 2);
    assert.match(
      loaded.errors[0]?.message ?? "",
      new RegExp(`^${dir}/a\\.yaml: Cannot parse manifest: `),
    );
    assert.equal(
      loaded.errors[1]?.message,
      `${dir}/b.yaml: Cannot read Service default/b: spec.clusterIP is not an IP address`,
    );
    const byFile = await loadManifestFiles(dir);
    assert.deepEqual(byFile.map((f) => f.unreadable), [true, false, false]);
  });
});

Deno.test("manifest loader: a missing path is one clear error", async () => {
  await assert.rejects(
    () => loadManifests("/nonexistent/kproxy-manifests"),
    { message: "Cannot read manifests at /nonexistent/kproxy-manifests: no such file or folder" },
  );
});

Deno.test("manifest loader: a folder named like a manifest is walked, not read", async () => {
  await withTree({ "ok.yaml": service("ok", "198.18.128.4") }, async (dir) => {
    await Deno.mkdir(`${dir}/odd.yaml`);
    await Deno.symlink(`${dir}/odd.yaml`, `${dir}/link.yaml`);
    const loaded = await loadManifests(dir);
    assert.deepEqual(loaded.objects.map(objectKey), ["Service/default/ok"]);
    assert.deepEqual(loaded.errors, []);
  });
});
