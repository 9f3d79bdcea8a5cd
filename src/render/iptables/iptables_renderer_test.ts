import assert from "node:assert/strict";
import { TEST_CASES } from "./_test_cases.ts";
import { renderFamilyRestore } from "./full_restore.ts";
import { IptablesRenderer } from "./iptables_renderer.ts";
import { IptablesFake, splitWords, undeclaredJumps } from "./restore_fake.ts";

const GOLDEN_DIR = new URL("../../../tests/golden/iptables/", import.meta.url);
const UPDATE = Deno.env.get("UPDATE_GOLDEN") === "1";

for (const tc of TEST_CASES) {
  Deno.test(`golden: ${tc.name} (${tc.description})`, async () => {
    const snapshot = await tc.snapshot();
    const text = new IptablesRenderer().render(snapshot);
    const file = new URL(`${tc.name}.txt`, GOLDEN_DIR);
    if (UPDATE) {
      await Deno.mkdir(GOLDEN_DIR, { recursive: true });
      await Deno.writeTextFile(file, text);
    }
    const golden = await Deno.readTextFile(file);
    assert.equal(text, golden, `render of ${tc.name} differs; UPDATE_GOLDEN=1 rewrites it`);
  });

  Deno.test(`render is well formed: ${tc.name}`, async () => {
    const snapshot = await tc.snapshot();
    for (const family of ["IPv4", "IPv6"] as const) {
      const rs = renderFamilyRestore(snapshot, family);
      assert.deepEqual(undeclaredJumps(rs.text), [], `${family}: jumps to undeclared chains`);
      // Loads into an empty fake iptables, twice (idempotent), without --noflush and with.
      const fake = new IptablesFake();
      fake.restore(rs.text, { noflush: true });
      const once = fake.save();
      fake.restore(rs.text, { noflush: true });
      assert.equal(fake.save(), once, `${family}: a second full restore changed the tables`);
      let rules = 0;
      for (const table of ["filter", "nat"]) {
        for (const list of fake.chains(table).values()) rules += list.length;
      }
      assert.equal(rs.ruleCount, rules, `${family}: ruleCount`);
      // Every rule a service port writes names it in a comment (EXT's final jump excepted).
      for (const line of rs.text.split("\n")) {
        if (!/^-A KUBE-(SVC|SVL|SEP|FW)-/.test(line)) continue;
        assert.ok(splitWords(line).includes("--comment"), `no comment: ${line}`);
      }
      // Cut into stages (as for iptables-nft), it ends in the same tables, stage by stage valid.
      const staged = new IptablesFake();
      const stages = renderFamilyRestore(snapshot, family, {
        chainsPerStage: 2,
        staleNatChains: ["KUBE-SEP-STALESTALESTALE1"],
      }).stages;
      staged.restore("*nat\n:KUBE-SEP-STALESTALESTALE1 - [0:0]\nCOMMIT\n", { noflush: true });
      for (const stage of stages) staged.restore(stage, { noflush: true });
      assert.equal(staged.save(), once, `${family}: staged restore differs`);
      // The NodePort hand-off is the last rule of nat KUBE-SERVICES.
      const svc = fake.chains("nat").get("KUBE-SERVICES") ?? [];
      if (svc.length > 0) assert.match(svc[svc.length - 1] as string, /-j KUBE-NODEPORTS$/);
    }
  });
}

Deno.test("render is deterministic", async () => {
  const snapshot = await (TEST_CASES[0] as (typeof TEST_CASES)[number]).snapshot();
  const r = new IptablesRenderer();
  assert.equal(r.render(snapshot), r.render(snapshot));
  assert.equal(r.mode, "iptables");
});

Deno.test("host facts: nfacct counters on the INVALID drop and localhost NodePorts; none when liberal", async () => {
  const tc = TEST_CASES.find((t) => t.name === "no_endpoints") ?? TEST_CASES[0]!;
  const examples = TEST_CASES.find((t) => t.name === "examples")!;
  const snapshot = await examples.snapshot();
  const counters = ["ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts"];
  const counted = renderFamilyRestore(snapshot, "IPv4", { nfacctCounters: counters }).text;
  assert.match(
    counted,
    /^-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j DROP$/m,
  );
  // Every NodePort with endpoints gets a counted 127.0.0.0/8 rule right before its own.
  const nodePorts = counted.split("\n").filter((l) => l.startsWith("-A KUBE-NODEPORTS"));
  const local = nodePorts.filter((l) => l.includes("-d 127.0.0.0/8"));
  assert.ok(local.length > 0, nodePorts.join("\n"));
  for (const line of local) {
    assert.match(line, / -m nfacct --nfacct-name localhost_nps_accepted_pkts -j KUBE-EXT-/);
    const next = nodePorts[nodePorts.indexOf(line) + 1] ?? "";
    assert.equal(next, line.replace(" -d 127.0.0.0/8", "").replace(/ -m nfacct \S+ \S+/, ""));
  }
  // IPv6 never has localhost NodePorts.
  const v6 = renderFamilyRestore(snapshot, "IPv6", { nfacctCounters: counters }).text;
  assert.doesNotMatch(v6, /localhost_nps_accepted_pkts/);
  // Without counters: upstream's plain rules.
  const plain = renderFamilyRestore(snapshot, "IPv4").text;
  assert.doesNotMatch(plain, /nfacct/);
  assert.match(plain, /^-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP$/m);
  // nf_conntrack_tcp_be_liberal=1: no INVALID drop at all.
  for (
    const options of [{ conntrackTCPLiberal: true }, {
      conntrackTCPLiberal: true,
      nfacctCounters: counters,
    }]
  ) {
    const liberal = renderFamilyRestore(await tc.snapshot(), "IPv4", options).text;
    assert.doesNotMatch(liberal, /INVALID/);
  }
});
