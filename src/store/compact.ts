// A long session's requests stored in room that grows with what is new in each, not with the session's length.
//
// A request through a session has a segment per session batch, and its outcome one per segment: stored as they are,
// a call at round N writes O(N), a session of N rounds O(N²). Here a request's run of batches is stored as a reference
// (the session, a version range) to the batches' rows in `session_batches`, each written once per session, version and
// rendering variant; and an outcome's run of batches read in full at the cache price (`captured`) as one entry, each
// segment's outcome computed again from its length and the two prices. Every compact entry is checked when written: it
// expands to the exact JSON of what it replaces, else that segment is stored as it is. The reader takes both shapes
// (rows written before this were arrays).

import { sha256Hex } from '../domain/digest';

// The stored JSON's shapes, looser than the domain's RenderedSegment and SegmentOutcome (a section or a class is any
// string here): rows of every earlier version pass through as they were written.
interface Segment {
  source: string;
  path: string[];
  section: string;
  byte_start: number;
  byte_end: number;
  token_start: number;
  token_end: number;
  tokens_estimated: boolean;
  blocks: number;
  digest: string;
  chain: string;
  units: Array<[string, number, number] | [string, number, number, string]>;
}

/** A session batch as stored once in `session_batches`: what its segment holds that its place in a request does not set. */
type BatchEntry = [section: string, bytes: number, estimated: 0 | 1, digest: string, units: Segment['units']];

/** A request's segments as stored: `v` the variant its batches are stored under; `s` segments, or runs `[session, from, to, form?]`. */
export interface CompactSegments {
  v: string;
  s: Array<Segment | [string, number, number] | [string, number, number, number]>;
}

/** Reads the stored entries of a session's versions [from, to] under a variant, by version (JSON text). */
export type ReadBatches = (session: string, variant: string, from: number, to: number) => Map<number, string>;

const BATCH_SOURCE = /^(ses_[^@]+)@(\d+)$/;

/** A session batch's source as its session and version, when it is spelled as they expand to (`ses_…@7`, not `@07`). */
function batchRef(source: unknown): { session: string; version: number } | null {
  const m = typeof source === 'string' ? BATCH_SOURCE.exec(source) : null;
  const version = Number(m?.[2]);
  return m && Number.isSafeInteger(version) && `${m[1]}@${version}` === source ? { session: m[1]!, version } : null;
}
const START = { byte_end: 0, token_end: 0, chain: '' };

/** The variant a request's batches are stored under: what besides its bytes shapes a batch's segment (the rest is checked). */
export function batchVariant(r: { format: string; catalogEntry: string; messageSettings?: string | null }): string {
  return sha256Hex(`${r.format}\n${r.catalogEntry}\n${r.messageSettings ?? ''}`).slice(0, 16);
}

function batchSegment(session: string, version: number, entry: BatchEntry, prev: Pick<Segment, 'byte_end' | 'token_end' | 'chain'>): Segment {
  const [section, bytes, estimated, digest, units] = entry;
  const source = `${session}@${version}`;
  let tokens = 0;
  let blocks = 0;
  for (const u of units) {
    tokens += u[1];
    blocks += u[2];
  }
  return {
    source,
    path: [source],
    section,
    byte_start: prev.byte_end,
    byte_end: prev.byte_end + bytes,
    token_start: prev.token_end,
    token_end: prev.token_end + tokens,
    tokens_estimated: estimated === 1,
    blocks,
    digest,
    chain: sha256Hex(prev.chain + digest),
    units,
  };
}

/** A segment's keys in the order batchSegment writes them. */
const SEGMENT_KEYS = 'source,path,section,byte_start,byte_end,token_start,token_end,tokens_estimated,blocks,digest,chain,units';

/**
 * The batch entry a segment is, when it expands to exactly its JSON after the segment before it: batchSegment's every
 * field checked against the segment's own, its keys in that order (as JSON.stringify of both would compare them, at a
 * fraction of the cost on a long session's hundreds of batches).
 */
function asBatch(seg: Segment, prev: Pick<Segment, 'byte_end' | 'token_end' | 'chain'>): { session: string; version: number; entry: string } | null {
  const ref = batchRef(seg?.source);
  if (!ref || !Array.isArray(seg.units) || typeof seg.digest !== 'string' || typeof seg.section !== 'string' || typeof seg.tokens_estimated !== 'boolean') return null;
  if (!Array.isArray(seg.path) || seg.path.length !== 1 || seg.path[0] !== seg.source || Object.keys(seg).join(',') !== SEGMENT_KEYS) return null;
  let tokens = 0;
  let blocks = 0;
  for (const u of seg.units) {
    if (!Array.isArray(u) || typeof u[1] !== 'number' || typeof u[2] !== 'number') return null;
    tokens += u[1];
    blocks += u[2];
  }
  const bytes = seg.byte_end - seg.byte_start;
  if (!Number.isSafeInteger(seg.byte_end) || seg.byte_start !== prev.byte_end || seg.byte_end !== prev.byte_end + bytes) return null;
  if (seg.token_start !== prev.token_end || seg.token_end !== prev.token_end + tokens || seg.blocks !== blocks) return null;
  if (seg.chain !== sha256Hex(prev.chain + seg.digest)) return null;
  const entry: BatchEntry = [seg.section, bytes, seg.tokens_estimated ? 1 : 0, seg.digest, seg.units];
  return { ...ref, entry: JSON.stringify(entry) };
}

