// Write premiums (a cache write billed above the input price) and whether a later request read what they
// bought. A request's premium is kept in parts: the tokens of one segment it wrote, the rollup rows they count
// on (`handle@version`, and `*@0` for the tenant), and what they cost. A later request that reads a prefix of
// [0, R) tokens from that write has read the parts inside it, and only those; what is left may be read by a
// later one still. Until the write's TTL has passed it is `pending`; then, unread, its premium was wasted.

import { overlap } from './attribution';

export interface PremiumPart {
  /** Rollup rows the part counts on: `handle@version` … and `*@0`. */
  keys: string[];
  /** The written tokens, in the writer's prompt. */
  from: number;
  to: number;
  /** USD. */
  premium: number;
  /** When this part's TTL ends, where the write had several (else the write's `expires_at`). */
  expires_at?: number;
}

/** As stored with the reconciliation: the parts still unread, and when the write's TTL ends. */
export interface StoredPremium {
  v: 2;
  parts: PremiumPart[];
  expires_at: number;
}

/** Parts of a stored premium. Rows from before parts were kept hold `{ key: premium }`: one part per key, read whole. */
export function partsOf(stored: unknown): PremiumPart[] {
  if (!stored || typeof stored !== 'object') return [];
  const s = stored as Partial<StoredPremium> & Record<string, unknown>;
  if (s.v === 2 && Array.isArray(s.parts)) return s.parts;
  return Object.entries(s)
    .filter((e): e is [string, number] => typeof e[1] === 'number' && e[1] > 0)
    // One token long: any read reads it whole, as these rows were marked before.
    .map(([key, premium]) => ({ keys: [key], from: 0, to: 1, premium }));
}

/** Splits parts at a read of [0, readEnd): the premium read per rollup key, and the parts left unread. */
export function readUpTo(parts: PremiumPart[], readEnd: number): { read: Map<string, number>; left: PremiumPart[] } {
  const read = new Map<string, number>();
  const left: PremiumPart[] = [];
  for (const p of parts) {
    const len = p.to - p.from;
    const covered = overlap(p.from, p.to, 0, readEnd);
    const premium = len > 0 ? (p.premium * covered) / len : p.premium;
    if (covered > 0) for (const k of p.keys) read.set(k, (read.get(k) ?? 0) + premium);
    if (covered < len) left.push({ ...p, from: Math.max(p.from, readEnd), premium: p.premium - premium });
  }
  return { read, left };
}

/** The total premium of parts per rollup key. */
export function premiumByKey(parts: PremiumPart[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of parts) for (const k of p.keys) out.set(k, (out.get(k) ?? 0) + p.premium);
  return out;
}

/** An unread write whose TTL has not passed: it may still be read. */
export interface PendingWrite {
  tenantId: string;
  model: string;
  /** The writer's start day (its rollups' day). */
  day: number;
  expiresAt: number;
  parts: PremiumPart[];
}

/** A pending premium on one rollup row, as reports fold it in. */
export interface PendingRow {
  handle_id: string;
  version: number;
  day: number;
  model: string;
  write_premium_pending: number;
}

/**
 * Writes whose premium is not yet read and whose TTL has not passed, by writer. Kept in memory, rebuilt
 * from the database at start (the writes of the last TTL); a write another process on the file made is
 * not known here, so it counts as unread until it is read.
 *
 * A write is also kept, past its TTL or read whole, while it is `held`: its reconciliation, or a read of it,
 * is not in the database yet. A later reader must then find what is left of it here — the database still
 * holds the parts as they were, and reading them again would count the same premium read twice.
 */
export class PendingPremiums {
  private readonly writes = new Map<string, PendingWrite>();
  /** Writer ids per tenant: a tenant's report walks its own writes only. */
  private readonly byTenant = new Map<string, Set<string>>();
  /** Writes with that many changes not yet in the database. */
  private readonly holds = new Map<string, number>();
  private sweepAt = 1024;

  set(writerId: string, write: PendingWrite, now: number): void {
    if (write.parts.length === 0 && !this.holds.has(writerId)) return this.forget(writerId);
    this.writes.set(writerId, write);
    let ids = this.byTenant.get(write.tenantId);
    if (!ids) this.byTenant.set(write.tenantId, (ids = new Set()));
    ids.add(writerId);
    // Without reports to prune it, the map is swept whenever it has doubled.
    if (this.writes.size >= this.sweepAt) {
      for (const [id, w] of this.writes) if (w.expiresAt <= now && !this.holds.has(id)) this.forget(id);
      this.sweepAt = Math.max(1024, this.writes.size * 2);
    }
  }

  forget(writerId: string): void {
    const w = this.writes.get(writerId);
    if (!w) return;
    this.writes.delete(writerId);
    const ids = this.byTenant.get(w.tenantId);
    ids?.delete(writerId);
    if (ids?.size === 0) this.byTenant.delete(w.tenantId);
  }

  /** A change to the write (its reconciliation, or a read of it) is on its way to the database: keep it here till then. */
  hold(writerId: string): void {
    this.holds.set(writerId, (this.holds.get(writerId) ?? 0) + 1);
  }

  /** That change is in the database (or failed): the write may be dropped once it is read whole or past its TTL. */
  release(writerId: string, now: number): void {
    const n = (this.holds.get(writerId) ?? 0) - 1;
    if (n > 0) return void this.holds.set(writerId, n);
    this.holds.delete(writerId);
    const w = this.writes.get(writerId);
    if (w && (w.parts.length === 0 || w.expiresAt <= now)) this.forget(writerId);
  }

  /** The parts still unread, when the write is still pending here. */
  get(writerId: string): PendingWrite | undefined {
    return this.writes.get(writerId);
  }

  /** A tenant's pending premiums at `now`, one row per rollup key; writes past their TTL are dropped. */
  rows(tenantId: string, now: number): PendingRow[] {
    const out: PendingRow[] = [];
    for (const id of [...(this.byTenant.get(tenantId) ?? [])]) {
      const w = this.writes.get(id)!;
      if (w.expiresAt <= now) {
        if (!this.holds.has(id)) this.forget(id);
        continue;
      }
      for (const [key, premium] of premiumByKey(w.parts.filter((p) => (p.expires_at ?? w.expiresAt) > now))) {
        const at = key.lastIndexOf('@');
        out.push({ handle_id: key.slice(0, at), version: Number(key.slice(at + 1)), day: w.day, model: w.model, write_premium_pending: premium });
      }
    }
    return out;
  }

  /** A tenant deleted: its writes are forgotten (held ones too: their reconciliation is refused or being deleted). */
  forgetTenant(tenantId: string): void {
    for (const id of [...(this.byTenant.get(tenantId) ?? [])]) this.forget(id);
  }

  clear(): void {
    this.writes.clear();
    this.byTenant.clear();
  }
}
