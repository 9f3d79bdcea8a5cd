/**
 * The nftables applier's transaction logic against fake `nft` and `conntrack` scripts (the
 * kernel tests live in tests/netns/nftables_*). IP plan: see render/nftables/_fixtures.ts.
 */
import assert from "node:assert/strict";
import { rawService, rawSlice, snapshotOf } from "../render/nftables/_fixtures.ts";
import { DEFAULT_PROXY_CONFIG } from "../config/proxy_config.ts";
import { applierFor } from "./appliers.ts";
import { NftablesApplier } from "./nftables_applier.ts";

const DNS = { name: "dns", protocol: "UDP", port: 53 };

function dns(endpoints: string[]) {
  return snapshotOf([
    rawService("dns", { clusterIPs: ["198.18.128.53"], ports: [DNS] }),
    rawService("web", { clusterIPs: ["198.18.128.80"], ports: [{ port: 80 }] }),
    rawSlice("dns", DNS, endpoints.map((ip) => ({ ip }))),
  ]);
}

interface Fakes {
  readonly dir: string;
  readonly nft: string;
  readonly conntrack: string;
  calls(tool: "nft" | "conntrack"): Promise<string[]>;
  failNft(fail: boolean): Promise<void>;
}

async function fakes(): Promise<Fakes> {
  const dir = await Deno.makeTempDir({ prefix: "kp-fake-nft-" });
  const nft = `${dir}/nft`;
  const conntrack = `${dir}/conntrack`;
  await Deno.writeTextFile(
    nft,
    `#!/bin/sh\n{ echo "ARGS $*"; cat; echo "==END=="; } >> ${dir}/nft.log\n` +
      `if [ -e ${dir}/fail ]; then echo "Error: injected failure" >&2; exit 1; fi\n`,
  );
  await Deno.writeTextFile(
    conntrack,
    `#!/bin/sh\necho "$*" >> ${dir}/conntrack.log\n` +
      // -L lists conntrack.table; -D deletes nothing (the flow ended by itself meanwhile).
      `if [ "$1" = -L ]; then cat ${dir}/conntrack.table 2>/dev/null; exit 0; fi\n` +
      `echo "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted." >&2\nexit 1\n`,
  );
  await Deno.chmod(nft, 0o755);
  await Deno.chmod(conntrack, 0o755);
  return {
    dir,
    nft,
    conntrack,
    async calls(tool) {
      const text = await Deno.readTextFile(`${dir}/${tool}.log`).catch(() => "");
      return tool === "nft"
        ? text.split("==END==\n").filter((s) => s !== "")
        : text.split("\n").filter((s) => s !== "");
    },
    async failNft(fail) {
      if (fail) await Deno.writeTextFile(`${dir}/fail`, "");
      else await Deno.remove(`${dir}/fail`).catch(() => {});
    },
  };
}

