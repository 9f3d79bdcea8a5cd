// CLI end-to-end tests: `deno run -A src/cli/main.ts ...` as a subprocess.
// IP plan (deploy/examples and edits of it): node 198.18.0.10, pods 198.18.1.0/24 and
// fd00::1:0/112, services 198.18.128.0/17 and fd00::/112, external 198.18.200.1, LoadBalancer
// 198.18.250.1, clients 198.19.0.0/24.
import assert from "node:assert/strict";
import { edit, EXAMPLES, kproxy, lines, withExamplesCopy } from "./_kproxy.ts";

const NODE = ["--hostname-override", "node-a"];

Deno.test("cli: snapshot -o json and -o table", async () => {
  const json = await kproxy("snapshot", "--manifests", EXAMPLES, ...NODE, "-o", "json");
  assert.equal(json.code, 0, json.stderr);
  const snap = JSON.parse(json.stdout);
  assert.deepEqual(snap.servicePorts.map((p: { id: string }) => p.id), [
    "default/web:http",
    "kube-system/kube-dns:dns",
    "kube-system/kube-dns:dns-tcp",
    "shop/api:https",
  ]);
  assert.equal(snap.node.name, "node-a");
  const table = await kproxy("snapshot", "--manifests", EXAMPLES, ...NODE, "-o", "table");
  assert.equal(table.code, 0);
  assert.equal(
    lines(table.stdout)[0],
    `node node-a zone zone-a · snapshot ${snap.hash} · 4 service ports`,
  );
  const single = await kproxy(
    "snapshot",
    "--manifests",
    `${EXAMPLES}/web.yaml`,
    ...NODE,
    "-o",
    "json",
  );
  assert.deepEqual(JSON.parse(single.stdout).servicePorts.map((p: { id: string }) => p.id), [
    "default/web:http",
  ]);
});

Deno.test("cli: snapshot usage errors exit 2 with one line", async () => {
  const cases: [string[], string][] = [
    [["snapshot"], "kproxy: snapshot needs --manifests PATH"],
    [
      ["snapshot", "--manifests", EXAMPLES, "-o", "yaml"],
      'kproxy: -o must be json or table, not "yaml"',
    ],
    [
      ["snapshot", "--manifests", "/nonexistent/kproxy"],
      "kproxy: Cannot read manifests at /nonexistent/kproxy: no such file or folder",
    ],
    [["snapshot", "--bogus"], "kproxy: Unknown option '--bogus'"],
    [["--bogus"], "kproxy: Unknown option '--bogus'"],
    [["diff", "--from", EXAMPLES, "--to", EXAMPLES, "--nope=1"], "kproxy: Unknown option '--nope'"],
    [
      ["snapshot", "--manifests", EXAMPLES, "--masquerade-all", "false"],
      'kproxy: unexpected argument "false" (boolean flags take --name=false)',
    ],
    [["frobnicate"], 'kproxy: unknown command "frobnicate"; see kproxy --help'],
    [["diff", "--from", EXAMPLES], "kproxy: diff needs --from PATH and --to PATH"],
    [
      ["diff", "--from", EXAMPLES, "--to", EXAMPLES, "--fail-on", "slowness"],
      'kproxy: --fail-on must be lost-endpoints, not "slowness"',
    ],
  ];
  for (const [args, stderr] of cases) {
    const run = await kproxy(...args);
    assert.equal(run.code, 2, args.join(" "));
    assert.equal(run.stderr, `${stderr}\n`, args.join(" "));
    assert.equal(run.stdout, "");
  }
});

