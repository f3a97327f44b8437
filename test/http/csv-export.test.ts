// CSV exports of GET /v1/reports, /v1/reports/handles/{id} and /v1/requests over real HTTP on a database file: the
// CSV parsed back (csv-parse) holds the JSON answer's figures field by field, unknown stays empty, the header is
// pinned, problems stay problem+json, and the JSON answer is the one it was.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clientFor, createTestApp, listen, type Client, type TestApp } from '../helpers/app';
import { mintArtifact, mintBundle, mintSystem, mintTools, startSession, userMessage } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report } from '../helpers/scenario';
import { MIN, seed } from '../ui/seed';
import { handleReportCsv } from '../../src/http/csv';

let dir: string;
let t: TestApp;
let server: { base: string; close: () => Promise<void> };
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ph-csv-'));
  t = createTestApp({ databasePath: join(dir, 'db.sqlite') });
  server = await listen(t.app);
});
afterEach(async () => {
  await server.close();
  t.close();
  rmSync(dir, { recursive: true, force: true });
});

type Row = Record<string, string>;
const overHttp = (key: string): Client => clientFor({ request: (path, init) => fetch(`${server.base}${path}`, init) }, key);
const get = (key: string, path: string, headers: Record<string, string> = {}) => fetch(`${server.base}${path}`, { headers: { authorization: `Bearer ${key}`, ...headers } });
// Any line break outside quotes ends a record, as a spreadsheet reads it: a name's bare LF or CR must be quoted.
const rowsOf = (text: string): Row[] => parse(text, { columns: true, record_delimiter: ['\r\n', '\n', '\r'] }) as Row[];

/** Text a spreadsheet would run as a formula is written after an added ' (OWASP). */
const asText = (text: string) => (/^[=+\-@\t\r\0]/.test(text) ? `'${text}` : text);

/** What each JSON field's cell must be, by the documented rule: its path joined with `_`, null empty, as JSON writes it. */
function cells(o: object, prefix = '', out: Row = {}, text = (v: string) => v): Row {
  for (const [k, v] of Object.entries(o)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) cells(v, `${prefix}${k}_`, out, text);
    else out[prefix + k] = v === null ? '' : Array.isArray(v) ? v.join(' ') : typeof v === 'string' ? text(v) : JSON.stringify(v);
  }
  return out;
}

/** A drift finding's cells: its fields as any other row's, text as text, `settings` (a list of any values) its JSON. */
function driftCells({ settings, ...finding }: Record<string, unknown>): Row {
  return { ...cells(finding, '', {}, asText), ...(settings === undefined ? {} : { settings: JSON.stringify(settings) }) };
}

/** The row holds every expected cell, and nothing in the columns of other rows' fields. */
function expectRow(row: Row, expected: Row, what: string, own: string[] = ['row']) {
  for (const [k, v] of Object.entries(expected)) {
    expect(Object.keys(row), `${what}: a column for ${k}`).toContain(k);
    expect(row[k], `${what} ${k}`).toBe(v);
  }
  for (const k of Object.keys(row)) if (!(k in expected) && !own.includes(k)) expect(row[k], `${what} ${k}`).toBe('');
}

const TENANT_HEADER =
  'row,day,id,type,kind,name,deleted,range_from,range_to,range_model,requests,tokens_referenced,tokens_opportunity,tokens_reported_opportunity,tokens_predicted,tokens_captured,tokens_bonus,tokens_unconfirmed,tokens_unknown,tokens_cold,tokens_drift,tokens_expired,tokens_concurrent,tokens_below_minimum,tokens_no_breakpoint,tokens_lookback,requests_with_referenced,requests_with_opportunity,requests_with_reported_opportunity,requests_with_predicted,requests_with_captured,requests_with_bonus,requests_with_unconfirmed,requests_with_unknown,requests_with_cold,requests_with_drift,requests_with_expired,requests_with_concurrent,requests_with_below_minimum,requests_with_no_breakpoint,requests_with_lookback,capture_rate,money_currency,money_actual_input_cost,money_cost_without_caching,money_cost_at_perfect_capture,money_realised_savings,money_leaked_savings,money_leaked_by_class_drift,money_leaked_by_class_expired,money_leaked_by_class_concurrent,money_leaked_by_class_below_minimum,money_leaked_by_class_no_breakpoint,money_leaked_by_class_lookback,money_leaked_by_class_unconfirmed,money_write_premiums_paid,money_write_premiums_unread,money_write_premiums_pending,money_unknown_capture_input_cost,handles_total,tokens_prompt,tokens_repeated,tokens_cache_read';
