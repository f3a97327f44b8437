import { expect } from 'vitest';
import type { Client, TestApp } from './app';

// Drives render → provider usage → reconcile with a controllable clock.

export const LONG_SYSTEM = 'You are the support agent for a large handbook. Follow every policy exactly and cite sections. '.repeat(120);

export interface Rendered {
  request_id: string;
  segments: Array<{ source: string; token_start: number; token_end: number; section: string; tokens_estimated: boolean }>;
  breakpoints: Array<{ segment: number; token_end: number; set_by: 'caller' | 'service' }>;
  prediction: { read_tokens: number; write_tokens: number };
  body: unknown;
}

export async function renderAnthropic(client: Client, request: object): Promise<Rendered> {
  const res = await client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 256, ...request } });
  expect(res.status, res.text).toBe(200);
  return res.json;
}

export const promptTokens = (r: Rendered) => r.segments[r.segments.length - 1]!.token_end;

/** An Anthropic usage object: `read` tokens from cache, `write` written, the rest uncached. */
export function anthropicUsage(total: number, read: number, write: number) {
  return {
    input_tokens: total - read - write,
    cache_creation_input_tokens: write,
    cache_read_input_tokens: read,
    cache_creation: { ephemeral_5m_input_tokens: write, ephemeral_1h_input_tokens: 0 },
    output_tokens: 20,
  };
}

export async function report(client: Client, t: TestApp, r: Rendered, usage: object, timing: { firstByteMs?: number } = {}) {
  const started = t.clock.now();
  const res = await client.post('/v1/usage', {
    request_id: r.request_id,
    usage,
    started_at: started,
    first_byte_at: started + (timing.firstByteMs ?? 500),
    finished_at: started + (timing.firstByteMs ?? 500) + 500,
  });
  expect(res.status, res.text).toBe(201);
  return res.json as { outcome: { segments: Array<{ source: string; classes: Record<string, number>; start: number; end: number }>; capture: string; drift: any; predicted: { read: number }; expired?: { last_used_at: number; gap_ms: number; ttl: string } } };
}

export function classesOf(outcome: Awaited<ReturnType<typeof report>>['outcome'], source: string) {
  const seg = outcome.segments.find((s) => s.source === source);
  if (!seg) throw new Error(`no segment ${source}`);
  return Object.fromEntries(Object.entries(seg.classes).filter(([, n]) => n > 0));
}

/** A row of a handle report's `versions`, as the tests read it. */
export interface VersionRow {
  version: number;
  requests: number;
  requests_including: number;
  tokens: Record<string, number>;
  requests_with: Record<string, number>;
  money: Record<string, number>;
}