Deno.test("nftables applier: scratch, then flush, then partial transactions", async () => {
  const f = await fakes();
  try {
    const applier = new NftablesApplier({ nftPath: f.nft, conntrackPath: f.conntrack });
    assert.equal(applier.needsFullSync, true);
    const a = dns(["198.18.1.1", "198.18.1.2"]);
    let result = await applier.sync({ snapshot: a, changedServicePorts: [], full: false });
    assert.equal(result.full, true);
    assert.equal(applier.lastSyncKind, "scratch");
    let [call] = await f.calls("nft");
    assert.match(
      call!,
      /^ARGS -f -\nadd table ip kproxy\ndelete table ip kproxy\ntable ip kproxy \{/,
    );
    assert.match(call!, /add table ip6 kproxy\ndelete table ip6 kproxy\ntable ip6 kproxy \{/);
    assert.equal(result.linesSent, call!.split("\n").length - 2);
    assert.ok(result.ruleCount > 20);

    result = await applier.sync({ snapshot: a, changedServicePorts: [], full: true });
    assert.equal(applier.lastSyncKind, "flush");
    call = (await f.calls("nft"))[1];
    assert.match(call!, /add table ip kproxy\nflush table ip kproxy\n/);
    assert.match(call!, /flush map ip kproxy service-ips\n/);
    assert.doesNotMatch(call!, /delete table/);

    // A flow pinned to 198.18.1.1, which then goes away.
    await Deno.writeTextFile(
      `${f.dir}/conntrack.table`,
      "udp      17 29 src=198.18.2.1 dst=198.18.128.53 sport=40001 dport=53 " +
        "src=198.18.1.1 dst=198.18.2.1 sport=53 dport=40001 mark=0 use=1\n",
    );
    const b = dns(["198.18.1.2"]);
    result = await applier.sync({
      snapshot: b,
      changedServicePorts: ["default/dns:dns"],
      full: false,
    });
    assert.equal(result.full, false);
    assert.equal(applier.lastSyncKind, "partial");
    call = (await f.calls("nft"))[2];
    assert.equal(
      call,
      [
        "ARGS -f -",
        // Two endpoints (keys 2·65536 + 0, 1) become one (key 65536): elements only.
        "delete element ip kproxy cluster-endpoints { 198.18.128.53 . udp . 53 . 131072 }",
        "delete element ip kproxy cluster-endpoints { 198.18.128.53 . udp . 53 . 131073 }",
        "delete element ip kproxy hairpin-endpoints { 198.18.1.1 . 198.18.1.1 }",
        "add element ip kproxy cluster-endpoints { 198.18.128.53 . udp . 53 . 65536 : 198.18.1.2 . 53 }",
        "",
      ].join("\n"),
    );
    assert.equal(result.linesSent, 4);
    // The first sync and the UDP change listed the IPv4 UDP table (IPv6 has no UDP service);
    // the flush resync changed nothing UDP and did not. The flow pinned to the removed
    // endpoint was deleted (the fake says none was left by then).
    assert.equal(result.conntrackCleared, 0);
    assert.deepEqual(result.conntrack, [
      { family: "IPv4", deleted: 0, durationSeconds: result.conntrack?.[0]?.durationSeconds },
      { family: "IPv6", deleted: 0, durationSeconds: result.conntrack?.[1]?.durationSeconds },
    ]);
    assert.deepEqual(await f.calls("conntrack"), [
      "-L -f ipv4 -p udp",
      "-L -f ipv4 -p udp",
      "-D -f ipv4 -p udp --orig-dst 198.18.128.53 --orig-port-dst 53 --reply-src 198.18.1.1 --reply-port-src 53",
    ]);

    // Nothing changed: nothing is sent.
    result = await applier.sync({ snapshot: b, changedServicePorts: [], full: false });
    assert.equal(result.linesSent, 0);
    assert.equal((await f.calls("nft")).length, 3);
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("nftables applier: a failed transaction throws and the next sync is from scratch", async () => {
  const f = await fakes();
  try {
    const applier = new NftablesApplier({ nftPath: f.nft, conntrackCleanup: false });
    const a = dns(["198.18.1.1"]);
    await applier.sync({ snapshot: a, changedServicePorts: [], full: true });
    await f.failNft(true);
    const b = dns(["198.18.1.2"]);
    await assert.rejects(
      applier.sync({ snapshot: b, changedServicePorts: ["default/dns:dns"], full: false }),
      /injected failure/,
    );
    assert.equal(applier.needsFullSync, true);
    await f.failNft(false);
    const result = await applier.sync({
      snapshot: b,
      changedServicePorts: ["default/dns:dns"],
      full: false,
    });
    assert.equal(result.full, true);
    assert.equal(applier.lastSyncKind, "scratch");
    assert.deepEqual(await f.calls("conntrack"), []);
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("nftables applier: a resync sends only the changes while nobody else committed", async () => {
  const f = await fakes();
  try {
    // The namespace's generation: one step per transaction, ours (fake nft calls) or others'.
    let foreign = 0;
    let failing = false;
    const generation = () =>
      failing ? null : 100 + foreign + Deno.readTextFileSync(`${f.dir}/nft.log`)
        .split("==END==\n").filter((s) => s !== "").length;
    await Deno.writeTextFile(`${f.dir}/nft.log`, "");
    const applier = new NftablesApplier({
      nftPath: f.nft,
      conntrackCleanup: false,
      generation,
    });
    const resync = { changedServicePorts: [], full: true, resync: true } as const;
    const a = dns(["198.18.1.1", "198.18.1.2"]);
    await applier.sync({ snapshot: a, changedServicePorts: [], full: true });
    assert.equal(applier.lastSyncKind, "scratch");

    // Untouched since: the resync sends nothing at all.
    let result = await applier.sync({ snapshot: a, ...resync });
    assert.equal(result.full, false);
    assert.equal(result.linesSent, 0);
    assert.equal((await f.calls("nft")).length, 1);

    // A change that comes with the resync is all it sends.
    // A flow pinned to 198.18.1.1, which then goes away.
    await Deno.writeTextFile(
      `${f.dir}/conntrack.table`,
      "udp      17 29 src=198.18.2.1 dst=198.18.128.53 sport=40001 dport=53 " +
        "src=198.18.1.1 dst=198.18.2.1 sport=53 dport=40001 mark=0 use=1\n",
    );
    const b = dns(["198.18.1.2"]);
    result = await applier.sync({
      snapshot: b,
      ...resync,
      changedServicePorts: ["default/dns:dns"],
    });
    assert.equal(applier.lastSyncKind, "partial");
    assert.equal(result.linesSent, 4);

    // Someone else committed a transaction (to any table): the resync rewrites everything...
    foreign++;
    result = await applier.sync({ snapshot: b, ...resync });
    assert.equal(result.full, true);
    assert.equal(applier.lastSyncKind, "flush");
    // ...after which ours is again the last transaction.
    result = await applier.sync({ snapshot: b, ...resync });
    assert.equal(result.linesSent, 0);

    // Someone else commits, then a change is synced before the next resync: the partial sync
    // repairs nothing else, so the resync after it still rewrites everything.
    foreign++;
    result = await applier.sync({
      snapshot: a,
      changedServicePorts: ["default/dns:dns"],
      full: false,
    });
    assert.equal(applier.lastSyncKind, "partial");
    result = await applier.sync({ snapshot: a, ...resync });
    assert.equal(applier.lastSyncKind, "flush");
    result = await applier.sync({
      snapshot: b,
      ...resync,
      changedServicePorts: ["default/dns:dns"],
    });
    assert.equal(applier.lastSyncKind, "partial");

    // A full sync that is not a resync (after a failure, a node change) always rewrites.
    result = await applier.sync({ snapshot: b, changedServicePorts: [], full: true });
    assert.equal(applier.lastSyncKind, "flush");

    // When the generation cannot be read around our transaction, resyncs rewrite.
    failing = true;
    await applier.sync({ snapshot: a, changedServicePorts: ["default/dns:dns"], full: false });
    failing = false;
    result = await applier.sync({ snapshot: a, ...resync });
    assert.equal(applier.lastSyncKind, "flush");
    result = await applier.sync({ snapshot: a, ...resync });
    assert.equal(result.linesSent, 0);
    assert.equal((await f.calls("nft")).length, 9);
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("nftables applier: registered for the nftables mode", () => {
  assert.equal(applierFor(DEFAULT_PROXY_CONFIG).name, "nftables");
});

Deno.test("nftables applier: families limits the tables it programs", async () => {
  const f = await fakes();
  try {
    const applier = new NftablesApplier({
      nftPath: f.nft,
      conntrackCleanup: false,
      families: ["IPv4"],
    });
    await applier.sync({ snapshot: dns(["198.18.1.1"]), changedServicePorts: [], full: true });
    const [call] = await f.calls("nft");
    assert.match(call!, /table ip kproxy/);
    assert.doesNotMatch(call!, /ip6/);
    await applier.cleanup();
    assert.match((await f.calls("nft"))[1]!, /delete table ip6 kproxy/);
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});
