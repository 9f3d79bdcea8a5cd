/**
 * The shared scenario table (scenarios.ts) against upstream kube-proxy v1.34 itself, in both of
 * its modes, through the lab's real kube-apiserver (upstream_backend.ts): the table's expectations
 * are the reference's behaviour, not only kproxy's reading of it. IP plan: see scenarios.ts.
 */
import { registerScenarioTests } from "./scenario_runner.ts";
import { SCENARIOS } from "./scenarios.ts";
import { UpstreamLab } from "./upstream_backend.ts";

const lab = new UpstreamLab();
for (const mode of ["nftables", "iptables"] as const) {
  registerScenarioTests(lab.backend(mode), SCENARIOS);
}
lab.registerStop();
