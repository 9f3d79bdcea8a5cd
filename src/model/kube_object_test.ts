// IP plan: pods 198.18.1.0/24 and fd00::1:0/112, services 198.18.128.0/17, external IPs
// 198.18.200.0/24, clients 198.19.0.0/24.
import assert from "node:assert/strict";
import { objectKey, parseKubeObject, rawObjectName } from "./kube_object.ts";

type Raw = Record<string, unknown>;

const service = (spec: Raw, metadata: Raw = { name: "web", namespace: "default" }): Raw => ({
  apiVersion: "v1",
  kind: "Service",
  metadata,
  spec: { clusterIP: "198.18.128.10", ports: [{ name: "http", port: 80 }], ...spec },
});

const endpointSlice = (fields: Raw): Raw => ({
  apiVersion: "discovery.k8s.io/v1",
  kind: "EndpointSlice",
  metadata: { name: "web-abc", namespace: "default" },
  addressType: "IPv4",
  ...fields,
});

const PORT_RANGE = "must be between 1 and 65535";

Deno.test("kube object: each bad field gives one line naming file, object and field", async (t) => {
  const cases: { name: string; raw: unknown; field: string; line: string }[] = [
    {
      name: "endpoint address not an IP",
      raw: endpointSlice({
        endpoints: [
          { addresses: ["198.18.1.1"] },
          { addresses: ["198.18.1.2"] },
          { addresses: ["198.18.1"] },
        ],
      }),
      field: "endpoints[2].addresses[0]",
      line:
        "web.yaml: Cannot read EndpointSlice default/web-abc: endpoints[2].addresses[0] is not an IP address",
    },
    {
      name: "endpoint address of the wrong family",
      raw: endpointSlice({ endpoints: [{ addresses: ["fd00::1:2"] }] }),
      field: "endpoints[0].addresses[0]",
      line:
        "web.yaml: Cannot read EndpointSlice default/web-abc: endpoints[0].addresses[0] is not an IPv4 address",
    },
    {
      name: "endpoint without addresses",
      raw: endpointSlice({ endpoints: [{ addresses: [] }] }),
      field: "endpoints[0].addresses",
      line:
        "web.yaml: Cannot read EndpointSlice default/web-abc: endpoints[0].addresses must have at least one address",
    },
    {
      name: "slice port out of range",
      raw: endpointSlice({ ports: [{ name: "http", port: 65536 }] }),
      field: "ports[0].port",
      line: `web.yaml: Cannot read EndpointSlice default/web-abc: ports[0].port ${PORT_RANGE}`,
    },
    {
      name: "slice protocol lower-case",
      raw: endpointSlice({ ports: [{ name: "http", port: 80, protocol: "tcp" }] }),
      field: "ports[0].protocol",
      line:
        "web.yaml: Cannot read EndpointSlice default/web-abc: ports[0].protocol must be TCP, UDP or SCTP",
    },
    {
      name: "slice addressType",
      raw: endpointSlice({ addressType: "IPv5" }),
      field: "addressType",
      line:
        "web.yaml: Cannot read EndpointSlice default/web-abc: addressType must be IPv4, IPv6 or FQDN",
    },
    {
      name: "condition not a boolean",
      raw: endpointSlice({
        endpoints: [{ addresses: ["198.18.1.1"], conditions: { ready: "yes" } }],
      }),
      field: "endpoints[0].conditions.ready",
      line:
        "web.yaml: Cannot read EndpointSlice default/web-abc: endpoints[0].conditions.ready must be true or false",
    },
    {
      name: "service port 0",
      raw: service({ ports: [{ name: "http", port: 0 }] }),
      field: "spec.ports[0].port",
      line: `web.yaml: Cannot read Service default/web: spec.ports[0].port ${PORT_RANGE}`,
    },
    {
      name: "service port 70000",
      raw: service({ ports: [{ name: "http", port: 70000 }] }),
      field: "spec.ports[0].port",
      line: `web.yaml: Cannot read Service default/web: spec.ports[0].port ${PORT_RANGE}`,
    },
    {
      name: "service port as text",
      raw: service({ ports: [{ name: "http", port: "80" }] }),
      field: "spec.ports[0].port",
      line: "web.yaml: Cannot read Service default/web: spec.ports[0].port must be a number",
    },
    {
      name: "service port not whole",
      raw: service({ ports: [{ name: "http", port: 80.5 }] }),
      field: "spec.ports[0].port",
      line: "web.yaml: Cannot read Service default/web: spec.ports[0].port must be a whole number",
    },
    {
      name: "nodePort out of range",
      raw: service({ type: "NodePort", ports: [{ name: "http", port: 80, nodePort: 65536 }] }),
      field: "spec.ports[0].nodePort",
      line: `web.yaml: Cannot read Service default/web: spec.ports[0].nodePort ${PORT_RANGE}`,
    },
    {
      name: "healthCheckNodePort out of range",
      raw: service({ healthCheckNodePort: -1 }),
      field: "spec.healthCheckNodePort",
      line: `web.yaml: Cannot read Service default/web: spec.healthCheckNodePort ${PORT_RANGE}`,
    },
    {
      name: "bad protocol",
      raw: service({ ports: [{ name: "http", port: 80, protocol: "HTTP" }] }),
      field: "spec.ports[0].protocol",
      line:
        "web.yaml: Cannot read Service default/web: spec.ports[0].protocol must be TCP, UDP or SCTP",
    },
    {
      name: "bad clusterIP",
      raw: service({ clusterIP: "198.18.128.300" }),
      field: "spec.clusterIP",
      line: "web.yaml: Cannot read Service default/web: spec.clusterIP is not an IP address",
    },
    {
      name: "bad clusterIPs entry",
      raw: service({ clusterIPs: ["198.18.128.10", "fd00::80::10"] }),
      field: "spec.clusterIPs[1]",
      line: "web.yaml: Cannot read Service default/web: spec.clusterIPs[1] is not an IP address",
    },
    {
      name: "bad externalIPs entry",
      raw: service({ externalIPs: ["198.18.200.1", "198.18.200"] }),
      field: "spec.externalIPs[1]",
      line: "web.yaml: Cannot read Service default/web: spec.externalIPs[1] is not an IP address",
    },
    {
      name: "bad loadBalancer ingress IP",
      raw: {
        ...service({ type: "LoadBalancer" }),
        status: { loadBalancer: { ingress: [{ ip: "lb.example" }] } },
      },
      field: "status.loadBalancer.ingress[0].ip",
      line:
        "web.yaml: Cannot read Service default/web: status.loadBalancer.ingress[0].ip is not an IP address",
    },
    {
      name: "bad CIDR prefix",
      raw: service({ loadBalancerSourceRanges: ["198.19.0.0/24", "198.19.0.0/33"] }),
      field: "spec.loadBalancerSourceRanges[1]",
      line:
        "web.yaml: Cannot read Service default/web: spec.loadBalancerSourceRanges[1] is not a CIDR",
    },
    {
      name: "CIDR without prefix",
      raw: service({ loadBalancerSourceRanges: ["198.19.0.1"] }),
      field: "spec.loadBalancerSourceRanges[0]",
      line:
        "web.yaml: Cannot read Service default/web: spec.loadBalancerSourceRanges[0] is not a CIDR",
    },
    {
      name: "bad type",
      raw: service({ type: "Ingress" }),
      field: "spec.type",
      line:
        "web.yaml: Cannot read Service default/web: spec.type must be ClusterIP, NodePort, LoadBalancer or ExternalName",
    },
    {
      name: "affinity timeout out of range",
      raw: service({
        sessionAffinity: "ClientIP",
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 86401 } },
      }),
      field: "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
      line:
        "web.yaml: Cannot read Service default/web: spec.sessionAffinityConfig.clientIP.timeoutSeconds must be between 1 and 86400",
    },
    {
      name: "bad traffic policy",
      raw: service({ externalTrafficPolicy: "Nearest" }),
      field: "spec.externalTrafficPolicy",
      line:
        "web.yaml: Cannot read Service default/web: spec.externalTrafficPolicy must be Cluster or Local",
    },
    {
      name: "ports not a list",
      raw: service({ ports: "80" }),
      field: "spec.ports",
      line: "web.yaml: Cannot read Service default/web: spec.ports must be a list",
    },
    {
      name: "missing name",
      raw: service({}, { namespace: "shop" }),
      field: "metadata.name",
      line: "web.yaml: Cannot read Service shop/<unnamed>: metadata.name is missing",
    },
    {
      name: "invalid name",
      raw: service({}, { name: "Web_1", namespace: "shop" }),
      field: "metadata.name",
      line:
        "web.yaml: Cannot read Service shop/Web_1: metadata.name is not a valid Kubernetes name",
    },
    {
      name: "namespace-less object is named in default",
      raw: service({ ports: [{ port: 0 }] }, { name: "web" }),
      field: "spec.ports[0].port",
      line: `web.yaml: Cannot read Service default/web: spec.ports[0].port ${PORT_RANGE}`,
    },
    {
      name: "missing metadata",
      raw: { kind: "Service", spec: {} },
      field: "metadata",
      line: "web.yaml: Cannot read Service default/<unnamed>: metadata is missing",
    },
    {
      name: "non-mapping document",
      raw: "just text",
      field: "",
      line: "web.yaml: Cannot read object <unnamed>: is not a mapping",
    },
    {
      name: "a list is not a mapping",
      raw: [1, 2],
      field: "",
      line: "web.yaml: Cannot read object <unnamed>: is not a mapping",
    },
    {
      name: "missing kind",
      raw: { metadata: { name: "web" } },
      field: "kind",
      line: "web.yaml: Cannot read object web: kind is missing",
    },
    {
      name: "node name",
      raw: { kind: "Node", metadata: { name: "node_a" } },
      field: "metadata.name",
      line: "web.yaml: Cannot read Node node_a: metadata.name is not a valid Kubernetes name",
    },
    {
      name: "label value not text",
      raw: { kind: "Node", metadata: { name: "node-a", labels: { zone: 1 } } },
      field: "metadata.labels.zone",
      line: "web.yaml: Cannot read Node node-a: metadata.labels.zone must be a string",
    },
    {
      name: "wrong apiVersion",
      raw: endpointSlice({ apiVersion: "discovery.k8s.io/v1beta1" }),
      field: "apiVersion",
      line:
        "web.yaml: Cannot read EndpointSlice default/web-abc: apiVersion must be discovery.k8s.io/v1",
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const r = parseKubeObject(c.raw, "web.yaml");
      assert.equal(r.ok, false);
      if (r.ok !== false) return;
      assert.equal(r.error.message, c.line);
      assert.equal(r.error.field, c.field);
      assert.equal(r.error.origin, "web.yaml");
      assert.ok(!r.error.message.includes("\n"), "one line");
      assert.ok(!r.error.message.endsWith("."), "no final period");
    });
  }
});

