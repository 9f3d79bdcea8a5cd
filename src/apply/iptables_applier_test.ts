import assert from "node:assert/strict";
import { BASE_SETTINGS, nodeA, objects, service, slice } from "../render/iptables/_test_cases.ts";
import { IptablesFake } from "../render/iptables/restore_fake.ts";
import {
  initialProxyState,
  type ProxyEvent,
  type ProxyState,
  reconcile,
  type SnapshotSettings,
} from "../snapshot/proxy_state.ts";
import {
  changingSections,
  IptablesApplier,
  parseIptablesVariant,
  type ToolRunner,
} from "./iptables_applier.ts";

// IP plan: node-a 198.18.0.10, pods 198.18.1.0/24, services 198.18.128.0/17,
// external clients 198.19.0.0/24 (see src/render/iptables/_test_cases.ts).

/** A host with two fake iptables (v4, v6), a sysctl and a conntrack that record calls. */
class FakeHost {
  readonly v4 = new IptablesFake();
  readonly v6 = new IptablesFake();
  readonly calls: string[] = [];
  readonly sysctl = new Map<string, string>([["net.ipv4.conf.all.route_localnet", "0"]]);
  failRestore = false;
  /** What `conntrack -L` lists. */
  conntrackTable = "";

  constructor() {
    for (const f of [this.v4, this.v6]) f.restore("*filter\nCOMMIT\n*nat\nCOMMIT\n");
  }

  readonly runner: ToolRunner = (tool, args, options) => {
    this.calls.push([tool, ...args].join(" "));
    const ok = (stdout = "") => Promise.resolve({ code: 0, stdout, stderr: "" });
    const fail = (stderr: string) => Promise.resolve({ code: 1, stdout: "", stderr });
    const fake = tool.startsWith("ip6") ? this.v6 : this.v4;
    if (tool === "iptables") return ok("iptables v1.8.9 (nf_tables)\n");
    if (tool.endsWith("-restore")) {
      if (this.failRestore) return fail("iptables-restore: line 1 failed");
      try {
        fake.restore(options.stdin ?? "", { noflush: args.includes("--noflush") });
        return ok();
      } catch (e) {
        return fail(String(e));
      }
    }
    if (tool.endsWith("-save")) return ok(fake.save("filter") + fake.save("nat"));
    if (tool === "sysctl") {
      if (args[0] === "-n") return ok(`${this.sysctl.get(args[1] as string) ?? ""}\n`);
      const [k, v] = (args[1] as string).split("=") as [string, string];
      this.sysctl.set(k, v);
      return ok();
    }
    if (tool === "conntrack" && args[0] === "-L") return ok(this.conntrackTable);
    if (tool === "conntrack") {
      return Promise.resolve({
        code: 0,
        stdout: "",
        stderr: "1 flow entries have been deleted.\n",
      });
    }
    return fail(`${tool}: not found`);
  };

  restores(): number {
    return this.calls.filter((c) => c.includes("-restore")).length;
  }
}

function appState(settings: Partial<SnapshotSettings> = {}): ProxyState {
  return initialProxyState({ ...BASE_SETTINGS, ...settings });
}

function webObjects(endpoints: number, protocol = "TCP") {
  return objects([
    service("web", {
      type: "NodePort",
      clusterIPs: ["198.18.128.10"],
      ports: [{ name: "http", protocol, port: 80, nodePort: 30080 }],
    }),
    slice("web", "web-1", {
      ports: [{ name: "http", protocol, port: 8080 }],
      endpoints: Array.from({ length: endpoints }, (_, i) => ({ ip: `198.18.1.${10 + i}` })),
    }),
  ]);
}

function upserts(objs: ReturnType<typeof objects>): ProxyEvent[] {
  return objs.map((object) => ({ type: "upsert", object }));
}

