// The per-call render of a long session, in-process: the README's 300-round coding agent (a tools + system bundle,
// each round a question answered by a tool call with thinking, its ~2 KB tool result answered in text), rendered as
// the proxy renders the next call (requests.expand: the render without the record), at rounds 10, 100 and 300.
// `npm run bench -- long-session-render` (LS_ROUNDS=10,100,300 LS_SAMPLES=30 to change).
import { inProcess, prose } from './render';
import { type Benchmark, fmt, printTable, writeResults } from './lib';
import type { Message } from '../src/domain/content';

const MODEL = 'claude-sonnet-4-6';
const ROUNDS = (process.env.LS_ROUNDS ?? '10,100,300').split(',').map(Number);
const SAMPLES = Number(process.env.LS_SAMPLES ?? 30);
const SYSTEM = 'You are the support agent for a large handbook. Follow every policy exactly and cite sections. '.repeat(120);
const TOOLS = [{ name: 'read_file', description: 'Reads a file of the repository.', input_schema: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] } }];
const file = (i: number) => Array.from({ length: 40 }, (_, k) => `export const line${k} = ${i * 100 + k};`).join('\n');
const marked = (text: string) => [{ type: 'text', text, cache_control: { type: 'ephemeral', ttl: '1h' } }];
const body = (content: unknown) => JSON.stringify({ model: MODEL, max_tokens: 4096, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [{ role: 'user', content }] });

type App = ReturnType<typeof inProcess>;

export function longSession(app: App, rounds: number, model = MODEL): string {
  const h = app.services.handles;
  const tools = h.mintArtifact(app.tenantId, { kind: 'tools', content: TOOLS }).handle.id;
  const system = h.mintArtifact(app.tenantId, { kind: 'system', content: SYSTEM }).handle.id;
  const base = h.createBundle(app.tenantId, { members: [tools, system] }).handle.id;
  const session = h.createSession(app.tenantId, { base }).handle.id;
  const thinking = (k: number) => ({ type: 'thinking' as const, provider: 'anthropic' as const, thinking: prose(300 + k, 200), signature: `sig${k}`.padEnd(240, 'A'), model });
  for (let i = 1; i <= rounds; i++) {
    h.appendMessages(app.tenantId, session, [
      { role: 'user', content: [{ type: 'text', text: `Step ${i}: use read_file on src/f${i}.ts` }] },
      { role: 'assistant', content: [thinking(2 * i), { type: 'tool_use', id: `toolu_${i}`, name: 'read_file', input: { path: `src/f${i}.ts` } }] },
    ] as Message[]);
    h.appendMessages(app.tenantId, session, [
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: `toolu_${i}`, content: file(i) }] },
      { role: 'assistant', content: [thinking(2 * i + 1), { type: 'text', text: `Read src/f${i}.ts.` }] },
    ] as Message[]);
  }
  return session;
}

export function renderNext(app: App, session: string, i: number) {
  return app.services.requests.expand({ tenantId: app.tenantId, format: 'anthropic', bodyText: body(marked(`Step ${i}: next`)), pointer: '/request', extraPrefix: [{ ref: session, pointer: 'header:x-ph-session' }] });
}

async function run(): Promise<void> {
  const rows: string[][] = [];
  const details: Record<string, unknown> = {};
  for (const rounds of ROUNDS) {
    const app = inProcess(':memory:');
    try {
      const session = longSession(app, rounds);
      const bytes = Buffer.byteLength(renderNext(app, session, 0).bodyText);
      const times: number[] = [];
      for (let k = 0; k < SAMPLES; k++) {
        const t = performance.now();
        renderNext(app, session, k);
        times.push(performance.now() - t);
      }
      times.sort((a, b) => a - b);
      const p = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!;
      rows.push([`${rounds} rounds (${fmt.bytes(bytes)})`, fmt.ms(p(0.5)), fmt.ms(p(0.9))]);
      details[`rounds_${rounds}`] = { renderedBytes: bytes, p50Ms: p(0.5), p90Ms: p(0.9) };
    } finally {
      app.close();
    }
  }
  console.log(`${MODEL} session renders in-process (requests.expand), ${SAMPLES} calls each.\n`);
  printTable(['session', 'render p50', 'p90'], rows);
  console.log(`\nresults written to ${writeResults('long-session-render', { benchmark: 'long-session-render', measuredAt: new Date().toISOString(), node: process.version, model: MODEL, details })}`);
}

export const longSessionRenderBenchmarks: Benchmark[] = [{ name: 'long-session-render', run }];
