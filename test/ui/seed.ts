// Dashboard test data, made through the public API like a client would:
// a bundle used by an agent loop (cold, then captured), a timestamp before a
// handle (drift, located to the byte), one report without cache fields
// (unknown), and an artifact whose content holds volatile values and markup.

import type { Client, TestApp } from '../helpers/app';
import { mintArtifact, mintBundle, mintSystem, mintTools, startSession, userMessage } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report, type Rendered } from '../helpers/scenario';

export const MIN = 60_000;
export const HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>';
// Multi-byte text before a volatile value: its byte offset is not its string index.
export const DOC_TEXT = `Ünïcödé préamble — ${HOSTILE}\nGenerated at 2026-01-01T12:00:00Z for request 123e4567-e89b-12d3-a456-426614174000.\n${'Policy text. '.repeat(200)}`;

export interface Seeded {
  client: Client;
  key: string;
  tenantId: string;
  bundle: { id: string };
  sys: { id: string };
  doc: { id: string };
  requests: Rendered[];
  driftRequest: Rendered;
}

/** A dashboard page as a signed-in user gets it (the key in the session cookie), not following a redirect. */
export async function signedInPage(t: TestApp, path: string, key: string) {
  const res = await t.app.request(path, { headers: { cookie: `ph_ui_key=${key}` } });
  return { status: res.status, headers: res.headers, location: res.headers.get('location'), text: await res.text() };
}

export async function seed(t: TestApp): Promise<Seeded> {
  const { client, key, id: tenantId } = t.tenant();
  const tools = await mintTools(client);
  const sys = await mintSystem(client, LONG_SYSTEM);
  const doc = await mintArtifact(client, 'document', DOC_TEXT, { name: HOSTILE });
  const bundle = await mintBundle(client, [tools.id, sys.id, doc.id], 'support agent');
  // A second version of the system prompt, so the versions table has a change to explain.
  await client.post(`/v1/artifacts/${sys.id}/versions`, { content: LONG_SYSTEM.replace('handbook', 'manual') });

  const requests: Rendered[] = [];
  const turn = async (n: number, usage?: (r: Rendered) => object) => {
    const r = await renderAnthropic(client, { prefix: [bundle.id], messages: [{ role: 'user', content: `turn ${n}` }] });
    const cached = r.breakpoints[0]!.token_end;
    await report(client, t, r, usage ? usage(r) : anthropicUsage(promptTokens(r), n === 1 ? 0 : cached, n === 1 ? cached : 0));
    requests.push(r);
    t.clock.advance(MIN);
  };
  await turn(1);
  await turn(2);
  await turn(3);
  // No cache fields at all: this request's capture is unknown, not 0%.
  await turn(4, (r) => ({ input_tokens: promptTokens(r), output_tokens: 10 }));

  const at = (stamp: string) => ({ system: [{ type: 'text', text: `Current time: ${stamp}` }, { type: 'handle', ref: sys.id }], messages: [{ role: 'user', content: 'hi' }] });
  const d1 = await renderAnthropic(client, at('2026-01-01T12:05:00Z'));
  await report(client, t, d1, anthropicUsage(promptTokens(d1), 0, d1.breakpoints[0]!.token_end));
  t.clock.advance(MIN);
  const d2 = await renderAnthropic(client, at('2026-01-01T12:06:00Z'));
  await report(client, t, d2, anthropicUsage(promptTokens(d2), 0, d2.breakpoints[0]!.token_end));
  t.clock.advance(MIN);
  return { client, key, tenantId, bundle, sys, doc, requests, driftRequest: d2 };
}

/** Another agent turn on the bundle, reported as a cache read (the live view's trigger). */
export async function anotherTurn(t: TestApp, s: Seeded, n: number) {
  const r = await renderAnthropic(s.client, { prefix: [s.bundle.id], messages: [{ role: 'user', content: `live turn ${n}` }] });
  await report(s.client, t, r, anthropicUsage(promptTokens(r), r.breakpoints[0]!.token_end, 0));
  return r;
}

/** `data-metric` figures on a page, as numbers (null when shown as "—"). */
export function metricsOf(page: string): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const m of page.matchAll(/data-metric="([^"]+)" data-value="([^"]*)"/g)) out[m[1]!] = m[2] === '' ? null : Number(m[2]);
  return out;
}

