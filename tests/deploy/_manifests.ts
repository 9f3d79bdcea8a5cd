/**
 * Loads the shipped Kubernetes manifests (deploy/kubernetes) for the deploy tests.
 *
 * @module
 */

import yaml from "js-yaml";

/** The repository root. */
export const REPO_DIR: string = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** The folder of the shipped Kubernetes manifests. */
export const KUBERNETES_DIR = `${REPO_DIR}/deploy/kubernetes`;

/** A Kubernetes object as parsed from YAML (loosely typed: the tests check the shape). */
export interface ManifestObject {
  /** `apiVersion`. */
  readonly apiVersion: string;
  /** `kind`. */
  readonly kind: string;
  /** `metadata`. */
  readonly metadata: { readonly name: string; readonly namespace?: string };
  /** Everything else. */
  readonly [field: string]: unknown;
}

/** One parsed document and the file it came from. */
export interface ManifestDocument {
  /** File name inside deploy/kubernetes. */
  readonly file: string;
  /** The object. */
  readonly object: ManifestObject;
}

/** Every `*.yaml` file in deploy/kubernetes except kustomization.yaml, sorted. */
export function manifestFiles(): string[] {
  return [...Deno.readDirSync(KUBERNETES_DIR)]
    .filter((e) => e.isFile && e.name.endsWith(".yaml") && e.name !== "kustomization.yaml")
    .map((e) => e.name)
    .sort();
}

/** Parses every document of every manifest file; throws naming the file on a YAML error. */
export function loadShippedManifests(): ManifestDocument[] {
  const out: ManifestDocument[] = [];
  for (const file of manifestFiles()) {
    const text = Deno.readTextFileSync(`${KUBERNETES_DIR}/${file}`);
    let docs: unknown[];
    try {
      docs = yaml.loadAll(text, undefined, { filename: file });
    } catch (e) {
      throw new Error(`Cannot parse deploy/kubernetes/${file}: ${(e as Error).message}`);
    }
    for (const doc of docs) {
      if (doc === null || doc === undefined) continue;
      out.push({ file, object: doc as ManifestObject });
    }
  }
  return out;
}

/** The one object of `kind` named `name`; throws when missing. */
export function findObject(
  docs: readonly ManifestDocument[],
  kind: string,
  name: string,
): ManifestObject {
  const found = docs.find((d) => d.object.kind === kind && d.object.metadata?.name === name);
  if (found === undefined) throw new Error(`deploy/kubernetes has no ${kind} ${name}`);
  return found.object;
}