const HANDLE_HEADER =
  'row,version,model,handle_id,handle_type,handle_kind,handle_name,handle_deleted,range_from,range_to,range_model,requests,requests_including,tokens_referenced,tokens_opportunity,tokens_reported_opportunity,tokens_predicted,tokens_captured,tokens_bonus,tokens_unconfirmed,tokens_unknown,tokens_cold,tokens_drift,tokens_expired,tokens_concurrent,tokens_below_minimum,tokens_no_breakpoint,tokens_lookback,requests_with_referenced,requests_with_opportunity,requests_with_reported_opportunity,requests_with_predicted,requests_with_captured,requests_with_bonus,requests_with_unconfirmed,requests_with_unknown,requests_with_cold,requests_with_drift,requests_with_expired,requests_with_concurrent,requests_with_below_minimum,requests_with_no_breakpoint,requests_with_lookback,capture_rate,money_currency,money_actual_input_cost,money_cost_without_caching,money_cost_at_perfect_capture,money_realised_savings,money_leaked_savings,money_leaked_by_class_drift,money_leaked_by_class_expired,money_leaked_by_class_concurrent,money_leaked_by_class_below_minimum,money_leaked_by_class_no_breakpoint,money_leaked_by_class_lookback,money_leaked_by_class_unconfirmed,money_write_premiums_paid,money_write_premiums_unread,money_write_premiums_pending,money_unknown_capture_input_cost,versions_total,versions_listed_from,versions_listed_to,request_id,previous_request_id,at,handle,segment,now_source,now_digest,now_excerpt,before_source,before_digest,before_excerpt,byte_offset,formats_now,formats_before,settings,thinking';
const REQUESTS_HEADER =
  'id,status,format,model,rendered_at,started_at,capture,prompt_tokens,cache_read_tokens,cache_write_tokens,handles,classes_captured,classes_bonus,classes_unconfirmed,classes_unknown,classes_cold,classes_drift,classes_expired,classes_concurrent,classes_below_minimum,classes_no_breakpoint,classes_lookback,drift,class_tokens';