Deno.test("cli: --help for each command", async () => {
  const cases: [string[], RegExp][] = [
    [["--help"], /^kproxy — a kube-proxy.*\n[\s\S]*--proxy-mode VALUE/],
    [["help"], /^kproxy — a kube-proxy/],
    [["run", "--help"], /--hostname-override VALUE/],
    [["snapshot", "--help"], /^kproxy snapshot --manifests PATH/],
    [["render", "--help"], /^kproxy render --manifests PATH/],
    [["explain", "--help"], /^kproxy explain \(--manifests PATH[\s\S]*--to ADDR:PORT/],
    [
      ["diff", "--help"],
      /^kproxy diff --from PATH --to PATH[\s\S]*Exit 0 when equal, 1 when they differ/,
    ],
  ];
  for (const [args, stdout] of cases) {
    const run = await kproxy(...args);
    assert.equal(run.code, 0, args.join(" "));
    assert.match(run.stdout, stdout, args.join(" "));
    assert.equal(run.stderr, "");
  }
  const version = await kproxy("version");
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^kproxy \S+ /);
});

Deno.test("cli: diff exits 0 when equal, 1 when different", async () => {
  const same = await kproxy("diff", "--from", EXAMPLES, "--to", EXAMPLES, ...NODE, "--rules=false");
  assert.equal(same.code, 0, same.stderr);
  assert.match(same.stdout, /^no changes \(snapshot [0-9a-f]{32}\)\n$/);
  await withExamplesCopy(async (dir) => {
    await edit(
      `${dir}/web.yaml`,
      "  - addresses: [198.18.1.3]",
      "  - addresses: [198.18.1.7]\n    nodeName: node-b\n  - addresses: [198.18.1.3]",
    );
    await edit(`${dir}/dns.yaml`, "  - addresses: [198.18.1.21]\n    nodeName: node-b\n", "");
    const run = await kproxy("diff", "--from", EXAMPLES, "--to", dir, ...NODE, "--rules=false");
    assert.equal(run.code, 1, run.stderr);
    const out = lines(run.stdout);
    assert.match(out[0] ?? "", /^snapshot [0-9a-f]{32} → [0-9a-f]{32}$/);
    assert.deepEqual(out.slice(1), [
      "default/web:http +endpoint 198.18.1.7:8080 (ready)",
      "kube-system/kube-dns:dns -endpoint 198.18.1.21:53 (ready)",
      "kube-system/kube-dns:dns-tcp -endpoint 198.18.1.21:53 (ready)",
    ]);
    const json = await kproxy(
      "diff",
      "--from",
      EXAMPLES,
      "--to",
      dir,
      ...NODE,
      "--rules=false",
      "-o",
      "json",
    );
    assert.equal(json.code, 1);
    const report = JSON.parse(json.stdout);
    assert.equal(report.equal, false);
    assert.deepEqual(report.changed, [
      "default/web:http",
      "kube-system/kube-dns:dns",
      "kube-system/kube-dns:dns-tcp",
    ]);
    assert.deepEqual(report.added, []);
    assert.deepEqual(report.lostAllEndpoints, []);
    assert.equal(report.rules, "");
    const md = await kproxy(
      "diff",
      "--from",
      EXAMPLES,
      "--to",
      dir,
      ...NODE,
      "--rules=false",
      "-o",
      "markdown",
    );
    assert.equal(md.code, 1);
    assert.deepEqual(lines(md.stdout), [
      "### kproxy: 0 added, 0 removed, 3 changed service ports",
      "- `default/web:http +endpoint 198.18.1.7:8080 (ready)`",
      "- `kube-system/kube-dns:dns -endpoint 198.18.1.21:53 (ready)`",
      "- `kube-system/kube-dns:dns-tcp -endpoint 198.18.1.21:53 (ready)`",
    ]);
  });
});

