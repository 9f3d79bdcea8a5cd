/** Unit tests of the probe summaries (no namespaces needed). Addresses: client 198.19.0.2. */
import assert from "node:assert/strict";
import { distribution, formatDistribution, type ProbeResult } from "./probe.ts";

const results: ProbeResult[] = [
  { kind: "answer", pod: "pod1", clientIP: "198.19.0.2", localIP: "198.19.0.2", ms: 1 },
  { kind: "answer", pod: "pod0", clientIP: "198.18.0.1", localIP: "198.19.0.2", ms: 1 },
  { kind: "answer", pod: "pod1", clientIP: "198.19.0.2", localIP: "198.19.0.2", ms: 1 },
  { kind: "refused", reason: "ECONNREFUSED", ms: 1 },
  { kind: "timeout", reason: "no connection", ms: 400 },
];

Deno.test("distribution counts answers per pod, client IPs, refusals and timeouts", () => {
  assert.deepEqual(distribution(results), {
    total: 5,
    answers: { pod1: 2, pod0: 1 },
    refused: 1,
    timeout: 1,
    clientIPs: { "198.19.0.2": 2, "198.18.0.1": 1 },
    preserved: 2,
  });
});

Deno.test("formatDistribution is one readable line, pods sorted", () => {
  assert.equal(
    formatDistribution(distribution(results)),
    "5 probes, answers pod0=1 pod1=2, client IPs seen 198.19.0.2×2 198.18.0.1×1, refused 1, " +
      "timeout 1",
  );
  assert.equal(formatDistribution(distribution([])), "0 probes");
});
