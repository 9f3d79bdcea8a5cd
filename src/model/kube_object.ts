/** Validation of raw Kubernetes objects into kproxy's object model. */
import type { z } from "zod";
import { type EndpointSlice, endpointSliceSchema } from "./endpoint_slice.ts";
import { parseIP } from "./ip.ts";
import { type Node, nodeSchema } from "./node.ts";
import { type Service, serviceSchema } from "./service.ts";
import { type ServiceCIDR, serviceCIDRSchema } from "./service_cidr.ts";

/** A validated object kproxy acts on. */
export type KubeObject =
  | { readonly kind: "Service"; readonly object: Service }
  | { readonly kind: "EndpointSlice"; readonly object: EndpointSlice }
  | { readonly kind: "Node"; readonly object: Node }
  | { readonly kind: "ServiceCIDR"; readonly object: ServiceCIDR };

/** The kinds kproxy reads. */
export type KubeKind = KubeObject["kind"];

/** Why an object was rejected: which object, which field, what was wrong. */
export interface ObjectError {
  /** Where the object came from (a file path, or "api"). */
  readonly origin: string;
  /** The object's kind, when known. */
  readonly kind: string;
  /** `namespace/name` (or `name` for cluster-scoped objects), when known. */
  readonly name: string;
  /** The dotted path of the bad field, e.g. `endpoints[2].addresses[0]`. */
  readonly field: string;
  /** One line, naming the object and field. */
  readonly message: string;
}

/** The result of validating one raw object. */
export type ParseResult =
  | { readonly ok: true; readonly value: KubeObject }
  | { readonly ok: false; readonly error: ObjectError }
  | { readonly ok: "ignored"; readonly kind: string };

function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out;
}

function asRecord(value: unknown): Record<string, unknown> | null {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : null;
}

const NAMESPACED_KINDS: ReadonlySet<string> = new Set(["Service", "EndpointSlice"]);

/**
 * `namespace/name` of a raw object, as far as it can be read; namespaced kinds without a
 * namespace are in `default` (as the store keys them), Nodes and unknown kinds have no namespace.
 */
export function rawObjectName(raw: unknown): string {
  const record = asRecord(raw);
  const meta = asRecord(record?.["metadata"]);
  const name = typeof meta?.["name"] === "string" ? meta["name"] : "<unnamed>";
  let ns = typeof meta?.["namespace"] === "string" ? meta["namespace"] : null;
  if (ns === null && NAMESPACED_KINDS.has(String(record?.["kind"]))) ns = "default";
  return ns === null ? name : `${ns}/${name}`;
}

/**
 * `text` as it may appear in a one-line message: characters outside printable ASCII escaped
 * (`\u{a}`), at most `max` characters. Names and keys come from the objects themselves, and a
 * newline in one must not forge a log line.
 */
function printable(text: string, max = 256): string {
  const escaped = text.replace(/[^\x20-\x7e]/g, (c) => `\\u{${c.charCodeAt(0).toString(16)}}`);
  return escaped.length > max ? `${escaped.slice(0, max)}...` : escaped;
}

function objectError(
  origin: string,
  kind: string,
  name: string,
  field: string,
  problem: string,
): ObjectError {
  const where = origin === "" ? "" : `${printable(origin, 4096)}: `;
  const fieldText = field === "" ? "" : `${printable(field)} `;
  return {
    origin,
    kind,
    name,
    field,
    message: `${where}Cannot read ${kind} ${printable(name, 600)}: ${fieldText}${problem}`,
  };
}

/** Zod's expected-type names in words a manifest author reads. */
const EXPECTED_WORDS: Readonly<Record<string, string>> = {
  number: "must be a number",
  int: "must be a whole number",
  string: "must be a string",
  boolean: "must be true or false",
  array: "must be a list",
  object: "must be a mapping",
  record: "must be a mapping",
};

