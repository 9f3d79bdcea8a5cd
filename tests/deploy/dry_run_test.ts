/**
 * The shipped manifests against a real kube-apiserver (tests/fixtures/apiserver.ts):
 * - every object passes a server-side dry run (`dryRun: All`: schema, defaulting, validation
 *   and admission, e.g. that priority class system-node-critical exists), and a broken one
 *   does not, so a schema mistake fails here rather than in a user's cluster;
 * - the ServiceAccount, ClusterRole and ClusterRoleBinding, created for real, allow exactly the
 *   verbs kproxy needs (SubjectAccessReview) and nothing around them;
 * - kproxy itself, under the compiled binary's permissions and with that ServiceAccount's
 *   token, lists and watches the cluster and completes a dry-run sync.
 * Skipped, saying why, when the Go fixtures are not built (tests/fixtures/build_fixtures.sh).
 *
 * IP plan: apiserver on 127.0.0.1:<free port>; services 198.18.128.0/17 (web: 198.18.128.20);
 * endpoints 198.18.1.0/24; node node-a at 198.18.0.10. Nothing is routed; no traffic is sent.
 */

import assert from "node:assert/strict";
import {
  AuthorizationV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
} from "@kubernetes/client-node";
import { startTestCluster } from "../fixtures/apiserver.ts";
import { kproxyPermissionArgs } from "../../deploy/kproxy_permissions.ts";
import { findObject, loadShippedManifests, REPO_DIR } from "./_manifests.ts";
import { goFixtures, requiring } from "../requirements.ts";

const SERVICE_ACCOUNT = "system:serviceaccount:kube-system:kproxy";

function clients(kubeconfigPath: string) {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return {
    objects: KubernetesObjectApi.makeApiClient(kc),
    core: kc.makeApiClient(CoreV1Api),
    discovery: kc.makeApiClient(DiscoveryV1Api),
    authz: kc.makeApiClient(AuthorizationV1Api),
  };
}