/** The figures the API report gives for the same metrics. */
export function expectedMetrics(rep: { requests: number; tokens: Record<string, number>; capture_rate: number | null; money: Record<string, number | string> }) {
  return {
    requests: rep.requests,
    'tokens.referenced': rep.tokens.referenced!,
    'tokens.opportunity': rep.tokens.opportunity!,
    'tokens.captured': rep.tokens.captured!,
    capture_rate: rep.capture_rate,
    'money.realised_savings': rep.money.realised_savings,
    'money.leaked_savings': rep.money.leaked_savings,
    'money.actual_input_cost': rep.money.actual_input_cost,
    'money.cost_at_perfect_capture': rep.money.cost_at_perfect_capture,
    'money.write_premiums_unread': rep.money.write_premiums_unread,
    'money.unknown_capture_input_cost': rep.money.unknown_capture_input_cost,
  };
}

/** Waterfall rows as drawn (class → tokens). */
export function waterfallOf(page: string): Record<string, number> {
  const svg = /<svg[^>]*data-chart="waterfall"[\s\S]*?<\/svg>/.exec(page)?.[0] ?? '';
  return Object.fromEntries([...svg.matchAll(/<g data-class="([a-z_]+)" data-tokens="(\d+)"/g)].map((m) => [m[1]!, Number(m[2])]));
}

export interface AgentWeek {
  client: Client;
  key: string;
  bundle: { id: string };
  classifier: { id: string };
  sessions: string[];
}

/**
 * An agent product's days, as a team lead's trial had them: a bundle (system prompt and handbook) every conversation
 * starts on, one session per conversation, and a classifier prompt used alone. Each day `perDay` conversations of two
 * turns: the first writes the cache, the second reads what the simulation predicts, except every third conversation's,
 * which the provider reads nothing of (unconfirmed: money leaked), and every fifth's, reported without cache fields
 * (unknown). The classifier writes, then reads, then expires on alternate days. `days` days, the last one today.
 */
export async function agentWeek(t: TestApp, opts: { perDay: number; days: number }): Promise<AgentWeek> {
  const { client, key } = t.tenant();
  const sys = await mintSystem(client, `${LONG_SYSTEM} Agent.`);
  const doc = await mintArtifact(client, 'document', `${'Handbook section. '.repeat(300)}`, { name: 'handbook' });
  const bundle = await mintBundle(client, [sys.id, doc.id], 'support agent');
  const classifier = await mintSystem(client, `${LONG_SYSTEM} Classify each ticket.`);
  const sessions: string[] = [];
  const call = async (body: object, usage: (r: Rendered) => object) => {
    const r = await renderAnthropic(client, body);
    await report(client, t, r, usage(r));
    t.clock.advance(MIN);
  };
  const predicted = (r: Rendered) => anthropicUsage(promptTokens(r), r.prediction.read_tokens, Math.max(0, r.breakpoints.at(-1)!.token_end - r.prediction.read_tokens));
  const nothingRead = (r: Rendered) => anthropicUsage(promptTokens(r), 0, r.breakpoints.at(-1)!.token_end);
  const noCacheFields = (r: Rendered) => ({ input_tokens: promptTokens(r), output_tokens: 20 });
  // Each question marked, so the next turn can read the conversation from the cache.
  const marked = (text: string) => ({ role: 'user', content: [{ type: 'text', text, cache_control: { type: 'ephemeral' } }] });
  let n = 0;
  for (let day = 0; day < opts.days; day++) {
    for (let i = 0; i < opts.perDay; i++, n++) {
      const res = await client.post('/v1/sessions', { base: bundle.id, messages: [{ role: 'user', content: `Conversation ${n}: where is order ${1000 + n}?` }] });
      const ses = res.json.id as string;
      sessions.push(ses);
      await call({ prefix: [ses], messages: [marked('Please check.')] }, predicted);
      await client.post(`/v1/sessions/${ses}/messages`, { messages: [{ role: 'assistant', content: `Order ${1000 + n} is at the depot.` }] });
      await call({ prefix: [ses], messages: [marked('When will it arrive?')] }, n % 5 === 4 ? noCacheFields : n % 3 === 0 ? nothingRead : predicted);
    }
    const classify = { system: [{ type: 'handle', ref: classifier.id }], messages: [{ role: 'user', content: `ticket of day ${day}` }] };
    await call(classify, predicted);
    await call(classify, predicted);
    if (day % 2 === 1) {
      t.clock.advance(10 * MIN);
      await call(classify, predicted);
    }
    if (day < opts.days - 1) t.clock.advance(86_400_000);
  }
  return { client, key, bundle, classifier, sessions };
}

export interface SessionsAndInline {
  bundle: { id: string };
  classifier: { id: string };
  sessions: string[];
  /** Every call by name: `old-…` ten days ago, the rest today. */
  ids: Record<string, string>;
  /** The calls that named no handle and were reported (what the reports' `no_handle` counts), by model. */
  inline: Record<string, string[]>;
}

