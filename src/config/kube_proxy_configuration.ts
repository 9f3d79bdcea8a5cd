/** Reads a `kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration` file into ProxyConfig fields. */
import yaml from "js-yaml";
import { z } from "zod";
import { parseCIDR } from "../model/ip.ts";
import { parseDuration } from "./duration.ts";
import {
  type ConntrackConfig,
  DEFAULT_CONNTRACK_CONFIG,
  type ProxyConfig,
} from "./proxy_config.ts";

const duration = z.string().refine((s) => parseDuration(s) !== null, {
  message: "is not a duration such as 30s or 1m0s",
});

const cidrList = z.string().refine(
  (s) => s.split(",").every((c) => c.trim() === "" || parseCIDR(c.trim()) !== null),
  { message: "is not a comma-separated list of CIDRs" },
);

const nodePortAddress = z.string().refine((s) => s === "primary" || parseCIDR(s) !== null, {
  message: "is not a CIDR or primary",
});

const wholeNonNegative = z.number().int({ message: "must be a whole number of 0 or more" })
  .min(0, { message: "must be a whole number of 0 or more" })
  .max(2 ** 31 - 1, { message: "must be at most 2147483647" });

const backendSection = z.object({
  masqueradeAll: z.boolean().nullish(),
  masqueradeBit: z.number().int({ message: "must be a whole number from 0 to 31" })
    .min(0, { message: "must be a whole number from 0 to 31" })
    .max(31, { message: "must be a whole number from 0 to 31" }).nullish(),
  minSyncPeriod: duration.nullish(),
  syncPeriod: duration.nullish(),
  localhostNodePorts: z.boolean().nullish(),
}).nullish();

/** The fields of KubeProxyConfiguration kproxy honours (unknown fields are accepted and ignored). */
export const kubeProxyConfigurationSchema = z.object({
  apiVersion: z.literal("kubeproxy.config.k8s.io/v1alpha1", {
    message: "must be kubeproxy.config.k8s.io/v1alpha1",
  }),
  kind: z.literal("KubeProxyConfiguration", { message: "must be KubeProxyConfiguration" }),
  mode: z.enum(["", "iptables", "nftables"], { message: "must be iptables or nftables" })
    .nullish(),
  hostnameOverride: z.string().nullish(),
  clusterCIDR: cidrList.nullish(),
  // Checked with the flags, as upstream validates the merged configuration.
  detectLocalMode: z.string().nullish(),
  detectLocal: z.object({
    bridgeInterface: z.string().nullish(),
    interfaceNamePrefix: z.string().nullish(),
  }).nullish(),
  healthzBindAddress: z.string().nullish(),
  metricsBindAddress: z.string().nullish(),
  nodePortAddresses: z.array(nodePortAddress).refine(
    (list) => !list.includes("primary") || list.length === 1,
    { message: "can't use both 'primary' and CIDRs" },
  ).nullish(),
  syncPeriod: duration.nullish(),
  minSyncPeriod: duration.nullish(),
  clientConnection: z.object({
    kubeconfig: z.string().nullish(),
    qps: z.number().nullish(),
    burst: z.number().int().nullish(),
  }).nullish(),
  iptables: backendSection,
  nftables: backendSection,
  conntrack: z.object({
    maxPerCore: wholeNonNegative.nullish(),
    min: wholeNonNegative.nullish(),
    tcpEstablishedTimeout: duration.nullish(),
    tcpCloseWaitTimeout: duration.nullish(),
    tcpBeLiberal: z.boolean().nullish(),
    udpTimeout: duration.nullish(),
    udpStreamTimeout: duration.nullish(),
  }).nullish(),
});

