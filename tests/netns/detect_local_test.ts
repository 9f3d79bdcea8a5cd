/**
 * `--detect-local-mode` with real packets (detect_local_scenarios.ts): kproxy's nftables and
 * iptables backends in process (every check also judged by `kproxy explain` and traced with
 * `--live`), then upstream kube-proxy v1.34 in both of its modes through the lab's real
 * kube-apiserver, so the expectations are the reference's behaviour. IP plan: see
 * detect_local_scenarios.ts.
 */
import { IptablesApplier } from "../../src/apply/iptables_applier.ts";
import { NftablesApplier } from "../../src/apply/nftables_applier.ts";
import { DETECT_LOCAL_SCENARIOS } from "./detect_local_scenarios.ts";
import { registerScenarioTests } from "./scenario_runner.ts";
import { UpstreamLab } from "./upstream_backend.ts";

registerScenarioTests(
  { name: "nftables", makeApplier: (netns) => new NftablesApplier({ netns }) },
  DETECT_LOCAL_SCENARIOS,
);
registerScenarioTests(
  { name: "iptables", makeApplier: (netns) => new IptablesApplier({ netns }) },
  DETECT_LOCAL_SCENARIOS,
);

const lab = new UpstreamLab();
for (const mode of ["nftables", "iptables"] as const) {
  registerScenarioTests(lab.backend(mode), DETECT_LOCAL_SCENARIOS);
  // kproxy as a process, with the same flags as upstream (--detect-local-mode=…).
  registerScenarioTests(lab.backend(mode, { implementation: "kproxy" }), DETECT_LOCAL_SCENARIOS);
}
lab.registerStop();
