// IP plan: 198.18.0.0/15 and fd00::/8 only (plus unparseable spellings).
import assert from "node:assert/strict";
import { canonicalIP, cidrContains, compareIPs, familyOf, parseCIDR, parseIP } from "./ip.ts";

Deno.test("ip: canonical text of valid addresses", async (t) => {
  const cases: [string, string, string][] = [
    ["198.18.0.1", "198.18.0.1", "IPv4"],
    ["198.19.255.255", "198.19.255.255", "IPv4"],
    ["fd00::1", "fd00::1", "IPv6"],
    ["FD00:0:0:0:0:0:0:1", "fd00::1", "IPv6"],
    ["fd00:0000:0000:0000:0000:0000:0080:0010", "fd00::80:10", "IPv6"],
    ["fd00:0:0:1:0:0:0:1", "fd00:0:0:1::1", "IPv6"],
    ["fd00:0:0:1:1:0:0:1", "fd00::1:1:0:0:1", "IPv6"], // first of two equal runs
    ["fd00:1:0:1:1:1:1:1", "fd00:1:0:1:1:1:1:1", "IPv6"], // a single zero group stays
    ["fd00::198.18.0.1", "fd00::c612:1", "IPv6"],
    ["fd00::", "fd00::", "IPv6"],
  ];
  for (const [input, text, family] of cases) {
    await t.step(input, () => {
      const ip = parseIP(input);
      assert.equal(ip?.text, text);
      assert.equal(ip?.family, family);
      assert.equal(canonicalIP(input), text);
      assert.equal(parseIP(text)?.value, ip?.value, "canonical text parses to the same value");
    });
  }
});

Deno.test("ip: rejects what is not exactly one address", async (t) => {
  const bad = [
    "",
    "198.18.0",
    "198.18.0.256",
    "198.18.0.01",
    "198.18.0.1 ",
    " 198.18.0.1",
    "198.18.0.1/32",
    "198.18.0.1.5",
    "fd00:::1",
    "fd00::1::2",
    "fd00:0:0:0:0:0:0:0:1",
    "fd00:0:0:0:0:0:1",
    "fd00::12345",
    "fd00::g",
    "fd00::198.18.0.256",
    "None",
    "web.example",
  ];
  for (const text of bad) {
    await t.step(JSON.stringify(text), () => {
      assert.equal(parseIP(text), null);
      assert.equal(canonicalIP(text), null);
    });
  }
  assert.equal(parseIP(42 as unknown as string), null);
});

Deno.test("ip: CIDRs clear host bits and reject bad prefixes", async (t) => {
  const good: [string, string, number][] = [
    ["198.18.0.0/15", "198.18.0.0/15", 15],
    ["198.19.0.77/24", "198.19.0.0/24", 24],
    ["198.18.0.1/32", "198.18.0.1/32", 32],
    ["198.18.0.1/0", "0.0.0.0/0", 0],
    ["FD00::C0:1/112", "fd00::c0:0/112", 112],
    ["fd00::1/8", "fd00::/8", 8],
  ];
  for (const [input, text, prefix] of good) {
    await t.step(input, () => {
      const c = parseCIDR(input);
      assert.equal(c?.text, text);
      assert.equal(c?.prefix, prefix);
    });
  }
  for (const bad of ["198.18.0.0", "198.18.0.0/33", "fd00::/129", "198.18.0.0/", "x/8", "/8"]) {
    await t.step(`rejects ${bad}`, () => assert.equal(parseCIDR(bad), null));
  }
  assert.equal(parseCIDR("198.18.0.0/-1"), null);
  assert.equal(parseCIDR("198.18.0.0/1x"), null);
});

Deno.test("ip: containment, family and ordering", () => {
  const net = parseCIDR("198.18.0.0/24");
  assert.ok(net);
  assert.equal(cidrContains(net, parseIP("198.18.0.200")!), true);
  assert.equal(cidrContains(net, parseIP("198.18.1.1")!), false);
  assert.equal(cidrContains(net, parseIP("fd00::1")!), false);
  assert.equal(cidrContains(parseCIDR("fd00::/8")!, parseIP("fd00::1:2")!), true);
  assert.equal(familyOf("198.18.0.1"), "IPv4");
  assert.equal(familyOf("fd00::/8"), "IPv6");
  assert.equal(familyOf("nope"), null);
  const sorted = ["fd00::2", "198.18.0.10", "fd00::10", "198.18.0.9"].sort(compareIPs);
  assert.deepEqual(sorted, ["198.18.0.9", "198.18.0.10", "fd00::2", "fd00::10"]);
  assert.equal(compareIPs("198.18.0.1", "198.18.0.1"), 0);
});
