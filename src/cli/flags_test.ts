// IP plan: nodes 198.18.0.0/24, pods 198.18.1.0/24 and fd00::1:0/112.
import assert from "node:assert/strict";
import { DEFAULT_PROXY_CONFIG } from "../config/proxy_config.ts";
import { ConfigFileError } from "../config/kube_proxy_configuration.ts";
import { configFromFlags, flagsHelp, parseFlags, PROXY_FLAGS, UsageError } from "./flags.ts";

const noFile = (path: string): string => {
  throw new Deno.errors.NotFound(`no such file: ${path}`);
};
const config = (argv: string[], files: Record<string, string> = {}) =>
  configFromFlags(parseFlags(argv).values, (p) => files[p] ?? noFile(p));

Deno.test("flags: booleans, values and -o", async (t) => {
  const cases: [string[], Record<string, string>][] = [
    [["--dry-run"], { "dry-run": "true" }],
    [["-dry-run"], { "dry-run": "true" }],
    [["--dry-run=false"], { "dry-run": "false" }],
    [["--proxy-mode", "iptables"], { "proxy-mode": "iptables" }],
    [["--proxy-mode=iptables"], { "proxy-mode": "iptables" }],
    [["-o", "json"], { output: "json" }],
    [["-ojson"], { output: "json" }],
    [["--output=table", "--v=2"], { output: "table", v: "2" }],
    [["--help"], { help: "true" }],
  ];
  for (const [argv, want] of cases) {
    await t.step(argv.join(" "), () => assert.deepEqual(parseFlags(argv).values, want));
  }
  assert.deepEqual(parseFlags(["--from=a"], { from: ["string", "x"] }).values, { from: "a" });
  assert.deepEqual(parseFlags(["--rules"], { rules: ["boolean", "x"] }).values, { rules: "true" });
});

Deno.test("flags: mistakes are one-line usage errors", async (t) => {
  const cases: [string[], RegExp][] = [
    [["--bogus"], /^Unknown option '--bogus'$/],
    [["--dry-run=maybe"], /^--dry-run takes true or false, not "maybe"$/],
    [["--manifests"], /^Option '--manifests <value>' argument missing$/],
    [
      ["--masquerade-all", "false"],
      /^unexpected argument "false" \(boolean flags take --name=false\)$/,
    ],
    [["extra"], /^unexpected argument "extra"/],
  ];
  for (const [argv, message] of cases) {
    await t.step(argv.join(" "), () => {
      assert.throws(() => parseFlags(argv), (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.match(e.message, message);
        return true;
      });
    });
  }
});

Deno.test("flags: defaults are kube-proxy's; nftables NodePorts default to primary IPs", () => {
  const c = config([]);
  assert.equal(c.mode, "nftables");
  assert.deepEqual(c.nodePortAddresses, ["primary"]);
  assert.equal(c.syncPeriodMs, DEFAULT_PROXY_CONFIG.syncPeriodMs);
  assert.equal(c.masqueradeBit, 14);
  assert.ok(Object.isFrozen(c));
  assert.deepEqual(config(["--proxy-mode=iptables"]).nodePortAddresses, []);
});

Deno.test("flags: every flag sets its field", () => {
  const c = config([
    "--proxy-mode=iptables",
    "--dry-run",
    "--kubeconfig=/k",
    "--master=https://198.18.0.1:6443",
    "--manifests=deploy",
    "--hostname-override= Node-A ",
    "--cluster-cidr=198.18.1.0/24, fd00::1:0/112",
    "--masquerade-all",
    "--iptables-masquerade-bit=15",
    "--iptables-localhost-nodeports=false",
    "--nodeport-addresses=198.18.0.0/24,fd00::/64",
    "--healthz-bind-address=127.0.0.1:10256",
    "--metrics-bind-address=127.0.0.1:10250",
    "--sync-period=1m",
    "--min-sync-period=1s",
    "--kube-api-qps=2.5",
    "--kube-api-burst=20",
  ]);
  assert.deepEqual({ ...c }, {
    ...DEFAULT_PROXY_CONFIG,
    mode: "iptables",
    dryRun: true,
    kubeconfig: "/k",
    master: "https://198.18.0.1:6443",
    manifests: "deploy",
    hostnameOverride: "node-a",
    clusterCIDRs: ["198.18.1.0/24", "fd00::1:0/112"],
    masqueradeAll: true,
    masqueradeBit: 15,
    localhostNodePorts: false,
    nodePortAddresses: ["198.18.0.0/24", "fd00::/64"],
    healthzBindAddress: "127.0.0.1:10256",
    metricsBindAddress: "127.0.0.1:10250",
    syncPeriodMs: 60_000,
    minSyncPeriodMs: 1000,
    kubeApiQps: 2.5,
    kubeApiBurst: 20,
  });
  const aliases = config(["--iptables-sync-period=2m", "--iptables-min-sync-period=2s"]);
  assert.deepEqual([aliases.syncPeriodMs, aliases.minSyncPeriodMs], [120_000, 2000]);
});

