// The rendered segments of a request: its units grouped by where they came from, with byte and token spans, digests
// and the chain of digests.
import type { ModelEntry } from '../catalog/types';
import { sha256Hex } from '../digest';
import { Lru } from '../lru';
import type { RenderedSegment } from './request';
import type { Unit } from './units';

/**
 * Digest and byte size of a whole handle segment, per array of rendered texts:
 * the arrays are cached and immutable (handle versions never change), so a
 * bundle is hashed once, not on every request that uses it.
 */
const segmentDigests = new WeakMap<readonly string[], { digest: string; size: number }>();

/**
 * P_k by P_{k-1} and digest_k (a pure function of the two), by the chain so far, then the digest: the segments of a
 * long session's history chain the same way on every call, 600 hashes at 300 rounds, looked up instead. The renderer
 * keeps one (RequestRenderer.forgetCaches drops it).
 */
export type ChainMemo = Lru<string, Map<string, string>>;
// At most 16,384 links × 4 digests after each: 17 MB of heap when full (a 300-round session's history is 600 links).
export const newChainMemo = (): ChainMemo => new Lru(16_384);

/** The cached texts a group of units renders exactly, in order and in full (a handle segment), if so. */
function wholeSegment(units: Unit[], from: number, to: number): readonly string[] | null {
  const all = units[from]!.item?.all;
  if (!all || all.length !== to - from) return null;
  for (let k = from; k < to; k++) {
    const u = units[k]!;
    if (u.item?.all !== all || u.hashText !== all[k - from]) return null;
  }
  return all;
}

/** `added`: tokens a unit carries beyond its own (by its place in `units`): what the provider adds for the tools. */
export function buildSegments(units: Unit[], model: ModelEntry, added: ReadonlyMap<number, number>, chains: ChainMemo = newChainMemo()) {
  const list: RenderedSegment[] = [];
  /** Each segment's text, kept for inline segments only (handle segments are already stored). */
  const texts: string[] = [];
  const lastUnit: Unit[] = [];
  const callerMarked = new Map<number, string>();
  const family = model.tokenizer;
  let bytes = 0;
  let tokens = 0;
  let chain = '';
  let i = 0;
  while (i < units.length) {
    const first = units[i]!;
    let j = i;
    let blocks = 0;
    let marked: string | undefined;
    // One occurrence of a handle segment is its items (one for a text handle in a message's content): a handle
    // named twice in a row renders them again, as a segment of its own. Adjacent inline units form one segment.
    const occurrence = first.item ? (first.item.all?.length ?? 1) : Infinity;
    while (j < units.length && j - i < occurrence && units[j]!.segment === first.segment && units[j]!.section === first.section) {
      blocks += units[j]!.blocks;
      if (units[j]!.callerBreakpoints > 0) marked = marked === '1h' ? '1h' : (units[j]!.callerTtl ?? '5m');
      j++;
    }
    const whole = first.segment ? wholeSegment(units, i, j) : null;
    let known = whole ? segmentDigests.get(whole) : undefined;
    let text = '';
    if (!known) {
      for (let k = i; k < j; k++) text += units[k]!.hashText;
      known = { digest: sha256Hex(text), size: Buffer.byteLength(text) };
      if (whole) segmentDigests.set(whole, known);
    }
    const { digest, size } = known;
    const seg = first.segment;
    // Every unit is counted as the provider counts it: the text the model reads and its framing, not its JSON
    // (prompt-tokens.ts), with the model's tokenizer; a handle's items once per rendered array, the caller's with the
    // unit's identity.
    const counts = units.slice(i, j).map((u, k) => u.tokens(family) + (added.get(i + k) ?? 0));
    const count = counts.reduce((a, b) => a + b, 0);
    // By the chain so far (the string the lookup before returned: its hash is known, no long key is built).
    let after = chains.get(chain);
    if (!after || after.size >= 4) chains.set(chain, (after = new Map()));
    let next = after.get(digest);
    if (next === undefined) after.set(digest, (next = sha256Hex(chain + digest)));
    chain = next;
    if (marked) callerMarked.set(list.length, marked);
    list.push({
      source: seg ? seg.source : 'inline',
      path: seg ? seg.path : [],
      section: first.section,
      byte_start: bytes,
      byte_end: bytes + size,
      token_start: tokens,
      token_end: tokens + count,
      // A handle's count is exact only with the provider's own tokenizer: a self-hosted model (the vLLM entry, an
      // operator's) is counted with an OpenAI encoding, which is not its own (Qwen, Llama, …), so it scales with the rest.
      tokens_estimated: !seg || family === 'anthropic' || family === 'gemini' || model.provider !== 'openai',
      blocks,
      digest,
      chain,
      units: units.slice(i, j).map((u, k) => (u.base ? [u.key, counts[k]!, u.blocks, u.base] : [u.key, counts[k]!, u.blocks])),
    });
    texts.push(text);
    lastUnit.push(units[j - 1]!);
    bytes += size;
    tokens += count;
    i = j;
  }
  return { list, texts, lastUnit, callerMarked };
}

/** The segment holding the request's unit `n` (in prompt order): segments tile the units in order. */
export function segmentOfUnit(list: RenderedSegment[], n: number): number {
  return list.findIndex((s) => (n -= s.units!.length) < 0);
}