describe('CSV exports', () => {
  it('GET /v1/reports as CSV: the totals, each handle, the calls through no handle and each day, the JSON figures cell by cell', async () => {
    const s = await seed(t);
    // A call through no handle, so its row has figures.
    const inline = await renderAnthropic(s.client, { system: LONG_SYSTEM, messages: [userMessage('inline')] });
    await report(s.client, t, inline, anthropicUsage(promptTokens(inline), 0, 0));
    for (const query of ['days=true', 'from=2025-12-01&model=claude-sonnet-4-5&days=true', 'limit=2&kind=artifact']) {
      const json = (await overHttp(s.key).get(`/v1/reports?${query}`)).json;
      const res = await get(s.key, `/v1/reports?${query}`, { accept: 'text/csv' });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
      expect(res.headers.get('content-disposition')).toBe(`attachment; filename="report_${json.range.from ? json.range.from.slice(0, 10) : 'start'}_${json.range.to.slice(0, 10)}.csv"`);
      expect(res.headers.get('vary')).toBe('Accept');
      const text = await res.text();
      // ?format=csv is the same answer; RFC 4180's CRLF ends every record.
      expect(await (await get(s.key, `/v1/reports?${query}&format=csv`)).text()).toBe(text);
      expect(text.split('\r\n')[0]).toBe(TENANT_HEADER);
      expect(text.endsWith('\r\n')).toBe(true);
      const rows = rowsOf(text);
      const { range, handles, no_handle: noHandle, days, ...top } = json;
      const ctx = cells({ range });
      expect(rows.map((r) => r.row)).toEqual(['total', ...handles.map(() => 'handle'), 'no_handle', ...(days ?? []).map(() => 'day')]);
      expectRow(rows[0]!, { ...ctx, ...cells(top) }, `${query} total`);
      handles.forEach((h: object, i: number) => expectRow(rows[1 + i]!, { ...ctx, ...cells(h) }, `${query} handle ${i}`));
      expectRow(rows[1 + handles.length]!, { ...ctx, ...cells(noHandle) }, `${query} no_handle`);
      (days ?? []).forEach((d: object, i: number) => expectRow(rows[2 + handles.length + i]!, { ...ctx, ...cells(d) }, `${query} day ${i}`));
    }
    // The seed's hostile name (quotes, markup) reads back as the JSON has it.
    const rows = rowsOf(await (await get(s.key, '/v1/reports?format=csv')).text());
    expect(rows.find((r) => r.id === s.doc.id)!.name).toBe('<script>alert("pwned")</script><img src=x onerror=alert(1)>');
  });

  it('GET /v1/reports?by_type=true as CSV: a row per handle type after the totals, its figures as by_type has them', async () => {
    // by_type was left out of the CSV: the rows named total, handle, no_handle and day only, so a by_type=true export
    // carried none of the figures it was asked for.
    const s = await seed(t);
    for (const query of ['by_type=true', 'by_type=true&type=session&limit=1', 'by_type=true&days=true&from=2025-12-01']) {
      const json = (await overHttp(s.key).get(`/v1/reports?${query}`)).json;
      const rows = rowsOf(await (await get(s.key, `/v1/reports?${query}&format=csv`)).text());
      const types = Object.keys(json.by_type);
      expect(types, query).toEqual(['artifact', 'bundle', 'session']);
      expect(rows.map((r) => r.row), query).toEqual(['total', ...types.map(() => 'type'), ...json.handles.map(() => 'handle'), 'no_handle', ...(json.days ?? []).map(() => 'day')]);
      const ctx = cells({ range: json.range });
      types.forEach((type, i) => {
        expectRow(rows[1 + i]!, { ...ctx, ...cells(json.by_type[type]), type }, `${query} ${type}`);
      });
      // The totals row is the report's, as without by_type.
      const { range: _r, handles: _h, no_handle: _n, days: _d, by_type: _b, ...top } = json;
      expectRow(rows[0]!, { ...ctx, ...cells(top) }, `${query} total`);
    }
    // The artifacts' row counts the seed's artifacts, with figures.
    const artifact = rowsOf(await (await get(s.key, '/v1/reports?by_type=true&format=csv')).text()).find((r) => r.row === 'type' && r.type === 'artifact')!;
    expect(Number(artifact.handles_total)).toBeGreaterThan(0);
    expect(Number(artifact.tokens_referenced)).toBeGreaterThan(0);
  });

  it('GET /v1/reports/handles/{id} as CSV: the totals, each listed version, each model and each drift finding', async () => {
    const s = await seed(t);
    for (const [id, query] of [[s.bundle.id, ''], [s.sys.id, '?versions=1'], [s.sys.id, '?versions_through=1&model=claude-sonnet-4-5']] as const) {
      const json = (await overHttp(s.key).get(`/v1/reports/handles/${id}${query}`)).json;
      const res = await get(s.key, `/v1/reports/handles/${id}${query}`, { accept: 'text/csv;q=0.9, application/json;q=0.5' });
      expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
      expect(res.headers.get('content-disposition')).toBe(`attachment; filename="report_${id}_start_${json.range.to.slice(0, 10)}.csv"`);
      const text = await res.text();
      expect(text.split('\r\n')[0]).toBe(HANDLE_HEADER);
      const rows = rowsOf(text);
      const { handle, range, versions, models, drift, ...top } = json;
      const ctx = cells({ handle, range });
      expect(rows.map((r) => r.row), id + query).toEqual(['total', ...versions.map(() => 'version'), ...models.map(() => 'model'), ...drift.map(() => 'drift')]);
      expect(versions.length + models.length, id + query).toBeGreaterThan(1);
      expectRow(rows[0]!, { ...ctx, ...cells(top) }, `${id}${query} total`);
      versions.forEach((v: object, i: number) => expectRow(rows[1 + i]!, { ...ctx, ...cells(v) }, `${id}${query} version ${i}`));
      models.forEach((m: object, i: number) => expectRow(rows[1 + versions.length + i]!, { ...ctx, ...cells(m) }, `${id}${query} model ${i}`));
      drift.forEach((d: Record<string, unknown>, i: number) => expectRow(rows[1 + versions.length + models.length + i]!, { ...ctx, ...driftCells(d) }, `${id}${query} drift ${i}`));
    }
    // The seed's timestamp before the system prompt: its finding, located to the byte, is a row of the system's export.
    const sysDrift = rowsOf(await (await get(s.key, `/v1/reports/handles/${s.sys.id}?format=csv`)).text()).filter((r) => r.row === 'drift');
    expect(sysDrift.map((r) => [r.request_id, r.now_source, r.before_source])).toEqual([[s.driftRequest.request_id, 'inline', 'inline']]);
    expect(Number(sysDrift[0]!.byte_offset)).toBeGreaterThan(0);
  });

  it('GET /v1/requests as CSV: a row per request of the page, the next page in a Link header; unknown and not yet reconciled are empty', async () => {
    const s = await seed(t);
    // Rendered, never reported: no figures yet.
    const pending = await renderAnthropic(s.client, { prefix: [s.bundle.id], messages: [userMessage('pending')] });
    for (const first of ['/v1/requests?limit=2', `/v1/requests?limit=3&handle=${s.bundle.id}`, '/v1/requests?limit=2&class=cold']) {
      // Followed by the Link header alone, the CSV pages are the JSON's pages.
      const jsonPages: Array<Record<string, unknown>> = [];
      for (let path: string | null = first; path; ) {
        const page: { next_cursor: string | null } = (await overHttp(s.key).get(path)).json;
        jsonPages.push(page);
        path = page.next_cursor ? `${first}&cursor=${page.next_cursor}` : null;
      }
      let path: string | null = first;
      for (const page of jsonPages) {
        const res: Response = await get(s.key, path!, { accept: 'text/csv' });
        expect(res.headers.get('content-type'), path!).toBe('text/csv; charset=utf-8');
        expect(res.headers.get('content-disposition')).toBe('attachment; filename="requests.csv"');
        expect(res.headers.get('x-ph-scanned') ?? undefined, path!).toBe(page.scanned === undefined ? undefined : String(page.scanned));
        const text = await res.text();
        expect(text.split('\r\n')[0]).toBe(REQUESTS_HEADER);
        const rows = rowsOf(text);
        const requests = page.requests as Array<{ status: string; classes: Record<string, number> }>;
        expect(rows.length, path!).toBe(requests.length);
        requests.forEach(({ classes, ...q }, i) => {
          const byClass = Object.fromEntries(Object.keys(rows[i]!).filter((k) => k.startsWith('classes_')).map((k) => [k, q.status === 'reconciled' ? String(classes[k.slice(8)] ?? 0) : '']));
          expectRow(rows[i]!, { ...cells(q), ...byClass }, `${path} ${i}`, []);
        });
        const link = res.headers.get('link');
        expect(link === null, path!).toBe(page.next_cursor === null);
        path = link && /^<([^>]+)>; rel="next"$/.exec(link)![1]!;
      }
      expect(path).toBeNull();
    }
    const all = rowsOf(await (await get(s.key, '/v1/requests?format=csv&limit=100')).text());
    // The call without cache fields: its read and write unknown, empty (not 0); the one not reported has no classes.
    const unknown = all.find((r) => r.capture === 'unknown')!;
    expect([unknown.prompt_tokens, unknown.cache_read_tokens, unknown.cache_write_tokens]).toEqual(['', '', '']);
    expect(Number(unknown.classes_unknown)).toBeGreaterThan(0);
    expect(unknown.classes_captured).toBe('0');
    const rendered = all.find((r) => r.id === pending.request_id)!;
    expect(rendered.status).toBe('rendered');
    expect([rendered.capture, rendered.prompt_tokens, rendered.classes_cold, rendered.classes_captured]).toEqual(['', '', '', '']);
  });

  it('leaked money of misses by calls without cache fields only is an empty cell, not the 0 the JSON sums to', async () => {
    const { client, key } = t.tenant();
    const sys = await mintSystem(client, `${LONG_SYSTEM} unknown capture`);
    for (const q of ['a', 'b']) {
      const r = await renderAnthropic(client, { prefix: [sys.id], messages: [userMessage(q)] });
      await report(client, t, r, { input_tokens: promptTokens(r), output_tokens: 9 });
      t.clock.advance(10 * MIN);
    }
    for (const path of ['/v1/reports', `/v1/reports/handles/${sys.id}`]) {
      const json = (await overHttp(key).get(path)).json;
      expect(json.tokens.expired, path).toBeGreaterThan(0);
      expect(json.capture_rate, path).toBeNull();
      const total = rowsOf(await (await get(key, `${path}?format=csv`)).text())[0]!;
      expect(total.tokens_expired).toBe(String(json.tokens.expired));
      expect([total.capture_rate, total.money_leaked_by_class_expired], path).toEqual(['', '']);
      // A class without tokens leaked nothing: 0 still.
      expect(total.money_leaked_by_class_drift, path).toBe('0');
      expect(total.money_unknown_capture_input_cost, path).toBe(String(json.money.unknown_capture_input_cost));
    }
  });

  it('names with commas, quotes, line breaks and any Unicode read back as the JSON has them, a formula as text (property)', async () => {
    // A spreadsheet runs a cell starting with = + - @ TAB or CR: such a name reads back after an added ' (OWASP).
    const asText = (name: string) => (/^[=+\-@\t\r\0]/.test(name) ? `'${name}` : name);
    const { client, key } = t.tenant();
    const tricky = fc.string({ unit: fc.constantFrom(',', '"', '\n', '\r', '\r\n', ' ', ';', '\t', '=', '-', '+', '@', 'a', 'é', '😀', '\u2028'), minLength: 1, maxLength: 24 });
    const name = fc.oneof(tricky, fc.string({ unit: 'grapheme', minLength: 1, maxLength: 24 }));
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(name, { minLength: 1, maxLength: 3 }), async (names) => {
        const ids: string[] = [];
        for (const nm of names) ids.push((await mintArtifact(client, 'document', `document ${++n} ${LONG_SYSTEM}`, { name: nm })).id);
        const r = await renderAnthropic(client, { prefix: ids, messages: [userMessage(`q ${n}`)] });
        await report(client, t, r, anthropicUsage(promptTokens(r), 0, 0));
        const json = (await overHttp(key).get('/v1/reports')).json;
        const rows = rowsOf(await (await get(key, '/v1/reports', { accept: 'text/csv' })).text());
        expect(rows.length).toBe(json.handles.length + 2);
        json.handles.forEach((h: { id: string; name: string | null }, i: number) => {
          expect(rows[1 + i]!.id).toBe(h.id);
          expect(rows[1 + i]!.name).toBe(asText(h.name ?? ''));
        });
        names.forEach((nm, i) => expect(rows.find((row) => row.id === ids[i])!.name).toBe(asText(nm)));
      }),
      { numRuns: 25 },
    );
  });

  it("a name a spreadsheet would run as a formula is written as text, after an added '", async () => {
    const { client, key } = t.tenant();
    // A leading NUL too (OWASP ASVS 1.2.10 lists it beside the others).
    const names = ['=HYPERLINK("http://evil.example","x")', '+1', '-2+3', '@SUM(A1)', '\tlead', '\u0000=1+1', 'a=b', 'x-1'];
    const ids: string[] = [];
    for (const [i, nm] of names.entries()) ids.push((await mintArtifact(client, 'document', `formula ${i} ${LONG_SYSTEM}`, { name: nm })).id);
    const r = await renderAnthropic(client, { prefix: ids, messages: [userMessage('q')] });
    await report(client, t, r, anthropicUsage(promptTokens(r), 0, 0));
    const rows = rowsOf(await (await get(key, '/v1/reports?format=csv')).text());
    const written = ids.map((id) => rows.find((row) => row.id === id)!.name);
    expect(written).toEqual(["'=HYPERLINK(\"http://evil.example\",\"x\")", "'+1", "'-2+3", "'@SUM(A1)", "'\tlead", "'\u0000=1+1", 'a=b', 'x-1']);
    // The JSON keeps the name as minted.
    expect((await overHttp(key).get('/v1/reports')).json.handles.map((h: { name: string }) => h.name).sort()).toEqual([...names].sort());
  });

  it('drift findings as rows: excerpts of prompt text with quotes, commas and line breaks read back as the JSON has them, a formula as text', async () => {
    // Excerpts are prompt text: a system prompt starting with = runs as a formula in a spreadsheet, and its quotes,
    // commas, CRLF and LF must be quoted for the row to stay one record.
    const { client, key } = t.tenant();
    const starts = ['=', '+', '-', '@', '\t', '\r', 'P'];
    const docs: string[] = [];
    for (const [i, c] of starts.entries()) {
      const stamped = (day: string) => `${c}Policy "as of" ${day}, ${i}\r\nline two\nline, three ${LONG_SYSTEM}`;
      const sys = await mintSystem(client, stamped('2026-11-21'));
      const doc = await mintArtifact(client, 'document', `${LONG_SYSTEM} handbook ${i}`);
      docs.push(doc.id);
      const turn = () => renderAnthropic(client, { prefix: [sys.id, doc.id], messages: [userMessage('hello')] });
      const r1 = await turn();
      await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, r1.breakpoints.at(-1)!.token_end));
      t.clock.advance(MIN);
      expect((await client.post(`/v1/artifacts/${sys.id}/versions`, { content: stamped('2026-11-22') })).status).toBe(201);
      const r2 = await turn();
      await report(client, t, r2, anthropicUsage(promptTokens(r2), 0, r2.breakpoints.at(-1)!.token_end));
    }
    for (const [i, id] of docs.entries()) {
      const json = (await overHttp(key).get(`/v1/reports/handles/${id}`)).json;
      expect(json.drift, id).toHaveLength(1);
      const finding = json.drift[0];
      // The case: both excerpts begin at the prompt's first byte, and hold every character a CSV must quote.
      expect(finding.now.excerpt.startsWith(starts[i]), id).toBe(true);
      expect(finding.before.excerpt, id).toMatch(/"as of" 2026-11-21, \d\r\nline two\nline, three/);
      const text = await (await get(key, `/v1/reports/handles/${id}?format=csv`)).text();
      const rows = rowsOf(text);
      expect(rows.map((r) => r.row)).toEqual(['total', 'version', 'model', 'drift']);
      expectRow(rows[3]!, { ...cells({ handle: json.handle, range: json.range }), ...driftCells(finding) }, `${id} drift`);
      // A formula start gets the added '; a plain one (P) is written as it is.
      const plain = starts[i] === 'P';
      expect([rows[3]!.now_excerpt, rows[3]!.before_excerpt], id).toEqual(plain ? [finding.now.excerpt, finding.before.excerpt] : [`'${finding.now.excerpt}`, `'${finding.before.excerpt}`]);
    }

    // A setting changed since the messages were sent (tool_choice): the finding's settings, one cell of JSON.
    const b = await mintBundle(client, [(await mintTools(client)).id, (await mintSystem(client, `${LONG_SYSTEM} settings`)).id]);
    const session = await startSession(client, { messages: [{ role: 'user', content: 'Where is order 1003? '.repeat(200) }, { role: 'assistant', content: 'At the depot. '.repeat(100) }] });
    const body = (toolChoice: object) => ({ prefix: [b.id, session.id], tool_choice: toolChoice, messages: [userMessage('Which depot?')] });
    const r1 = await renderAnthropic(client, body({ type: 'any' }));
    await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, r1.breakpoints.at(-1)!.token_end));
    t.clock.advance(MIN);
    const r2 = await renderAnthropic(client, body({ type: 'auto' }));
    const bundleEnd = r2.breakpoints[0]!.token_end;
    await report(client, t, r2, anthropicUsage(promptTokens(r2), bundleEnd, r2.breakpoints.at(-1)!.token_end - bundleEnd));
    const json = (await overHttp(key).get(`/v1/reports/handles/${session.id}`)).json;
    const finding = json.drift.find((d: { settings?: unknown }) => d.settings);
    expect(finding, JSON.stringify(json.drift)).toBeDefined();
    const row = rowsOf(await (await get(key, `/v1/reports/handles/${session.id}?format=csv`)).text()).find((r) => r.row === 'drift' && r.request_id === finding.request_id)!;
    expectRow(row, { ...cells({ handle: json.handle, range: json.range }), ...driftCells(finding) }, 'settings drift');
    expect(JSON.parse(row.settings!)).toEqual(finding.settings);
    expect(JSON.parse(row.settings!)).toContainEqual({ name: 'tool_choice', now: { type: 'auto' }, before: { type: 'any' } });

    // formats and thinking, as a finding may have them, from the writer itself.
    const side = { source: 'inline', digest: 'd'.repeat(64), excerpt: '@x' };
    const one = { request_id: 'req_a', previous_request_id: 'req_b', at: '2026-12-01T00:00:00.000Z', handle: 'art_x@1', segment: 2, now: side, before: { source: 'art_x@1', digest: 'e'.repeat(64) }, formats: { now: 'openai-responses', before: 'openai-chat' }, thinking: 'earlier_turn' };
    const synthetic = { ...json, versions: [], models: [], drift: [one] };
    const [, only] = rowsOf(handleReportCsv(synthetic));
    expectRow(only!, { ...cells({ handle: json.handle, range: json.range }), ...driftCells(one) }, 'formats and thinking');
    expect([only!.now_excerpt, only!.before_excerpt, only!.formats_now, only!.formats_before, only!.thinking, only!.settings]).toEqual(["'@x", '', 'openai-responses', 'openai-chat', 'earlier_turn', '']);
  });

  it('bom=true starts each CSV export with a UTF-8 byte-order mark, the rest byte for byte the export without it', async () => {
    // Excel opens a UTF-8 CSV without a BOM in the legacy code page: "Überblick" as "Ãœberblick", "客服" as mojibake.
    const { client, key } = t.tenant();
    const names = ['Überblick', '客服'];
    const ids: string[] = [];
    for (const [i, nm] of names.entries()) ids.push((await mintArtifact(client, 'document', `bom ${i} ${LONG_SYSTEM}`, { name: nm })).id);
    for (const q of ['a', 'b']) {
      const r = await renderAnthropic(client, { prefix: ids, messages: [userMessage(q)] });
      await report(client, t, r, anthropicUsage(promptTokens(r), 0, 0));
    }
    const bytes = async (path: string) => {
      const res = await get(key, path);
      expect([res.status, res.headers.get('content-type')], path).toEqual([200, 'text/csv; charset=utf-8']);
      return { body: Buffer.from(await res.arrayBuffer()), link: res.headers.get('link') };
    };
    const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
    for (const path of ['/v1/reports?format=csv&days=true', `/v1/reports/handles/${ids[0]}?format=csv`, '/v1/requests?format=csv&limit=1']) {
      const plain = await bytes(path);
      const marked = await bytes(`${path}&bom=true`);
      // Without it (or with bom=false) the export starts with its header row, as it always has.
      expect(plain.body.subarray(0, 3).equals(BOM), path).toBe(false);
      expect((await bytes(`${path}&bom=false`)).body.equals(plain.body), path).toBe(true);
      expect(marked.body.subarray(0, 3).equals(BOM), path).toBe(true);
      expect(marked.body.subarray(3).equals(plain.body), path).toBe(true);
      // A page's next page keeps it: each page of a paged export opens the same way.
      if (path.startsWith('/v1/requests')) {
        expect(marked.link, path).toContain('bom=true');
        const next = await bytes(/^<([^>]+)>/.exec(marked.link!)![1]!);
        expect(next.body.subarray(0, 3).equals(BOM)).toBe(true);
      }
    }
    // Read as UTF-8 with its BOM, the names are the JSON's.
    const rows = parse((await bytes('/v1/reports?format=csv&bom=true')).body, { columns: true, bom: true }) as Row[];
    expect(Object.keys(rows[0]!)[0]).toBe('row');
    expect(ids.map((id) => rows.find((r) => r.id === id)!.name)).toEqual(names);
    // JSON never has one (RFC 8259): bom=true leaves a JSON answer as it was.
    for (const path of ['/v1/reports', `/v1/reports/handles/${ids[1]}`, '/v1/requests?limit=2']) {
      const json = Buffer.from(await (await get(key, path)).arrayBuffer());
      const asked = await get(key, `${path}${path.includes('?') ? '&' : '?'}bom=true`);
      expect(asked.headers.get('content-type'), path).toBe('application/json');
      expect(Buffer.from(await asked.arrayBuffer()).equals(json), path).toBe(true);
    }
    // A parameter of each route's query schema, so it is in the OpenAPI document.
    const doc = (await (await fetch(`${server.base}/openapi.json`)).json()) as { paths: Record<string, { get: { parameters: Array<{ name: string }> } }> };
    for (const route of ['/v1/reports', '/v1/reports/handles/{id}', '/v1/requests']) expect(doc.paths[route]!.get.parameters.map((p) => p.name), route).toContain('bom');
  });

  it('problems stay application/problem+json when CSV was asked for; JSON stays the default, byte for byte', async () => {
    const s = await seed(t);
    const problems: Array<[string, Record<string, string>, number, string]> = [
      ['/v1/reports?from=yesterday', { accept: 'text/csv' }, 422, 'query:from'],
      ['/v1/reports?format=xml', { accept: 'text/csv' }, 422, 'query:format'],
      ['/v1/reports?format=csv&days=yes', {}, 422, 'query:days'],
      ['/v1/reports/handles/art_000000000000000000000?format=csv', {}, 404, 'path:id'],
      ['/v1/reports/handles/not-a-handle', { accept: 'text/csv' }, 422, 'path:id'],
      ['/v1/requests?format=csv&cursor=nope', {}, 422, 'query:cursor'],
      ['/v1/reports?format=csv&bom=yes', {}, 422, 'query:bom'],
      [`/v1/reports/handles/${s.sys.id}?format=csv&bom=1`, {}, 422, 'query:bom'],
      ['/v1/requests?format=csv&bom=TRUE', {}, 422, 'query:bom'],
      ['/v1/requests?format=csv&status=failed', {}, 422, 'query'],
    ];
    for (const [path, headers, status, pointer] of problems) {
      const res = await get(s.key, path, headers);
      expect(res.status, path).toBe(status);
      expect(res.headers.get('content-type'), path).toBe('application/problem+json');
      const body = (await res.json()) as { code: string; errors: Array<{ pointer: string }> };
      expect(body.code, path).toBe(status === 404 ? 'not_found' : 'invalid_request');
      expect(body.errors.map((e) => e.pointer).join(' '), path).toContain(pointer);
    }
    const noKey = await fetch(`${server.base}/v1/reports?format=csv`, { headers: { accept: 'text/csv' } });
    expect([noKey.status, noKey.headers.get('content-type')]).toEqual([401, 'application/problem+json']);

    for (const path of ['/v1/reports?days=true', `/v1/reports/handles/${s.bundle.id}`, '/v1/requests?limit=3']) {
      const plain = await get(s.key, path);
      expect(plain.headers.get('content-type'), path).toBe('application/json');
      const bytes = await plain.text();
      // A browser's Accept, JSON's own, and format=json over a CSV Accept: the same JSON bytes.
      for (const headers of [{ accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' }, { accept: 'application/json' }, { accept: 'application/json, text/csv' }]) {
        const res = await get(s.key, path, headers);
        expect([res.headers.get('content-type'), await res.text()], `${path} ${headers.accept}`).toEqual(['application/json', bytes]);
      }
      const forced = await get(s.key, `${path}&format=json`.replace(/^([^?]*)&/, '$1?'), { accept: 'text/csv' });
      expect([forced.headers.get('content-type'), await forced.text()], path).toEqual(['application/json', bytes]);
    }
  });
});