/**
 * The forms a batch may be stored in under one variant: a model that reads only the current turn's thinking counts a
 * batch's thinking while its tool loop is under way and not from the next question on (thinking.ts), so a batch has
 * two forms in one session; past these, a segment is kept whole.
 */
export const BATCH_FORMS = 4;

/** The variant column of a batch's form `n` (form 0: the variant itself, as rows written before forms). */
const formVariant = (variant: string, n: number) => (n === 0 ? variant : `${variant}.${n}`);

/**
 * A request's segments in their compact form, for a request whose batches are stored under `variant`: each run of a
 * session's consecutive versions whose stored entries (`read`, or `write` for one not stored yet) are the segments'
 * own, in one form, becomes a reference (`[session, from, to]`, with the form after it when not 0); any other segment
 * is kept whole. Segments of any other shape are returned as they are.
 */
export function compactSegments(segments: unknown, variant: string, read: ReadBatches, write: (session: string, variant: string, version: number, entry: string) => void): unknown {
  if (!Array.isArray(segments)) return segments;
  const segs = segments as Segment[];
  const batches = segs.map((seg, i) => asBatch(seg, i === 0 ? START : segs[i - 1]!));
  if (batches.every((b) => b === null)) return segments;
  const out: CompactSegments['s'] = [];
  let i = 0;
  while (i < segs.length) {
    const first = batches[i];
    if (!first) {
      out.push(segs[i++]!);
      continue;
    }
    let j = i + 1;
    while (j < segs.length && batches[j]?.session === first.session && batches[j]!.version === batches[j - 1]!.version + 1) j++;
    // Each form's stored entries over the run, read when a batch gets that far.
    const forms: Array<Map<number, string>> = [];
    const stored = (n: number) => (forms[n] ??= read(first.session, formVariant(variant, n), first.version, batches[j - 1]!.version));
    let run: CompactSegments['s'][number] | null = null;
    for (let k = i; k < j; k++) {
      const b = batches[k]!;
      let form = -1;
      for (let n = 0; n < BATCH_FORMS && form < 0; n++) {
        const found = stored(n).get(b.version);
        if (found === undefined) {
          write(b.session, formVariant(variant, n), b.version, b.entry);
          stored(n).set(b.version, b.entry);
        }
        if (found === undefined || found === b.entry) form = n;
      }
      if (form < 0) {
        // Stored in as many other forms under this variant: kept whole.
        out.push(segs[k]!);
        run = null;
      } else if (run && (run[3] ?? 0) === form) run[2] = b.version;
      else out.push((run = form === 0 ? [b.session, b.version, b.version] : [b.session, b.version, b.version, form]));
    }
    i = j;
  }
  return { v: variant, s: out } satisfies CompactSegments;
}

/** A reference to a batch the table no longer holds (only rows removed by hand lose one: see the store's getRequest). */
export class BatchMissingError extends Error {
  override name = 'BatchMissingError';
}

/** A request's segments as the domain sees them, from either stored shape. */
export function expandSegments(stored: unknown, read: ReadBatches): unknown {
  if (stored === null || typeof stored !== 'object' || Array.isArray(stored)) return stored;
  const { v, s } = stored as CompactSegments;
  const out: Segment[] = [];
  for (const e of s) {
    if (!Array.isArray(e)) {
      out.push(e);
      continue;
    }
    const [session, from, to, form = 0] = e;
    const variant = formVariant(v, form);
    const entries = read(session, variant, from, to);
    for (let version = from; version <= to; version++) {
      const entry = entries.get(version);
      if (entry === undefined) throw new BatchMissingError(`session batch ${session}@${version} (${variant}) is not stored`);
      out.push(batchSegment(session, version, JSON.parse(entry) as BatchEntry, out.at(-1) ?? START));
    }
  }
  return out;
}

interface SegmentOutcome {
  source: string;
  path: string[];
  section: string;
  start: number;
  end: number;
  read: number;
  write: number;
  predicted: number;
  opportunity: number;
  classes: Record<string, number>;
  cost: { actual: number; no_cache: number; perfect: number; write_premium: number };
}

/**
 * An outcome's segments as stored: `p` the cache read multiplier and the input price per token, `k` the classes in
 * their order, `s` segment outcomes, or runs `[session, first version, count, section]` of batches read whole (captured).
 */
export interface CompactOutcomes {
  p: [read: number, input: number];
  k: string[];
  s: Array<SegmentOutcome | [string, number, number, string]>;
}

