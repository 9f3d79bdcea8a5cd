/** Reads a `kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration` file into ProxyConfig fields. */
import yaml from "js-yaml";
import { z } from "zod";
import { parseDuration } from "./duration.ts";
import type { ProxyConfig } from "./proxy_config.ts";

const duration = z.string().refine((s) => parseDuration(s) !== null, {
  message: "is not a duration such as 30s or 1m0s",
});

const backendSection = z.object({
  masqueradeAll: z.boolean().nullish(),
  masqueradeBit: z.number().int().min(0).max(31).nullish(),
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
  clusterCIDR: z.string().nullish(),
  healthzBindAddress: z.string().nullish(),
  metricsBindAddress: z.string().nullish(),
  nodePortAddresses: z.array(z.string()).nullish(),
  syncPeriod: duration.nullish(),
  minSyncPeriod: duration.nullish(),
  clientConnection: z.object({
    kubeconfig: z.string().nullish(),
    qps: z.number().nullish(),
    burst: z.number().int().nullish(),
  }).nullish(),
  iptables: backendSection,
  nftables: backendSection,
});

/** A config file problem, naming the file and field. */
export class ConfigFileError extends Error {
  /** Makes an error for `path`. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigFileError";
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Parses the text of a KubeProxyConfiguration file into the ProxyConfig fields it sets.
 * Throws {@link ConfigFileError} naming the file and field when it is malformed.
 */
export function parseKubeProxyConfiguration(text: string, path: string): Partial<ProxyConfig> {
  let raw: unknown;
  try {
    raw = yaml.load(text, { schema: yaml.CORE_SCHEMA, json: true });
  } catch (e) {
    const reason = e instanceof Error ? e.message.split("\n")[0] : String(e);
    throw new ConfigFileError(`${path}: Cannot parse KubeProxyConfiguration: ${reason}`);
  }
  const r = kubeProxyConfigurationSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = (issue?.path ?? []).map(String).join(".");
    throw new ConfigFileError(
      `${path}: Cannot read KubeProxyConfiguration: ${field || "document"} ${
        issue?.message ?? "is invalid"
      }`,
    );
  }
  const c = r.data;
  const out: Partial<Mutable<ProxyConfig>> = {};
  if (c.mode) out.mode = c.mode;
  const backend = out.mode === "iptables" ? c.iptables : c.nftables ?? c.iptables;
  if (c.hostnameOverride) out.hostnameOverride = c.hostnameOverride;
  if (c.clusterCIDR) {
    out.clusterCIDRs = c.clusterCIDR.split(",").map((s) => s.trim()).filter(Boolean);
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
  if (c.clientConnection?.kubeconfig) out.kubeconfig = c.clientConnection.kubeconfig;
  if (c.clientConnection?.qps != null) out.kubeApiQps = c.clientConnection.qps;
  if (c.clientConnection?.burst != null) out.kubeApiBurst = c.clientConnection.burst;
  return out;
}
