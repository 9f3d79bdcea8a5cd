/** The SCTP codec the SCTP probes use: CRC32c, INIT → INIT ACK / ABORT, parsing. */
import assert from "node:assert/strict";
import { crc32c, parseSctp, sctpAbort, sctpInit, sctpInitAck } from "./_sctp_packet.ts";

Deno.test("sctp: CRC32c of the standard check string", () => {
  assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
});

Deno.test("sctp: an INIT, its INIT ACK with the pod's answer as cookie, an ABORT", () => {
  const init = parseSctp(sctpInit(40123, 8080, 0xdeadbeef))!;
  assert.deepEqual(init, {
    sourcePort: 40123,
    destinationPort: 8080,
    verificationTag: 0,
    chunk: "INIT",
    initiateTag: 0xdeadbeef,
    cookie: "",
    checksumOk: true,
  });
  const ack = parseSctp(sctpInitAck(init, 0x01020304, "a1 198.18.2.10 8080"))!;
  assert.deepEqual(ack, {
    sourcePort: 8080,
    destinationPort: 40123,
    verificationTag: 0xdeadbeef,
    chunk: "INIT ACK",
    initiateTag: 0x01020304,
    cookie: "a1 198.18.2.10 8080",
    checksumOk: true,
  });
  const abort = parseSctp(sctpAbort(init))!;
  assert.equal(abort.chunk, "ABORT");
  assert.equal(abort.verificationTag, 0xdeadbeef);
  assert.equal(abort.checksumOk, true);
  const bad = sctpInit(1, 2, 3);
  bad[20] = (bad[20] ?? 0) ^ 1;
  assert.equal(parseSctp(bad)?.checksumOk, false);
  assert.equal(parseSctp(new Uint8Array(8)), null);
});
