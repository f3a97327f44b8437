// A scope's first call sends everything for the first time: its cold line says so and what was written, without the
// hint that inline content cold on every call holds a changing value (nothing could have been read yet). A later call
// whose inline content changed keeps the hint. Through /v1/render and /v1/usage on a database file, across a restart;
// the lines as the CLI builds them from GET /v1/requests/{id}, and as the request page shows them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clientFor, createTestApp, type Client, type TestApp } from '../helpers/app';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report } from '../helpers/scenario';
import { requestWhys, type WhyInput } from '../../src/domain/reconcile/explain';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ph-cold-first-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const HINT = "is the caller's inline content, whose bytes were not sent before: if the agent sends the same content on every call, a value in it changes each time";

/** The request's lines as `prefix-handles request` builds them, and the outcome's flag. */
async function linesOf(client: Client, id: string) {
  const api = (await client.get(`/v1/requests/${id}`)).json;
  const o = api.outcome;
  const models = (await client.get('/v1/models')).json.models as Array<NonNullable<WhyInput['entry']>>;
  const lines = requestWhys({ entry: models.find((m) => m.id === api.catalog_entry), segments: o.segments.map((x: object, i: number) => ({ ...x, section: api.segments[i].section })), breakpoints: api.breakpoints, predicted_read: o.predicted.read, predicted_write: o.predicted.write, provider_read: o.capture === 'unknown' ? null : o.provider.read, provider_write: o.provider.write, complete: api.usage.complete, first_in_scope: o.first_in_scope });
  return { first: o.first_in_scope as boolean | undefined, cold: lines.find((l) => l.startsWith('cold '))! };
}

async function pageOf(t: TestApp, key: string, id: string) {
  return (await (await t.app.request(`/ui/requests/${id}`, { headers: { cookie: `ph_ui_key=${key}` } })).text()).replaceAll('&#39;', "'");
}

describe("cold on a scope's first call", () => {
  it('says the first send only; a later call whose inline system prompt changed keeps the hint, after a restart too', async () => {
    const file = join(dir, 'db.sqlite');
    const t = createTestApp({ databasePath: file });
    const { client, key } = t.tenant();
    // Inline content only, a timestamp in the system prompt: the case of the hint.
    const call = async (c: Client, app: TestApp, stamp: string) => {
      const r = await renderAnthropic(c, { system: `Current time: ${stamp}. ${LONG_SYSTEM}`, messages: [{ role: 'user', content: 'Where is my order?' }] });
      await report(c, app, r, anthropicUsage(promptTokens(r), 0, 0));
      app.clock.advance(60_000);
      return r;
    };
    const first = await call(client, t, '2026-12-05T09:00:00Z');
    const one = await linesOf(client, first.request_id);
    expect(one.first).toBe(true);
    const tokens = one.cold.slice(5, one.cold.indexOf(' tokens'));
    expect(one.cold).toBe(`cold ${tokens} tokens in #1–#2: first sent in this cache scope, on the scope's first call: nothing earlier to read; none of them was written to the cache`);
    const firstPage = await pageOf(t, key, first.request_id);
    expect(firstPage).toContain("first sent in this cache scope, on the scope's first call: nothing earlier to read; none of them was written to the cache</span>");
    expect(firstPage).not.toContain('whose bytes were not sent before');

    // A minute later the system prompt's time has changed: its bytes were expected again, and the hint names it.
    const second = await call(client, t, '2026-12-05T09:01:00Z');
    const two = await linesOf(client, second.request_id);
    expect(two.first).toBeUndefined();
    expect(two.cold).toMatch(new RegExp(`^cold [\\d,]+ tokens in #1–#2: first sent in this cache scope: nothing earlier to read; none of them was written to the cache; #1 ${HINT.replace(/[()']/g, '\\$&')}`));
    expect(await pageOf(t, key, second.request_id)).toContain(`#1 ${HINT}`);
    t.close();

    // After a restart the scope is rebuilt from its calls: the next one is not its first.
    const again = createTestApp({ databasePath: file, clock: t.clock });
    const c2 = clientFor(again.app, key);
    const third = await call(c2, again, '2026-12-05T09:02:00Z');
    const three = await linesOf(c2, third.request_id);
    expect(three.first).toBeUndefined();
    expect(three.cold).toContain(`#1 ${HINT}`);
    // Another model is another scope: its first call is one.
    const other = await renderAnthropic(c2, { model: 'claude-haiku-4-5', system: `Current time: 2026-12-05T09:03:00Z. ${LONG_SYSTEM}`, messages: [{ role: 'user', content: 'Where is my order?' }] });
    await report(c2, again, other, anthropicUsage(promptTokens(other), 0, 0));
    const four = await linesOf(c2, other.request_id);
    expect(four.first).toBe(true);
    expect(four.cold).not.toContain(HINT);
    again.close();
  });
});
