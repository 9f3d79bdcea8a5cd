/** Client configuration loading. IP plan: API servers on 127.0.0.1 and 198.18.0.1 (not dialled). */
import assert from "node:assert/strict";
import { apiServerURL, loadKubeConfig } from "./kube_client.ts";

const KUBECONFIG = JSON.stringify({
  apiVersion: "v1",
  kind: "Config",
  clusters: [{ name: "c", cluster: { server: "https://127.0.0.1:6443" } }],
  users: [{ name: "u", user: { token: "abc" } }],
  contexts: [{ name: "ctx", context: { cluster: "c", user: "u" } }],
  "current-context": "ctx",
});

async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  const set = (values: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) Deno.env.delete(k);
      else Deno.env.set(k, v);
    }
  };
  set(vars);
  try {
    return await fn();
  } finally {
    set(saved);
  }
}

Deno.test("loadKubeConfig reads --kubeconfig and lets --master override its server", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/kubeconfig`;
    await Deno.writeTextFile(path, KUBECONFIG);
    assert.equal(apiServerURL(loadKubeConfig({ kubeconfig: path })), "https://127.0.0.1:6443");
    const kc = loadKubeConfig({ kubeconfig: path, master: "https://198.18.0.1:443" });
    assert.equal(apiServerURL(kc), "https://198.18.0.1:443");
    assert.equal(kc.getCurrentUser()?.token, "abc");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadKubeConfig uses the in-cluster service account without --kubeconfig", async () => {
  const root = await Deno.makeTempDir();
  try {
    const sa = `${root}/var/run/secrets/kubernetes.io/serviceaccount`;
    await Deno.mkdir(sa, { recursive: true });
    await Deno.writeTextFile(`${sa}/token`, "sa-token");
    await Deno.writeTextFile(`${sa}/ca.crt`, "");
    await withEnv(
      { KUBERNETES_SERVICE_HOST: "198.18.128.1", KUBERNETES_SERVICE_PORT: "443" },
      () => {
        const kc = loadKubeConfig({ inClusterRoot: root });
        assert.equal(apiServerURL(kc), "https://198.18.128.1:443");
        const master = loadKubeConfig({ inClusterRoot: root, master: "https://127.0.0.1:1" });
        assert.equal(apiServerURL(master), "https://127.0.0.1:1");
      },
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("loadKubeConfig explains what is missing", async () => {
  await withEnv({ KUBERNETES_SERVICE_HOST: undefined }, () => {
    assert.throws(
      () => loadKubeConfig({ inClusterRoot: "/nonexistent" }),
      /^Error: Cannot configure the Kubernetes client: no --kubeconfig or --master was given/,
    );
    assert.equal(
      apiServerURL(loadKubeConfig({ master: "https://127.0.0.1:6443" })),
      "https://127.0.0.1:6443",
    );
    const insecure = loadKubeConfig({ master: "http://127.0.0.1:8080" });
    assert.equal(insecure.getCurrentCluster()?.skipTLSVerify, true);
    assert.throws(
      () => loadKubeConfig({ master: "127.0.0.1:6443" }),
      /it must start with https:\/\/ or http:\/\//,
    );
  });
  assert.throws(
    () => loadKubeConfig({ kubeconfig: "/nonexistent/kubeconfig" }),
    /^Error: Cannot read kubeconfig \/nonexistent\/kubeconfig: /,
  );
});
