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
    assert.equal(
      apiServerURL(await loadKubeConfig({ kubeconfig: path })),
      "https://127.0.0.1:6443",
    );
    const kc = await loadKubeConfig({ kubeconfig: path, master: "https://198.18.0.1:443" });
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
      async () => {
        const kc = await loadKubeConfig({ inClusterRoot: root });
        assert.equal(apiServerURL(kc), "https://198.18.128.1:443");
        const opts: { headers?: Record<string, unknown> } = {};
        await kc.applyToHTTPSOptions(opts);
        assert.equal(opts.headers?.["Authorization"], "Bearer sa-token");
        // A rotated token is read on the next request.
        await Deno.writeTextFile(`${sa}/token`, "sa-token-2\n");
        await kc.applyToHTTPSOptions(opts);
        assert.equal(opts.headers?.["Authorization"], "Bearer sa-token-2");
        const master = await loadKubeConfig({ inClusterRoot: root, master: "https://127.0.0.1:1" });
        assert.equal(apiServerURL(master), "https://127.0.0.1:1");
      },
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("loadKubeConfig explains what is missing", async () => {
  await withEnv({ KUBERNETES_SERVICE_HOST: undefined }, async () => {
    await assert.rejects(
      () => loadKubeConfig({ inClusterRoot: "/nonexistent" }),
      /^Error: Cannot configure the Kubernetes client: no --kubeconfig or --master was given/,
    );
    assert.equal(
      apiServerURL(await loadKubeConfig({ master: "https://127.0.0.1:6443" })),
      "https://127.0.0.1:6443",
    );
    const insecure = await loadKubeConfig({ master: "http://127.0.0.1:8080" });
    assert.equal(insecure.getCurrentCluster()?.skipTLSVerify, true);
    await assert.rejects(
      () => loadKubeConfig({ master: "127.0.0.1:6443" }),
      /it must start with https:\/\/ or http:\/\//,
    );
  });
  await assert.rejects(
    () => loadKubeConfig({ kubeconfig: "/nonexistent/kubeconfig" }),
    /^Error: Cannot read kubeconfig \/nonexistent\/kubeconfig: /,
  );
});

Deno.test("loadKubeConfig: certificates, token files and basic auth without client-node; plugins with it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const pem = (what: string) => `-----BEGIN ${what}-----\nAAAA\n-----END ${what}-----\n`;
    await Deno.writeTextFile(`${dir}/ca.crt`, pem("CERTIFICATE"));
    await Deno.writeTextFile(`${dir}/token`, "file-token\n");
    const write = async (user: Record<string, unknown>, cluster: Record<string, unknown> = {}) => {
      const path = `${dir}/kubeconfig-${crypto.randomUUID()}`;
      await Deno.writeTextFile(
        path,
        JSON.stringify({
          clusters: [{
            name: "c",
            cluster: {
              server: "https://127.0.0.1:6443",
              "certificate-authority": "ca.crt",
              ...cluster,
            },
          }],
          users: [{ name: "u", user }],
          contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
          "current-context": "x",
        }),
      );
      return await loadKubeConfig({ kubeconfig: path });
    };
    const apply = async (kc: Awaited<ReturnType<typeof loadKubeConfig>>) => {
      const o: {
        ca?: unknown;
        cert?: unknown;
        key?: unknown;
        headers?: Record<string, unknown>;
        auth?: string;
      } = {};
      await kc.applyToHTTPSOptions(o);
      return o;
    };
    const certs = await write({
      "client-certificate-data": btoa(pem("CERTIFICATE")),
      "client-key-data": btoa(pem("PRIVATE KEY")),
    });
    assert.ok(!("applyToFetchOptions" in certs), "read without client-node");
    const c = await apply(certs);
    assert.equal(c.ca, pem("CERTIFICATE"), "the CA file, relative to the kubeconfig");
    assert.equal(c.cert, pem("CERTIFICATE"));
    assert.equal(c.key, pem("PRIVATE KEY"));
    assert.equal(
      (await apply(await write({ tokenFile: "token" }))).headers?.["Authorization"],
      "Bearer file-token",
    );
    assert.equal((await apply(await write({ username: "a", password: "b" }))).auth, "a:b");
    // What only client-node does: an exec plugin, no TLS verification over https.
    const exec = await write({
      exec: { apiVersion: "client.authentication.k8s.io/v1", command: "true" },
    });
    assert.ok("applyToFetchOptions" in exec, "an exec plugin loads client-node");
    const insecure = await write({ token: "t" }, { "insecure-skip-tls-verify": true });
    assert.ok("applyToFetchOptions" in insecure, "TLS verification off loads client-node");
    assert.equal(apiServerURL(insecure), "https://127.0.0.1:6443");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
