/**
 * The packet-level test harness in network namespaces: topologies (node, pods, external
 * clients), pod servers and probes, and the scenario table every backend runs.
 *
 * Backend test files (`tests/netns/<backend>_*_test.ts`) import from here.
 *
 * @module
 */
export type { Agent, AgentOptions } from "./agent.ts";
export {
  type EndpointInput,
  type EndpointPortInput,
  endpointSlice,
  local,
  OTHER_NODE,
  remote,
  service,
  type ServiceInput,
  type ServicePortInput,
  THIS_NODE,
  thisNode,
} from "./manifests.ts";
export {
  DEFAULT_PROBE_TIMEOUT_MS,
  type Distribution,
  distribution,
  formatDistribution,
  type ProbeOptions,
  type ProbeProtocol,
  type ProbeResult,
  type ProbeTarget,
} from "./probe.ts";
export {
  type CheckContext,
  evaluateCheck,
  type Expectation,
  type Scenario,
  type ScenarioCheck,
  type ScenarioStep,
} from "./scenario.ts";
export {
  applierDriver,
  type ApplierScenarioBackend,
  openDriver,
  parseScenarioObjects,
  type ProcessScenarioBackend,
  registerScenarioTests,
  runScenario,
  type ScenarioBackend,
  type ScenarioDriver,
  type ScenarioReport,
  scenarioSettings,
  type ScenarioTableOptions,
} from "./scenario_runner.ts";
export { ApiObjects, type ApiSyncResult, type PlainObject } from "./api_objects.ts";
export {
  kproxyArgs,
  LAB_SERVICE_CIDRS,
  type LabImplementation,
  type LabNode,
  type LabNodeOptions,
  type LabProxy,
  upstreamArgs,
  UpstreamLab,
} from "./upstream_backend.ts";
export {
  cleanupUpstreamRules,
  startUpstreamKubeProxy,
  type UpstreamKubeProxy,
  type UpstreamMode,
} from "./upstream_kube_proxy.ts";
export { runScenarioTable, SCENARIOS } from "./scenarios.ts";
export {
  CLIENT2_IPV4,
  CLIENT2_IPV6,
  CLIENT_IPV4,
  CLIENT_IPV6,
  type ClientInfo,
  createTopology,
  DEFAULT_POD_TCP_PORTS,
  DEFAULT_POD_UDP_PORTS,
  type NetnsSupport,
  netnsSupport,
  NODE_CLIENT2_IPV4,
  NODE_CLIENT2_IPV6,
  NODE_INTERNAL_IPV4,
  NODE_INTERNAL_IPV6,
  NODE_PRIMARY_IPV4,
  NODE_PRIMARY_IPV6,
  nodeAddresses,
  type NodeInfo,
  POD_CIDRS,
  type PodInfo,
  podIPv4,
  podIPv6,
  type Topology,
  type TopologySpec,
  withTopology,
} from "./topology.ts";
