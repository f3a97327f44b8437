import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client, TestApp } from '../helpers/app';
import { startCliHarness, type CliHarness } from '../helpers/cli';
import { mintArtifact } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, type Rendered } from '../helpers/scenario';

// `import --match-handles`: logs that carry the system prompt and the tools inline, recorded as the artifact versions
// they are. The CLI runs as a child process against the service on a loopback port, its database a file.

let h: CliHarness;
let t: TestApp;

beforeAll(async () => {
  h = await startCliHarness('ph-match-', { onDisk: true });
  ({ t } = h);
});

afterAll(() => h.close());

const MIN = 60_000;

// Each schema's keys in the order a tools artifact stores them (canonical JSON): as a log sends them, the provider reads
// the schema as written, so another order would be another prompt (see the test below).
const TOOLS = [
  { name: 'lookup_order', description: 'Find an order by its number', input_schema: { properties: { order: { type: 'string' } }, required: ['order'], type: 'object' } },
  { name: 'refund', description: 'Refund an order, in full or in part', input_schema: { properties: { amount: { type: 'number' }, order: { type: 'string' } }, required: ['order'], type: 'object' } },
];
const asChatTools = (tools: typeof TOOLS) => tools.map((x) => ({ type: 'function', function: { name: x.name, description: x.description, parameters: x.input_schema } }));

interface Recorded {
  segments: Array<Record<string, unknown> & { source: string; path: string[]; token_start: number; token_end: number }>;
  breakpoints: unknown[];
  prompt_cache_key: string | null;
}

/** A tenant's reconciled requests, in the order they were reconciled. */
function recorded(tenant: string): Recorded[] {
  const rows = t.sqlite
    .prepare('select r.id, r.breakpoints, r.prompt_cache_key from requests r join reconciliations c on c.request_id = r.id where r.tenant_id = ? order by c.seq')
    .all(tenant) as Array<{ id: string; breakpoints: string; prompt_cache_key: string | null }>;
  // Segments as the store reads them (a session's batches are stored apart: src/store/compact.ts).
  return rows.map((r) => ({ segments: t.store.getRequest(r.id)!.segments as Recorded['segments'], breakpoints: JSON.parse(r.breakpoints), prompt_cache_key: r.prompt_cache_key }));
}

/** What the provider saw of a recorded request: everything but which handle a segment is said to come from. */
const asSent = (r: Recorded) => ({
  ...r,
  segments: r.segments.map(({ source: _s, path: _p, ...rest }) => rest),
  breakpoints: (r.breakpoints as Array<{ source: string }>).map(({ source: _s, ...rest }) => rest),
});

async function probe(client: Client, format: string, request: object): Promise<Rendered & { matched: Array<{ segment: number; source: string; pointer: string }> }> {
  // Rendered and recorded, never reconciled: on no report.
  const res = await client.post('/v1/render', { format, request, match_handles: true });
  expect(res.status, res.text).toBe(200);
  return res.json;
}

async function handleReport(client: Client, id: string) {
  return (await client.get(`/v1/reports/handles/${id}`)).json as { requests: number; tokens: Record<string, number> };
}

