import assert from "node:assert/strict";
import { cpuTimes, iptablesFloorTable, syscallTimes } from "./iptables_floor.ts";

Deno.test("strace -T lines: the longest send is the commit, receives add up", () => {
  const log = [
    "13436 sendto(3, [{nlmsg_len=32, nlmsg_type=RTM_NEWLINK}], 32, 0, NULL, 0) = 32 <0.000143>",
    "13436 recvmsg(3, {msg_name={sa_family=AF_NETLINK}}, 0) = 52 <0.000058>",
    "13436 sendmsg(4, {msg_name={sa_family=AF_NETLINK}}, 0) = 48 <0.002500>",
    "13436 recvmsg(4, {msg_name={sa_family=AF_NETLINK}}, MSG_PEEK|MSG_TRUNC) = 1100 <0.001000>",
    "13436 +++ exited with 0 +++",
  ].join("\n");
  const [send, recv] = syscallTimes(log);
  assert.ok(Math.abs(send - 2.5) < 1e-9, String(send));
  assert.ok(Math.abs(recv - 1.058) < 1e-9, String(recv));
});

Deno.test("the floor table has a row per size and a column per measurement", () => {
  const md = iptablesFloorTable([{
    services: 10000,
    fullApplyMs: 15200,
    changeMs: 276,
    changeCpuMs: 180,
    changeLines: 48,
    commitKernelMs: 0.4,
    cacheReadKernelMs: 120,
    restoreFloorNatMs: 250,
    restoreFloorNatCpuMs: 170,
    restoreFloorRawMs: 20,
    restoreFloorRawCpuMs: 10,
    nftCliMs: 90,
  }]);
  const lines = md.split("\n");
  assert.equal(lines.length, 3);
  assert.equal(lines[0]!.split("|").length, lines[2]!.split("|").length);
  assert.match(
    lines[2]!,
    /^\| 10,000 \| 15\.20 s \| 276\.0 ms \(180\.0 ms\) \| 48 \| 0\.40 ms \| 120\.0 ms/,
  );
});

Deno.test("/usr/bin/time lines: user plus sys, in ms, one per run", () => {
  assert.deepEqual(cpuTimes("0.12 0.03\nCommand exited with non-zero status 1\n0.00 0.01\n"), [
    150,
    10,
  ]);
});
