// a settings drift of inline messages is compared with the scope's last request, which may be another
// conversation of the same scope (same key, model, bundle) rather than this conversation's previous turn.
import type Anthropic from '@anthropic-ai/sdk';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mintBundle, mintSystem, mintTools } from '../helpers/factories';
import { LONG_SYSTEM } from '../helpers/scenario';
import { committed, startHarness, type Harness } from './harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

const MINUTE = 60_000;
const TABLE = Array.from({ length: 300 }, (_, i) => `row ${i}: parcel ${i * 7} at depot ${i % 13}`).join('\n');

interface Recorded {
  id: string;
  outcome: { segments: Array<{ source: string; classes: Record<string, number> }>; drift: { previous_request: string; settings?: Array<{ name: string; now: unknown; before: unknown }> } | null };
}

async function run(otherThinking: { type: 'enabled'; budget_tokens: number } | undefined) {
  const client = h.tenant.client;
  const b = await mintBundle(client, [(await mintTools(client)).id, (await mintSystem(client, LONG_SYSTEM)).id]);
  const sdk = h.anthropic({ headers: { 'x-ph-prefix': b.id } });
  const mark = (history: Anthropic.MessageParam[]) =>
    history.map((m, k): Anthropic.MessageParam => (k === history.length - 1 ? { role: m.role, content: [{ type: 'text', text: m.content as string, cache_control: { type: 'ephemeral' } }] } : m));
  const ask = async (history: Anthropic.MessageParam[], thinking?: { type: 'enabled'; budget_tokens: number }) => {
    const { data, response } = await sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 4096, messages: mark(history), ...(thinking ? { thinking } : {}) }).withResponse();
    h.clock.advance(MINUTE);
    return { data, id: response.headers.get('x-ph-request-id')! };
  };
  // Conversation B, two turns with a 1024 budget.
  const hb: Anthropic.MessageParam[] = [];
  const ids: string[] = [];
  for (const q of ['Where is order 1003?', TABLE]) {
    hb.push({ role: 'user', content: q });
    const { data, id } = await ask(hb, { type: 'enabled', budget_tokens: 1024 });
    hb.push({ role: 'assistant', content: data.content as Anthropic.ContentBlockParam[] });
    ids.push(id);
  }
  // Another user's conversation, same key, model and bundle.
  const other = await ask([{ role: 'user', content: 'Hello, a different customer here.' }], otherThinking);
  // Conversation B again, its budget raised: its whole history is written again (drift).
  hb.push({ role: 'user', content: 'Which depot?' });
  const last = await ask(hb, { type: 'enabled', budget_tokens: 2048 });
  await committed(h);
  const row = (await client.get(`/v1/requests/${last.id}`)).json as Recorded;
  const drifted = row.outcome.segments.filter((s) => s.source === 'inline').reduce((n, s) => n + (s.classes.drift ?? 0), 0);
  return { row, drifted, previous: ids[1]!, other: other.id };
}

describe('settings drift of an inline conversation beside another conversation in the scope', () => {
  it('names the change against the conversation\'s own previous turn (1024 → 2048), not the other user\'s request', async () => {
    const { row, drifted, previous } = await run(undefined);
    expect(drifted).toBeGreaterThan(3000);
    expect(row.outcome.drift).toMatchObject({ previous_request: previous, settings: [{ name: 'thinking', before: { type: 'enabled', budget_tokens: 1024 }, now: { type: 'enabled', budget_tokens: 2048 } }] });
  });

  it('is not missed when the other conversation happens to use the new budget', async () => {
    const { row, drifted } = await run({ type: 'enabled', budget_tokens: 2048 });
    expect(drifted).toBeGreaterThan(3000);
    expect(row.outcome.drift?.settings).toEqual([{ name: 'thinking', before: { type: 'enabled', budget_tokens: 1024 }, now: { type: 'enabled', budget_tokens: 2048 } }]);
  });
});
