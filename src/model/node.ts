/** The fields of a `v1 Node` that a kube-proxy reads. */
import { z } from "zod";
import { ipAddress, objectMeta } from "./fields.ts";

/** The well-known label holding a node's topology zone. */
export const TOPOLOGY_ZONE_LABEL = "topology.kubernetes.io/zone";

/** `v1 Node`, trimmed to what kproxy acts on. */
export const nodeSchema = z.object({
  apiVersion: z.literal("v1", { message: "must be v1" }).optional(),
  kind: z.literal("Node"),
  metadata: objectMeta,
  spec: z.object({
    podCIDRs: z.array(z.string()).nullish(),
  }).nullish(),
  status: z.object({
    addresses: z.array(z.object({ type: z.string(), address: z.string() })).nullish(),
  }).nullish(),
});

/** A validated Node. */
export type Node = z.infer<typeof nodeSchema>;

/** Checks an address is an IP (used for InternalIP/ExternalIP entries). */
export const nodeIPSchema = ipAddress;
