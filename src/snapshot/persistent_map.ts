/**
 * An immutable string-keyed map whose next version costs O(change), not O(size): the entries are
 * spread over {@link BUCKETS} small buckets by a hash of the key, and a new version shares every
 * bucket it did not touch with the old one. The reconciler keeps its objects in these, so one
 * changed Service in a cluster of 100,000 copies one bucket of ~100 entries, not 100,000.
 *
 * Reading is the `ReadonlyMap` interface; writing goes through an {@link MapEditor}, which copies
 * each bucket it touches once per batch and hands back the new version.
 *
 * @module
 */

/** Number of buckets (a power of two). */
export const BUCKETS = 1024;

function bucketOf(key: string): number {
  // FNV-1a, 32 bits.
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) & (BUCKETS - 1);
}

type Bucket<V> = ReadonlyMap<string, V>;
const EMPTY: ReadonlyMap<string, unknown> = new Map<string, unknown>();

/** An immutable map; see the module. */
export class PersistentMap<V> implements ReadonlyMap<string, V> {
  readonly #buckets: readonly (Bucket<V> | undefined)[];
  /** Number of entries. */
  readonly size: number;

  private constructor(buckets: readonly (Bucket<V> | undefined)[], size: number) {
    this.#buckets = buckets;
    this.size = size;
  }

  /** The empty map. */
  static empty<V>(): PersistentMap<V> {
    return new PersistentMap<V>(new Array(BUCKETS).fill(undefined), 0);
  }

  /** A map holding `entries`. */
  static from<V>(entries: Iterable<readonly [string, V]>): PersistentMap<V> {
    const editor = PersistentMap.empty<V>().edit();
    for (const [k, v] of entries) editor.set(k, v);
    return editor.done();
  }

  /** The value of `key`. */
  get(key: string): V | undefined {
    return this.#buckets[bucketOf(key)]?.get(key);
  }

  /** True when `key` is in the map. */
  has(key: string): boolean {
    return this.#buckets[bucketOf(key)]?.has(key) ?? false;
  }

  /** Every entry (bucket by bucket; no order is promised). */
  *entries(): MapIterator<[string, V]> {
    for (const b of this.#buckets) if (b !== undefined) yield* b.entries();
  }

  /** Every key. */
  *keys(): MapIterator<string> {
    for (const b of this.#buckets) if (b !== undefined) yield* b.keys();
  }

  /** Every value. */
  *values(): MapIterator<V> {
    for (const b of this.#buckets) if (b !== undefined) yield* b.values();
  }

  /** Calls `fn` for each entry. */
  forEach(fn: (value: V, key: string, map: ReadonlyMap<string, V>) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this);
  }

  /** Same as {@link entries}. */
  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  /** An editor that makes the next version from this one. */
  edit(): MapEditor<V> {
    return new MapEditor(this.#buckets, this.size, (b, s) => new PersistentMap(b, s));
  }
}

/** Writes one batch of changes; {@link done} returns the new version (this one is unchanged). */
export class MapEditor<V> implements ReadonlyMap<string, V> {
  #buckets: (Bucket<V> | undefined)[] | null = null;
  readonly #base: readonly (Bucket<V> | undefined)[];
  readonly #owned = new Set<number>();
  #finished = false;
  #size: number;
  readonly #make: (b: readonly (Bucket<V> | undefined)[], size: number) => PersistentMap<V>;

  /** Made by {@link PersistentMap.edit}. */
  constructor(
    base: readonly (Bucket<V> | undefined)[],
    size: number,
    make: (b: readonly (Bucket<V> | undefined)[], size: number) => PersistentMap<V>,
  ) {
    this.#base = base;
    this.#size = size;
    this.#make = make;
  }

  get #current(): readonly (Bucket<V> | undefined)[] {
    return this.#buckets ?? this.#base;
  }

  #writable(i: number): Map<string, V> {
    if (this.#finished) throw new Error("Cannot change a PersistentMap editor after done()");
    if (this.#buckets === null) this.#buckets = [...this.#base];
    if (!this.#owned.has(i)) {
      this.#buckets[i] = new Map((this.#buckets[i] ?? EMPTY) as ReadonlyMap<string, V>);
      this.#owned.add(i);
    }
    return this.#buckets[i] as Map<string, V>;
  }

  /** Number of entries now. */
  get size(): number {
    return this.#size;
  }

  /** Sets `key`. */
  set(key: string, value: V): this {
    const b = this.#writable(bucketOf(key));
    if (!b.has(key)) this.#size++;
    b.set(key, value);
    return this;
  }

  /** Deletes `key`; true when it was there. */
  delete(key: string): boolean {
    const i = bucketOf(key);
    if (!(this.#current[i]?.has(key) ?? false)) return false;
    this.#writable(i).delete(key);
    this.#size--;
    return true;
  }

  /** The value of `key` now. */
  get(key: string): V | undefined {
    return this.#current[bucketOf(key)]?.get(key);
  }

  /** True when `key` is in the map now. */
  has(key: string): boolean {
    return this.#current[bucketOf(key)]?.has(key) ?? false;
  }

  /** Every entry now. */
  *entries(): MapIterator<[string, V]> {
    for (const b of this.#current) if (b !== undefined) yield* b.entries();
  }

  /** Every key now. */
  *keys(): MapIterator<string> {
    for (const b of this.#current) if (b !== undefined) yield* b.keys();
  }

  /** Every value now. */
  *values(): MapIterator<V> {
    for (const b of this.#current) if (b !== undefined) yield* b.values();
  }

  /** Calls `fn` for each entry. */
  forEach(fn: (value: V, key: string, map: ReadonlyMap<string, V>) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this);
  }

  /** Same as {@link entries}. */
  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  /** The new version (the editor must not be used after). */
  done(): PersistentMap<V> {
    const buckets = this.#buckets ?? this.#base;
    this.#finished = true;
    return this.#make(buckets, this.#size);
  }
}