Deno.test("cli: diff with bad manifests exits 2 with one line per bad object", async () => {
  await withExamplesCopy(async (dir) => {
    await edit(`${dir}/web.yaml`, "  - addresses: [198.18.1.3]", "  - addresses: [198.18.1.333]");
    await edit(`${dir}/api.yaml`, "port: 443, nodePort: 30443", "port: 443, nodePort: 70000");
    await edit(
      `${dir}/dns.yaml`,
      "protocol: UDP\n      port: 53",
      "protocol: QUIC\n      port: 53",
    );
    const run = await kproxy("diff", "--from", EXAMPLES, "--to", dir, ...NODE, "--rules=false");
    assert.equal(run.code, 2);
    assert.equal(run.stdout, "");
    assert.deepEqual(lines(run.stderr), [
      `kproxy: ${dir}/api.yaml: Cannot read Service shop/api: spec.ports[0].nodePort must be between 1 and 65535`,
      `kproxy: ${dir}/dns.yaml: Cannot read Service kube-system/kube-dns: spec.ports[0].protocol must be TCP, UDP or SCTP`,
      `kproxy: ${dir}/web.yaml: Cannot read EndpointSlice default/web-abc12: endpoints[1].addresses[0] is not an IP address`,
    ]);
    const snap = await kproxy("snapshot", "--manifests", dir, ...NODE);
    assert.equal(snap.code, 2);
    assert.equal(lines(snap.stderr).length, 3);
  });
});

Deno.test("cli: diff --fail-on lost-endpoints exits 3 when a service loses all endpoints", async () => {
  await withExamplesCopy(async (dir) => {
    const text = await Deno.readTextFile(`${dir}/web.yaml`);
    await Deno.writeTextFile(
      `${dir}/web.yaml`,
      text.replaceAll(
        "{ ready: true, serving: true, terminating: false }",
        "{ ready: false, serving: false }",
      ),
    );
    const args = ["diff", "--from", EXAMPLES, "--to", dir, ...NODE, "--rules=false"];
    // The terminating endpoint still serves: nothing is lost yet.
    const serving = await kproxy(...args, "--fail-on", "lost-endpoints");
    assert.equal(serving.code, 1, serving.stderr);
    assert.doesNotMatch(serving.stdout, /lost all endpoints/);
    await edit(
      `${dir}/web.yaml`,
      "{ ready: false, serving: true, terminating: true }",
      "{ ready: false, serving: false, terminating: true }",
    );
    const plain = await kproxy(...args);
    assert.equal(plain.code, 1, "without --fail-on a loss is just a difference");
    assert.match(
      plain.stdout,
      /^default\/web:http lost all endpoints: connections will be rejected$/m,
    );
    const lost = await kproxy(...args, "--fail-on", "lost-endpoints");
    assert.equal(lost.code, 3, lost.stderr);
    assert.equal(lost.stderr, "kproxy: policy lost-endpoints failed: default/web:http\n");
    assert.match(lost.stdout, /^default\/web:http lost all endpoints/m);
    const same = await kproxy(
      "diff",
      "--from",
      dir,
      "--to",
      dir,
      ...NODE,
      "--rules=false",
      "--fail-on",
      "lost-endpoints",
    );
    assert.equal(same.code, 0);
  });
});

