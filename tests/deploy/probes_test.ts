/**
 * The DaemonSet's probes work against a real kproxy: started like the container (its command,
 * the ConfigMap's config.conf) under the compiled binary's permissions, with a manifests source
 * and --dry-run instead of a cluster and a kernel, and the health server moved to a free
 * loopback port. `/livez` and `/readyz` (the probe paths) answer 200 once the first sync is live.
 *
 * IP plan: health server on 127.0.0.1:<free port>; manifests from deploy/examples (198.18.0.0/15)
 * are only rendered.
 */

import assert from "node:assert/strict";
import { kproxyPermissionArgs } from "../../deploy/kproxy_permissions.ts";
import { findObject, loadShippedManifests, REPO_DIR } from "./_manifests.ts";

interface Container {
  command: string[];
  livenessProbe: { httpGet: { path: string } };
  readinessProbe: { httpGet: { path: string } };
}

function freeLoopbackPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function get(url: string): Promise<number> {
  try {
    const res = await fetch(url);
    await res.body?.cancel();
    return res.status;
  } catch {
    return 0;
  }
}

Deno.test("the DaemonSet's liveness and readiness probes answer 200 after the first sync", async () => {
  const docs = loadShippedManifests();
  const ds = findObject(docs, "DaemonSet", "kproxy") as unknown as {
    spec: { template: { spec: { containers: Container[] } } };
  };
  const container = ds.spec.template.spec.containers[0];
  assert.ok(container);
  const configText =
    (findObject(docs, "ConfigMap", "kproxy").data as Record<string, string>)["config.conf"];
  assert.ok(configText);

  const dir = await Deno.makeTempDir({ prefix: "kproxy-probes-" });
  const port = freeLoopbackPort();
  const args = container.command.slice(1).map((a) =>
    a.replace("$(NODE_NAME)", "node-a").replace("/var/lib/kproxy/", `${dir}/`)
  );
  await Deno.writeTextFile(`${dir}/config.conf`, configText);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...kproxyPermissionArgs(),
      `${REPO_DIR}/src/cli/main.ts`,
      ...args,
      `--manifests=${REPO_DIR}/deploy/examples`,
      "--dry-run",
      `--healthz-bind-address=127.0.0.1:${port}`,
      `--metrics-bind-address=127.0.0.1:${freeLoopbackPort()}`,
    ],
    cwd: REPO_DIR,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  try {
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 30_000;
    let live = 0;
    let ready = 0;
    while (Date.now() < deadline && (live !== 200 || ready !== 200)) {
      live = await get(`${base}${container.livenessProbe.httpGet.path}`);
      ready = await get(`${base}${container.readinessProbe.httpGet.path}`);
      if (live !== 200 || ready !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(live, 200, `liveness ${container.livenessProbe.httpGet.path}`);
    assert.equal(ready, 200, `readiness ${container.readinessProbe.httpGet.path}`);
    assert.equal(await get(`${base}/no-such-path`), 404, "the port is kproxy's health server");
  } finally {
    child.kill("SIGTERM");
    await child.status;
    const log = await stderr;
    await Deno.remove(dir, { recursive: true });
    assert.doesNotMatch(log, /NotCapable|Requires \w+ access/, log);
  }
});
