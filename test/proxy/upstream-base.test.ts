// The proxy's upstream base URL is read as each provider's SDK reads its baseURL: OpenAI's ends at the API version
// (`https://api.openai.com/v1`, vLLM's `http://host:8000/v1`, Gemini's `…/v1beta/openai`), Anthropic's at the origin
// (or a gateway's path to it). A bare origin keeps the provider's whole path.

import Anthropic from '@anthropic-ai/sdk';
import { serve } from '@hono/node-server';
import { createServer } from 'node:http';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { upstreamPath } from '../../src/http/proxy/upstream';
import { createTestApp } from '../helpers/app';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const CHAT = { id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'gpt-4.1', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }], usage: { prompt_tokens: 12, completion_tokens: 1, total_tokens: 13, prompt_tokens_details: { cached_tokens: 0 } } };
const MESSAGE = { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 12, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 } };

/** A stand-in provider that records the paths it is called on; the service with both base URLs under `paths`. */
async function proxyTo(paths: { anthropic: string; openai: string }) {
  const seen: string[] = [];
  const upstream = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    req.resume().on('end', () => {
      const body = req.url!.endsWith('/messages') ? MESSAGE : req.url!.endsWith('/models') ? { object: 'list', data: [] } : CHAT;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => upstream.close(r)));
  const origin = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
  const t = createTestApp({ config: { anthropicBaseUrl: origin + paths.anthropic, openaiBaseUrl: origin + paths.openai } });
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: t.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  cleanups.push(() => new Promise((r) => server.close(r)), () => t.close());
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const key = t.tenant().key;
  const openai = new OpenAI({ apiKey: 'sk-test', baseURL: `${url}/proxy/openai/v1`, defaultHeaders: { 'x-ph-key': key }, maxRetries: 0 });
  const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: `${url}/proxy/anthropic`, defaultHeaders: { 'x-ph-key': key }, maxRetries: 0 });
  return { seen, openai, anthropic };
}

async function callBoth(p: Awaited<ReturnType<typeof proxyTo>>) {
  const chat = await p.openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] });
  expect(chat.choices[0]!.message.content).toBe('ok');
  await p.openai.models.list();
  const message = await p.anthropic.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
  expect(message.content[0]).toMatchObject({ text: 'ok' });
}

describe('upstream base URLs', () => {
  it('a bare origin: the providers’ whole paths', async () => {
    const p = await proxyTo({ anthropic: '', openai: '' });
    await callBoth(p);
    expect(p.seen).toEqual(['POST /v1/chat/completions', 'GET /v1/models', 'POST /v1/messages']);
  });

  it('an OpenAI base URL as its SDK takes it (ending in /v1, or Gemini’s /v1beta/openai) is not given a second /v1', async () => {
    const p = await proxyTo({ anthropic: '/gateway/anthropic', openai: '/v1' });
    await callBoth(p);
    // Anthropic's SDK adds /v1/messages to its base URL, whatever path it has.
    expect(p.seen).toEqual(['POST /v1/chat/completions', 'GET /v1/models', 'POST /gateway/anthropic/v1/messages']);

    const gemini = await proxyTo({ anthropic: '', openai: '/v1beta/openai/' });
    await gemini.openai.chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }] });
    expect(gemini.seen).toEqual(['POST /v1beta/openai/chat/completions']);
  });

  it('keeps the query, and only a leading /v1 segment is dropped', () => {
    const base = new URL('http://h/v1');
    expect(upstreamPath('openai', base, '/v1/models?limit=2')).toBe('/v1/models?limit=2');
    expect(upstreamPath('openai', new URL('http://h/api/'), '/v1/chat/completions')).toBe('/api/chat/completions');
    expect(upstreamPath('openai', new URL('http://h/api'), '/v1beta/x')).toBe('/api/v1beta/x');
    expect(upstreamPath('anthropic', new URL('http://h/v1'), '/v1/messages?beta=true')).toBe('/v1/v1/messages?beta=true');
  });
});
