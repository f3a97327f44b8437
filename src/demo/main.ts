// `npm run demo`: the whole story in one process, on a clock the demo can move.
// The service and the built-in provider simulator share that clock, so a
// "six-minute pause" takes no time and the TTL logic still sees six minutes.
import Anthropic from '@anthropic-ai/sdk';
import { serve } from '@hono/node-server';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createApp, createServices } from '../app';
import { loadConfig } from '../config';
import { loadCatalog, ModelCatalog } from '../domain/catalog/catalog';
import type { Clock } from '../domain/clock';
import { startSimulator } from '../simulator/server';
import { openDb } from '../store/db';
import { SqliteStore } from '../store/sqlite-store';
import { DEMO_DOCUMENT, DEMO_QUESTIONS, DEMO_SYSTEM, DEMO_TOOLS } from './content';
import { printReport } from './print';
import { span } from '../http/ui/format';

class DemoClock implements Clock {
  private offset = 0;
  now(): number {
    return Date.now() + this.offset;
  }
  advance(ms: number): void {
    this.offset += ms;
  }
}

const MODEL = 'claude-sonnet-4-6';
const clock = new DemoClock();
const catalog = new ModelCatalog(loadCatalog());
const simulator = await startSimulator({ catalog, clock });
// One column for every question, the longest included.
const QUESTION_WIDTH = Math.max(...DEMO_QUESTIONS.map((q) => q.length));
const dataDir = mkdtempSync(join(tmpdir(), 'prefix-handles-demo-'));
// However the demo ends (a failure, Ctrl-C, a kill, or its terminal closed while it runs too), its database goes
// with it: a signal's default would end the process without its exit handlers. Exit codes as the shell's, 128 + n.
process.once('exit', () => rmSync(dataDir, { recursive: true, force: true }));
const SIGNAL_CODES = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;
for (const [signal, code] of Object.entries(SIGNAL_CODES)) process.once(signal, () => process.exit(code));
const config = loadConfig({
  PH_DATA_DIR: dataDir,
  PH_LOG: 'off',
  PH_ANTHROPIC_BASE_URL: simulator.url,
  PH_OPENAI_BASE_URL: simulator.url,
});
const opened = openDb(config.databasePath);
const deps = { config, store: new SqliteStore(opened.db, opened.walSync, clock), clock, catalog };
const services = createServices(deps);
const app = createApp(deps, services);
const port = Number(process.env.PORT ?? 8790);
const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' });
await new Promise<void>((resolve) => server.once('listening', () => resolve()));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const { api_key: key } = services.tenants.createTenant('demo');

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json()) as T;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

// Bold on a terminal only: piped or logged, the text stays plain (and NO_COLOR turns it off, as everywhere).
const bold = process.stdout.isTTY && !process.env.NO_COLOR;
const step = (text: string) => console.log(bold ? `\n\u001b[1m${text}\u001b[0m` : `\n${text}`);

step('1. Mint a realistic bundle: tools, a long system prompt, a handbook document');
const tools = await api<{ id: string }>('POST', '/v1/artifacts', { kind: 'tools', name: 'support tools', content: DEMO_TOOLS });
const system = await api<{ id: string; meta: { tokens: { anthropic: number } } }>('POST', '/v1/artifacts', { kind: 'system', name: 'support system prompt', content: DEMO_SYSTEM });
const handbook = await api<{ id: string }>('POST', '/v1/artifacts', { kind: 'document', name: 'handbook', content: DEMO_DOCUMENT });
const bundle = await api<{ id: string; ref: string; meta: { tokens: { anthropic: number } } }>('POST', '/v1/bundles', { name: 'support agent', members: [tools.id, system.id, handbook.id] });
console.log(`   bundle ${bundle.ref}: ~${bundle.meta.tokens.anthropic} tokens (estimated for Claude)`);

// The official SDK, pointed at the proxy: one baseURL change and our key in x-ph-key.
const anthropic = new Anthropic({ apiKey: 'sk-ant-demo-not-a-real-key', baseURL: `${url}/proxy/anthropic`, defaultHeaders: { 'x-ph-key': key }, maxRetries: 0 });

