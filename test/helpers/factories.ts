import { expect } from 'vitest';
import type { Client } from './app';

// Every test mints its own data: no shared seed ids.

let n = 0;
const unique = (label: string) => `${label} #${++n}`;

export async function mintArtifact(client: Client, kind: string, content: unknown, extra: Record<string, unknown> = {}) {
  const res = await client.post('/v1/artifacts', { kind, content, ...extra });
  expect(res.status, res.text).toBe(201);
  return res.json as { id: string; ref: string; version: number; digest: string; size: number };
}

export const mintSystem = (client: Client, text = unique('You are a careful assistant.')) => mintArtifact(client, 'system', text);

export const mintTools = (client: Client, name = 'get_weather') =>
  mintArtifact(client, 'tools', [
    {
      name,
      description: 'Get the weather for a city',
      input_schema: { type: 'object', properties: { city: { type: 'string' }, unit: { enum: ['c', 'f'] } }, required: ['city'] },
    },
  ]);

export const mintDocument = (client: Client, text = unique('A document about caching.')) => mintArtifact(client, 'document', text);

export async function mintBundle(client: Client, members: string[], name?: string) {
  const res = await client.post('/v1/bundles', { members, ...(name ? { name } : {}) });
  expect(res.status, res.text).toBe(201);
  return res.json as { id: string; ref: string; version: number; members: string[]; digest: string };
}

export async function startSession(client: Client, body: Record<string, unknown> = {}) {
  const res = await client.post('/v1/sessions', body);
  expect(res.status, res.text).toBe(201);
  return res.json as { id: string; ref: string; version: number; message_count: number };
}

export const userMessage = (text: string) => ({ role: 'user', content: text });
export const assistantMessage = (text: string) => ({ role: 'assistant', content: text });
