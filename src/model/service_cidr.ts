/**
 * The fields of a `networking.k8s.io/v1 ServiceCIDR` that a kube-proxy reads: the ranges
 * ClusterIPs are allocated from. kube-proxy's nftables mode drops traffic to an address inside
 * them that no Service holds.
 */
import { z } from "zod";
import { cidr, objectMeta } from "./fields.ts";

/** `networking.k8s.io/v1 ServiceCIDR`, trimmed to what kproxy acts on. */
export const serviceCIDRSchema = z.object({
  apiVersion: z.literal("networking.k8s.io/v1", { message: "must be networking.k8s.io/v1" })
    .optional(),
  kind: z.literal("ServiceCIDR"),
  metadata: objectMeta,
  spec: z.object({
    cidrs: z.array(cidr).max(2, { message: "must have at most two CIDRs (one per family)" })
      .nullish(),
  }).nullish(),
});

/** A validated ServiceCIDR. */
export type ServiceCIDR = z.infer<typeof serviceCIDRSchema>;
