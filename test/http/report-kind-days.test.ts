// GET /v1/reports?type= (kind= its older name; the ranking of one handle type: an agent's hundreds of sessions apart from the artifacts and
// bundles a team curates) and ?days=true (the tenant's totals per UTC day, the overview's trend), over real HTTP on a
// database file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clientFor, createTestApp, listen, type Client, type TestApp } from '../helpers/app';
import { agentWeek } from '../ui/seed';

let dir: string;
let t: TestApp;
let server: { base: string; close: () => Promise<void> };
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ph-report-kind-days-'));
  t = createTestApp({ databasePath: join(dir, 'db.sqlite') });
  server = await listen(t.app);
});
afterEach(async () => {
  await server.close();
  t.close();
  rmSync(dir, { recursive: true, force: true });
});

const DAY = 86_400_000;
const overHttp = (key: string): Client => clientFor({ request: (path, init) => fetch(`${server.base}${path}`, init) }, key);

describe('GET /v1/reports?type= (kind=) and ?days=true', () => {
  it('type ranks the handles of one type only, as the unfiltered report ranks them; the totals stay the tenant\'s; kind= is the same', async () => {
    const s = await agentWeek(t, { perDay: 3, days: 2 });
    const client = overHttp(s.key);
    for (const range of ['', 'from=2020-01-01', `model=claude-sonnet-4-5`]) {
      const all = (await client.get(`/v1/reports?${range}`)).json;
      const { handles: _h, handles_total: _n, ...totals } = all;
      let listed = 0;
      for (const kind of ['artifact', 'bundle', 'session']) {
        const res = await client.get(`/v1/reports?${range}&type=${kind}`);
        expect(res.status, res.text).toBe(200);
        // kind= is type='s older name, kept: the same answer, alone or beside an agreeing type=.
        expect((await client.get(`/v1/reports?${range}&kind=${kind}`)).json, kind).toEqual(res.json);
        expect((await client.get(`/v1/reports?${range}&kind=${kind}&type=${kind}`)).json, kind).toEqual(res.json);
        const { handles, handles_total, ...rest } = res.json;
        expect(rest, kind).toEqual(totals);
        // The same rows, in the same order, as the unfiltered report's of that type.
        expect(handles, kind).toEqual(all.handles.filter((h: { type: string }) => h.type === kind));
        expect(handles_total, kind).toBe(handles.length);
        listed += handles.length;
        // With a limit: the first of them, and how many there are.
        const first = (await client.get(`/v1/reports?${range}&type=${kind}&limit=2`)).json;
        expect(first.handles, kind).toEqual(handles.slice(0, 2));
        expect(first.handles_total, kind).toBe(handles.length);
      }
      expect(listed, range).toBe(all.handles_total);
    }
    const sessions = (await client.get('/v1/reports?type=session')).json.handles.map((h: { id: string }) => h.id);
    expect(sessions.sort()).toEqual([...s.sessions].sort());
    expect((await client.get('/v1/reports?type=artifact')).json.handles_total).toBe(3);
    // The document names type, and kind as its deprecated alias.
    const params = (await client.get('/openapi.json')).json.paths['/v1/reports'].get.parameters as Array<{ name: string; deprecated?: boolean; schema: { enum: string[] } }>;
    expect(params.find((p) => p.name === 'type')).toMatchObject({ schema: { enum: ['artifact', 'bundle', 'session'] } });
    expect(params.find((p) => p.name === 'type')!.deprecated).toBeUndefined();
    expect(params.find((p) => p.name === 'kind')).toMatchObject({ deprecated: true, schema: { enum: ['artifact', 'bundle', 'session'] } });
  });

  it("by_type sums each type's rows: the sessions' figure is the type=session rows added up, counts exactly, money to the micro-dollar", async () => {
    const s = await agentWeek(t, { perDay: 3, days: 2 });
    const client = overHttp(s.key);
    const micro = (x: number) => Math.round(x * 1e6);
    for (const range of ['', `model=claude-sonnet-4-5`, 'from=2020-01-01&to=2020-01-02']) {
      const res = await client.get(`/v1/reports?${range}&by_type=true&limit=1`);
      expect(res.status, res.text).toBe(200);
      const { by_type: byType, ...rest } = res.json;
      // The rest of the answer is the report without it.
      expect(rest).toEqual((await client.get(`/v1/reports?${range}&limit=1`)).json);
      expect(Object.keys(byType)).toEqual(['artifact', 'bundle', 'session']);
      for (const type of ['artifact', 'bundle', 'session']) {
        const rows = (await client.get(`/v1/reports?${range}&type=${type}`)).json.handles as Array<{ requests: number; tokens: Record<string, number>; requests_with: Record<string, number>; money: Record<string, number | string | Record<string, number>> }>;
        const got = byType[type];
        expect(got.handles_total, `${range} ${type}`).toBe(rows.length);
        expect(got.requests, `${range} ${type}`).toBe(rows.reduce((a, r) => a + r.requests, 0));
        for (const c of Object.keys(got.tokens)) {
          expect(got.tokens[c], `${range} ${type} ${c}`).toBe(rows.reduce((a, r) => a + r.tokens[c]!, 0));
          expect(got.requests_with[c], `${range} ${type} ${c}`).toBe(rows.reduce((a, r) => a + r.requests_with[c]!, 0));
        }
        // The rate of the summed tokens (as a report rounds a rate), not an average of the rows' rates.
        if (!got.tokens.reported_opportunity) expect(got.capture_rate).toBeNull();
        else expect(Math.abs(got.capture_rate - got.tokens.captured / got.tokens.reported_opportunity), `${range} ${type}`).toBeLessThanOrEqual(5e-7);
        for (const [k, v] of Object.entries(got.money)) {
          if (k === 'currency') continue;
          if (typeof v === 'number') expect(micro(v), `${range} ${type} ${k}`).toBe(rows.reduce((a, r) => a + micro(r.money[k] as number), 0));
          else for (const [c, x] of Object.entries(v as Record<string, number>)) expect(micro(x), `${range} ${type} ${k}.${c}`).toBe(rows.reduce((a, r) => a + micro((r.money[k] as Record<string, number>)[c]!), 0));
        }
      }
      if (!range.startsWith('from')) expect(byType.session.handles_total, range).toBe(s.sessions.length);
      else expect(byType.session, range).toMatchObject({ handles_total: 0, requests: 0, capture_rate: null });
    }
    // Some sessions leaked and some did not: the sum is of unequal figures.
    const sessions = (await client.get('/v1/reports?type=session')).json.handles as Array<{ money: { leaked_savings: number } }>;
    expect(new Set(sessions.map((h) => h.money.leaked_savings)).size).toBeGreaterThan(1);
    // Without it, or with false, there is none.
    expect((await client.get('/v1/reports')).json).not.toHaveProperty('by_type');
    expect((await client.get('/v1/reports?by_type=false')).json).not.toHaveProperty('by_type');
  });

  it('days lists the totals of each day with figures, each the report of that day alone; without days=true there are none', async () => {
    const s = await agentWeek(t, { perDay: 2, days: 3 });
    const client = overHttp(s.key);
    const today = Math.floor(t.clock.now() / DAY);
    const date = (d: number) => new Date(d * DAY).toISOString().slice(0, 10);
    for (const query of ['days=true', `from=${date(today - 1)}&days=true`, `from=${date(today - 2)}&to=${date(today - 1)}&model=claude-sonnet-4-5&days=true`]) {
      const res = await client.get(`/v1/reports?${query}`);
      expect(res.status, res.text).toBe(200);
      const report = res.json;
      const span = query.startsWith('days') ? [today - 2, today] : query.includes('to=') ? [today - 2, today - 1] : [today - 1, today];
      expect(report.days.map((d: { day: string }) => d.day), query).toEqual(Array.from({ length: span[1]! - span[0]! + 1 }, (_, k) => date(span[0]! + k)));
      const model = query.includes('model=') ? '&model=claude-sonnet-4-5' : '';
      for (const { day, ...figures } of report.days) {
        const alone = (await client.get(`/v1/reports?from=${day}&to=${day}${model}`)).json;
        expect(figures, `${query} ${day}`).toEqual({ requests: alone.requests, tokens: alone.tokens, requests_with: alone.requests_with, capture_rate: alone.capture_rate, money: alone.money });
      }
      // The days' tokens add up to the range's.
      for (const c of Object.keys(report.tokens)) expect(report.days.reduce((a: number, d: { tokens: Record<string, number> }) => a + d.tokens[c]!, 0), `${query} ${c}`).toBe(report.tokens[c]);
      // The rest of the answer is the report without days.
      const { days: _days, ...rest } = report;
      expect(rest).toEqual((await client.get(`/v1/reports?${query.replace('days=true', 'days=false')}`)).json);
    }
    // A range before any traffic has no days.
    expect((await client.get('/v1/reports?from=2020-01-01&to=2020-01-31&days=true')).json.days).toEqual([]);
    expect((await client.get('/v1/reports')).json).not.toHaveProperty('days');
  });

  it('refuses a type, kind or days it does not know, or a kind and type that disagree, with a 422 naming the parameter', async () => {
    const { key } = t.tenant();
    const client = overHttp(key);
    for (const [query, pointer, said] of [
      ['type=sessions', 'query:type', 'type must be artifact, bundle or session'],
      ['type=system', 'query:type', 'type must be artifact, bundle or session'],
      ['type=', 'query:type', 'type must be artifact, bundle or session'],
      ['type=session&kind=bundle', 'query:kind', 'kind is the older name of type: type=session and kind=bundle disagree (give type alone)'],
      ['kind=sessions', 'query:kind', 'kind must be artifact, bundle or session'],
      ['kind=system', 'query:kind', 'kind must be artifact, bundle or session'],
      ['kind=', 'query:kind', 'kind must be artifact, bundle or session'],
      ['kind=Session', 'query:kind', 'kind must be artifact, bundle or session'],
      ['by_type=1', 'query:by_type', 'by_type must be true or false'],
      ['by_type=', 'query:by_type', 'by_type must be true or false'],
      ['days=1', 'query:days', 'days must be true or false'],
      ['days=yes', 'query:days', 'days must be true or false'],
      ['days=', 'query:days', 'days must be true or false'],
      ['days=TRUE', 'query:days', 'days must be true or false'],
    ] as const) {
      const res = await client.get(`/v1/reports?${query}`);
      expect(res.status, query).toBe(422);
      expect(res.headers.get('content-type'), query).toContain('application/problem+json');
      expect(res.json.code, query).toBe('invalid_request');
      expect(res.json.errors, query).toEqual([{ pointer, detail: said }]);
    }
  });
});
