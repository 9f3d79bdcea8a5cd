/**
 * The shipped Kubernetes manifests (deploy/kubernetes) parse, carry what a kube-proxy
 * replacement needs, agree with each other (names, mount paths, ports), and with kproxy itself:
 * the ConfigMap is accepted by kproxy's config loader and the container command by its flag
 * parser. Pure: no cluster (see dry_run_test.ts for the API server's opinion).
 *
 * IP plan: none used (the shipped ConfigMap's example clusterCIDR 10.244.0.0/16 is only parsed).
 */

import assert from "node:assert/strict";
import yaml from "js-yaml";
import { parseKubeProxyConfiguration } from "../../src/config/kube_proxy_configuration.ts";
import { configFromFlags, parseFlags } from "../../src/cli/flags.ts";
import {
  findObject,
  KUBERNETES_DIR,
  loadShippedManifests,
  manifestFiles,
  type ManifestObject,
  REPO_DIR,
} from "./_manifests.ts";
import { kubectl, requiring } from "../requirements.ts";
import { fixtureBinary } from "../fixtures/_build.ts";

// Loose views of the objects, enough for the checks below.
interface Probe {
  httpGet?: { path?: string; port?: number | string };
}
interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath?: string } } }[];
  securityContext?: { privileged?: boolean };
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface Volume {
  name: string;
  hostPath?: { path: string; type?: string };
  configMap?: { name: string };
}
interface PodSpec {
  serviceAccountName?: string;
  priorityClassName?: string;
  hostNetwork?: boolean;
  tolerations?: { operator?: string; key?: string; effect?: string }[];
  nodeSelector?: Record<string, string>;
  containers: Container[];
  volumes?: Volume[];
}
interface DaemonSetSpec {
  selector: { matchLabels: Record<string, string> };
  updateStrategy?: { type?: string };
  template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
}
interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

const docs = loadShippedManifests();
const daemonSet = findObject(docs, "DaemonSet", "kproxy");
const dsSpec = daemonSet.spec as DaemonSetSpec;
const pod = dsSpec.template.spec;
const container = pod.containers[0] as Container;
const configMap = findObject(docs, "ConfigMap", "kproxy");
const configText = (configMap.data as Record<string, string>)["config.conf"] ?? "";

function argvOf(c: Container): string[] {
  return [...(c.command ?? []), ...(c.args ?? [])];
}

