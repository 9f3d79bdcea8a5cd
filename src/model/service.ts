/** The fields of a `v1 Service` that a kube-proxy reads. */
import { z } from "zod";
import { cidr, ipAddress, objectMeta, portName, portNumber, protocol } from "./fields.ts";

/** One entry of `spec.ports`. */
export const servicePortSchema = z.object({
  name: portName.nullish(),
  protocol: protocol.nullish(),
  port: portNumber,
  nodePort: portNumber.nullish(),
});

/** `v1 Service`, trimmed to what kproxy acts on; unknown fields are dropped. */
export const serviceSchema = z.object({
  apiVersion: z.literal("v1", { message: "must be v1" }).optional(),
  kind: z.literal("Service"),
  metadata: objectMeta,
  spec: z.object({
    type: z.enum(["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"], {
      message: "must be ClusterIP, NodePort, LoadBalancer or ExternalName",
    }).nullish(),
    clusterIP: z.union([ipAddress, z.literal("None"), z.literal("")]).nullish(),
    clusterIPs: z.array(z.union([ipAddress, z.literal("None")])).max(2).nullish(),
    ipFamilies: z.array(z.enum(["IPv4", "IPv6"])).max(2).nullish(),
    ports: z.array(servicePortSchema).nullish(),
    externalIPs: z.array(ipAddress).nullish(),
    externalName: z.string().nullish(),
    sessionAffinity: z.enum(["None", "ClientIP"], { message: "must be None or ClientIP" })
      .nullish(),
    sessionAffinityConfig: z.object({
      clientIP: z.object({
        timeoutSeconds: z.number().int().min(1, { message: "must be between 1 and 86400" })
          .max(86400, { message: "must be between 1 and 86400" }).nullish(),
      }).nullish(),
    }).nullish(),
    externalTrafficPolicy: z.enum(["Cluster", "Local"], { message: "must be Cluster or Local" })
      .nullish(),
    internalTrafficPolicy: z.enum(["Cluster", "Local"], { message: "must be Cluster or Local" })
      .nullish(),
    healthCheckNodePort: portNumber.nullish(),
    loadBalancerSourceRanges: z.array(cidr).nullish(),
    trafficDistribution: z.string().nullish(),
  }).default({}),
  status: z.object({
    loadBalancer: z.object({
      ingress: z.array(z.object({
        ip: ipAddress.nullish(),
        hostname: z.string().nullish(),
        // Any text: an ipMode other than VIP (Proxy, or one a later API adds) only means
        // "not a VIP", as upstream's IsVIPMode reads it; it never makes the Service unreadable.
        ipMode: z.string().nullish(),
      })).nullish(),
    }).nullish(),
  }).nullish(),
});

/** A validated Service. */
export type Service = z.infer<typeof serviceSchema>;
/** A validated entry of a Service's `spec.ports`. */
export type ServicePortSpec = z.infer<typeof servicePortSchema>;