Deno.test("flags: bad values name the flag", async (t) => {
  const cases: [string, RegExp][] = [
    ["--proxy-mode=ipvs", /^--proxy-mode must be iptables or nftables, not "ipvs"$/],
    ["--cluster-cidr=198.18.1.0/24,198.18.1.0", /^--cluster-cidr: "198\.18\.1\.0" is not a CIDR$/],
    ["--nodeport-addresses=primary,x", /^--nodeport-addresses: "x" is not a CIDR$/],
    [
      "--nodeport-addresses=primary,198.18.0.0/24",
      /^--nodeport-addresses: can't use both 'primary' and CIDRs$/,
    ],
    [
      "--nodeport-addresses=198.18.0.0/24,primary",
      /^--nodeport-addresses: can't use both 'primary' and CIDRs$/,
    ],
    [
      "--iptables-masquerade-bit=32",
      /^--iptables-masquerade-bit must be a whole number from 0 to 31/,
    ],
    ["--iptables-masquerade-bit=14.5", /^--iptables-masquerade-bit must be a whole number/],
    ["--iptables-masquerade-bit=", /^--iptables-masquerade-bit must be a whole number/],
    ["--kube-api-burst=1.5", /^--kube-api-burst must be a whole number/],
    ["--kube-api-qps=-1", /^--kube-api-qps must be a number from 0/],
    ["--sync-period=30", /^--sync-period "30" is not a duration like 30s$/],
    ["--min-sync-period=soon", /^--min-sync-period "soon" is not a duration like 30s$/],
  ];
  for (const [arg, message] of cases) {
    await t.step(arg, () => assert.throws(() => config([arg]), { name: "UsageError", message }));
  }
});