/**
 * An agent with a session per conversation on a bundle, a classifier prompt used alone, and calls through no handle,
 * made through `client` (over HTTP when it is). Ten days ago: one conversation and one inline call. Today: six
 * conversations of two turns, the first writing the cache; the second read as predicted, read nothing (unconfirmed),
 * or reported without cache fields (unknown), by turn; one conversation goes on after 10 minutes unused (expired),
 * one with a time inline before it (drift). The classifier drifts too (a time before it: no session's). Inline calls
 * on two models, one not reported (not counted), and a call naming a session with no turns (it named a handle).
 */
export async function sessionsAndInline(t: TestApp, client: Client): Promise<SessionsAndInline> {
  const sys = await mintSystem(client, `${LONG_SYSTEM} Conversations.`);
  const bundle = await mintBundle(client, [sys.id], 'support agent');
  const classifier = await mintSystem(client, `${LONG_SYSTEM} Classify each ticket.`);
  const sessions: string[] = [];
  const ids: Record<string, string> = {};
  const inline: Record<string, string[]> = {};
  const predicted = (r: Rendered) => anthropicUsage(promptTokens(r), r.prediction.read_tokens, Math.max(0, (r.breakpoints.at(-1)?.token_end ?? 0) - r.prediction.read_tokens));
  const nothingRead = (r: Rendered) => anthropicUsage(promptTokens(r), 0, r.breakpoints.at(-1)?.token_end ?? 0);
  const noCacheFields = (r: Rendered) => ({ input_tokens: promptTokens(r), output_tokens: 20 });
  const call = async (name: string, body: object, usage: ((r: Rendered) => object) | null) => {
    const r = await renderAnthropic(client, body);
    ids[name] = r.request_id;
    if (usage) await report(client, t, r, usage(r));
    t.clock.advance(MIN);
    return r;
  };
  const marked = (text: string) => ({ role: 'user', content: [{ type: 'text', text, cache_control: { type: 'ephemeral' } }] });
  const conversation = async (name: string, second: (r: Rendered) => object, before?: string) => {
    const res = await client.post('/v1/sessions', { base: bundle.id, messages: [{ role: 'user', content: `Conversation ${name}: where is my order?` }] });
    const ses = res.json.id as string;
    sessions.push(ses);
    await call(`${name}.1`, { prefix: [ses], messages: [marked('Please check.')] }, predicted);
    await client.post(`/v1/sessions/${ses}/messages`, { messages: [{ role: 'assistant', content: `Order ${name} is at the depot.` }] });
    await call(`${name}.2`, { ...(before ? { system: [{ type: 'text', text: before }] } : {}), prefix: [ses], messages: [marked('When will it arrive?')] }, second);
    return ses;
  };
  const inlineCall = async (name: string, model: string, usage: ((r: Rendered) => object) | null = predicted) => {
    await call(name, { model, system: [{ type: 'text', text: `${LONG_SYSTEM} Inline.`, cache_control: { type: 'ephemeral' } }], messages: [userMessage(name)] }, usage);
    if (usage) (inline[model] ??= []).push(ids[name]!);
  };

  await conversation('old-c', predicted);
  await inlineCall('old-inline', 'claude-sonnet-4-5');
  t.clock.advance(10 * 86_400_000);
  for (const [i, second] of [predicted, nothingRead, noCacheFields, predicted, nothingRead, predicted].entries()) {
    const ses = await conversation(`c${i}`, second, i === 3 ? 'Now: 10:00' : undefined);
    if (i === 1) {
      t.clock.advance(10 * MIN);
      await call('c1.3', { prefix: [ses], messages: [marked('Any news?')] }, predicted);
    }
  }
  const classify = (stamp: string) => ({ system: [{ type: 'text', text: `Now: ${stamp}` }, { type: 'handle', ref: classifier.id }], messages: [userMessage('ticket')] });
  await call('k1', classify('11:00'), predicted);
  await call('k2', classify('11:01'), predicted);
  await inlineCall('s1', 'claude-sonnet-4-5');
  await inlineCall('h1', 'claude-haiku-4-5');
  await inlineCall('s2', 'claude-sonnet-4-5', nothingRead);
  await inlineCall('h2', 'claude-haiku-4-5', noCacheFields);
  await inlineCall('s3', 'claude-sonnet-4-5');
  await inlineCall('unreported', 'claude-sonnet-4-5', null);
  const empty = await startSession(client);
  await call('empty-session', { system: [{ type: 'text', text: `${LONG_SYSTEM} Inline.` }], prefix: [empty.id], messages: [userMessage('first turn')] }, predicted);
  await t.services.writes.idle();
  return { bundle, classifier, sessions, ids, inline };
}
