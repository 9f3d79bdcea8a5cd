/**
 * The probe packet's bytes: headers where RFC 791/8200/9293/768/9260 put them, checksums that
 * verify. IP plan: pods 198.18.1.0/24, services 198.18.128.0/17, fd00::/8.
 */
import assert from "node:assert/strict";
import { buildProbePacket, crc32c, internetChecksum } from "./packet_bytes.ts";

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("IPv4 TCP SYN: header fields and checksums", () => {
  const p = buildProbePacket({
    protocol: "TCP",
    source: "198.18.1.12",
    destination: "198.18.128.10",
    sourcePort: 40000,
    port: 80,
    id: 0x1234,
  });
  assert.equal(p.length, 40);
  assert.equal(
    hex(p.subarray(0, 20)),
    // 4500 0028 1234 4000 4006 [sum] c612010c c612800a
    "450000281234400040060000c612010cc612800a".replace(
      /^(.{20})0000/,
      `$1${hex(p.subarray(10, 12))}`,
    ),
  );
  assert.equal(internetChecksum(p.subarray(0, 20)), 0, "the IP header checksum verifies");
  const v = new DataView(p.buffer, 20);
  assert.equal(v.getUint16(0), 40000);
  assert.equal(v.getUint16(2), 80);
  assert.equal(p[20 + 13], 0x02, "SYN only");
  const pseudo = new Uint8Array([0, 6, 0, 20]);
  assert.equal(
    internetChecksum(p.subarray(12, 20), pseudo, p.subarray(20)),
    0,
    "the TCP checksum verifies",
  );
});

Deno.test("IPv6 UDP: header fields and a checksum that verifies", () => {
  const p = buildProbePacket({
    protocol: "UDP",
    source: "fd00:1::12",
    destination: "fd00:128::10",
    sourcePort: 40001,
    port: 53,
  });
  assert.equal((p[0] as number) >> 4, 6);
  assert.equal(p[6], 17);
  const len = new DataView(p.buffer).getUint16(4);
  assert.equal(len, p.length - 40);
  const pseudo = new Uint8Array([0, 0, 0, len, 0, 0, 0, 17]);
  assert.equal(internetChecksum(p.subarray(8, 40), pseudo, p.subarray(40)), 0);
});

Deno.test("SCTP INIT carries a CRC-32C that verifies", () => {
  // RFC 3720 B.4 test vector: 32 bytes of zeros → 0x8a9136aa.
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  const p = buildProbePacket({
    protocol: "SCTP",
    source: "198.18.1.12",
    destination: "198.18.128.10",
    sourcePort: 40002,
    port: 3868,
  });
  const sctp = p.slice(20);
  const stored = new DataView(sctp.buffer).getUint32(8, true);
  new DataView(sctp.buffer).setUint32(8, 0);
  assert.equal(crc32c(sctp), stored);
  assert.equal(sctp[12], 1, "an INIT chunk");
});

Deno.test("a packet between two families is refused", () => {
  assert.throws(
    () =>
      buildProbePacket({
        protocol: "TCP",
        source: "198.18.1.12",
        destination: "fd00::1",
        sourcePort: 1,
        port: 2,
      }),
    /two families/,
  );
});