function fromZod(
  origin: string,
  kind: string,
  name: string,
  error: z.ZodError,
  raw: unknown,
): ObjectError {
  const issue = error.issues[0];
  if (issue === undefined) return objectError(origin, kind, name, "", "is invalid");
  const field = formatPath(issue.path);
  let value: unknown = raw;
  for (const p of issue.path) value = (value as Record<PropertyKey, unknown> | undefined)?.[p];
  let problem = issue.message;
  if (issue.code === "invalid_type" && value === undefined) problem = "is missing";
  else if (issue.code === "invalid_type") {
    problem = EXPECTED_WORDS[issue.expected] ?? `must be ${issue.expected}`;
  }
  return objectError(origin, kind, name, field, problem);
}

function withDefaultNamespace<T extends { metadata: { namespace?: string | undefined } }>(
  object: T,
): T {
  if (object.metadata.namespace !== undefined) return object;
  return { ...object, metadata: { ...object.metadata, namespace: "default" } };
}

function checkSliceAddresses(slice: EndpointSlice): { field: string; problem: string } | null {
  if (slice.addressType === "FQDN") return null;
  for (const [i, ep] of (slice.endpoints ?? []).entries()) {
    for (const [j, address] of ep.addresses.entries()) {
      const ip = parseIP(address);
      if (ip === null) {
        return { field: `endpoints[${i}].addresses[${j}]`, problem: "is not an IP address" };
      }
      if (ip.family !== slice.addressType) {
        return {
          field: `endpoints[${i}].addresses[${j}]`,
          problem: `is not an ${slice.addressType} address`,
        };
      }
    }
  }
  return null;
}

/**
 * Validates one raw object (parsed YAML/JSON or an informer's object).
 * Kinds kproxy does not read come back as `ignored`; bad objects as an {@link ObjectError}.
 */
export function parseKubeObject(raw: unknown, origin = ""): ParseResult {
  const record = asRecord(raw);
  const name = rawObjectName(raw);
  if (record === null) {
    return { ok: false, error: objectError(origin, "object", name, "", "is not a mapping") };
  }
  const kind = record["kind"];
  if (typeof kind !== "string") {
    return { ok: false, error: objectError(origin, "object", name, "kind", "is missing") };
  }
  switch (kind) {
    case "Service": {
      const r = serviceSchema.safeParse(raw);
      if (!r.success) return { ok: false, error: fromZod(origin, kind, name, r.error, raw) };
      return { ok: true, value: { kind, object: withDefaultNamespace(r.data) } };
    }
    case "EndpointSlice": {
      const r = endpointSliceSchema.safeParse(raw);
      if (!r.success) return { ok: false, error: fromZod(origin, kind, name, r.error, raw) };
      const bad = checkSliceAddresses(r.data);
      if (bad !== null) {
        return { ok: false, error: objectError(origin, kind, name, bad.field, bad.problem) };
      }
      return { ok: true, value: { kind, object: withDefaultNamespace(r.data) } };
    }
    case "Node": {
      const r = nodeSchema.safeParse(raw);
      if (!r.success) return { ok: false, error: fromZod(origin, kind, name, r.error, raw) };
      return { ok: true, value: { kind, object: r.data } };
    }
    case "ServiceCIDR": {
      const r = serviceCIDRSchema.safeParse(raw);
      if (!r.success) return { ok: false, error: fromZod(origin, kind, name, r.error, raw) };
      return { ok: true, value: { kind, object: r.data } };
    }
    default:
      return { ok: "ignored", kind };
  }
}

/** The store key of an object: `Kind/namespace/name`, or `Kind/name` for cluster-scoped kinds. */
export function objectKey(object: KubeObject): string {
  const meta = object.object.metadata;
  return object.kind === "Node" || object.kind === "ServiceCIDR"
    ? `${object.kind}/${meta.name}`
    : `${object.kind}/${meta.namespace ?? "default"}/${meta.name}`;
}
