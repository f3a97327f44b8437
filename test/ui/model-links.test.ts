// A handle page's "By model" rows: each model's biggest leak leads to the handle's requests of that model holding that
// class (/ui/requests?handle=&class=&period=&model=), as the tenant-wide list by class takes a model too. Followed, a
// link lists exactly those requests, the list GET /v1/requests?handle=&class=&model= gives; a model the tenant never
// used, or an empty one, is refused as an unknown class is.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app';
import type { TestApp } from '../helpers/app';
import { mintSystem, userMessage } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, report, type Rendered } from '../helpers/scenario';
import { MIN, signedInPage } from './seed';

const DAY = 86_400_000;
/** Two catalog models and one a gateway names its own way: its name needs encoding in a URL and escaping in HTML. */
const MODELS = ['claude-sonnet-4-5', 'claude-sonnet-4-6', 'team/sonnet+ft & "co"'] as const;
let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

const get = (path: string, key: string) => signedInPage(t, path, key);

/**
 * System prompt A on each model: cold, read, then a time inline before it twice (drift); on the last model once
 * fewer. B on the first model: cold, then drift. And a call with its prompt inline, on no handle, on the second.
 */
async function history() {
  const { client, key } = t.tenant();
  const a = await mintSystem(client, `${LONG_SYSTEM} A`);
  const b = await mintSystem(client, `${LONG_SYSTEM} B`);
  const ids: Record<string, string> = {};
  const call = async (name: string, model: string, system: unknown[], read: boolean) => {
    const res = await client.post('/v1/render', { format: 'anthropic', request: { model, max_tokens: 256, system, messages: [userMessage(name)] } });
    expect(res.status, res.text).toBe(200);
    const r: Rendered = res.json;
    const cached = r.breakpoints.at(-1)?.token_end ?? 0;
    await report(client, t, r, anthropicUsage(promptTokens(r), read ? cached : 0, read ? 0 : cached));
    ids[name] = r.request_id;
    t.clock.advance(MIN);
  };
  const ref = (h: { id: string }) => ({ type: 'handle', ref: h.id });
  for (const [i, m] of MODELS.entries()) {
    await call(`a1-${i}`, m, [ref(a)], false);
    await call(`a2-${i}`, m, [ref(a)], true);
    await call(`a3-${i}`, m, [{ type: 'text', text: `Now: 10:0${i}` }, ref(a)], false);
    if (i < 2) await call(`a4-${i}`, m, [{ type: 'text', text: `Now: 11:0${i}` }, ref(a)], false);
  }
  await call('b1', MODELS[0], [ref(b)], false);
  await call('b2', MODELS[0], [{ type: 'text', text: 'Now: 12:00' }, ref(b)], false);
  await call('inline', MODELS[1], [{ type: 'text', text: `${LONG_SYSTEM} inline` }], false);
  await t.services.writes.idle();
  return { client, key, a, b, ids };
}

const unescape = (s: string) => s.replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
const rowsOf = (html: string) => [...html.matchAll(/<tr data-request="(req_[^"]+)">/g)].map((m) => m[1]);
const idsOf = (json: { requests: Array<{ id: string }> }) => json.requests.map((r) => r.id);
/** The "By model" table's rows: each model (as its data attribute holds it) and its biggest leak's class and href. */
const byModel = (html: string) =>
  [.../<table data-table="models"[^>]*>[\s\S]*?<\/table>/.exec(html)![0].matchAll(/<tr data-model="([^"]*)">([\s\S]*?)<\/tr>/g)].map((m) => ({
    model: unescape(m[1]!),
    cls: /data-biggest-leak="([a-z_]*)"/.exec(m[2]!)![1]!,
    href: /<a href="([^"]+)" data-requests-link="([a-z_]+)"/.exec(m[2]!)?.[1] && unescape(/<a href="([^"]+)" data-requests-link/.exec(m[2]!)![1]!),
  }));

