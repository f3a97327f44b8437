// Preserved thinking's prefix check (src/domain/thinking-prefix.ts) on a render's hot path: a Claude Fable 5.1
// session of tool rounds, each reply's thinking kept with its prefix as the proxy keeps it, rendered in-process for
// the next turn, against the same session kept without prefixes (no check runs), alternated in the same run.
import { inProcess, prose, rng } from './render';
import { type Benchmark, fmt, printTable, timeAlternating, writeResults } from './lib';
import type { Message } from '../src/domain/content';
import { withPrefixes } from '../src/domain/thinking-prefix';

const MODEL = 'claude-fable-5-1';
const ROUNDS = [10, 40];
const SAMPLES = 400;
const TOOLS = ['get_weather', 'get_forecast', 'get_alerts', 'get_tides'].map((name) => ({
  name,
  description: `Looks up ${name.slice(4)} for a city; returns a short summary.`,
  input_schema: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 1, maximum: 7 } }, required: ['city'] },
}));

type App = ReturnType<typeof inProcess>;

/** A signature-like string: Anthropic's are opaque base64 of a few hundred bytes. */
function signature(seed: number): string {
  const r = rng(seed);
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  return Array.from({ length: 240 }, () => abc[Math.floor(r() * 64)]).join('');
}

const body = (content: Message['content']) => JSON.stringify({ model: MODEL, max_tokens: 4096, thinking: { type: 'adaptive' }, messages: [{ role: 'user', content }] });

/**
 * Two sessions on one tools + system bundle holding the same `rounds` tool rounds (a question answered by a tool
 * call, its result answered in text): one whose thinking blocks carry the prefix they were rendered under, one without.
 */
function sessions(app: App, rounds: number): { kept: string; bare: string } {
  const h = app.services.handles;
  const tools = h.mintArtifact(app.tenantId, { kind: 'tools', content: TOOLS }).handle.id;
  const system = h.mintArtifact(app.tenantId, { kind: 'system', content: prose(11, 3 * 1024) }).handle.id;
  const base = h.createBundle(app.tenantId, { members: [tools, system] }).handle.id;
  const kept = h.createSession(app.tenantId, { base }).handle.id;
  const bare = h.createSession(app.tenantId, { base }).handle.id;
  let n = 0;
  const turn = (user: Message, reply: (n: number) => Message['content']) => {
    // Rendered as the proxy renders the turn, so the prefix kept is the one sent.
    const sent = app.services.requests.expand({ tenantId: app.tenantId, format: 'anthropic', bodyText: body(user.content), pointer: '/request', extraPrefix: [{ ref: kept, pointer: 'header:x-ph-session' }] });
    const answer = { role: 'assistant', content: reply(++n) } as Message;
    h.appendMessages(app.tenantId, kept, [user, withPrefixes(answer, sent.bodyText)]);
    h.appendMessages(app.tenantId, bare, [user, answer]);
  };
  const thinking = (k: number) => ({ type: 'thinking' as const, provider: 'anthropic' as const, thinking: prose(300 + k, 300), signature: signature(k), model: MODEL });
  for (let r = 0; r < rounds; r++) {
    const city = `City ${r}`;
    turn({ role: 'user', content: `What is the weather in ${city} this week? Use the tools.` }, (k) => [thinking(k), { type: 'tool_use', id: `toolu_${k}`, name: 'get_forecast', input: { city, days: 7 } }]);
    turn({ role: 'user', content: [{ type: 'tool_result', tool_use_id: `toolu_${n}`, content: prose(500 + r, 160) }] }, (k) => [thinking(k), { type: 'text', text: prose(700 + r, 160) }]);
  }
  return { kept, bare };
}

async function run(): Promise<void> {
  const rows: string[][] = [];
  const details: Record<string, unknown> = {};
  for (const rounds of ROUNDS) {
    const app = inProcess(':memory:');
    try {
      const { kept, bare } = sessions(app, rounds);
      const render = (session: string, i: number) =>
        app.services.requests.expand({ tenantId: app.tenantId, format: 'anthropic', bodyText: body(`And in City ${i}? Use the tools.`), pointer: '/request', extraPrefix: [{ ref: session, pointer: 'header:x-ph-session' }] });
      const bytes = Buffer.byteLength(render(kept, -1).bodyText);
      if (render(bare, -1).bodyText.length !== bytes) throw new Error('the two sessions render different bytes');
      const r = await timeAlternating(
        (i) => render(bare, i),
        (i) => render(kept, i),
        { samples: SAMPLES, block: 20, warmup: 50 },
      );
      rows.push([`${rounds} rounds (${fmt.bytes(bytes)})`, `${fmt.ms(r.baseline.p50Ms)} / ${fmt.ms(r.baseline.p99Ms)}`, `${fmt.ms(r.subject.p50Ms)} / ${fmt.ms(r.subject.p99Ms)}`, fmt.ms(r.subject.p50Ms - r.baseline.p50Ms), fmt.ratio(r.subject.p50Ms / r.baseline.p50Ms)]);
      details[`rounds_${rounds}`] = { renderedBytes: bytes, ...r };
    } finally {
      app.close();
    }
  }
  console.log(`${MODEL} session renders in-process (requests.expand), ${SAMPLES} calls a side alternated in blocks of 20: kept without prefixes (baseline) and with them (the check runs).\n`);
  printTable(['session', 'without prefixes p50/p99', 'with prefixes p50/p99', 'added p50', 'ratio p50'], rows);
  const file = writeResults('thinking-prefix', { benchmark: 'thinking-prefix', measuredAt: new Date().toISOString(), node: process.version, model: MODEL, details });
  console.log(`\nresults written to ${file}`);
}

export const thinkingPrefixBenchmarks: Benchmark[] = [{ name: 'thinking-prefix', run }];
