// IP plan: nodes 198.18.0.0/24, pods 198.18.1.0/24, services 198.18.128.0/17.
import assert from "node:assert/strict";
import { objectKey } from "../model/kube_object.ts";
import { parseManifestText } from "./manifest_text.ts";

const SERVICE_YAML = `apiVersion: v1
kind: Service
metadata: { name: web, namespace: default }
spec:
  clusterIP: 198.18.128.10
  ports: [{ name: http, port: 80 }]
`;

const SLICE_YAML = `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-abc
  labels: { kubernetes.io/service-name: web }
addressType: IPv4
ports: [{ name: http, port: 8080 }]
endpoints:
  - addresses: [198.18.1.2]
`;

const keys = (text: string, origin = "m.yaml") =>
  parseManifestText(text, origin).objects.map(objectKey);

Deno.test("manifest text: multi-document YAML, empty and comment-only documents", () => {
  const text =
    `# leading comment\n---\n${SERVICE_YAML}---\n---\n# only a comment\n---\n${SLICE_YAML}`;
  const r = parseManifestText(text, "m.yaml");
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.objects.map(objectKey), [
    "Service/default/web",
    "EndpointSlice/default/web-abc",
  ]);
  assert.deepEqual(keys(""), []);
});

Deno.test("manifest text: JSON documents", () => {
  const json = JSON.stringify(
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "web" },
      spec: { clusterIP: "198.18.128.10", ports: [{ port: 80 }] },
    },
    null,
    2,
  );
  assert.deepEqual(keys(json, "web.json"), ["Service/default/web"]);
});

Deno.test("manifest text: kind List as kubectl get -o yaml writes it, and typed lists", () => {
  const list = `apiVersion: v1
items:
- apiVersion: v1
  kind: Service
  metadata:
    creationTimestamp: "2024-01-01T00:00:00Z"
    name: web
    namespace: default
    resourceVersion: "123"
    uid: 0f6b6a2e-0000-0000-0000-000000000000
  spec:
    clusterIP: 198.18.128.10
    clusterIPs:
    - 198.18.128.10
    internalTrafficPolicy: Cluster
    ipFamilies:
    - IPv4
    ipFamilyPolicy: SingleStack
    ports:
    - name: http
      port: 80
      protocol: TCP
      targetPort: 8080
    selector:
      app: web
    sessionAffinity: None
    type: ClusterIP
  status:
    loadBalancer: {}
- apiVersion: v1
  kind: Node
  metadata:
    name: node-a
kind: List
metadata:
  resourceVersion: ""
`;
  assert.deepEqual(keys(list), ["Service/default/web", "Node/node-a"]);
  const typed = JSON.stringify({
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSliceList",
    items: [{
      kind: "EndpointSlice",
      metadata: { name: "web-abc", namespace: "shop" },
      addressType: "IPv4",
    }],
  });
  assert.deepEqual(keys(typed), ["EndpointSlice/shop/web-abc"]);
  const nested = { kind: "List", items: [{ kind: "List", items: [JSON.parse(typed)] }] };
  assert.deepEqual(keys(JSON.stringify(nested)), ["EndpointSlice/shop/web-abc"]);
  assert.deepEqual(keys("kind: List\nitems: []\n"), []);
});

Deno.test("manifest text: other kinds are ignored without errors", () => {
  const text = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec: { replicas: 3 }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: cfg }
data: { a: b }
---
${SERVICE_YAML}`;
  const r = parseManifestText(text, "m.yaml");
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.objects.map(objectKey), ["Service/default/web"]);
});

Deno.test("manifest text: one bad object does not affect the others", () => {
  const bad = SLICE_YAML.replace("198.18.1.2", "198.18.1.300").replace("web-abc", "web-bad");
  const text = [SERVICE_YAML, bad, SLICE_YAML, "just a string\n", "- a list\n"].join("---\n");
  const r = parseManifestText(text, "deploy/web.yaml");
  assert.deepEqual(r.objects.map(objectKey), [
    "Service/default/web",
    "EndpointSlice/default/web-abc",
  ]);
  assert.deepEqual(r.errors.map((e) => e.message), [
    "deploy/web.yaml: Cannot read EndpointSlice default/web-bad: endpoints[0].addresses[0] is not an IP address",
    "deploy/web.yaml: Cannot read object <unnamed>: is not a mapping",
    "deploy/web.yaml: Cannot read object <unnamed>: is not a mapping",
  ]);
});

Deno.test("manifest text: a YAML syntax error is one line naming the file", () => {
  const r = parseManifestText(`${SERVICE_YAML}---\nkind: Service\n  bad: [indent\n`, "web.yaml");
  assert.deepEqual(r.objects, []);
  assert.equal(r.errors.length, 1);
  const [e] = r.errors;
  assert.equal(e?.kind, "file");
  assert.match(e?.message ?? "", /^web\.yaml: Cannot parse manifest: \S/);
  assert.ok(!(e?.message ?? "").includes("\n"));
});

Deno.test("manifest text: YAML 1.1 words stay text (core schema)", () => {
  const text = SLICE_YAML.replace(
    "  - addresses: [198.18.1.2]",
    "  - addresses: [198.18.1.2]\n    conditions: { ready: yes }",
  );
  const r = parseManifestText(text, "m.yaml");
  assert.equal(
    r.errors[0]?.message,
    "m.yaml: Cannot read EndpointSlice default/web-abc: endpoints[0].conditions.ready must be true or false",
  );
});