Deno.test("variant detection reads iptables --version", () => {
  assert.equal(parseIptablesVariant("iptables v1.8.9 (nf_tables)"), "nft");
  assert.equal(parseIptablesVariant("iptables v1.8.9 (legacy)"), "legacy");
  assert.equal(parseIptablesVariant("iptables v1.6.1"), "legacy");
  assert.throws(() => parseIptablesVariant("bash: iptables: not found"));
});

Deno.test("first sync is full with jump rules; a later change is partial and small", async () => {
  const host = new FakeHost();
  const applier = new IptablesApplier({ runner: host.runner });
  let r = reconcile(appState(), [{
    type: "replace",
    objects: [...objects([nodeA()]), ...webObjects(2)],
  }]);
  const first = await applier.sync({
    snapshot: r.state.snapshot,
    changedServicePorts: [],
    full: false,
  });
  assert.equal(first.full, true);
  assert.ok(host.calls.includes("iptables --version"));
  assert.ok(host.calls.some((c) => c.startsWith("iptables-nft-restore --noflush -w")));
  const input = host.v4.chains("filter").get("INPUT") ?? [];
  assert.ok(input.some((rule) => rule.endsWith("-j KUBE-EXTERNAL-SERVICES")));
  assert.ok(input.some((rule) => rule.endsWith("-j KUBE-FIREWALL")));
  assert.deepEqual(host.v4.chains("nat").get("PREROUTING"), [
    '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
  ]);
  assert.equal(host.sysctl.get("net.ipv4.conf.all.route_localnet"), "1");

  r = reconcile(r.state, upserts(webObjects(3)));
  const second = await applier.sync({
    snapshot: r.state.snapshot,
    changedServicePorts: r.changedServicePorts,
    full: false,
  });
  assert.equal(second.full, false);
  assert.ok(second.linesSent < 30, `partial sent ${second.linesSent} lines`);
  assert.ok(second.ruleCount > first.ruleCount);
  // A full sync of the same snapshot changes nothing (the partial one left the same rules).
  const before = host.v4.save();
  await applier.sync({ snapshot: r.state.snapshot, changedServicePorts: [], full: true });
  const sortShared = (text: string) => text.split("\n").sort().join("\n");
  assert.equal(sortShared(host.v4.save()), sortShared(before));
  // Jump rules are not inserted twice.
  const input2 = host.v4.chains("filter").get("INPUT") ?? [];
  assert.equal(input2.filter((rule) => rule.endsWith("-j KUBE-NODEPORTS")).length, 1);
});

Deno.test("a failed restore throws, keeps the old rules, and makes the next sync full", async () => {
  const host = new FakeHost();
  const applier = new IptablesApplier({ runner: host.runner, families: ["IPv4"] });
  let r = reconcile(appState(), [{
    type: "replace",
    objects: [...objects([nodeA()]), ...webObjects(1)],
  }]);
  await applier.sync({ snapshot: r.state.snapshot, changedServicePorts: [], full: true });
  const before = host.v4.save();
  r = reconcile(r.state, upserts(webObjects(2)));
  host.failRestore = true;
  await assert.rejects(
    applier.sync({
      snapshot: r.state.snapshot,
      changedServicePorts: r.changedServicePorts,
      full: false,
    }),
    /iptables-nft-restore --noflush -w exited with 1/,
  );
  assert.equal(host.v4.save(), before);
  assert.equal(applier.needsFullSync, true);
  host.failRestore = false;
  const again = await applier.sync({
    snapshot: r.state.snapshot,
    changedServicePorts: [],
    full: false,
  });
  assert.equal(again.full, true);
});

