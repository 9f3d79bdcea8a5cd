/** The fields of a `v1 Node` that a kube-proxy reads. */
import { z } from "zod";
import { ipAddress, objectMeta } from "./fields.ts";

/**
 * The taint Cluster Autoscaler puts on a node it is about to remove; kube-proxy's `/healthz`
 * then fails so that load balancers drain the node.
 */
export const TO_BE_DELETED_TAINT = "ToBeDeletedByClusterAutoscaler";

/** The well-known label holding a node's topology zone. */
export const TOPOLOGY_ZONE_LABEL = "topology.kubernetes.io/zone";

/** `v1 Node`, trimmed to what kproxy acts on. */
export const nodeSchema = z.object({
  apiVersion: z.literal("v1", { message: "must be v1" }).optional(),
  kind: z.literal("Node"),
  metadata: objectMeta,
  spec: z.object({
    podCIDRs: z.array(z.string()).nullish(),
    taints: z.array(z.object({
      key: z.string({ message: "is missing" }),
      value: z.string().nullish(),
      effect: z.string().nullish(),
    })).nullish(),
  }).nullish(),
  status: z.object({
    addresses: z.array(z.object({ type: z.string(), address: z.string() })).nullish(),
  }).nullish(),
});

/** A validated Node. */
export type Node = z.infer<typeof nodeSchema>;

/** Checks an address is an IP (used for InternalIP/ExternalIP entries). */
export const nodeIPSchema = ipAddress;
