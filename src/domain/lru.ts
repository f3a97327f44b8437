/**
 * A bounded cache with second-chance (CLOCK) eviction by total weight (bytes,
 * or 1 per entry). A hit only sets a flag — no map reordering on the hot path —
 * and eviction gives recently used entries another round.
 */
export class Lru<K, V> {
  private readonly map = new Map<K, { value: V; weight: number; used: boolean }>();
  private total = 0;

  constructor(
    private readonly budget: number,
    private readonly weigh: (v: V) => number = () => 1,
  ) {}

  get(key: K): V | undefined {
    const hit = this.map.get(key);
    if (!hit) return undefined;
    hit.used = true;
    return hit.value;
  }

  /** How many entries it holds. */
  get size(): number {
    return this.map.size;
  }

  /** The value, without counting it as a use. */
  peek(key: K): V | undefined {
    return this.map.get(key)?.value;
  }

  set(key: K, value: V): void {
    const weight = this.weigh(value);
    if (weight > this.budget) return;
    this.delete(key);
    this.map.set(key, { value, weight, used: false });
    this.total += weight;
    while (this.total > this.budget) {
      const [oldestKey, oldest] = this.map.entries().next().value as [K, { value: V; weight: number; used: boolean }];
      this.map.delete(oldestKey);
      if (oldest.used || oldestKey === key) {
        // Second chance: used since it was last considered (or just set), so it goes to the back.
        oldest.used = false;
        this.map.set(oldestKey, oldest);
      } else this.total -= oldest.weight;
    }
  }

  delete(key: K): void {
    const hit = this.map.get(key);
    if (!hit) return;
    this.total -= hit.weight;
    this.map.delete(key);
  }

  /** Drops every entry `drop` accepts (a walk of the whole cache: for rare events, a tenant deleted). */
  deleteWhere(drop: (key: K, value: V) => boolean): void {
    for (const [key, hit] of this.map) if (drop(key, hit.value)) this.delete(key);
  }

  clear(): void {
    this.map.clear();
    this.total = 0;
  }
}