Deno.test("cli: --config with a KubeProxyConfiguration file, flags override it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kproxy-config-" });
  try {
    const config = `${dir}/kube-proxy.yaml`;
    await Deno.writeTextFile(
      config,
      `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
hostnameOverride: Node-B
clusterCIDR: 198.18.1.0/24,fd00::1:0/112
iptables:
  masqueradeAll: true
  masqueradeBit: 15
`,
    );
    const fromFile = await kproxy(
      "snapshot",
      "--manifests",
      EXAMPLES,
      "--config",
      config,
      "-o",
      "json",
    );
    assert.equal(fromFile.code, 0, fromFile.stderr);
    const a = JSON.parse(fromFile.stdout);
    assert.equal(a.node.name, "node-b");
    assert.deepEqual(a.options, {
      clusterCIDRs: ["198.18.1.0/24", "fd00::1:0/112"],
      localDetector: {
        mode: "ClusterCIDR",
        cidrs: ["198.18.1.0/24", "fd00::1:0/112"],
        interfaceName: null,
      },
      masqueradeAll: true,
      masqueradeBit: 15,
      localhostNodePorts: true,
    });
    assert.deepEqual(
      a.node.nodePortIPs,
      { IPv4: null, IPv6: null },
      "iptables mode: every local address",
    );
    const overridden = await kproxy(
      "snapshot",
      "--manifests",
      EXAMPLES,
      "--config",
      config,
      ...NODE,
      "--masquerade-all=false",
      "--proxy-mode=nftables",
      "-o",
      "json",
    );
    assert.equal(overridden.code, 0, overridden.stderr);
    const b = JSON.parse(overridden.stdout);
    assert.equal(b.node.name, "node-a");
    assert.equal(b.options.masqueradeAll, false);
    assert.equal(
      b.options.masqueradeBit,
      14,
      "the iptables section does not apply in nftables mode",
    );
    assert.deepEqual(
      b.node.nodePortIPs,
      { IPv4: ["198.18.0.10"], IPv6: null },
      "nftables mode: the primary IPs",
    );
    await Deno.writeTextFile(
      config,
      "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n",
    );
    const bad = await kproxy("snapshot", "--manifests", EXAMPLES, "--config", config);
    assert.equal(bad.code, 2);
    assert.equal(
      bad.stderr,
      `kproxy: ${config}: Cannot read KubeProxyConfiguration: mode must be iptables or nftables\n`,
    );
    const missing = await kproxy(
      "snapshot",
      "--manifests",
      EXAMPLES,
      "--config",
      `${dir}/none.yaml`,
    );
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^kproxy: Cannot read --config .*none\.yaml: [^\n]+\n$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "cli: diff shows the backend's rule diff",
  fn: async () => {
    await withExamplesCopy(async (dir) => {
      await edit(
        `${dir}/web.yaml`,
        "  - addresses: [198.18.1.3]",
        "  - addresses: [198.18.1.7]\n  - addresses: [198.18.1.3]",
      );
      const run = await kproxy(
        "diff",
        "--from",
        EXAMPLES,
        "--to",
        dir,
        ...NODE,
        "--proxy-mode=nftables",
      );
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stdout, /^default\/web:http \+endpoint 198\.18\.1\.7:8080 \(ready\)$/m);
      assert.match(run.stdout, /^--- nftables \(from\)$/m);
      assert.match(run.stdout, /^\+\+\+ nftables \(to\)$/m);
      assert.match(run.stdout, /^\+.*198\.18\.1\.7/m);
      const json = JSON.parse(
        (await kproxy("diff", "--from", EXAMPLES, "--to", dir, ...NODE, "-o", "json")).stdout,
      );
      assert.equal(json.mode, "nftables");
      assert.match(json.rules, /198\.18\.1\.7/);
      const same = await kproxy("diff", "--from", EXAMPLES, "--to", EXAMPLES, ...NODE);
      assert.equal(same.code, 0);
      const render = await kproxy("render", "--manifests", EXAMPLES, ...NODE);
      assert.equal(render.code, 0, render.stderr);
      assert.ok(render.stdout.length > 0);
    });
  },
});

Deno.test("cli: explain answers in text and JSON from manifests, in both backends", async () => {
  const text = await kproxy(
    "explain",
    "--manifests",
    EXAMPLES,
    ...NODE,
    "--to",
    "198.18.250.1:443",
    "--from",
    "198.19.0.7",
  );
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^match +shop\/api:https: LoadBalancerIP 198\.18\.250\.1:443/m);
  assert.match(text.stdout, /^verdict +DNAT: DNAT to 198\.18\.1\.30:8443$/m);
  assert.match(text.stdout, /198\.18\.1\.31:8443 +node-b: externalTrafficPolicy: Local/);
  assert.match(text.stdout, /^ {2}ip kproxy firewall-[A-Z2-7]{8}-shop\/api\/tcp\/https$/m);
  for (const mode of ["nftables", "iptables"]) {
    const json = await kproxy(
      "explain",
      "--manifests",
      EXAMPLES,
      ...NODE,
      "--proxy-mode",
      mode,
      "--to",
      "198.18.250.1:443",
      "--from",
      "198.19.1.7",
      "-o",
      "json",
    );
    assert.equal(json.code, 0, json.stderr);
    const answer = JSON.parse(json.stdout);
    assert.equal(answer.mode, mode);
    assert.equal(answer.verdict.kind, "drop", `${mode}: outside loadBalancerSourceRanges`);
    assert.match(answer.verdict.reason, /outside the loadBalancerSourceRanges/);
  }
});

