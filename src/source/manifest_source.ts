/** Watches a manifest file or folder and emits events for what changed, coalescing bursts. */
import { dirname, resolve } from "node:path";
import { type ObjectError, objectKey } from "../model/kube_object.ts";
import type { ProxyEvent } from "../snapshot/proxy_state.ts";
import { loadManifestFiles, type ManifestFile } from "./manifest_loader.ts";
import { diffObjectSets, type ObjectSet, toObjectSet } from "./object_set_diff.ts";

/** Options of {@link ManifestSource}. */
export interface ManifestSourceOptions {
  /** Quiet time after the last file event before reloading, ms (default 50). */
  readonly debounceMs?: number;
  /** Receives the events of each reload, and the objects that failed validation. */
  readonly onEvents: (events: ProxyEvent[], errors: readonly ObjectError[]) => void;
  /** Called once after the first load: the source has synced. */
  readonly onSynced?: () => void;
  /** Log sink. */
  readonly log?: (line: string) => void;
}

/** A source that reads manifests from disk and follows edits. */
export class ManifestSource {
  readonly #path: string;
  readonly #opts: ManifestSourceOptions;
  #current: ObjectSet = new Map();
  #keysByFile = new Map<string, readonly string[]>();
  #watcher: Deno.FsWatcher | null = null;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #reloading: Promise<void> = Promise.resolve();
  #done: Promise<void> = Promise.resolve();
  #stopped = false;

  /** Makes a source for `path` (a file or folder). */
  constructor(path: string, options: ManifestSourceOptions) {
    this.#path = path;
    this.#opts = options;
  }

  /** Loads once (throws when the path cannot be read), then watches for changes. */
  async start(): Promise<void> {
    await this.#reload(true);
    this.#opts.onSynced?.();
    this.#stopped = false;
    // A single file is watched through its folder: editors and `kubectl` replace files by
    // renaming a new one over them, which ends a watch on the file itself.
    const isFile = (await Deno.stat(this.#path)).isFile;
    const file = isFile ? resolve(this.#path) : null;
    this.#watcher = Deno.watchFs(file === null ? this.#path : dirname(file), {
      recursive: !isFile,
    });
    const watcher = this.#watcher;
    this.#done = (async () => {
      try {
        for await (const event of watcher) {
          if (file === null || event.paths.some((p) => resolve(p) === file)) this.#schedule();
        }
      } catch { /* closed */ }
    })();
  }

  /** Stops watching; no events are reported after it resolves. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#watcher?.close();
    this.#watcher = null;
    await this.#done;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#reloading;
  }

  #schedule(): void {
    if (this.#stopped) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      // A failing reload (or callback) is logged and must not stop the ones after it.
      this.#reloading = this.#reloading.then(() => this.#reload(false)).catch((e) => {
        this.#opts.log?.(`reloading ${this.#path} failed: ${e instanceof Error ? e.message : e}`);
      });
    }, this.#opts.debounceMs ?? 50);
  }

  async #reload(first: boolean): Promise<void> {
    let files: ManifestFile[];
    try {
      files = await loadManifestFiles(this.#path);
    } catch (e) {
      if (first) throw e;
      this.#opts.log?.(`${e instanceof Error ? e.message : String(e)}; keeping the last objects`);
      return;
    }
    const objects = files.flatMap((f) => f.objects);
    const errors = files.flatMap((f) => f.errors);
    for (const error of errors) this.#opts.log?.(`skipped: ${error.message}`);
    const next = new Map(toObjectSet(objects));
    const keysByFile = new Map<string, readonly string[]>();
    // An object that turned invalid keeps its last good version: its rules stay as they were.
    const keep = (key: string) => {
      const previous = this.#current.get(key);
      if (previous !== undefined && !next.has(key)) next.set(key, previous);
    };
    for (const file of files) {
      let keys = file.objects.map(objectKey);
      if (file.unreadable) {
        // The whole file failed (say, saved half-way): everything it held stays.
        keys = [...(this.#keysByFile.get(file.path) ?? [])];
        for (const key of keys) keep(key);
      }
      for (const error of file.errors) keep(`${error.kind}/${error.name}`);
      keysByFile.set(file.path, keys);
    }
    const events = first
      ? [{ type: "replace" as const, objects }]
      : diffObjectSets(this.#current, next);
    this.#current = next;
    this.#keysByFile = keysByFile;
    if (first || events.length > 0 || errors.length > 0) this.#opts.onEvents(events, errors);
  }
}