describe('prefix-handles import --match-handles', () => {
  it('Anthropic: inline tools and system recorded as the artifacts they are (cold, then captured); a timestamped prompt is not; without the flag nothing is', async () => {
    const a = t.tenant();
    const system = `${LONG_SYSTEM} Anthropic logs.`;
    const tools = await mintArtifact(a.client, 'tools', TOOLS);
    const sys = await mintArtifact(a.client, 'system', system);
    const request = (text: string, question: string) => ({
      model: 'claude-sonnet-4-5',
      max_tokens: 64,
      // The caller's own cache mark: kept, and the only breakpoint recorded.
      system: [{ type: 'text', text, cache_control: { type: 'ephemeral' } }],
      tools: TOOLS,
      messages: [{ role: 'user', content: question }],
    });
    // A timestamp written after the prompt's first sentence.
    const drifted = system.replace('. ', '. Current time: 2026-12-01T09:00:02Z. ');
    const p = await probe(a.client, 'anthropic', request(system, 'q'));
    expect(p.matched).toEqual([
      { segment: 0, source: tools.ref, pointer: '/request/tools' },
      { segment: 1, source: sys.ref, pointer: '/request/system/0' },
    ]);
    // The body as sent: no breakpoint of the service's, no reordering.
    expect(p.body).toEqual(request(system, 'q'));
    expect(p.breakpoints.map((b) => b.set_by)).toEqual(['caller']);
    const total = promptTokens(p);
    const toolsEnd = p.segments[0]!.token_end;
    const sysEnd = p.segments[1]!.token_end;
    const pd = await probe(a.client, 'anthropic', request(drifted, 'q'));
    expect(pd.matched).toEqual([{ segment: 0, source: tools.ref, pointer: '/request/tools' }]);
    expect(pd.segments.map((s) => s.source)).toEqual([tools.ref, 'inline', 'inline']);

    const start = t.clock.now() - 3_600_000;
    const line = (i: number, text: string, usage: object) =>
      JSON.stringify({ format: 'anthropic', request: request(text, `question ${i}`), response: { id: `msg_${i}`, type: 'message', usage }, started_at: start + i * MIN });
    const lines = [
      line(0, system, anthropicUsage(total, 0, sysEnd)),
      line(1, system, anthropicUsage(total, sysEnd, 0)),
      // Equal to the artifact but for a timestamp line: another prompt, not matched; it wrote its own prefix.
      line(2, drifted, anthropicUsage(promptTokens(pd), 0, pd.segments[1]!.token_end)),
      line(3, system, anthropicUsage(total, sysEnd, 0)),
    ].join('\n');

    const r = await h.cli(['import', '--match-handles', h.file('anthropic.jsonl', `${lines}\n`)], { key: a.key });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('anthropic.jsonl: 4 lines, 4 accepted, 0 rejected\n');
    expect(r.out).not.toContain('referenced no handle');
    expect(r.out).toContain(`inline content matched to handles (recorded as theirs, on their reports):\n  ${tools.ref}  /tools  on 4 lines\n  ${sys.ref}  /system  on 3 lines\n`);
    // The near miss named, where it differs.
    expect(r.out).toContain(`1 line carries a system prompt close to ${sys.ref} but not equal to it (first difference at byte ${system.indexOf('. ') + 2} of /system/0 on line 3): not matched, the provider read other bytes\n`);

    const sysReport = await handleReport(a.client, sys.id);
    expect(sysReport.requests).toBe(3);
    expect(sysReport.tokens.cold).toBe(sysEnd - toolsEnd);
    expect(sysReport.tokens.captured).toBe(2 * (sysEnd - toolsEnd));
    const toolsReport = await handleReport(a.client, tools.id);
    expect(toolsReport.requests).toBe(4);
    expect(toolsReport.tokens.cold).toBe(toolsEnd);
    expect(toolsReport.tokens.captured).toBe(2 * toolsEnd);

    // The same file, another tenant with the same artifacts, no flag: nothing on any report, the lines said to be on none.
    const b = t.tenant();
    const bTools = await mintArtifact(b.client, 'tools', TOOLS);
    const bSys = await mintArtifact(b.client, 'system', system);
    const plain = await h.cli(['import', h.file('anthropic-plain.jsonl', `${lines}\n`)], { key: b.key });
    expect(plain.code, plain.err).toBe(0);
    expect(plain.out).toContain('4 accepted but referenced no handle');
    expect(plain.out).not.toContain('matched');
    for (const id of [bTools.id, bSys.id]) expect((await handleReport(b.client, id)).requests).toBe(0);

    // Round trip: what was recorded with matching is what was recorded without, byte and token spans, digests,
    // chains, unit keys and breakpoints alike; only the segments' source differs.
    const matched = recorded(a.id);
    const inline = recorded(b.id);
    expect(matched).toHaveLength(4);
    expect(matched.map(asSent)).toEqual(inline.map(asSent));
    expect(matched.map((m) => m.segments.map((s) => s.source))).toEqual([
      [tools.ref, sys.ref, 'inline'],
      [tools.ref, sys.ref, 'inline'],
      [tools.ref, 'inline', 'inline'],
      [tools.ref, sys.ref, 'inline'],
    ]);
    expect(inline.every((m) => m.segments.every((s) => s.source === 'inline'))).toBe(true);
  });

  it('a rejected line is no near miss: its system prompt, equal to the artifact matched on another line, is not said to differ from it', async () => {
    const a = t.tenant();
    const system = `${LONG_SYSTEM} Rejected lines.`;
    const sys = await mintArtifact(a.client, 'system', system);
    const request = (extra: object) => ({ model: 'claude-sonnet-4-5', max_tokens: 64, system, messages: [{ role: 'user', content: 'q' }], ...extra });
    const start = t.clock.now() - 3_600_000;
    const line = (i: number, extra: object) => JSON.stringify({ format: 'anthropic', request: request(extra), response: { id: `msg_r${i}`, type: 'message', usage: anthropicUsage(4000, 0, 0) }, started_at: start + i * MIN });
    // Line 2 names a handle the tenant does not have: refused by the render.
    const lines = [line(0, {}), line(1, { prefix: ['art_000000000000000000000'] })].join('\n');
    const r = await h.cli(['import', '--match-handles', h.file('rejected.jsonl', `${lines}\n`)], { key: a.key });
    expect(r.code).toBe(1);
    expect(r.out).toContain('rejected.jsonl: 2 lines, 1 accepted, 1 rejected\n');
    expect(r.out).toContain(`  ${sys.ref}  /system  on 1 line\n`);
    expect(r.out).not.toContain('close to');
  });

  it('OpenAI chat: the leading system message and the tools matched; a developer message and reordered schema keys are not', async () => {
    const a = t.tenant();
    const system = `${LONG_SYSTEM} OpenAI logs.`;
    const tools = await mintArtifact(a.client, 'tools', TOOLS);
    const sys = await mintArtifact(a.client, 'system', system);
    const request = (question: string, role = 'system', chatTools: unknown[] = asChatTools(TOOLS)) => ({
      model: 'gpt-4.1',
      tools: chatTools,
      // A text part is the same prompt as a string content: matched either way.
      messages: [{ role, content: [{ type: 'text', text: system }] }, { role: 'user', content: question }],
    });
    const p = await probe(a.client, 'openai-chat', request('q'));
    expect(p.matched).toEqual([
      { segment: 0, source: tools.ref, pointer: '/request/tools' },
      { segment: 1, source: sys.ref, pointer: '/request/messages/0' },
    ]);
    // As sent: no prompt_cache_key of the service's.
    expect(p.body).toEqual(request('q'));
    expect((p as unknown as { prompt_cache_key: string | null }).prompt_cache_key).toBeNull();
    // A developer message is another role than a system artifact renders; a schema's keys in another order another
    // prompt: neither is the artifact as the provider reads it.
    const reordered = asChatTools(TOOLS).map((x) => ({ ...x, function: { ...x.function, parameters: { type: 'object', properties: x.function.parameters.properties, required: x.function.parameters.required } } }));
    expect((await probe(a.client, 'openai-chat', request('q', 'developer'))).matched).toEqual([{ segment: 0, source: tools.ref, pointer: '/request/tools' }]);
    expect((await probe(a.client, 'openai-chat', request('q', 'system', reordered))).matched).toEqual([{ segment: 1, source: sys.ref, pointer: '/request/messages/0' }]);

    const toolsEnd = p.segments[0]!.token_end;
    const sysEnd = p.segments[1]!.token_end;
    const total = promptTokens(p);
    // OpenAI reads in 128-token steps past its 1,024 minimum.
    const read = Math.floor((sysEnd - 1024) / 128) * 128 + 1024;
    const start = t.clock.now() - 3_600_000;
    const line = (i: number, cached: number) =>
      JSON.stringify({
        format: 'openai-chat',
        request: request(`question ${i}`),
        response: { id: `chatcmpl-${i}`, object: 'chat.completion', usage: { prompt_tokens: total, completion_tokens: 3, total_tokens: total + 3, prompt_tokens_details: { cached_tokens: cached } } },
        started_at: start + i * MIN,
      });
    const r = await h.cli(['import', '--match-handles', '-'], { key: a.key, input: `${[line(0, 0), line(1, read)].join('\n')}\n` });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`  ${tools.ref}  /tools  on 2 lines\n  ${sys.ref}  /messages  on 2 lines\n`);
    const sysReport = await handleReport(a.client, sys.id);
    expect(sysReport.requests).toBe(2);
    expect(sysReport.tokens.cold).toBe(sysEnd - toolsEnd);
    expect(sysReport.tokens.captured).toBe(read - toolsEnd);
    expect((await handleReport(a.client, tools.id)).tokens.captured).toBe(toolsEnd);

    // Nothing to match: said so.
    const none = await h.cli(['import', '--match-handles', '-'], { key: t.tenant().key, input: `${line(2, 0)}\n` });
    expect(none.code, none.err).toBe(0);
    expect(none.out).toContain("inline content matched to no handle: no line's tools or system prompt is, as the provider reads it, an artifact version of this tenant's");
    expect(none.out).toContain("1 accepted but referenced no handle: recorded (GET /v1/requests), on no handle's report (the tenant report counts them apart, as calls that referenced no handle) — reports count handle content: their tools and system prompt are no artifact version of this tenant's as the provider read them; 'prefix-handles suggest <file>' lists what they repeat");
  });

  it('suggest → mint → import --match-handles: the repeated system prompt listed, written and then matched; tools whose schemas the provider read in another key order said not to match', async () => {
    const a = t.tenant();
    const system = `${LONG_SYSTEM} Suggested.`;
    // The keys as an SDK writes them (type first): an artifact stores them sorted, another prompt.
    const tools = asChatTools(TOOLS).map((x) => ({ ...x, function: { ...x.function, parameters: { type: 'object', properties: x.function.parameters.properties, required: x.function.parameters.required } } }));
    const start = t.clock.now() - 3_600_000;
    const line = (i: number, text: string) =>
      JSON.stringify({
        format: 'openai-chat',
        request: { model: 'gpt-4.1', tools, messages: [{ role: 'system', content: text }, { role: 'user', content: `question ${i}` }] },
        usage: { prompt_tokens: 3000, completion_tokens: 3, total_tokens: 3003, prompt_tokens_details: { cached_tokens: 0 } },
        started_at: start + i * MIN,
      });
    const log = h.file('suggest.jsonl', `${[line(0, system), line(1, system), line(2, `Now: 2026-12-01T09:02:00Z\n${system}`), line(3, system), 'not json'].join('\n')}\n`);
    const dir = join(h.dir, 'suggested');
    const s = await h.cli(['suggest', log, '--dir', dir]);
    expect(s.code, s.err).toBe(0);
    // Every line read, as import counts them: the line that is not a call among them.
    expect(s.out).toContain('suggest.jsonl: 5 lines read, 1 not a call');
    const rows = s.out.split('\n').filter((l) => /^[12] /.test(l));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(new RegExp(`^1 +tools +4 +[\\d,]+ +/tools +${join(dir, 'tools-1.json')} +lookup_order, refund$`));
    expect(rows[1]).toMatch(new RegExp(`^2 +system +3 +[\\d,]+ +/messages +${join(dir, 'system-2.txt')} +You are the support agent`));
    // The timestamped prompt is on one line: not listed; the tools are, said not to match.
    expect(s.out).toContain("#1: on 4 of its 4 lines the provider read it otherwise than an artifact of it renders");
    expect(s.out).toContain("'import --match-handles' will match 0");
    expect(readFileSync(join(dir, 'system-2.txt'), 'utf8')).toBe(system);
    expect(s.out).toContain(`  prefix-handles mint system ${join(dir, 'system-2.txt')} --name system-2\n  prefix-handles import --match-handles ${log}\n`);

    const minted = await h.cli(['mint', 'system', join(dir, 'system-2.txt'), '--name', 'system-2'], { key: a.key });
    expect(minted.code, minted.err).toBe(0);
    const ref = minted.out.split('\t')[0]!;
    const mintedTools = await h.cli(['mint', 'tools', join(dir, 'tools-1.json')], { key: a.key });
    expect(mintedTools.code, mintedTools.err).toBe(0);
    const r = await h.cli(['import', '--match-handles', log], { key: a.key });
    expect(r.code).toBe(1); // the line that is not JSON
    expect(r.out).toContain(`inline content matched to handles (recorded as theirs, on their reports):\n  ${ref}  /messages  on 3 lines\n`);
    expect(r.out).not.toContain(mintedTools.out.split('\t')[0]!);
    expect((await handleReport(a.client, ref.split('@')[0]!)).requests).toBe(3);

    // Nothing repeated: said so, nothing written; a developer message (another role than an artifact renders) said apart.
    const developer = JSON.stringify({ format: 'openai-chat', request: { model: 'gpt-4.1', messages: [{ role: 'developer', content: system }, { role: 'user', content: 'q' }] }, started_at: start });
    const once = await h.cli(['suggest', '-', '--dir', join(h.dir, 'none')], { input: `${line(0, system)}\n${developer}\n` });
    expect(once.out).toContain('no system prompt or tools list is on 2 lines or more\n1 line carries a system prompt as a developer message, where no artifact renders');
    const bad = await h.cli(['suggest', log, '--min-lines', '0']);
    expect(bad.code).toBe(2);
  });

  it('suggest names a system prompt that repeats but for a timestamp: no line listed, the biggest leak of the log said', async () => {
    const system = `${LONG_SYSTEM} Research.`;
    const line = (i: number, text: string) =>
      JSON.stringify({
        format: 'openai-chat',
        request: { model: 'gpt-4.1', messages: [{ role: 'system', content: text }, { role: 'user', content: `question ${i}` }] },
        usage: { prompt_tokens: 3000, completion_tokens: 3, total_tokens: 3003, prompt_tokens_details: { cached_tokens: 0 } },
        started_at: t.clock.now() - 3_600_000 + i * MIN,
      });
    const stamped = (i: number) => `You are a research assistant.\nCurrent time: 2026-12-01T09:0${i}:00Z\n${system}`;
    const input = `${[0, 1, 2].map((i) => line(i, stamped(i))).join('\n')}\n${line(3, `Other prompt 2026-12-01T09:00:00Z ${system}`)}\n`;
    const s = await h.cli(['suggest', '-', '--dir', join(h.dir, 'stamped')], { input });
    expect(s.code, s.err).toBe(0);
    expect(s.out).toContain('no system prompt or tools list is on 2 lines or more\n');
    // Three lines, one prompt but for the timestamp (byte 44: after the first line and 'Current time: '); the fourth
    // prompt differs in more than its value and is not counted with them.
    expect(s.out).toMatch(
      /\n3 lines carry a system prompt \(≈[\d,]+ tokens, "You are a research assistant\. Current t…"\) that is the same but for volatile values, first iso_timestamp "2026-12-01T09:00:00Z" at byte 44 on line 1: each call is another prompt from that byte on/,
    );
    expect(s.out).not.toContain('4 lines carry');
    // Under --min-lines, not said.
    const fewer = await h.cli(['suggest', '-', '--dir', join(h.dir, 'stamped'), '--min-lines', '4'], { input });
    expect(fewer.out).not.toContain('the same but for volatile values');
  });
});