Deno.test("a full sync deletes an earlier kube-proxy's stale service chains", async () => {
  const host = new FakeHost();
  host.v4.restore(
    "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-OLDOLDOLDOLDOLDO - [0:0]\n" +
      ":KUBE-SEP-OLDOLDOLDOLDOLDO - [0:0]\n" +
      "-A KUBE-SEP-OLDOLDOLDOLDOLDO -p tcp -m tcp -j DNAT --to-destination 198.18.1.99:80\n" +
      "-A KUBE-SVC-OLDOLDOLDOLDOLDO -j KUBE-SEP-OLDOLDOLDOLDOLDO\n" +
      '-A KUBE-SERVICES -d 198.18.128.99/32 -p tcp -m comment --comment "old/svc cluster IP" ' +
      "-m tcp --dport 80 -j KUBE-SVC-OLDOLDOLDOLDOLDO\n" +
      '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\nCOMMIT\n',
    { noflush: true },
  );
  const applier = new IptablesApplier({ runner: host.runner, families: ["IPv4"] });
  const r = reconcile(appState(), [{
    type: "replace",
    objects: [...objects([nodeA()]), ...webObjects(1)],
  }]);
  await applier.sync({ snapshot: r.state.snapshot, changedServicePorts: [], full: false });
  const nat = host.v4.chains("nat");
  assert.ok(!nat.has("KUBE-SVC-OLDOLDOLDOLDOLDO"));
  assert.ok(!nat.has("KUBE-SEP-OLDOLDOLDOLDOLDO"));
  assert.equal(nat.get("PREROUTING")?.length, 1, "kube-proxy's jump rule is reused");
});

Deno.test("a node or options change forces a full sync", async () => {
  const host = new FakeHost();
  const applier = new IptablesApplier({ runner: host.runner, families: ["IPv4"] });
  let r = reconcile(appState(), [{
    type: "replace",
    objects: [...objects([nodeA()]), ...webObjects(1)],
  }]);
  await applier.sync({ snapshot: r.state.snapshot, changedServicePorts: [], full: true });
  r = reconcile(r.state, [{
    type: "settings",
    settings: { ...BASE_SETTINGS, masqueradeAll: true },
  }]);
  const res = await applier.sync({
    snapshot: r.state.snapshot,
    changedServicePorts: [],
    full: false,
  });
  assert.equal(res.full, true);
  assert.ok(host.v4.save().includes("-d 198.18.128.10 --dport 80 -j KUBE-MARK-MASQ"));
});

Deno.test("a resync restores only the changes while nobody else committed (iptables-nft)", async () => {
  const host = new FakeHost();
  // The namespace's nf_tables generation: iptables-nft commits once per changing table section.
  let generation = 500;
  let readable = true;
  const runner: ToolRunner = async (tool, args, options) => {
    const result = await host.runner(tool, args, options);
    if (tool.endsWith("-restore") && result.code === 0) {
      generation += changingSections(options.stdin ?? "");
    }
    return result;
  };
  const applier = new IptablesApplier({
    runner,
    families: ["IPv4"],
    generation: () => readable ? generation : null,
  });
  const resync = { changedServicePorts: [], full: true, resync: true } as const;
  let r = reconcile(appState(), [{
    type: "replace",
    objects: [...objects([nodeA()]), ...webObjects(2)],
  }]);
  await applier.sync({ snapshot: r.state.snapshot, changedServicePorts: [], full: true });
  const restores = () => host.restores();
  const afterFirst = restores();

  // Untouched: nothing restored.
  let res = await applier.sync({ snapshot: r.state.snapshot, ...resync });
  assert.equal(res.full, false);
  assert.equal(res.linesSent, 0);
  assert.equal(restores(), afterFirst);

  // A change that comes with the resync is all it restores.
  r = reconcile(r.state, upserts(webObjects(1)));
  res = await applier.sync({
    snapshot: r.state.snapshot,
    ...resync,
    changedServicePorts: r.changedServicePorts,
  });
  assert.equal(res.full, false);
  assert.ok(res.linesSent > 0 && res.linesSent < 40, `${res.linesSent} lines`);

  // Someone else's commit (any table, any tool): the resync rewrites everything...
  generation++;
  res = await applier.sync({ snapshot: r.state.snapshot, ...resync });
  assert.equal(res.full, true);
  // ...and vouches again afterwards.
  res = await applier.sync({ snapshot: r.state.snapshot, ...resync });
  assert.equal(res.linesSent, 0);

  // A foreign commit, then a partial sync: the next resync still repairs.
  generation++;
  r = reconcile(r.state, upserts(webObjects(2)));
  res = await applier.sync({
    snapshot: r.state.snapshot,
    changedServicePorts: r.changedServicePorts,
    full: false,
  });
  assert.equal(res.full, false);
  res = await applier.sync({ snapshot: r.state.snapshot, ...resync });
  assert.equal(res.full, true);

  // Unreadable around a restore: the next resync rewrites.
  readable = false;
  r = reconcile(r.state, upserts(webObjects(1)));
  await applier.sync({
    snapshot: r.state.snapshot,
    changedServicePorts: r.changedServicePorts,
    full: false,
  });
  readable = true;
  res = await applier.sync({ snapshot: r.state.snapshot, ...resync });
  assert.equal(res.full, true);

  // iptables-legacy commits no nf_tables transactions: the generation never vouches.
  const legacy = new IptablesApplier({
    runner: host.runner,
    families: ["IPv4"],
    variant: "legacy",
    generation: () => 7,
  });
  await legacy.sync({ snapshot: r.state.snapshot, changedServicePorts: [], full: true });
  res = await legacy.sync({ snapshot: r.state.snapshot, ...resync });
  assert.equal(res.full, true);
});