Deno.test("flags: --config file first, flags override it", () => {
  const file = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
hostnameOverride: Node-B
clusterCIDR: 198.18.1.0/24
iptables: { masqueradeBit: 12, syncPeriod: 10s, minSyncPeriod: 2s }
`;
  const files = { "/etc/kp.yaml": file };
  const fromFile = config(["--config=/etc/kp.yaml"], files);
  assert.equal(fromFile.mode, "iptables");
  assert.equal(fromFile.hostnameOverride, "node-b", "lower-cased like the flag");
  assert.deepEqual(fromFile.clusterCIDRs, ["198.18.1.0/24"]);
  assert.deepEqual([fromFile.masqueradeBit, fromFile.syncPeriodMs, fromFile.minSyncPeriodMs], [
    12,
    10_000,
    2000,
  ]);
  const overridden = config([
    "--config=/etc/kp.yaml",
    "--proxy-mode=nftables",
    "--iptables-masquerade-bit=13",
    "--min-sync-period=100ms",
  ], files);
  assert.equal(overridden.mode, "nftables");
  assert.equal(overridden.masqueradeBit, 13);
  assert.equal(overridden.minSyncPeriodMs, 100);
  assert.equal(
    overridden.syncPeriodMs,
    30_000,
    "the iptables section does not apply in nftables mode",
  );
  assert.deepEqual(overridden.nodePortAddresses, ["primary"]);
  assert.throws(() => config(["--config=/missing.yaml"]), {
    name: "UsageError",
    message: /^Cannot read --config \/missing\.yaml: no such file/,
  });
  assert.throws(
    () => config(["--config=/bad.yaml"], { "/bad.yaml": "kind: Pod\n" }),
    (e: unknown) => e instanceof ConfigFileError && /^\/bad\.yaml: Cannot read/.test(e.message),
  );
});

Deno.test("flags: help lists every flag once", () => {
  const names = flagsHelp().split("\n").map((l) => /^\s+--([a-z-]+)/.exec(l)?.[1]);
  assert.deepEqual(names, Object.keys(PROXY_FLAGS));
});

Deno.test("flags: --conntrack-* as kube-proxy's, over the config file's conntrack section", () => {
  assert.deepEqual(config([]).conntrack, {
    maxPerCore: 32768,
    min: 131072,
    tcpEstablishedTimeoutMs: 86_400_000,
    tcpCloseWaitTimeoutMs: 3_600_000,
    tcpBeLiberal: false,
    udpTimeoutMs: 0,
    udpStreamTimeoutMs: 0,
  });
  const files = {
    "/kp.yaml": "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n" +
      "conntrack:\n  maxPerCore: 0\n  tcpBeLiberal: true\n  udpTimeout: 45s\n",
  };
  const c = config([
    "--config=/kp.yaml",
    "--conntrack-tcp-timeout-established=0",
    "--conntrack-tcp-timeout-close-wait=30m",
    "--conntrack-udp-timeout-stream=3m",
    "--conntrack-min=1000",
  ], files).conntrack;
  assert.deepEqual(c, {
    maxPerCore: 0,
    min: 1000,
    tcpEstablishedTimeoutMs: 0,
    tcpCloseWaitTimeoutMs: 1_800_000,
    tcpBeLiberal: true,
    udpTimeoutMs: 45_000,
    udpStreamTimeoutMs: 180_000,
  });
  assert.equal(config(["--conntrack-tcp-be-liberal"]).conntrack.tcpBeLiberal, true);
  assert.throws(() => config(["--conntrack-max-per-core=-1"]), {
    name: "UsageError",
    message: '--conntrack-max-per-core must be a whole number from 0 to 2147483647, not "-1"',
  });
  assert.throws(() => config(["--conntrack-udp-timeout=soon"]), {
    name: "UsageError",
    message: '--conntrack-udp-timeout "soon" is not a duration like 30s',
  });
});

Deno.test("flags: --detect-local-mode and its interfaces, over the config file's fields", () => {
  assert.equal(config([]).detectLocalMode, "ClusterCIDR");
  const prefix = config([
    "--detect-local-mode=InterfaceNamePrefix",
    "--pod-interface-name-prefix=veth",
  ]);
  assert.equal(prefix.detectLocalMode, "InterfaceNamePrefix");
  assert.equal(prefix.podInterfaceNamePrefix, "veth");
  const bridge = config([
    "--detect-local-mode",
    "BridgeInterface",
    "--pod-bridge-interface",
    "cbr0",
  ]);
  assert.deepEqual(
    [bridge.detectLocalMode, bridge.podBridgeInterface],
    ["BridgeInterface", "cbr0"],
  );
  // The config file's detectLocalMode is honoured (it used to be ignored), flags override it.
  const file = [
    "apiVersion: kubeproxy.config.k8s.io/v1alpha1",
    "kind: KubeProxyConfiguration",
    "detectLocalMode: NodeCIDR",
    "detectLocal:",
    "  bridgeInterface: cbr0",
    "  interfaceNamePrefix: cali",
  ].join("\n");
  const fromFile = config(["--config=/k.yaml"], { "/k.yaml": file });
  assert.equal(fromFile.detectLocalMode, "NodeCIDR");
  assert.deepEqual([fromFile.podBridgeInterface, fromFile.podInterfaceNamePrefix], [
    "cbr0",
    "cali",
  ]);
  const over = config(["--config=/k.yaml", "--detect-local-mode=InterfaceNamePrefix"], {
    "/k.yaml": file,
  });
  assert.deepEqual([over.detectLocalMode, over.podInterfaceNamePrefix], [
    "InterfaceNamePrefix",
    "cali",
  ]);
  // An empty mode is the default, as upstream.
  assert.equal(config(["--detect-local-mode="]).detectLocalMode, "ClusterCIDR");
});

Deno.test("flags: invalid detect-local combinations get upstream's validation error", async (t) => {
  const cases: [string[], RegExp][] = [
    [
      ["--detect-local-mode=BridgeInterface"],
      /^KubeProxyConfiguration\.DetectLocalConfiguration\.InterfaceName: Invalid value: "": must not be empty \(BridgeInterface needs --pod-bridge-interface\)$/,
    ],
    [
      ["--detect-local-mode=InterfaceNamePrefix", "--pod-bridge-interface=cbr0"],
      /^KubeProxyConfiguration\.DetectLocalConfiguration\.InterfacePrefix: Invalid value: "": must not be empty/,
    ],
    [
      ["--detect-local-mode=Bogus"],
      /^KubeProxyConfiguration\.DetectLocalMode: Unsupported value: "Bogus": supported values: "ClusterCIDR", "NodeCIDR", "BridgeInterface", "InterfaceNamePrefix", ""$/,
    ],
  ];
  for (const [argv, want] of cases) {
    await t.step(argv.join(" "), () => {
      assert.throws(() => config(argv), (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.match(e.message, want);
        assert.ok(!e.message.includes("\n"));
        return true;
      });
    });
  }
  // The same from the config file.
  const file = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n" +
    "detectLocalMode: BridgeInterface\n";
  assert.throws(() => config(["--config=/k.yaml"], { "/k.yaml": file }), /InterfaceName: Invalid/);
});