Deno.test("cli: explain usage errors exit 2 with one line", async () => {
  const cases: [string[], RegExp][] = [
    [["explain", "--manifests", EXAMPLES], /^kproxy: explain needs --to ADDR:PORT/],
    [["explain", "--manifests", EXAMPLES, "--to", "198.18.128.10"], /is not ADDR:PORT/],
    [
      ["explain", "--manifests", EXAMPLES, "--to", "198.18.128.10:80", "--from", "x"],
      /^kproxy: --from "x" is not an IP address/,
    ],
    [["explain", "--manifests", EXAMPLES, "--to", "1.2.3.4:5", "-o", "yaml"], /-o must be text/],
  ];
  for (const [args, stderr] of cases) {
    const run = await kproxy(...args, ...NODE);
    assert.equal(run.code, 2, args.join(" "));
    assert.match(run.stderr, stderr, args.join(" "));
    assert.equal(lines(run.stderr).length, 1, run.stderr);
  }
});

Deno.test("cli: --detect-local-mode reaches the snapshot and explain; --iif names the interface", async () => {
  // deploy/examples: web (198.18.128.10:80) has endpoints 198.18.1.2 (node-a) and 198.18.1.3.
  const args = [
    "explain",
    "--manifests",
    EXAMPLES,
    ...NODE,
    "--detect-local-mode=InterfaceNamePrefix",
    "--pod-interface-name-prefix=veth",
    "--to",
    "198.18.128.10:80",
    "--from",
    "198.18.1.99",
    "-o",
    "json",
  ];
  for (const mode of ["nftables", "iptables"]) {
    const pod = await kproxy(...args, "--proxy-mode", mode, "--iif", "veth9");
    assert.equal(pod.code, 0, pod.stderr);
    const kept = JSON.parse(pod.stdout).masquerade;
    assert.equal(kept.applies, "never", `${mode}: ${kept.reason}`);
    assert.match(kept.reason, /arrives on "veth9", an interface named "veth\*"/);
    const other = await kproxy(...args, "--proxy-mode", mode);
    assert.equal(other.code, 0, other.stderr);
    assert.equal(JSON.parse(other.stdout).masquerade.applies, "always", mode);
  }
  const snapshot = await kproxy(
    "snapshot",
    "--manifests",
    EXAMPLES,
    ...NODE,
    "--detect-local-mode=BridgeInterface",
    "--pod-bridge-interface=cbr0",
    "-o",
    "json",
  );
  assert.equal(snapshot.code, 0, snapshot.stderr);
  assert.deepEqual(JSON.parse(snapshot.stdout).options.localDetector, {
    mode: "BridgeInterface",
    cidrs: [],
    interfaceName: "cbr0",
  });
  const bad = await kproxy(
    "snapshot",
    "--manifests",
    EXAMPLES,
    "--detect-local-mode=BridgeInterface",
  );
  assert.equal(bad.code, 2);
  assert.equal(
    bad.stderr,
    'kproxy: KubeProxyConfiguration.DetectLocalConfiguration.InterfaceName: Invalid value: "": ' +
      "must not be empty (BridgeInterface needs --pod-bridge-interface)\n",
  );
});
