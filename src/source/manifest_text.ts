/** Manifest text (multi-document YAML, JSON, `kind: List`) → validated objects (pure). */
import yaml from "js-yaml";
import { type KubeObject, type ObjectError, parseKubeObject } from "../model/kube_object.ts";

/** Objects read from manifests, with the ones that failed validation. */
export interface ManifestObjects {
  /** Valid objects kproxy acts on, in file order. */
  readonly objects: readonly KubeObject[];
  /** Objects skipped, each with one clear line. */
  readonly errors: readonly ObjectError[];
}

/**
 * Expands `kind: *List` documents into their items. YAML aliases can make one node appear many
 * times, even inside itself: each node is taken once (a repeat is a duplicate anyway), so a
 * self-containing List or a "billion laughs" of Lists costs no more than the file's size.
 */
function flattenLists(doc: unknown, out: unknown[], seen: Set<unknown>): void {
  if (doc === null || doc === undefined) return;
  if (typeof doc === "object") {
    if (seen.has(doc)) return;
    seen.add(doc);
  }
  if (typeof doc === "object" && !Array.isArray(doc)) {
    const rec = doc as Record<string, unknown>;
    const kind = rec["kind"];
    if (typeof kind === "string" && kind.endsWith("List") && Array.isArray(rec["items"])) {
      for (const item of rec["items"]) flattenLists(item, out, seen);
      return;
    }
  }
  out.push(doc);
}

/** The documents of a file that is one JSON value, or null when it is not JSON (then YAML). */
function jsonDocuments(text: string): unknown[] | null {
  const first = text.trimStart()[0];
  if (first !== "{" && first !== "[") return null;
  try {
    return [JSON.parse(text)];
  } catch {
    return null; // YAML reads it (flow style) or names the syntax error
  }
}

/**
 * A copy of a validated object that owns its strings. js-yaml returns slices of the file's
 * text, so one kept name would pin the whole file in memory (34 MiB of YAML at 10k services).
 */
function detached(object: KubeObject): KubeObject {
  return JSON.parse(JSON.stringify(object));
}

/** Parses the text of one manifest file; `origin` (its path) prefixes every error. */
export function parseManifestText(text: string, origin: string): ManifestObjects {
  const raws: unknown[] = [];
  const json = jsonDocuments(text);
  try {
    const docs = json ?? yaml.loadAll(text, undefined, { schema: yaml.CORE_SCHEMA, json: true });
    const seen = new Set<unknown>();
    // Lists nested through a long chain of aliases can still overflow the stack: caught here.
    for (const doc of docs) flattenLists(doc, raws, seen);
  } catch (e) {
    const reason = e instanceof Error ? e.message.split("\n")[0] : String(e);
    return {
      objects: [],
      errors: [{
        origin,
        kind: "file",
        name: origin,
        field: "",
        message: `${origin}: Cannot parse manifest: ${reason}`,
      }],
    };
  }
  const objects: KubeObject[] = [];
  const errors: ObjectError[] = [];
  for (const raw of raws) {
    const r = parseKubeObject(raw, origin);
    if (r.ok === true) objects.push(json === null ? detached(r.value) : r.value);
    else if (r.ok === false) errors.push(r.error);
  }
  return { objects, errors };
}