function flagValue(argv: readonly string[], name: string): string | undefined {
  const prefix = `--${name}=`;
  return argv.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

function mountFor(path: string): { name: string; mountPath: string; readOnly?: boolean } {
  const mount = container.volumeMounts?.find((m) => m.mountPath === path);
  assert.ok(mount, `the kproxy container mounts ${path}`);
  return mount;
}

function volume(name: string): Volume {
  const v = pod.volumes?.find((x) => x.name === name);
  assert.ok(v, `the pod has a volume ${name}`);
  return v;
}

Deno.test("every manifest parses and has apiVersion, kind and metadata.name", () => {
  assert.deepEqual(manifestFiles(), [
    "configmap.yaml",
    "daemonset.yaml",
    "rbac.yaml",
    "serviceaccount.yaml",
  ]);
  assert.deepEqual(docs.map((d) => d.object.kind).sort(), [
    "ClusterRole",
    "ClusterRoleBinding",
    "ConfigMap",
    "DaemonSet",
    "ServiceAccount",
  ]);
  for (const { file, object } of docs) {
    assert.match(object.apiVersion ?? "", /^([a-z0-9.]+\/)?v1$/, `${file}: apiVersion`);
    assert.match(object.kind ?? "", /^[A-Z][A-Za-z]+$/, `${file}: kind`);
    assert.match(object.metadata?.name ?? "", /^[a-z0-9-]+$/, `${file}: metadata.name`);
    const clusterScoped = object.kind === "ClusterRole" || object.kind === "ClusterRoleBinding";
    assert.equal(
      object.metadata.namespace,
      clusterScoped ? undefined : "kube-system",
      `${file}: ${object.kind} namespace`,
    );
  }
});

Deno.test("the DaemonSet replaces kube-proxy: host network, privileged, every node", () => {
  assert.equal(daemonSet.apiVersion, "apps/v1");
  assert.equal(pod.hostNetwork, true);
  assert.equal(pod.priorityClassName, "system-node-critical");
  assert.equal(pod.serviceAccountName, "kproxy");
  assert.deepEqual(pod.tolerations, [{ operator: "Exists" }]);
  assert.equal(pod.nodeSelector?.["kubernetes.io/os"], "linux");
  assert.equal(dsSpec.updateStrategy?.type, "RollingUpdate");
  assert.deepEqual(dsSpec.selector.matchLabels, dsSpec.template.metadata.labels);
  assert.equal(pod.containers.length, 1);
  assert.equal(container.securityContext?.privileged, true);
  assert.match(container.image ?? "", /^kproxy:/);
});

Deno.test("the DaemonSet mounts the xtables lock, kernel modules and the config", () => {
  const lock = mountFor("/run/xtables.lock");
  assert.notEqual(lock.readOnly, true, "iptables must be able to take the lock");
  assert.deepEqual(volume(lock.name).hostPath, { path: "/run/xtables.lock", type: "FileOrCreate" });

  const modules = mountFor("/lib/modules");
  assert.equal(modules.readOnly, true);
  assert.equal(volume(modules.name).hostPath?.path, "/lib/modules");

  const configPath = flagValue(argvOf(container), "config");
  assert.equal(configPath, "/var/lib/kproxy/config.conf");
  const dir = configPath.slice(0, configPath.lastIndexOf("/"));
  const key = configPath.slice(dir.length + 1);
  const configMount = mountFor(dir);
  assert.equal(volume(configMount.name).configMap?.name, configMap.metadata.name);
  assert.ok(key in (configMap.data as Record<string, string>), `the ConfigMap has ${key}`);
});

Deno.test("the node name comes from the downward API into --hostname-override", () => {
  const argv = argvOf(container);
  assert.equal(argv[0], "/usr/local/bin/kproxy");
  assert.equal(flagValue(argv, "hostname-override"), "$(NODE_NAME)");
  const nodeName = container.env?.find((e) => e.name === "NODE_NAME");
  assert.equal(nodeName?.valueFrom?.fieldRef?.fieldPath, "spec.nodeName");
});

Deno.test("the API server address bypasses the kubernetes Service (kproxy is what makes it work)", () => {
  const env = new Map(container.env?.map((e) => [e.name, e]) ?? []);
  assert.ok(env.get("KUBERNETES_SERVICE_HOST")?.value, "KUBERNETES_SERVICE_HOST is set");
  assert.match(env.get("KUBERNETES_SERVICE_PORT")?.value ?? "", /^\d+$/);
  // The kustomization's patch targets exactly that variable.
  const kustomization = yaml.load(
    Deno.readTextFileSync(`${KUBERNETES_DIR}/kustomization.yaml`),
  ) as { patches: { patch: string }[] };
  const ops = yaml.load(kustomization.patches[0]?.patch ?? "") as { path: string }[];
  const index = Number(/\/env\/(\d+)\/value$/.exec(ops[0]?.path ?? "")?.[1]);
  assert.equal(container.env?.[index]?.name, "KUBERNETES_SERVICE_HOST");
});

Deno.test("the container command is accepted by kproxy's flag parser with the ConfigMap", () => {
  const argv = argvOf(container).slice(1).map((a) => a.replace("$(NODE_NAME)", "node-a"));
  const { values, positionals } = parseFlags(argv);
  assert.deepEqual(positionals, []);
  const config = configFromFlags(values, (path) => {
    assert.equal(path, "/var/lib/kproxy/config.conf");
    return configText;
  });
  assert.equal(config.hostnameOverride, "node-a");
  assert.equal(config.mode, "nftables");
  assert.deepEqual(config.clusterCIDRs, ["10.244.0.0/16"]);
  assert.equal(config.kubeconfig, "", "in-cluster credentials");
});

Deno.test("the ConfigMap's KubeProxyConfiguration is accepted by kproxy's loader", () => {
  const parsed = parseKubeProxyConfiguration(configText, "configmap.yaml:config.conf");
  assert.equal(parsed.mode, "nftables");
  assert.equal(parsed.healthzBindAddress, "0.0.0.0:10256");
  assert.equal(parsed.metricsBindAddress, "127.0.0.1:10249");
  assert.equal(parsed.syncPeriodMs, 30_000);
  assert.equal(parsed.minSyncPeriodMs, 1_000);
  assert.equal(parsed.masqueradeBit, 14);
});

Deno.test("the probes hit the health port of the ConfigMap on /livez and /readyz", () => {
  const healthPort = Number(
    parseKubeProxyConfiguration(configText, "config.conf").healthzBindAddress?.split(":").pop(),
  );
  assert.equal(healthPort, 10256);
  assert.deepEqual(container.livenessProbe?.httpGet, { path: "/livez", port: healthPort });
  assert.deepEqual(container.readinessProbe?.httpGet, { path: "/readyz", port: healthPort });
});

/**
 * The grants kproxy's code needs: list + watch for every collection path its informers use
 * (`/api/v1/services`, `/apis/discovery.k8s.io/v1/endpointslices`, ...), get for a single-object
 * path, create + patch for events if it ever records any.
 */
function requiredGrants(): string[] {
  const grants = new Set<string>();
  const walk = (dir: string) => {
    for (const entry of Deno.readDirSync(dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) walk(path);
      else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) {
        const text = Deno.readTextFileSync(path);
        for (
          const m of text.matchAll(
            /["'`]\/apis?\/(?:([a-z0-9.-]+)\/)?v1\/([a-z]+)(\/[^"'`]*)?["'`]/g,
          )
        ) {
          const group = m[1] && m[1].includes(".") ? m[1] : "core";
          const resource = m[2] ?? "";
          const verbs = resource === "events"
            ? ["create", "patch"]
            : m[3]
            ? ["get"]
            : ["list", "watch"];
          for (const verb of verbs) grants.add(`${verb} ${resource}.${group}`);
        }
        if (/EventsV1Api|CoreV1Event|createNamespacedEvent/.test(text)) {
          for (const g of ["core", "events.k8s.io"]) {
            grants.add(`create events.${g}`);
            grants.add(`patch events.${g}`);
          }
        }
      }
    }
  };
  walk(`${REPO_DIR}/src`);
  return [...grants].sort();
}

Deno.test("RBAC grants exactly the verbs kproxy uses, to the DaemonSet's ServiceAccount", () => {
  const role = findObject(docs, "ClusterRole", "kproxy");
  const grants = new Set<string>();
  for (const rule of role.rules as PolicyRule[]) {
    for (const group of rule.apiGroups) {
      for (const resource of rule.resources) {
        for (const verb of rule.verbs) grants.add(`${verb} ${resource}.${group || "core"}`);
      }
    }
  }
  const required = requiredGrants();
  assert.deepEqual(required, [
    "list endpointslices.discovery.k8s.io",
    "list nodes.core",
    "list servicecidrs.networking.k8s.io",
    "list services.core",
    "watch endpointslices.discovery.k8s.io",
    "watch nodes.core",
    "watch servicecidrs.networking.k8s.io",
    "watch services.core",
  ], "the API paths in src/ (update rbac.yaml and this list together)");
  assert.deepEqual([...grants].sort(), required);
  const binding = findObject(docs, "ClusterRoleBinding", "kproxy") as ManifestObject & {
    roleRef: { kind: string; name: string };
    subjects: { kind: string; name: string; namespace: string }[];
  };
  assert.deepEqual(binding.roleRef, {
    apiGroup: "rbac.authorization.k8s.io",
    kind: "ClusterRole",
    name: "kproxy",
  });
  const account = findObject(docs, "ServiceAccount", pod.serviceAccountName ?? "");
  assert.deepEqual(binding.subjects, [
    { kind: "ServiceAccount", name: account.metadata.name, namespace: "kube-system" },
  ]);
});

Deno.test("kustomization.yaml lists every manifest file and sets the image", () => {
  const k = yaml.load(Deno.readTextFileSync(`${KUBERNETES_DIR}/kustomization.yaml`)) as {
    apiVersion: string;
    kind: string;
    namespace: string;
    resources: string[];
    images: { name: string }[];
  };
  assert.equal(k.kind, "Kustomization");
  assert.equal(k.namespace, "kube-system");
  assert.deepEqual([...k.resources].sort(), manifestFiles());
  assert.equal(k.images[0]?.name, container.image?.split(":")[0]);
});

/** `kubectl kustomize deploy/kubernetes` with the fixtures' kubectl. */
function kubectlKustomize(): string {
  const out = new Deno.Command(fixtureBinary("kubectl"), {
    args: ["kustomize", KUBERNETES_DIR],
    stdout: "piped",
    stderr: "piped",
  }).outputSync();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

Deno.test(requiring([kubectl], {
  name: "kubectl kustomize renders the kustomization: every object, image and patch applied",
  fn() {
    const objects = yaml.loadAll(kubectlKustomize()) as ManifestObject[];
    assert.deepEqual(
      objects.map((o) => `${o.kind}/${o.metadata.name}`).sort(),
      docs.map((d) => `${d.object.kind}/${d.object.metadata.name}`).sort(),
    );
    const ds = objects.find((o) => o.kind === "DaemonSet") as unknown as {
      spec: DaemonSetSpec;
    };
    const c = ds.spec.template.spec.containers[0];
    assert.equal(c?.image, "kproxy:0.1.0");
    assert.equal(
      c?.env?.find((e) => e.name === "KUBERNETES_SERVICE_HOST")?.value,
      "control-plane.cluster.invalid",
    );
  },
}));
