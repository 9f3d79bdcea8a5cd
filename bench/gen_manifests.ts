/**
 * Writes a synthetic cluster as manifests, for `kproxy --manifests DIR`, `kproxy render` or
 * `kubectl apply -f DIR`:
 *
 * ```sh
 * deno run -A bench/gen_manifests.ts --services 10000 --out /tmp/c10k [--endpoints 10]
 *   [--seed 1] [--format yaml|json] [--per-file 1000]
 * ```
 *
 * Files: `00-namespaces`, `01-node`, then `services-NNNN` and `slices-NNNN` of `--per-file`
 * objects each, as multi-document YAML or JSON `List`s.
 *
 * @module
 */
import { parseArgs } from "node:util";
import yaml from "js-yaml";
import { type RawObject, type SyntheticCluster, syntheticCluster } from "./synthetic_cluster.ts";

/** How to write manifests. */
export interface WriteManifestsOptions {
  /** `yaml` (default) or `json`. */
  readonly format?: "yaml" | "json";
  /** Objects per file (default 1000). */
  readonly perFile?: number;
}

function fileText(objects: readonly RawObject[], format: "yaml" | "json"): string {
  if (format === "json") {
    return JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }) + "\n";
  }
  return objects.map((o) => yaml.dump(o, { noRefs: true, lineWidth: -1 })).join("---\n");
}

/** Writes `cluster` into `dir` (created when missing); returns the files written. */
export async function writeManifests(
  cluster: SyntheticCluster,
  dir: string,
  options: WriteManifestsOptions = {},
): Promise<string[]> {
  const format = options.format ?? "yaml";
  const perFile = Math.max(1, options.perFile ?? 1000);
  await Deno.mkdir(dir, { recursive: true });
  const files: string[] = [];
  const write = async (name: string, objects: readonly RawObject[]) => {
    const path = `${dir.replace(/\/$/, "")}/${name}.${format}`;
    await Deno.writeTextFile(path, fileText(objects, format));
    files.push(path);
  };
  await write("00-namespaces", cluster.namespaces);
  await write("01-node", [cluster.node]);
  for (
    const [label, list] of [["services", cluster.services], ["slices", cluster.slices]] as const
  ) {
    for (let i = 0; i < list.length; i += perFile) {
      await write(`${label}-${String(i / perFile).padStart(4, "0")}`, list.slice(i, i + perFile));
    }
  }
  return files;
}

const USAGE =
  "usage: gen_manifests.ts --services N --out DIR [--endpoints 10] [--seed 1] [--format yaml|json] [--per-file 1000]";

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      services: { type: "string" },
      out: { type: "string" },
      endpoints: { type: "string", default: "10" },
      seed: { type: "string", default: "1" },
      format: { type: "string", default: "yaml" },
      "per-file": { type: "string", default: "1000" },
    },
  });
  const services = Number(values.services);
  const format = values.format;
  if (
    !Number.isInteger(services) || services < 1 || !values.out ||
    (format !== "yaml" && format !== "json")
  ) {
    console.error(USAGE);
    Deno.exit(2);
  }
  const cluster = syntheticCluster({
    services,
    endpointsPerService: Number(values.endpoints),
    seed: Number(values.seed),
  });
  const files = await writeManifests(cluster, values.out, {
    format,
    perFile: Number(values["per-file"]),
  });
  console.log(
    `wrote ${cluster.services.length} services, ${cluster.slices.length} EndpointSlices ` +
      `(${cluster.mix["endpoints"]} endpoints) in ${files.length} files to ${values.out}`,
  );
  console.log(`mix: ${JSON.stringify(cluster.mix)}`);
}