describe("a model's biggest leak leads to its requests", () => {
  it("each by-model row's biggest leak links to the handle's requests of that model with that class; followed, they list exactly those", async () => {
    const { client, key, a, ids } = await history();
    const from = new Date(t.clock.now() - 6 * DAY).toISOString().slice(0, 10);
    const page = await get(`/ui/handles/${a.id}?period=7d`, key);
    const rows = byModel(page.text);
    expect(rows.map((r) => r.model).sort()).toEqual([...MODELS].sort());
    const expected: Record<string, string[]> = {
      [MODELS[0]]: [ids['a4-0']!, ids['a3-0']!],
      [MODELS[1]]: [ids['a4-1']!, ids['a3-1']!],
      [MODELS[2]]: [ids['a3-2']!],
    };
    for (const r of rows) {
      // Drift cost each model most here: its link is the handle's list of that class and model, for the period.
      expect(r.cls, r.model).toBe('drift');
      expect(r.href, r.model).toBe(`/ui/requests?handle=${a.id}&class=drift&period=7d&model=${encodeURIComponent(r.model)}`);
      const hop = await get(r.href!, key);
      expect([hop.status, hop.location], r.model).toEqual([303, `/ui/handles/${a.id}?period=7d&class=drift&model=${encodeURIComponent(r.model)}#recent-requests`]);
      const listed = await get(hop.location!.replace(/#.*/, ''), key);
      expect(listed.status, r.model).toBe(200);
      expect(rowsOf(listed.text), r.model).toEqual(expected[r.model]);
      const viaApi = idsOf((await client.get(`/v1/requests?handle=${a.id}&class=drift&model=${encodeURIComponent(r.model)}&from=${from}`)).json);
      expect(viaApi, r.model).toEqual(expected[r.model]);
      // Every line is of that model; the heading names it (escaped, isolated) and the API call that lists them all.
      expect([...listed.text.matchAll(/<td data-model>([^<]*)<\/td>/g)].map((m) => unescape(m[1]!))).toEqual(expected[r.model]!.map(() => r.model));
      const html = r.model.replaceAll('&', '&amp;').replaceAll('"', '&quot;');
      expect(listed.text).toContain(`<h2 id="recent-requests">Requests with drift sent to <bdi data-filter-model>${html}</bdi> on this handle`);
      expect(listed.text).toContain(`<code>GET /v1/requests?handle=${a.id}&amp;class=drift&amp;model=${encodeURIComponent(r.model)}&amp;from=${from}</code>`);
      // The period chooser keeps the class and the model.
      expect(unescape(listed.text)).toContain(`<a href="/ui/handles/${a.id}?period=all&class=drift&model=${encodeURIComponent(r.model)}#recent-requests"`);
      expect(rowsOf((await get(`/ui/handles/${a.id}?period=all&class=drift&model=${encodeURIComponent(r.model)}`, key)).text)).toEqual(expected[r.model]);
    }
    // The class links above the list count every model's requests: with a model chosen, none is the current one.
    const one = await get(`/ui/handles/${a.id}?period=7d&class=drift&model=${MODELS[0]}`, key);
    expect(one.text).not.toMatch(/data-class-link="drift"[^>]*aria-current/);
  });

  it("the tenant's list by class takes a model: exactly its requests with the class, the API's list; a model alone lists its requests", async () => {
    const { client, key, ids } = await history();
    const from = new Date(t.clock.now() - 6 * DAY).toISOString().slice(0, 10);
    const m = MODELS[0];
    const listed = await get(`/ui/requests?class=drift&period=7d&model=${m}`, key);
    expect(listed.status).toBe(200);
    // B's drift is on the same model; the other models' drift is not listed.
    const expected = [ids.b2!, ids['a4-0']!, ids['a3-0']!];
    expect(rowsOf(listed.text)).toEqual(expected);
    expect(idsOf((await client.get(`/v1/requests?class=drift&model=${m}&from=${from}`)).json)).toEqual(expected);
    expect(listed.text).toContain(`<title>Requests with drift sent to ${m} · prefix-handles</title>`);
    expect(listed.text).toContain(`<h1>Requests with drift sent to <bdi data-filter-model>${m}</bdi></h1>`);
    expect(listed.text).toContain(`<code>GET /v1/requests?class=drift&amp;model=${m}&amp;from=${from}</code>`);
    expect(listed.text).toContain(`<a href="/ui/requests?period=all&amp;class=drift&amp;model=${m}"`);
    // The name that needs encoding, and a model alone: its requests, the call on no handle too.
    const odd = await get(`/ui/requests?class=drift&period=7d&model=${encodeURIComponent(MODELS[2])}`, key);
    expect(rowsOf(odd.text)).toEqual([ids['a3-2']!]);
    const alone = await get(`/ui/requests?period=7d&model=${MODELS[1]}`, key);
    const all = idsOf((await client.get(`/v1/requests?model=${MODELS[1]}&from=${from}`)).json);
    expect(rowsOf(alone.text)).toEqual(all);
    expect(all).toEqual([ids.inline!, ids['a4-1']!, ids['a3-1']!, ids['a2-1']!, ids['a1-1']!]);
    expect(alone.text).toContain(`<h1>Requests sent to <bdi data-filter-model>${MODELS[1]}</bdi></h1>`);
  });

  it("a model whose calls are all unreported or failed is known: a model alone lists them, as recorded, not 'reconciled'; with a class, the reconciled ones", async () => {
    const { client, key, a } = await history();
    const model = 'gpt-4.1';
    const render = async (q: string) => (await client.post('/v1/render', { format: 'openai-chat', request: { model, prefix: [a.id], messages: [userMessage(q)] } })).json.request_id as string;
    const unreported = await render('never reported');
    t.clock.advance(MIN);
    const failed = await render('refused');
    const started = t.clock.now();
    await t.services.requests.markFailed(failed, { startedAt: started, finishedAt: started + 500, usageRaw: { status: 529, error: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } } });
    await t.services.writes.idle();
    const api = idsOf((await client.get(`/v1/requests?model=${model}`)).json);
    expect(api).toEqual([failed, unreported]);
    const alone = await get(`/ui/requests?model=${model}`, key);
    expect(alone.status, alone.text).toBe(200);
    expect(rowsOf(alone.text)).toEqual(api);
    expect(alone.text).toContain(`The recorded requests (reconciled, not yet reported, or failed) sent to ${model}`);
    expect(alone.text).not.toContain('reconciled requests');
    // The handle's page takes it too; with a class, the list is of reconciled requests and says so (here none).
    expect((await get(`/ui/handles/${a.id}?model=${model}`, key)).status).toBe(200);
    const withClass = await get(`/ui/requests?class=drift&model=${model}`, key);
    expect(withClass.status).toBe(200);
    expect(rowsOf(withClass.text)).toEqual([]);
    expect(withClass.text).toContain('The reconciled requests with tokens of');
    expect(withClass.text).toContain('No reconciled request');
    // Another tenant's recorded request is not this one's.
    expect((await get(`/ui/requests?model=${model}`, t.tenant().key)).status).toBe(400);
  });

  it('a blank handle on the list by class is the 400 page, never the tenant-wide list', async () => {
    const { key } = await history();
    for (const path of ['/ui/requests?handle=%20&class=cold', '/ui/requests?handle=&class=drift', `/ui/requests?handle=%09&model=${MODELS[0]}`]) {
      const res = await get(path, key);
      expect(res.status, path).toBe(400);
      expect(res.text, path).toContain('<h1>Cannot show this</h1><p>handle must name a handle');
      expect(res.text, path).not.toContain('data-request=');
    }
  });

  it('a model the tenant never used, or an empty one, is the 400 page, on either list; never an empty list or no filter', async () => {
    const { key, a } = await history();
    const other = t.tenant();
    for (const path of [
      '/ui/requests?class=drift&period=7d&model=claude-opus-4-1',
      '/ui/requests?class=drift&model=',
      '/ui/requests?model=Claude-Sonnet-4-5',
      `/ui/handles/${a.id}?period=7d&class=drift&model=gpt-4o`,
      `/ui/handles/${a.id}?model=`,
    ]) {
      const res = await get(path, key);
      expect(res.status, path).toBe(400);
      expect(res.text, path).toMatch(/<title>Cannot show this · prefix-handles<\/title>[\s\S]*<h1>Cannot show this<\/h1><p>(no request of this tenant was sent to the model &quot;[^<]*&quot;|model must name a model)\.<\/p>/);
      expect(res.text, path).not.toContain('data-request=');
    }
    // Through the handle redirect, the handle page refuses it.
    const hop = await get(`/ui/requests?handle=${a.id}&class=drift&period=7d&model=gpt-4o`, key);
    expect(hop.location).toBe(`/ui/handles/${a.id}?period=7d&class=drift&model=gpt-4o#recent-requests`);
    expect((await get(hop.location!.replace(/#.*/, ''), key)).status).toBe(400);
    // Another tenant's model is not this one's: refused, and none of its requests shown.
    expect((await get(`/ui/requests?class=drift&model=${MODELS[0]}`, other.key)).status).toBe(400);
    // An unknown class is refused before the model is looked at, as before.
    expect((await get(`/ui/requests?class=leak&model=${MODELS[0]}`, key)).text).toContain('class must be one of');
  });
});
