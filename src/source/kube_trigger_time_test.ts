import assert from "node:assert/strict";
import type { EndpointSlice } from "../model/endpoint_slice.ts";
import { parseRFC3339, sliceTriggerTime } from "./kube_trigger_time.ts";

Deno.test("parseRFC3339 reads UTC times with and without fractions", () => {
  assert.equal(parseRFC3339("2026-11-26T12:00:00Z"), Date.UTC(2026, 10, 26, 12, 0, 0));
  assert.equal(parseRFC3339("2026-11-26T12:00:00.5Z"), Date.UTC(2026, 10, 26, 12, 0, 0, 500));
  assert.equal(
    parseRFC3339("2026-11-26T12:00:00.123456789Z"),
    Date.UTC(2026, 10, 26, 12, 0, 0, 123),
  );
});

Deno.test("parseRFC3339 applies offsets", () => {
  assert.equal(parseRFC3339("2026-11-26T13:30:00+01:30"), Date.UTC(2026, 10, 26, 12, 0, 0));
  assert.equal(parseRFC3339("2026-11-26T10:00:00-02:00"), Date.UTC(2026, 10, 26, 12, 0, 0));
});

Deno.test("parseRFC3339 rejects what is not RFC 3339", () => {
  for (const bad of ["", "yesterday", "2026-11-26", "2026-13-01T00:00:00Z", "1700000000"]) {
    assert.equal(parseRFC3339(bad), null, bad);
  }
});

Deno.test("sliceTriggerTime reads the last-change-trigger-time annotation", () => {
  const slice = (annotations: Record<string, string> | undefined): EndpointSlice => ({
    kind: "EndpointSlice",
    metadata: { name: "web-1", namespace: "default", annotations },
    addressType: "IPv4",
  });
  assert.equal(
    sliceTriggerTime(
      slice({ "endpoints.kubernetes.io/last-change-trigger-time": "2026-11-26T12:00:00Z" }),
    ),
    Date.UTC(2026, 10, 26, 12),
  );
  assert.equal(sliceTriggerTime(slice(undefined)), null);
  assert.equal(
    sliceTriggerTime(slice({ "endpoints.kubernetes.io/last-change-trigger-time": "soon" })),
    null,
  );
});
