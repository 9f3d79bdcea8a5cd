/** Reads a manifest file or folder from disk into validated objects. */
import { type ManifestObjects, parseManifestText } from "./manifest_text.ts";

const MANIFEST_EXTENSIONS = [".yaml", ".yml", ".json"];

/** True for file names kproxy reads as manifests. */
export function isManifestFile(path: string): boolean {
  return MANIFEST_EXTENSIONS.some((ext) => path.endsWith(ext));
}

/** Lists the manifest files under `path` (a file or folder), sorted, recursively. */
export async function listManifestFiles(path: string): Promise<string[]> {
  const info = await Deno.stat(path);
  if (info.isFile) return [path];
  const out: string[] = [];
  const walk = async (dir: string) => {
    const names: Deno.DirEntry[] = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry);
    names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of names) {
      if (entry.name.startsWith(".")) continue;
      const full = `${dir.replace(/\/$/, "")}/${entry.name}`;
      if (entry.isDirectory) await walk(full);
      else if (entry.isFile && isManifestFile(entry.name)) out.push(full);
    }
  };
  await walk(path);
  return out;
}

/** Loads every object under `path`; unreadable files and bad objects become errors. */
export async function loadManifests(path: string): Promise<ManifestObjects> {
  let files: string[];
  try {
    files = await listManifestFiles(path);
  } catch (e) {
    const reason = e instanceof Deno.errors.NotFound ? "no such file or folder" : String(e);
    throw new Error(`Cannot read manifests at ${path}: ${reason}`);
  }
  const objects: ManifestObjects["objects"][number][] = [];
  const errors: ManifestObjects["errors"][number][] = [];
  for (const file of files) {
    const text = await Deno.readTextFile(file);
    const parsed = parseManifestText(text, file);
    objects.push(...parsed.objects);
    errors.push(...parsed.errors);
  }
  return { objects, errors };
}
