/** The fields of a `discovery.k8s.io/v1 EndpointSlice` that a kube-proxy reads. */
import { z } from "zod";
import { objectMeta, portName, portNumber, protocol } from "./fields.ts";

/** The label that ties a slice to its Service. */
export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";
/** The annotation upstream uses for network programming latency. */
export const LAST_CHANGE_TRIGGER_TIME_ANNOTATION =
  "endpoints.kubernetes.io/last-change-trigger-time";

/** One endpoint of a slice. Addresses are checked against the slice's addressType later. */
export const endpointSchema = z.object({
  addresses: z.array(z.string()).min(1, { message: "must have at least one address" }),
  conditions: z.object({
    ready: z.boolean().nullish(),
    serving: z.boolean().nullish(),
    terminating: z.boolean().nullish(),
  }).nullish(),
  nodeName: z.string().nullish(),
  zone: z.string().nullish(),
  hints: z.object({
    forZones: z.array(z.object({ name: z.string() })).nullish(),
    forNodes: z.array(z.object({ name: z.string() })).nullish(),
  }).nullish(),
});

/** One port of a slice; a null port means "all ports" and is unusable for proxying. */
export const endpointPortSchema = z.object({
  name: portName.nullish(),
  protocol: protocol.nullish(),
  port: portNumber.nullish(),
});

/** `discovery.k8s.io/v1 EndpointSlice`, trimmed to what kproxy acts on. */
export const endpointSliceSchema = z.object({
  apiVersion: z.literal("discovery.k8s.io/v1", { message: "must be discovery.k8s.io/v1" })
    .optional(),
  kind: z.literal("EndpointSlice"),
  metadata: objectMeta,
  addressType: z.enum(["IPv4", "IPv6", "FQDN"], { message: "must be IPv4, IPv6 or FQDN" }),
  endpoints: z.array(endpointSchema).nullish(),
  ports: z.array(endpointPortSchema).nullish(),
});

/** A validated EndpointSlice. */
export type EndpointSlice = z.infer<typeof endpointSliceSchema>;
/** A validated endpoint of a slice. */
export type EndpointSpec = z.infer<typeof endpointSchema>;
