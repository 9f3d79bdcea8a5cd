import assert from "node:assert/strict";
import {
  endpointChainName,
  endpointText,
  hash16,
  isServiceChainName,
  servicePortChainNames,
} from "./chain_names.ts";

Deno.test("chain names match upstream kube-proxy's for the same service port", () => {
  // Names that appear in kube-proxy's own tests for ns1/svc1:p80 and endpoint 10.180.0.1:80.
  const names = servicePortChainNames("ns1/svc1:p80", "TCP");
  assert.equal(names.svc, "KUBE-SVC-XPGD46QRK7WJZT7O");
  assert.equal(names.svl, "KUBE-SVL-XPGD46QRK7WJZT7O");
  assert.equal(names.ext, "KUBE-EXT-XPGD46QRK7WJZT7O");
  assert.equal(names.fw, "KUBE-FW-XPGD46QRK7WJZT7O");
  assert.equal(
    endpointChainName("ns1/svc1:p80", "TCP", "10.180.0.1:80"),
    "KUBE-SEP-SXIVWICOYRO3J4NJ",
  );
});

Deno.test("chain names differ by protocol and fit iptables' 28-character limit", () => {
  const tcp = servicePortChainNames("default/dns:dns", "TCP").svc;
  const udp = servicePortChainNames("default/dns:dns", "UDP").svc;
  assert.notEqual(tcp, udp);
  assert.ok(tcp.length <= 28);
  assert.match(hash16("x"), /^[A-Z2-7]{16}$/);
});

Deno.test("endpoint text brackets IPv6 like net.JoinHostPort", () => {
  assert.equal(endpointText("198.18.1.2", 80), "198.18.1.2:80");
  assert.equal(endpointText("fd00:1::2", 80), "[fd00:1::2]:80");
});

Deno.test("isServiceChainName knows the per-service prefixes only", () => {
  for (const n of ["KUBE-SVC-A", "KUBE-SVL-A", "KUBE-EXT-A", "KUBE-FW-A", "KUBE-SEP-A"]) {
    assert.ok(isServiceChainName(n), n);
  }
  for (const n of ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-MARK-MASQ", "KUBE-FIREWALL"]) {
    assert.ok(!isServiceChainName(n), n);
  }
});
