// A chatty agent session through the proxy — many short turns and tool calls —
// estimated as the (simulated) provider counts it. The estimate drives the
// below-minimum gate, predictions and calibration before any report arrives;
// counted on the request's JSON it ran ~1.5x the count here.

import type Anthropic from '@anthropic-ai/sdk';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { mintArtifact, mintBundle, startSession } from '../helpers/factories';
import { committed, startHarness, type Harness } from './harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

const TOOLS = [
  { name: 'read_file', description: 'Read a file from the workspace.', input_schema: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] } },
  { name: 'run_shell', description: 'Run a shell command.', input_schema: { type: 'object', properties: { command: { type: 'string' } }, required: ['command'] } },
];
const CODE = (i: number) => `import { x } from "./mod${i}";\n\nexport function f${i}(a: string): string {\n  return a === "" ? "empty" : \`\${a}-${i}\`;\n}\n`;

it.each(['session', 'inline'] as const)('a chatty Anthropic agent (%s): each request estimated within 15 percent of the provider’s count — here exactly', async (mode) => {
  const client = h.tenant.client;
  const tools = await mintArtifact(client, 'tools', TOOLS);
  const sys = await mintArtifact(client, 'system', 'You are a coding agent. Keep answers short. '.repeat(60));
  const bundle = await mintBundle(client, [tools.id, sys.id]);
  const session = await startSession(client, { base: bundle.id });
  const sdk = h.anthropic({ headers: mode === 'session' ? { 'x-ph-session': session.id } : { 'x-ph-prefix': bundle.id } });
  const history: Anthropic.MessageParam[] = [];
  const ids: string[] = [];
  const send = async (m: Anthropic.MessageParam) => {
    const { data, response } = await sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 128, messages: mode === 'session' ? [m] : [...history, m] }).withResponse();
    history.push(m, { role: 'assistant', content: data.content });
    ids.push(response.headers.get('x-ph-request-id')!);
    return data;
  };
  for (let i = 0; i < 12; i++) {
    const data = await send({ role: 'user', content: i % 2 === 0 ? `Use read_file on src/mod${i}.ts` : `ok, and test ${i}?` });
    const call = data.content.find((b) => b.type === 'tool_use');
    if (call) await send({ role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: CODE(i) }] });
    h.clock.advance(10_000);
  }
  await committed(h);
  expect(ids.length).toBe(18);
  for (const id of ids) {
    const { outcome, usage } = (await client.get(`/v1/requests/${id}`)).json;
    const ratio = outcome.estimated_prompt_tokens / usage.total_prompt_tokens;
    expect(ratio).toBeGreaterThan(0.85);
    expect(ratio).toBeLessThan(1.15);
    expect(outcome.estimated_prompt_tokens).toBe(usage.total_prompt_tokens);
  }
});
