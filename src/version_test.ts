import assert from "node:assert/strict";
import {
  formatVersion,
  KPROXY_VERSION,
  parseBuildInfo,
  UNKNOWN_COMMIT,
  versionInfo,
} from "./version.ts";
import denoJson from "../deno.json" with { type: "json" };

Deno.test("KPROXY_VERSION is deno.json's version", () => {
  assert.equal(KPROXY_VERSION, denoJson.version);
});

Deno.test("versionInfo reports kproxy, Deno and the commit (unknown outside a build)", () => {
  const info = versionInfo();
  assert.equal(info.version, KPROXY_VERSION);
  assert.equal(info.deno, Deno.version.deno);
  assert.equal(info.target, Deno.build.target);
  assert.match(info.commit, /^([0-9a-f]{7,64}(-dirty)?|unknown)$/);
});

Deno.test("formatVersion shortens the commit and keeps -dirty", () => {
  const base = { version: "1.2.3", deno: "2.9.6", target: "x86_64-unknown-linux-gnu" };
  assert.equal(
    formatVersion({ ...base, commit: "0123456789abcdef0123456789abcdef01234567" }),
    "kproxy 1.2.3 (commit 0123456789ab, deno 2.9.6, x86_64-unknown-linux-gnu)",
  );
  assert.equal(
    formatVersion({ ...base, commit: "0123456789abcdef0123456789abcdef01234567-dirty" }),
    "kproxy 1.2.3 (commit 0123456789ab-dirty, deno 2.9.6, x86_64-unknown-linux-gnu)",
  );
  assert.equal(
    formatVersion({ ...base, commit: UNKNOWN_COMMIT }),
    "kproxy 1.2.3 (commit unknown, deno 2.9.6, x86_64-unknown-linux-gnu)",
  );
});

Deno.test("parseBuildInfo accepts only a commit hash", () => {
  assert.deepEqual(parseBuildInfo({ commit: "abcdef1" }), { commit: "abcdef1" });
  assert.deepEqual(parseBuildInfo({ commit: "abcdef1-dirty" }), { commit: "abcdef1-dirty" });
  assert.equal(parseBuildInfo({ commit: "main" }), null);
  assert.equal(parseBuildInfo({ commit: 42 }), null);
  assert.equal(parseBuildInfo(null), null);
  assert.equal(parseBuildInfo("abcdef1"), null);
});
