/** Reads a manifest file or folder from disk into validated objects. */
import { type ManifestObjects, parseManifestText } from "./manifest_text.ts";

const MANIFEST_EXTENSIONS = [".yaml", ".yml", ".json"];

/** True for file names kproxy reads as manifests. */
export function isManifestFile(path: string): boolean {
  return MANIFEST_EXTENSIONS.some((ext) => path.endsWith(ext));
}

/**
 * Lists the manifest files under `path` (a file or folder), sorted, recursively. Hidden entries
 * are skipped; symbolic links are followed (a mounted ConfigMap holds only links), each folder once.
 */
export async function listManifestFiles(path: string): Promise<string[]> {
  const info = await Deno.stat(path);
  if (info.isFile) return [path];
  const out: string[] = [];
  const seen = new Set<string>();
  const walk = async (dir: string) => {
    const real = await Deno.realPath(dir);
    if (seen.has(real)) return;
    seen.add(real);
    const names: Deno.DirEntry[] = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry);
    names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of names) {
      if (entry.name.startsWith(".")) continue;
      const full = `${dir.replace(/\/$/, "")}/${entry.name}`;
      let isDirectory = entry.isDirectory;
      let isFile = entry.isFile;
      if (entry.isSymlink) {
        const target = await Deno.stat(full).catch(() => null); // dangling links are skipped
        isDirectory = target?.isDirectory ?? false;
        isFile = target?.isFile ?? false;
      }
      if (isDirectory) await walk(full);
      else if (isFile && isManifestFile(entry.name)) out.push(full);
    }
  };
  await walk(path);
  return out;
}

/** The objects of one manifest file. */
export interface ManifestFile extends ManifestObjects {
  /** The file's path. */
  readonly path: string;
  /** True when the file as a whole could not be read or parsed (its objects are unknown). */
  readonly unreadable: boolean;
}

/**
 * Loads every manifest file under `path`, file by file; a file that cannot be read or parsed
 * gives one error and no objects. Throws when `path` itself cannot be read.
 */
export async function loadManifestFiles(path: string): Promise<ManifestFile[]> {
  let files: string[];
  try {
    files = await listManifestFiles(path);
  } catch (e) {
    const reason = e instanceof Deno.errors.NotFound
      ? "no such file or folder"
      : e instanceof Error
      ? e.message
      : String(e);
    throw new Error(`Cannot read manifests at ${path}: ${reason}`);
  }
  const out: ManifestFile[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue; // removed since it was listed
      const reason = e instanceof Error ? e.message : String(e);
      const message = `${file}: Cannot read manifest: ${reason}`;
      const error = { origin: file, kind: "file", name: file, field: "", message };
      out.push({ path: file, objects: [], errors: [error], unreadable: true });
      continue;
    }
    const parsed = parseManifestText(text, file);
    const unreadable = parsed.errors.some((e) => e.kind === "file");
    out.push({ path: file, ...parsed, unreadable });
  }
  return out;
}

/** Loads every object under `path`; unreadable files and bad objects become errors. */
export async function loadManifests(path: string): Promise<ManifestObjects> {
  const files = await loadManifestFiles(path);
  return {
    objects: files.flatMap((f) => f.objects),
    errors: files.flatMap((f) => f.errors),
  };
}
