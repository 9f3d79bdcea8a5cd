// IP plan: pods 198.18.1.0/24.
import assert from "node:assert/strict";
import { DEFAULT_PROXY_CONFIG } from "../config/proxy_config.ts";
import { hostAddresses, nodeNameOf, snapshotSettingsOf } from "./settings.ts";

Deno.test("settings: node name from --hostname-override, else the lower-cased host name", () => {
  assert.equal(nodeNameOf({ ...DEFAULT_PROXY_CONFIG, hostnameOverride: "node-a" }), "node-a");
  assert.equal(nodeNameOf(DEFAULT_PROXY_CONFIG), Deno.hostname().toLowerCase());
});

Deno.test("settings: snapshot settings carry the config", () => {
  const config = {
    ...DEFAULT_PROXY_CONFIG,
    clusterCIDRs: ["198.18.1.0/24"],
    detectLocalMode: "InterfaceNamePrefix" as const,
    podInterfaceNamePrefix: "veth",
    masqueradeAll: true,
    masqueradeBit: 15,
    localhostNodePorts: false,
    nodePortAddresses: ["primary"],
  };
  assert.deepEqual(snapshotSettingsOf(config, "node-a", ["198.18.0.10"]), {
    nodeName: "node-a",
    clusterCIDRs: ["198.18.1.0/24"],
    detectLocal: { mode: "InterfaceNamePrefix", bridgeInterface: "", interfaceNamePrefix: "veth" },
    masqueradeAll: true,
    masqueradeBit: 15,
    localhostNodePorts: false,
    nodePortAddresses: ["primary"],
    hostAddresses: ["198.18.0.10"],
  });
});

Deno.test("settings: host addresses have no zone suffix", () => {
  for (const a of hostAddresses()) assert.ok(!a.includes("%"), a);
});