Deno.test("changingSections counts the table sections that change something", () => {
  assert.equal(changingSections("*filter\nCOMMIT\n*nat\nCOMMIT\n"), 0);
  assert.equal(changingSections("*filter\n:KUBE-X - [0:0]\nCOMMIT\n*nat\nCOMMIT\n"), 1);
  assert.equal(
    changingSections("*nat\n:A - [0:0]\n-A A -j RETURN\nCOMMIT\n*filter\n-X B\nCOMMIT\n"),
    2,
  );
});

Deno.test("cleanup leaves iptables-save as it was, user rules included", async () => {
  const host = new FakeHost();
  host.v4.restore(
    "*filter\n:USER-CHAIN - [0:0]\n-A USER-CHAIN -j ACCEPT\n-A INPUT -s 198.19.0.9 -j DROP\n" +
      "-A INPUT -j USER-CHAIN\nCOMMIT\n",
    { noflush: true },
  );
  const before4 = host.v4.save();
  const before6 = host.v6.save();
  const applier = new IptablesApplier({ runner: host.runner });
  const r = reconcile(appState(), [{
    type: "replace",
    objects: [...objects([nodeA()]), ...webObjects(2)],
  }]);
  await applier.sync({ snapshot: r.state.snapshot, changedServicePorts: [], full: true });
  assert.notEqual(host.v4.save(), before4);
  const live = await applier.liveRules();
  assert.match(live, /# IPv4: iptables-nft-save/);
  assert.match(live, /-A INPUT .*-j KUBE-NODEPORTS/);
  assert.ok(!live.includes("USER-CHAIN"), "liveRules shows only kube chains");
  await applier.cleanup();
  assert.equal(host.v4.save(), before4);
  assert.equal(host.v6.save(), before6);
  assert.equal(applier.needsFullSync, true);
});

Deno.test("cleanup keeps a KUBE-FIREWALL that kubelet made before kproxy", async () => {
  const host = new FakeHost();
  host.v4.restore(
    "*filter\n:KUBE-FIREWALL - [0:0]\n" +
      '-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" ' +
      "-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n" +
      "-A INPUT -j KUBE-FIREWALL\n-A OUTPUT -j KUBE-FIREWALL\nCOMMIT\n",
    { noflush: true },
  );
  const before = host.v4.save();
  const applier = new IptablesApplier({ runner: host.runner, families: ["IPv4"] });
  const r = reconcile(appState(), [{
    type: "replace",
    objects: [...objects([nodeA()]), ...webObjects(1)],
  }]);
  await applier.sync({ snapshot: r.state.snapshot, changedServicePorts: [], full: true });
  assert.equal(
    host.v4.chains("filter").get("INPUT")?.filter((x) => x === "-j KUBE-FIREWALL").length,
    1,
  );
  await applier.cleanup();
  assert.equal(host.v4.save(), before);
});

Deno.test("UDP endpoints that go away get their conntrack entries deleted", async () => {
  const host = new FakeHost();
  const applier = new IptablesApplier({ runner: host.runner, families: ["IPv4"] });
  let r = reconcile(appState(), [{
    type: "replace",
    objects: [...objects([nodeA()]), ...webObjects(2, "UDP")],
  }]);
  await applier.sync({ snapshot: r.state.snapshot, changedServicePorts: [], full: true });
  // One flow on each endpoint; then 198.18.1.11 goes away.
  host.conntrackTable = [10, 11].map((i) =>
    `udp      17 29 src=198.18.2.1 dst=198.18.128.10 sport=400${i} dport=80 ` +
    `src=198.18.1.${i} dst=198.18.2.1 sport=8080 dport=400${i} mark=0 use=1`
  ).join("\n");
  r = reconcile(r.state, upserts(webObjects(1, "UDP")));
  const res = await applier.sync({
    snapshot: r.state.snapshot,
    changedServicePorts: r.changedServicePorts,
    full: false,
  });
  assert.equal(res.conntrackCleared, 1);
  assert.deepEqual(res.conntrack?.map((c) => [c.family, c.deleted]), [["IPv4", 1]]);
  assert.deepEqual(host.calls.filter((c) => c.startsWith("conntrack -D")), [
    "conntrack -D -f ipv4 -p udp --orig-dst 198.18.128.10 --orig-port-dst 80 " +
    "--reply-src 198.18.1.11 --reply-port-src 8080",
  ]);
});

Deno.test("tool overrides replace the variant's binaries", async () => {
  const host = new FakeHost();
  const applier = new IptablesApplier({
    runner: host.runner,
    variant: "legacy",
    families: ["IPv4"],
    tools: { restore4: "/nonexistent/restore-fails" },
  });
  const r = reconcile(appState(), [{ type: "replace", objects: objects([nodeA()]) }]);
  await assert.rejects(
    applier.sync({ snapshot: r.state.snapshot, changedServicePorts: [], full: true }),
    /\/nonexistent\/restore-fails --noflush -w exited with 1/,
  );
  assert.ok(host.calls.includes("iptables-legacy-save"));
  assert.ok(!host.calls.includes("iptables --version"));
});

Deno.test("staged restores (iptables-nft at scale) end where single restores do", async () => {
  const run = async (chainsPerStage: number | undefined) => {
    const host = new FakeHost();
    host.v4.restore("*filter\n-A INPUT -s 198.19.0.9 -j DROP\nCOMMIT\n", { noflush: true });
    const before = host.v4.save();
    const applier = new IptablesApplier({
      runner: host.runner,
      families: ["IPv4"],
      ...(chainsPerStage === undefined ? {} : { chainsPerStage }),
    });
    let r = reconcile(appState(), [{
      type: "replace",
      objects: [...objects([nodeA()]), ...webObjects(3)],
    }]);
    await applier.sync({ snapshot: r.state.snapshot, changedServicePorts: [], full: true });
    const restoresAfterFull = host.restores();
    r = reconcile(r.state, upserts(webObjects(1)));
    await applier.sync({
      snapshot: r.state.snapshot,
      changedServicePorts: r.changedServicePorts,
      full: false,
    });
    const after = host.v4.save();
    await applier.cleanup();
    assert.equal(host.v4.save(), before);
    return { after, restoresAfterFull };
  };
  const single = await run(undefined);
  const staged = await run(2);
  const sorted = (t: string) => t.split("\n").sort().join("\n");
  assert.equal(sorted(staged.after), sorted(single.after));
  assert.equal(single.restoresAfterFull, 1);
  assert.ok(staged.restoresAfterFull > 2, `${staged.restoresAfterFull} restores`);
});