function reason(e: unknown): string {
  const body = (e as { body?: unknown }).body;
  if (typeof body === "string") {
    try {
      return (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      return body;
    }
  }
  return e instanceof Error ? e.message : String(e);
}

interface Access {
  readonly verb: string;
  readonly resource: string;
  readonly group?: string;
  readonly name?: string;
  readonly namespace?: string;
}

function describe(a: Access): string {
  return `${a.verb} ${a.resource}${a.group ? `.${a.group}` : ""}${a.name ? `/${a.name}` : ""}`;
}

Deno.test(requiring([goFixtures], {
  name: "the shipped manifests pass the API server, and kproxy runs with their RBAC",
  // client-node keeps pooled keep-alive sockets beyond each call.
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const cluster = await startTestCluster();
    try {
      const admin = clients(cluster.kubeconfigPath);
      const docs = loadShippedManifests();

      await t.step("every object passes a server-side dry run", async () => {
        for (const { file, object } of docs) {
          try {
            await admin.objects.create(object as KubernetesObject, undefined, "All");
          } catch (e) {
            assert.fail(`${file}: ${object.kind} ${object.metadata.name}: ${reason(e)}`);
          }
        }
      });

      await t.step("a schema mistake is caught by the dry run", async () => {
        const ds = structuredClone(findObject(docs, "DaemonSet", "kproxy")) as unknown as {
          spec: { template: { spec: { volumes: { hostPath?: { type?: string } }[] } } };
        } & KubernetesObject;
        const volume = ds.spec.template.spec.volumes.find((v) => v.hostPath !== undefined);
        assert.ok(volume?.hostPath);
        volume.hostPath.type = "FileOrCreateOrWhatever";
        await assert.rejects(admin.objects.create(ds, undefined, "All"), (e) => {
          assert.match(reason(e), /hostPath\.type/);
          return true;
        });
      });

      await t.step("RBAC allows what kproxy does, and nothing around it", async () => {
        for (const kind of ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"]) {
          const doc = docs.find((d) => d.object.kind === kind);
          assert.ok(doc);
          await admin.objects.create(doc.object as KubernetesObject);
        }
        const allowed: Access[] = [
          { verb: "list", resource: "services" },
          { verb: "watch", resource: "services" },
          { verb: "list", resource: "endpointslices", group: "discovery.k8s.io" },
          { verb: "watch", resource: "endpointslices", group: "discovery.k8s.io" },
          { verb: "list", resource: "nodes" },
          { verb: "watch", resource: "nodes" },
          { verb: "list", resource: "servicecidrs", group: "networking.k8s.io" },
          { verb: "watch", resource: "servicecidrs", group: "networking.k8s.io" },
        ];
        const denied: Access[] = [
          { verb: "get", resource: "secrets", namespace: "kube-system" },
          { verb: "list", resource: "secrets" },
          { verb: "list", resource: "endpoints" },
          { verb: "get", resource: "nodes", name: "node-a" },
          { verb: "delete", resource: "services", namespace: "default" },
          { verb: "update", resource: "nodes", name: "node-a" },
          { verb: "create", resource: "pods", namespace: "kube-system" },
          { verb: "create", resource: "events", namespace: "default" },
          { verb: "create", resource: "endpointslices", group: "discovery.k8s.io" },
        ];
        for (
          const [access, want] of [
            ...allowed.map((a) => [a, true] as const),
            ...denied.map((a) => [a, false] as const),
          ]
        ) {
          const review = await admin.authz.createSubjectAccessReview({
            body: {
              apiVersion: "authorization.k8s.io/v1",
              kind: "SubjectAccessReview",
              spec: {
                user: SERVICE_ACCOUNT,
                groups: ["system:serviceaccounts", "system:serviceaccounts:kube-system"],
                resourceAttributes: {
                  verb: access.verb,
                  resource: access.resource,
                  group: access.group ?? "",
                  ...(access.name ? { name: access.name } : {}),
                  ...(access.namespace ? { namespace: access.namespace } : {}),
                },
              },
            },
          });
          assert.equal(
            review.status?.allowed ?? false,
            want,
            `${SERVICE_ACCOUNT} ${describe(access)}`,
          );
        }
      });

      await t.step("kproxy syncs from the API server with the ServiceAccount's token", async () => {
        await admin.core.createNode({
          body: {
            metadata: { name: "node-a" },
            status: { addresses: [{ type: "InternalIP", address: "198.18.0.10" }] },
          },
        });
        await admin.core.createNamespacedService({
          namespace: "default",
          body: {
            metadata: { name: "web" },
            spec: { clusterIP: "198.18.128.20", ports: [{ name: "http", port: 80 }] },
          },
        });
        await admin.discovery.createNamespacedEndpointSlice({
          namespace: "default",
          body: {
            metadata: { name: "web-1", labels: { "kubernetes.io/service-name": "web" } },
            addressType: "IPv4",
            ports: [{ name: "http", port: 8080, protocol: "TCP" }],
            endpoints: [{
              addresses: ["198.18.1.20"],
              conditions: { ready: true },
              nodeName: "node-a",
            }],
          },
        });
        const token = await admin.core.createNamespacedServiceAccountToken({
          name: "kproxy",
          namespace: "kube-system",
          body: { spec: { audiences: [], expirationSeconds: 3600 } },
        });
        const kubeconfig = `${cluster.dir}/kproxy-sa.kubeconfig`;
        await Deno.writeTextFile(
          kubeconfig,
          JSON.stringify({
            apiVersion: "v1",
            kind: "Config",
            clusters: [{
              name: "test",
              cluster: { server: cluster.server, "certificate-authority": cluster.caCertPath },
            }],
            users: [{ name: "kproxy", user: { token: token.status?.token } }],
            contexts: [{ name: "kproxy", context: { cluster: "test", user: "kproxy" } }],
            "current-context": "kproxy",
          }),
        );
        const run = await runKproxy([
          `--kubeconfig=${kubeconfig}`,
          "--hostname-override=node-a",
          "--dry-run",
          "--healthz-bind-address=127.0.0.1:0",
          "--metrics-bind-address=127.0.0.1:0",
        ]);
        assert.doesNotMatch(run, /NotCapable|Requires \w+ access|Forbidden|forbidden/, run);
        // default/kubernetes:https and default/web:http.
        assert.match(run, /sync ok: full, 2 service ports/, run);
      });
    } finally {
      await cluster.stop();
    }
  },
}));

/** Runs kproxy with the baked permissions until its first sync (or 60 s); returns stderr. */
async function runKproxy(args: string[]): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...kproxyPermissionArgs(), `${REPO_DIR}/src/cli/main.ts`, ...args],
    cwd: REPO_DIR,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const stop = () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
  };
  const timer = setTimeout(stop, 60_000);
  try {
    const dec = new TextDecoder();
    for await (const chunk of child.stderr) {
      stderr += dec.decode(chunk, { stream: true });
      if (/sync (ok|failed)|Cannot /.test(stderr)) stop();
    }
    await child.status;
    return stderr;
  } finally {
    clearTimeout(timer);
  }
}
