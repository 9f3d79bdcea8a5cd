import assert from "node:assert/strict";
import { parseBindAddress } from "./serve.ts";

Deno.test("parseBindAddress accepts host:port, [v6]:port and :port", () => {
  assert.deepEqual(parseBindAddress("0.0.0.0:10256"), { hostname: "0.0.0.0", port: 10256 });
  assert.deepEqual(parseBindAddress("127.0.0.1:0"), { hostname: "127.0.0.1", port: 0 });
  assert.deepEqual(parseBindAddress("[::1]:10249"), { hostname: "::1", port: 10249 });
  assert.deepEqual(parseBindAddress(":10249"), { hostname: "0.0.0.0", port: 10249 });
  assert.deepEqual(parseBindAddress("localhost:80"), { hostname: "localhost", port: 80 });
});

Deno.test("parseBindAddress rejects bad addresses with a sentence", () => {
  assert.throws(
    () => parseBindAddress("10256"),
    /Cannot use bind address "10256": expected host:port/,
  );
  assert.throws(() => parseBindAddress("::1:80"), /IPv6 addresses must be in brackets/);
  assert.throws(() => parseBindAddress("host:http"), /the port is not a number/);
  assert.throws(() => parseBindAddress("host:70000"), /out of range/);
});