Deno.test("kube object: without an origin the line starts with Cannot", () => {
  const r = parseKubeObject(service({ clusterIP: "x" }));
  assert.equal(r.ok, false);
  if (r.ok === false) {
    assert.equal(
      r.error.message,
      "Cannot read Service default/web: spec.clusterIP is not an IP address",
    );
  }
});

Deno.test("kube object: valid objects, defaults and ignored kinds", () => {
  const s = parseKubeObject(service({}, { name: "web" }));
  assert.equal(s.ok, true);
  if (s.ok === true) {
    assert.equal(s.value.kind, "Service");
    assert.equal(s.value.object.metadata.namespace, "default");
    assert.equal(objectKey(s.value), "Service/default/web");
  }
  const e = parseKubeObject(endpointSlice({
    metadata: { name: "web-abc" },
    endpoints: [{ addresses: ["198.18.1.2"] }],
    ports: [{ name: "http", port: 8080 }],
  }));
  assert.equal(e.ok, true);
  if (e.ok === true) assert.equal(objectKey(e.value), "EndpointSlice/default/web-abc");
  const n = parseKubeObject({ kind: "Node", metadata: { name: "node-a", namespace: "x" } });
  assert.equal(n.ok, true);
  if (n.ok === true) assert.equal(objectKey(n.value), "Node/node-a");
  const fqdn = parseKubeObject(endpointSlice({
    addressType: "FQDN",
    endpoints: [{ addresses: ["web.example"] }],
  }));
  assert.equal(fqdn.ok, true, "FQDN addresses are not checked as IPs");
  assert.deepEqual(parseKubeObject({ kind: "ConfigMap", metadata: { name: "x" } }), {
    ok: "ignored",
    kind: "ConfigMap",
  });
  const unknownFields = parseKubeObject(service({ ipFamilyPolicy: "PreferDualStack", extra: 1 }));
  assert.equal(unknownFields.ok, true, "unknown fields are dropped, not errors");
  const noSpec = parseKubeObject({ kind: "Service", metadata: { name: "web" } });
  assert.equal(noSpec.ok, true);
});

Deno.test("kube object: rawObjectName", () => {
  assert.equal(rawObjectName({ kind: "Service", metadata: { name: "a", namespace: "b" } }), "b/a");
  assert.equal(rawObjectName({ kind: "EndpointSlice", metadata: { name: "a" } }), "default/a");
  assert.equal(rawObjectName({ kind: "Node", metadata: { name: "n" } }), "n");
  assert.equal(rawObjectName({ kind: "ConfigMap", metadata: { name: "c" } }), "c");
  assert.equal(rawObjectName(null), "<unnamed>");
});
