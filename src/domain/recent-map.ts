/**
 * A map whose keys keep the order they were last set in, oldest first, evicted past `max`: what a Map does whose
 * keys are deleted and set again to move them to its end, and whose oldest (`keys().next()`) are deleted.
 *
 * Not a plain Map: V8 keeps a deleted key's slot until it rebuilds the table, a lookup walks the deleted slots of its
 * bucket, and `keys().next()` every one before the oldest (see tokens.ts). A key moved to the end on every report (a
 * system prompt's prefix) left thousands of slots behind, walked by each later lookup (~6 µs a report at 8K keys).
 * Here moving a key appends to a queue; the entry it left behind is skipped when eviction comes to it.
 */
export class RecentMap<K, V> {
  private readonly map = new Map<K, { value: V; at: number }>();
  /** Keys in the order they were set (a key set again has a later entry; only its latest `at` is live). */
  private queue: Array<{ key: K; at: number }> = [];
  private head = 0;
  private sets = 0;
  /** `sets` at the last changes(). */
  private taken = 0;

  constructor(private readonly max: number) {}

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    return this.map.get(key)?.value;
  }

  /** Sets `key` as the newest (evict with `trim`). */
  set(key: K, value: V): void {
    const at = ++this.sets;
    this.map.set(key, { value, at });
    this.queue.push({ key, at });
    this.tidy();
  }

  /** The live entries, oldest first: set again in this order into a new map, they evict as they would here. */
  entries(): Array<[K, V]> {
    const out: Array<[K, V]> = [];
    for (let i = this.head; i < this.queue.length; i++) {
      const { key, at } = this.queue[i]!;
      const e = this.map.get(key);
      if (e?.at === at) out.push([key, e.value]);
    }
    return out;
  }

  /**
   * The live entries set since the last call (every one at the first), oldest first: a copy that sets each call's in
   * this order holds, once trimmed, what this map does once trimmed (an entry set and evicted between two calls was
   * evicted by newer ones, which the next call gives). A map of 8K keys is kept by the few thousand a snapshot's
   * requests set, not written whole each time.
   */
  changes(): Array<[K, V]> {
    const out: Array<[K, V]> = [];
    for (let i = this.queue.length - 1; i >= this.head && this.queue[i]!.at > this.taken; i--) {
      const { key, at } = this.queue[i]!;
      const e = this.map.get(key);
      if (e?.at === at) out.push([key, e.value]);
    }
    this.taken = this.sets;
    return out.reverse();
  }

  /** Evicts the oldest keys until at most `max` are left. */
  trim(): void {
    while (this.map.size > this.max) {
      const { key, at } = this.queue[this.head++]!;
      if (this.map.get(key)?.at === at) this.map.delete(key);
    }
    this.tidy();
  }

  /** Drops the dead entries (evicted, or left behind by a key set again) once they outnumber the live ones. */
  private tidy(): void {
    if (this.queue.length <= 2 * this.map.size + 1024) return;
    this.queue = this.queue.slice(this.head).filter((e) => this.map.get(e.key)?.at === e.at);
    this.head = 0;
  }
}