/** Every call's request id, in order (to wait for their reconciliation). */
const sent: string[] = [];
async function turn(question: string, headers: Record<string, string>, body: Partial<Anthropic.MessageCreateParamsNonStreaming> = {}) {
  clock.advance(20_000);
  // The newest message marked (as the README advises): cached on the turn it is sent, read from the session on the next.
  const asked: Anthropic.MessageParam = { role: 'user', content: [{ type: 'text', text: question, cache_control: { type: 'ephemeral' } }] };
  const { data: message, response } = await anthropic.messages.create({ model: MODEL, max_tokens: 200, messages: [asked], ...body }, { headers }).withResponse();
  const u = message.usage;
  console.log(`   ${question.padEnd(QUESTION_WIDTH)} read ${String(u.cache_read_input_tokens ?? 0).padStart(5)}  written ${String(u.cache_creation_input_tokens ?? 0).padStart(5)}  uncached ${String(u.input_tokens).padStart(5)}`);
  const id = response.headers.get('x-ph-request-id')!;
  sent.push(id);
  return id;
}

interface DriftFinding {
  segment: number;
  previous_request: string;
  byte_offset?: number;
  now: { excerpt?: string };
  before: { excerpt?: string };
}

step('2. An agent loop through the proxy: the bundle by header, the conversation kept in a session');
const session = await api<{ id: string }>('POST', '/v1/sessions', { name: 'demo conversation' });
for (const q of DEMO_QUESTIONS.slice(0, 4)) await turn(q, { 'x-ph-prefix': bundle.id, 'x-ph-session': session.id });

step('3. The same loop with a timestamp written into the system prompt, before the handles');
// Handle blocks stand where the SDK's types expect tools and text: cast, since the SDK does not know them.
const handle = <T>(ref: string) => ({ type: 'handle', ref }) as unknown as T;
let stamped = '';
for (const q of DEMO_QUESTIONS.slice(4, 7))
  stamped = await turn(q, {}, {
    system: [{ type: 'text', text: `Current time: ${new Date(clock.now()).toISOString()}` }, handle<Anthropic.TextBlockParam>(system.id)],
    tools: [handle<Anthropic.Tool>(tools.id)],
    messages: [{ role: 'user', content: [handle<Anthropic.TextBlockParam>(handbook.id), { type: 'text', text: q }] }],
  });

/**
 * The proxy reconciles after answering, on its own time (a busy machine can take a while): wait until every call
 * so far is reconciled and committed, so what is printed next counts them all.
 */
async function reconciled(): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (const id of sent) {
    while ((await api<{ status: string }>('GET', `/v1/requests/${id}`)).status === 'rendered') {
      if (Date.now() > deadline) throw new Error(`the proxy's call ${id} was not reconciled within 30 s`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
  await services.writes.idle();
}

// Then show where its prefix broke.
await reconciled();
const drift = (await api<{ outcome: { drift: DriftFinding | null } }>('GET', `/v1/requests/${stamped}`)).outcome.drift;
if (drift?.byte_offset !== undefined)
  console.log(`   drift located: segment #${drift.segment + 1} changed since ${drift.previous_request}, first at byte ${drift.byte_offset}:\n     before ${JSON.stringify(drift.before.excerpt)}\n     now    ${JSON.stringify(drift.now.excerpt)}`);
// Not expected: say what the service found instead, so a run that cannot show the byte says why.
else console.error(`the last timestamped call (${stamped}) has no drift located to a byte: ${JSON.stringify(drift)}`);

step('4. A pause longer than the 5-minute TTL (on the simulated clock), then two more calls on the bundle');
clock.advance(6 * 60_000);
const late = await turn(DEMO_QUESTIONS[7]!, { 'x-ph-prefix': bundle.id });
await reconciled();
const expired = (await api<{ outcome: { expired?: { gap_ms: number; ttl: string } } }>('GET', `/v1/requests/${late}`)).outcome.expired;
if (expired) console.log(`   expired: the bundle's prefix was last used ${span(expired.gap_ms)} before this call; its cache lifetime is ${expired.ttl}`);
await turn(DEMO_QUESTIONS[8]!, { 'x-ph-prefix': bundle.id });

step('5. What each handle was worth, and where the rest leaked');
// Without this, under load the last call could be missing from the table.
await reconciled();
await printReport(api, [bundle.id, system.id, tools.id, handbook.id, session.id]);

if (process.stdin.isTTY && !process.argv.includes('--exit')) {
  console.log(`\nDashboard: ${url}/ui  (sign in with the key below)\nAPI key:   ${key}\nData:      ${dataDir} (removed on exit)`);
  console.log('\nThe service keeps running so you can look around. Ctrl-C to stop.');
} else {
  // Not a terminal (or --exit): nobody can look at a dashboard that is about to stop, so none is offered.
  console.log('\nThe service has stopped. Run `npm run demo` in a terminal to keep it running and see the dashboard.');
  server.close();
  await simulator.close();
  opened.close();
}
