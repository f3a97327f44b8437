import { afterEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app';
import { mintBundle, mintSystem, mintTools, startSession } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report } from '../helpers/scenario';

let t: TestApp;
afterEach(() => t?.close());

describe('a read on a known unit end, a short write after it', () => {
  it('keeps the marked question at its known end; the write ends at the reply', async () => {
    t = createTestApp();
    const { client } = t.tenant();
    const b = await mintBundle(client, [(await mintTools(client)).id, (await mintSystem(client, LONG_SYSTEM)).id]);
    const q1 = 'Where is order 1003?';
    // Turn 1: the question inline, marked by the caller; the provider writes the whole prompt.
    const r1 = await renderAnthropic(client, { prefix: [b.id], messages: [{ role: 'user', content: [{ type: 'text', text: q1, cache_control: { type: 'ephemeral' } }] }] });
    const total1 = promptTokens(r1) + 40; // the provider counts a little more than our estimate (here 2729)
    const o1 = (await report(client, t, r1, anthropicUsage(total1, 0, total1))).outcome;
    t.clock.advance(60_000);
    // The turn kept in a session, question and reply as batches of their own.
    const s = await startSession(client, { messages: [{ role: 'user', content: q1 }] });
    expect((await client.post(`/v1/sessions/${s.id}/messages`, { messages: [{ role: 'assistant', content: 'OK.' }] })).status).toBe(201);
    const r2 = await renderAnthropic(client, { prefix: [b.id, s.id], messages: [{ role: 'user', content: 'Which depot?' }] });
    // The provider reads turn 1's prefix (through q1: total1) and writes the short reply (3 tokens) up to its breakpoint.
    const o2 = (await report(client, t, r2, anthropicUsage(total1 + 16, total1, 3))).outcome;
    const q1Seg = o2.segments.find((x) => x.source === `${s.id}@1`)!;
    const a1Seg = o2.segments.find((x) => x.source === `${s.id}@2`)!;
    // Now: q1 [2711, 2732) with 3 tokens `unconfirmed` (the read's known end, 2729, was dropped: the read anchor was
    // skipped and the write anchor took q1, 3 tokens off, over the reply's breakpoint, 5 off); the reply 7 tokens cold.
    // (And q1's end is now learnt as 2732.) Before cd99519 the read went to the reply's end instead (13 bonus).
    expect(q1Seg.classes.unconfirmed ?? 0).toBe(0);
    expect(q1Seg.end).toBe(total1);
    expect(a1Seg.end).toBe(total1 + 3);
  });
});
