// A FinOps lead's month of gateway logs through `prefix-handles import`: the lines are rendered several at once (the
// service group-commits renders that arrive together), and the summary and figures are those of one at a time.

import { afterAll, beforeAll, expect, it } from 'vitest';
import { clientFor } from '../helpers/app';
import { startCliHarness, type CliHarness } from '../helpers/cli';
import { mintSystem } from '../helpers/factories';
import { LONG_SYSTEM } from '../helpers/scenario';

const MIN = 60_000;
let h: CliHarness;
/** Renders being answered now, and the most at once. Each is held 20 ms, as a service across a network takes longer. */
let inFlight = 0;
let most = 0;

beforeAll(async () => {
  h = await startCliHarness('ph-import-renders-', {
    around: async (req, next) => {
      if (new URL(req.url).pathname !== '/v1/render') return next();
      most = Math.max(most, ++inFlight);
      try {
        await new Promise((ok) => setTimeout(ok, 20));
        return await next();
      } finally {
        inFlight--;
      }
    },
  });
});
afterAll(() => h.close());

it('renders the lines of a batch several at once, and reconciles them in start order as before', async () => {
  const { key } = h.t.tenant('renders at once');
  const client = clientFor({ request: (path: string, init?: RequestInit) => fetch(`${h.url}${path}`, init) }, key);
  const sys = await mintSystem(client, `${LONG_SYSTEM} renders at once`);
  const started = h.t.clock.now() - 3 * 3_600_000;
  // 40 calls a minute apart, the file newest first: the first writes, each later one reads (a gap under 5 minutes).
  const lines = Array.from({ length: 40 }, (_, i) =>
    JSON.stringify({
      format: 'openai-chat',
      request: { model: 'gpt-4.1', prefix: [sys.id], messages: [{ role: 'user', content: `question ${i}` }] },
      usage: { prompt_tokens: 2000, completion_tokens: 1, total_tokens: 2001, prompt_tokens_details: { cached_tokens: i === 0 ? 0 : 1920 } },
      started_at: started + i * MIN,
    }),
  ).reverse();
  const r = await h.cli(['import', '-'], { key, input: `${lines.join('\n')}\n` });
  expect(r.code, r.err).toBe(0);
  expect(r.out).toBe('stdin: 40 lines, 40 accepted, 0 rejected\n');
  // Before, one render at a time.
  expect(most).toBe(8);
  const rep = (await client.get(`/v1/reports/handles/${sys.id}`)).json;
  expect(rep.requests).toBe(40);
  // Applied in start order, whatever order the renders landed in: one cold first send, 39 reads.
  expect(rep.requests_with.cold).toBe(1);
  expect(rep.requests_with.captured).toBe(39);
  expect(rep.money.cost_without_caching).toBe(Math.round(rep.tokens.referenced * 2) / 1e6);
});
