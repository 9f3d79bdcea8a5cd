// IP plan: nodes 198.18.0.0/24 and fd00::/112, pods 198.18.1.0/24 and fd00::1:0/112.
import assert from "node:assert/strict";
import { ConfigFileError, parseKubeProxyConfiguration } from "./kube_proxy_configuration.ts";
import { DEFAULT_PROXY_CONFIG } from "./proxy_config.ts";

const HEAD = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n";

Deno.test("KubeProxyConfiguration: the fields kproxy honours", () => {
  const text = `${HEAD}mode: iptables
hostnameOverride: node-a
clusterCIDR: 198.18.1.0/24,fd00::1:0/112
healthzBindAddress: 0.0.0.0:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [198.18.0.0/24, fd00::/64]
clientConnection: { kubeconfig: /etc/kubeconfig, qps: 50, burst: 100 }
iptables:
  masqueradeAll: true
  masqueradeBit: 15
  localhostNodePorts: false
  syncPeriod: 1m0s
  minSyncPeriod: 1s
conntrack: { maxPerCore: 0, tcpEstablishedTimeout: 2h }
featureGates: { SomeGate: true }
`;
  assert.deepEqual(parseKubeProxyConfiguration(text, "kp.yaml"), {
    mode: "iptables",
    hostnameOverride: "node-a",
    clusterCIDRs: ["198.18.1.0/24", "fd00::1:0/112"],
    healthzBindAddress: "0.0.0.0:10256",
    metricsBindAddress: "127.0.0.1:10249",
    nodePortAddresses: ["198.18.0.0/24", "fd00::/64"],
    syncPeriodMs: 60_000,
    minSyncPeriodMs: 1000,
    masqueradeAll: true,
    masqueradeBit: 15,
    localhostNodePorts: false,
    kubeconfig: "/etc/kubeconfig",
    kubeApiQps: 50,
    kubeApiBurst: 100,
    conntrack: {
      ...DEFAULT_PROXY_CONFIG.conntrack,
      maxPerCore: 0,
      tcpEstablishedTimeoutMs: 7_200_000,
    },
  });
});

Deno.test("KubeProxyConfiguration: nftables section, top-level periods win, JSON works", () => {
  const text = `${HEAD}mode: nftables
syncPeriod: 45s
nftables: { masqueradeBit: 13, syncPeriod: 10s, minSyncPeriod: 250ms }
iptables: { masqueradeBit: 20 }
`;
  assert.deepEqual(parseKubeProxyConfiguration(text, "kp.yaml"), {
    mode: "nftables",
    syncPeriodMs: 45_000,
    minSyncPeriodMs: 250,
    masqueradeBit: 13,
  });
  const json = JSON.stringify({
    apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
    kind: "KubeProxyConfiguration",
    mode: "",
  });
  assert.deepEqual(parseKubeProxyConfiguration(json, "kp.json"), {});
});

Deno.test("KubeProxyConfiguration: only set fields are returned (defaults stay elsewhere)", () => {
  const out = parseKubeProxyConfiguration(HEAD, "kp.yaml");
  assert.deepEqual(out, {});
  assert.equal(DEFAULT_PROXY_CONFIG.masqueradeBit, 14);
  assert.equal(DEFAULT_PROXY_CONFIG.syncPeriodMs, 30_000);
  assert.ok(Object.isFrozen(DEFAULT_PROXY_CONFIG));
});

Deno.test("KubeProxyConfiguration: each mistake is one line naming the file and field", async (t) => {
  const cases: [string, string, string][] = [
    ["empty file", "", "document is empty"],
    ["a list", "- a\n", "document is not a mapping"],
    [
      "wrong kind",
      "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: Pod\n",
      "kind must be KubeProxyConfiguration",
    ],
    [
      "no apiVersion",
      "kind: KubeProxyConfiguration\n",
      "apiVersion must be kubeproxy.config.k8s.io/v1alpha1",
    ],
    ["mode ipvs", `${HEAD}mode: ipvs\n`, "mode must be iptables or nftables"],
    ["duration as a number", `${HEAD}syncPeriod: 30\n`, "syncPeriod must be a string"],
    [
      "bad duration",
      `${HEAD}iptables: { minSyncPeriod: 1x }\n`,
      "iptables.minSyncPeriod is not a duration such as 30s or 1m0s",
    ],
    [
      "masquerade bit",
      `${HEAD}iptables: { masqueradeBit: 32 }\n`,
      "iptables.masqueradeBit must be a whole number from 0 to 31",
    ],
    [
      "bad cluster CIDR",
      `${HEAD}clusterCIDR: 198.18.1.0/24,198.18.2.0/33\n`,
      "clusterCIDR is not a comma-separated list of CIDRs",
    ],
    [
      "bad node port address",
      `${HEAD}nodePortAddresses: [primary, 198.18.0.1]\n`,
      "nodePortAddresses[1] is not a CIDR or primary",
    ],
    [
      "primary with CIDRs",
      `${HEAD}nodePortAddresses: [primary, 198.18.0.0/24]\n`,
      "nodePortAddresses can't use both 'primary' and CIDRs",
    ],
    [
      "qps as text",
      `${HEAD}clientConnection: { qps: many }\n`,
      "clientConnection.qps must be a number",
    ],
    [
      "boolean as text",
      `${HEAD}iptables: { masqueradeAll: "yes" }\n`,
      "iptables.masqueradeAll must be true or false",
    ],
  ];
  for (const [name, text, problem] of cases) {
    await t.step(name, () => {
      assert.throws(
        () => parseKubeProxyConfiguration(text, "/etc/kproxy/kp.yaml"),
        (e: unknown) => {
          assert.ok(e instanceof ConfigFileError);
          assert.equal(
            e.message,
            `/etc/kproxy/kp.yaml: Cannot read KubeProxyConfiguration: ${problem}`,
          );
          return true;
        },
      );
    });
  }
  await t.step("YAML syntax", () => {
    assert.throws(
      () => parseKubeProxyConfiguration("mode: [", "kp.yaml"),
      /^ConfigFileError: kp\.yaml: Cannot parse KubeProxyConfiguration: [^\n]+$/,
    );
  });
});

Deno.test("the conntrack section: upstream's defaults for what it leaves out, 0 kept", () => {
  const c = parseKubeProxyConfiguration(
    HEAD + "conntrack:\n  min: 0\n  tcpCloseWaitTimeout: 0s\n  udpStreamTimeout: 2m\n",
    "kp.yaml",
  ).conntrack;
  assert.deepEqual(c, {
    ...DEFAULT_PROXY_CONFIG.conntrack,
    min: 0,
    tcpCloseWaitTimeoutMs: 0,
    udpStreamTimeoutMs: 120_000,
  });
  assert.equal(parseKubeProxyConfiguration(HEAD, "kp.yaml").conntrack, undefined);
  assert.throws(
    () => parseKubeProxyConfiguration(HEAD + "conntrack:\n  maxPerCore: -5\n", "kp.yaml"),
    /kp\.yaml: Cannot read KubeProxyConfiguration: conntrack\.maxPerCore must be a whole number of 0 or more$/,
  );
});
