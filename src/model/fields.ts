/** Zod building blocks shared by the Kubernetes object schemas. */
import { z } from "zod";
import { parseCIDR, parseIP } from "./ip.ts";

/** An IPv4 or IPv6 address in any valid spelling. */
export const ipAddress = z.string().refine((s) => parseIP(s) !== null, {
  message: "is not an IP address",
});

/** A CIDR such as `198.18.0.0/15`. */
export const cidr = z.string().refine((s) => parseCIDR(s.trim()) !== null, {
  message: "is not a CIDR",
});

/** A TCP/UDP/SCTP port number. */
export const portNumber = z.number({ message: "must be a number" }).int({
  message: "must be a whole number",
}).min(1, { message: "must be between 1 and 65535" }).max(65535, {
  message: "must be between 1 and 65535",
});

/** A Kubernetes transport protocol; absent means TCP. */
export const protocol = z.enum(["TCP", "UDP", "SCTP"], {
  message: "must be TCP, UDP or SCTP",
});

/** A DNS-1123 label or subdomain, as Kubernetes object names are. */
export const objectName = z.string({ message: "is missing" }).min(1, { message: "is empty" })
  .max(253, { message: "is longer than 253 characters" })
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, {
    message: "is not a valid Kubernetes name",
  });

/** A port name: a DNS-1123 label (IANA service names included), possibly empty. */
export const portName = z.string().max(63, { message: "is longer than 63 characters" })
  .regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$/, { message: "is not a valid port name" });

/** Labels or annotations; only string values. */
export const stringMap = z.record(z.string(), z.string());

/** Object metadata: only what kproxy reads. */
export const objectMeta = z.object({
  name: objectName,
  namespace: objectName.optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  deletionTimestamp: z.string().nullish(),
  labels: stringMap.nullish(),
  annotations: stringMap.nullish(),
});