/** A batch's outcome read whole at the cache price, as the reconciler writes it (reconciler.ts, segOutcomes). */
function capturedOutcome(source: string, section: string, start: number, end: number, p: CompactOutcomes['p'], keys: string[]): SegmentOutcome {
  const len = end - start;
  const classes: Record<string, number> = {};
  for (const k of keys) classes[k] = k === 'captured' ? len : 0;
  return {
    source,
    path: [source],
    section,
    start,
    end,
    read: len,
    write: 0,
    predicted: len,
    opportunity: len,
    classes,
    cost: capturedCost(len, p),
  };
}

/** That outcome's cost, in the reconciler's own operations (the same bits): read at the cache price, nothing written. */
function capturedCost(len: number, [mr, mi]: CompactOutcomes['p']): SegmentOutcome['cost'] {
  return { actual: (len * mr + 0 + 0) * mi, no_cache: len * mi, perfect: ((len - 0) * mr + 0) * mi, write_premium: (0 - 0) * mi };
}

const OUTCOME_KEYS = 'source,path,section,start,end,read,write,predicted,opportunity,classes,cost';
const COST_KEYS = 'actual,no_cache,perfect,write_premium';

/**
 * Whether a segment's outcome is exactly capturedOutcome's for its source, section and span: every field, keys in
 * order (as JSON.stringify of both would compare them, at a fraction of the cost on hundreds of batches).
 */
function isCaptured(seg: SegmentOutcome, p: CompactOutcomes['p'], keys: string[], keyList: string): boolean {
  if (Object.keys(seg).join(',') !== OUTCOME_KEYS || typeof seg.section !== 'string' || !Array.isArray(seg.path) || seg.path.length !== 1 || seg.path[0] !== seg.source) return false;
  if (!Number.isSafeInteger(seg.start) || !Number.isSafeInteger(seg.end)) return false;
  // capturedOutcome's every figure, computed as it computes them (not a whole outcome built per segment to compare with).
  const len = seg.end - seg.start;
  if (seg.read !== len || seg.write !== 0 || seg.predicted !== len || seg.opportunity !== len) return false;
  const classes = seg.classes;
  if (classes === null || typeof classes !== 'object' || Object.keys(classes).join(',') !== keyList) return false;
  for (const k of keys) if (classes[k] !== (k === 'captured' ? len : 0)) return false;
  const cost = seg.cost;
  if (cost === null || typeof cost !== 'object' || Object.keys(cost).join(',') !== COST_KEYS) return false;
  const want = capturedCost(len, p);
  return cost.actual === want.actual && cost.no_cache === want.no_cache && cost.perfect === want.perfect && cost.write_premium === want.write_premium;
}

/**
 * An outcome with its segments compact: each run of one section's consecutive session batches read whole at the
 * cache price is one entry (`prices`: the read multiplier and the input price the reconciliation used); any other
 * segment, or one that would not expand to its exact JSON, is kept whole. Without prices, or of another shape, the
 * outcome is returned as it is.
 */
export function compactOutcome(outcome: unknown, prices: { read: number; input: number } | undefined): unknown {
  const o = outcome as { segments?: unknown; lengths?: unknown } | null;
  if (!prices || !o || !Array.isArray(o.segments) || !Array.isArray(o.lengths) || o.segments.length !== o.lengths.length || o.segments.length === 0) return outcome;
  const segs = o.segments as SegmentOutcome[];
  const lengths = o.lengths as number[];
  const p: CompactOutcomes['p'] = [prices.read, prices.input];
  const keys = Object.keys(segs[0]!.classes ?? {});
  const keyList = keys.join(',');
  const out: CompactOutcomes['s'] = [];
  let run: [string, number, number, string] | null = null;
  segs.forEach((seg, i) => {
    const ref = batchRef(seg.source);
    const captured = ref && seg.start === (i === 0 ? 0 : segs[i - 1]!.end) && seg.end - seg.start === lengths[i] && isCaptured(seg, p, keys, keyList);
    if (!captured) {
      out.push(seg);
      run = null;
      return;
    }
    const { session, version } = ref;
    if (run && run[0] === session && run[1] + run[2] === version && run[3] === seg.section) run[2]++;
    else out.push((run = [session, version, 1, seg.section]));
  });
  if (out.length === segs.length) return outcome;
  // In its place among the outcome's keys: the outcome reads back with its keys in the same order.
  return { ...o, segments: { p, k: keys, s: out } satisfies CompactOutcomes };
}

/** An outcome as the domain sees it, from either stored shape. */
export function expandOutcome(stored: unknown): unknown {
  const o = stored as { segments?: unknown; lengths?: number[] } | null;
  if (!o || typeof o !== 'object' || !o.segments || Array.isArray(o.segments)) return stored;
  const { p, k, s } = o.segments as CompactOutcomes;
  const lengths = o.lengths!;
  const out: SegmentOutcome[] = [];
  for (const e of s) {
    if (!Array.isArray(e)) {
      out.push(e);
      continue;
    }
    const [session, from, count, section] = e;
    for (let n = 0; n < count; n++) {
      const start = out.at(-1)?.end ?? 0;
      out.push(capturedOutcome(`${session}@${from + n}`, section, start, start + lengths[out.length]!, p, k));
    }
  }
  return { ...o, segments: out };
}