/** A config file problem, naming the file and field. */
export class ConfigFileError extends Error {
  /** Makes an error for `path`. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigFileError";
  }
}

const EXPECTED_WORDS: Readonly<Record<string, string>> = {
  number: "must be a number",
  int: "must be a whole number",
  string: "must be a string",
  boolean: "must be true or false",
  array: "must be a list",
  object: "must be a mapping",
};

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The `conntrack:` section over upstream's defaults (an absent field keeps its default). */
function conntrackSection(
  section: NonNullable<z.infer<typeof kubeProxyConfigurationSchema>["conntrack"]>,
): ConntrackConfig {
  const c: Mutable<ConntrackConfig> = { ...DEFAULT_CONNTRACK_CONFIG };
  const ms = (text: string | null | undefined) => text == null ? null : parseDuration(text);
  if (section.maxPerCore != null) c.maxPerCore = section.maxPerCore;
  if (section.min != null) c.min = section.min;
  c.tcpEstablishedTimeoutMs = ms(section.tcpEstablishedTimeout) ?? c.tcpEstablishedTimeoutMs;
  c.tcpCloseWaitTimeoutMs = ms(section.tcpCloseWaitTimeout) ?? c.tcpCloseWaitTimeoutMs;
  if (section.tcpBeLiberal != null) c.tcpBeLiberal = section.tcpBeLiberal;
  c.udpTimeoutMs = ms(section.udpTimeout) ?? c.udpTimeoutMs;
  c.udpStreamTimeoutMs = ms(section.udpStreamTimeout) ?? c.udpStreamTimeoutMs;
  return Object.freeze(c);
}

/**
 * Parses the text of a KubeProxyConfiguration file into the ProxyConfig fields it sets.
 * Throws {@link ConfigFileError} naming the file and field when it is malformed.
 */
export function parseKubeProxyConfiguration(
  text: string,
  path: string,
  options: { readonly mode?: ProxyConfig["mode"] } = {},
): Partial<ProxyConfig> {
  let raw: unknown;
  try {
    raw = yaml.load(text, { schema: yaml.CORE_SCHEMA, json: true });
  } catch (e) {
    const reason = e instanceof Error ? e.message.split("\n")[0] : String(e);
    throw new ConfigFileError(`${path}: Cannot parse KubeProxyConfiguration: ${reason}`);
  }
  const fail = (field: string, problem: string) =>
    new ConfigFileError(`${path}: Cannot read KubeProxyConfiguration: ${field} ${problem}`);
  if (raw === null || raw === undefined) throw fail("document", "is empty");
  if (typeof raw !== "object" || Array.isArray(raw)) throw fail("document", "is not a mapping");
  const r = kubeProxyConfigurationSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    if (issue === undefined) throw fail("document", "is invalid");
    let field = "";
    let value: unknown = raw;
    for (const part of issue.path) {
      field += typeof part === "number" ? `[${part}]` : `${field === "" ? "" : "."}${String(part)}`;
      value = (value as Record<PropertyKey, unknown> | undefined)?.[part];
    }
    let problem = issue.message;
    if (issue.code === "invalid_type") {
      problem = value === undefined
        ? "is missing"
        : EXPECTED_WORDS[issue.expected] ?? `must be ${issue.expected}`;
    }
    throw fail(field || "document", problem);
  }
  const c = r.data;
  const out: Partial<Mutable<ProxyConfig>> = {};
  if (c.mode) out.mode = c.mode;
  // The backend section that applies is the one of the effective mode (a --proxy-mode flag wins).
  const effectiveMode = options.mode ?? out.mode ?? "nftables";
  const backend = effectiveMode === "iptables" ? c.iptables : c.nftables;
  if (c.hostnameOverride) out.hostnameOverride = c.hostnameOverride;
  if (c.clusterCIDR) {
    out.clusterCIDRs = c.clusterCIDR.split(",").map((s) => s.trim()).filter(Boolean);
  }
  if (c.detectLocalMode) out.detectLocalMode = c.detectLocalMode as ProxyConfig["detectLocalMode"];
  if (c.detectLocal?.bridgeInterface) out.podBridgeInterface = c.detectLocal.bridgeInterface;
  if (c.detectLocal?.interfaceNamePrefix) {
    out.podInterfaceNamePrefix = c.detectLocal.interfaceNamePrefix;
  }
  if (c.healthzBindAddress) out.healthzBindAddress = c.healthzBindAddress;
  if (c.metricsBindAddress) out.metricsBindAddress = c.metricsBindAddress;
  if (c.nodePortAddresses) out.nodePortAddresses = c.nodePortAddresses;
  const sync = c.syncPeriod ?? backend?.syncPeriod;
  if (sync) out.syncPeriodMs = parseDuration(sync) as number;
  const minSync = c.minSyncPeriod ?? backend?.minSyncPeriod;
  if (minSync) out.minSyncPeriodMs = parseDuration(minSync) as number;
  if (backend?.masqueradeAll != null) out.masqueradeAll = backend.masqueradeAll;
  if (backend?.masqueradeBit != null) out.masqueradeBit = backend.masqueradeBit;
  if (c.iptables?.localhostNodePorts != null) {
    out.localhostNodePorts = c.iptables.localhostNodePorts;
  }
  if (c.conntrack != null) out.conntrack = conntrackSection(c.conntrack);
  if (c.clientConnection?.kubeconfig) out.kubeconfig = c.clientConnection.kubeconfig;
  if (c.clientConnection?.qps != null) out.kubeApiQps = c.clientConnection.qps;
  if (c.clientConnection?.burst != null) out.kubeApiBurst = c.clientConnection.burst;
  return out;
}
