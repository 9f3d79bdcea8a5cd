/** The conntrack sysctls kproxy sets at start, against a fake `sysctl` (no kernel touched). */
import assert from "node:assert/strict";
import { DEFAULT_CONNTRACK_CONFIG } from "../config/proxy_config.ts";
import { conntrackMax, conntrackSysctls, setupConntrack } from "./conntrack_sysctls.ts";

/**
 * procps `sysctl` over a map: `-n KEY` reads, `-w KEY=V` writes — except read-only keys, which
 * keep their value and print the error while exiting 0, as procps does.
 */
class FakeSysctl {
  readonly writes: string[] = [];
  readonly values: Map<string, string>;
  constructor(extra: Record<string, string> = {}, readonly readOnly = new Set<string>()) {
    this.values = new Map(Object.entries({
      "net.netfilter.nf_conntrack_max": "262144",
      "net.netfilter.nf_conntrack_buckets": "65536",
      "net.netfilter.nf_conntrack_tcp_timeout_established": "432000",
      "net.netfilter.nf_conntrack_tcp_timeout_close_wait": "60",
      "net.netfilter.nf_conntrack_tcp_be_liberal": "0",
      "net.netfilter.nf_conntrack_udp_timeout": "30",
      "net.netfilter.nf_conntrack_udp_timeout_stream": "120",
      ...extra,
    }));
  }
  readonly run = (args: readonly string[]) => {
    const [flag, arg = ""] = args;
    if (flag === "-n") {
      const v = this.values.get(arg);
      return Promise.resolve(
        v === undefined
          ? { code: 255, stdout: "", stderr: `sysctl: cannot stat ${arg}` }
          : { code: 0, stdout: `${v}\n`, stderr: "" },
      );
    }
    const [key = "", value = ""] = arg.split("=");
    if (this.readOnly.has(key)) {
      return Promise.resolve({
        code: 0,
        stdout: "",
        stderr: `sysctl: setting key "${key}": Invalid argument\n`,
      });
    }
    this.writes.push(`${key.replace("net.netfilter.", "")}=${value}`);
    this.values.set(key, value);
    return Promise.resolve({ code: 0, stdout: `${key} = ${value}\n`, stderr: "" });
  };
}

Deno.test("upstream's defaults: max(32768 × CPUs, 131072), TCP 24h and 1h, UDP and liberal left", () => {
  assert.equal(conntrackMax(DEFAULT_CONNTRACK_CONFIG, 2), 131072);
  assert.equal(conntrackMax(DEFAULT_CONNTRACK_CONFIG, 8), 262144);
  assert.deepEqual(conntrackSysctls(DEFAULT_CONNTRACK_CONFIG, 8), [
    { name: "nf_conntrack_max", value: 262144 },
    { name: "nf_conntrack_tcp_timeout_established", value: 86400 },
    { name: "nf_conntrack_tcp_timeout_close_wait", value: 3600 },
  ]);
});

Deno.test("0 leaves a sysctl as it is; per-core 0 ignores min; durations in whole seconds", () => {
  const none = {
    ...DEFAULT_CONNTRACK_CONFIG,
    maxPerCore: 0,
    min: 500_000,
    tcpEstablishedTimeoutMs: 0,
    tcpCloseWaitTimeoutMs: 0,
  };
  assert.deepEqual(conntrackSysctls(none, 4), []);
  assert.deepEqual(
    conntrackSysctls(
      { ...none, tcpBeLiberal: true, udpTimeoutMs: 45_500, udpStreamTimeoutMs: 180_000 },
      4,
    ),
    [
      { name: "nf_conntrack_tcp_be_liberal", value: 1 },
      { name: "nf_conntrack_udp_timeout", value: 45 },
      { name: "nf_conntrack_udp_timeout_stream", value: 180 },
    ],
  );
});

Deno.test("setupConntrack writes what differs, then grows the hash table to max/4", async () => {
  const sysctl = new FakeSysctl();
  const logs: string[] = [];
  const written = await setupConntrack(
    { ...DEFAULT_CONNTRACK_CONFIG, maxPerCore: 65536, udpTimeoutMs: 30_000 },
    { run: sysctl.run, cpus: 8, log: (l) => logs.push(l) },
  );
  assert.deepEqual(sysctl.writes, [
    "nf_conntrack_max=524288",
    "nf_conntrack_buckets=131072",
    "nf_conntrack_tcp_timeout_established=86400",
    "nf_conntrack_tcp_timeout_close_wait=3600",
  ]);
  // nf_conntrack_udp_timeout is already 30: not written.
  assert.deepEqual(written.map((s) => s.name), [
    "nf_conntrack_max",
    "nf_conntrack_tcp_timeout_established",
    "nf_conntrack_tcp_timeout_close_wait",
  ]);
  assert.equal(logs.length, 4);
});

Deno.test("a read-only nf_conntrack_max (a container's own namespace) is fatal, as upstream", async () => {
  const sysctl = new FakeSysctl({}, new Set(["net.netfilter.nf_conntrack_max"]));
  await assert.rejects(
    setupConntrack(DEFAULT_CONNTRACK_CONFIG, { run: sysctl.run, cpus: 2 }),
    (e: Error) => {
      assert.equal(e.name, "ConntrackSetupError");
      assert.equal(
        e.message,
        'Cannot set net/netfilter/nf_conntrack_max to 131072: it stays 262144 (sysctl: setting key "net.netfilter.nf_conntrack_max": Invalid argument); it is global and read-only outside the host\'s network namespace, and --conntrack-max-per-core=0 leaves it as it is',
      );
      return true;
    },
  );
  assert.deepEqual(sysctl.writes, []);
  // Already at the wanted value: nothing is written, nothing fails.
  const same = new FakeSysctl(
    { "net.netfilter.nf_conntrack_max": "131072", "net.netfilter.nf_conntrack_buckets": "131072" },
    new Set(["net.netfilter.nf_conntrack_max", "net.netfilter.nf_conntrack_buckets"]),
  );
  await setupConntrack(DEFAULT_CONNTRACK_CONFIG, { run: same.run, cpus: 2 });
  assert.deepEqual(same.writes, [
    "nf_conntrack_tcp_timeout_established=86400",
    "nf_conntrack_tcp_timeout_close_wait=3600",
  ]);
});

Deno.test("a hash table that cannot grow is logged, not fatal (upstream: read-only /sys)", async () => {
  const sysctl = new FakeSysctl({}, new Set(["net.netfilter.nf_conntrack_buckets"]));
  const logs: string[] = [];
  await setupConntrack(
    { ...DEFAULT_CONNTRACK_CONFIG, maxPerCore: 65536 },
    { run: sysctl.run, cpus: 8, log: (l) => logs.push(l) },
  );
  assert.ok(!sysctl.writes.some((w) => w.startsWith("nf_conntrack_buckets")));
  assert.ok(
    logs.some((l) =>
      /cannot grow net\/netfilter\/nf_conntrack_buckets from 65536 to 131072/.test(l)
    ),
    logs.join("\n"),
  );
});
