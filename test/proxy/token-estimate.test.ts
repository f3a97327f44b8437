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

// A coding agent's Anthropic-defined tools carry no schema: the provider adds the model's documented figure for each
// (catalog definedToolTokens). The estimate counts it, and so does the simulator behind the proxy.
it.each(['tools handle', 'inline'] as const)('an agent with the bash tool and the text editor through the official SDK (%s): estimated and billed at their figures', async (mode) => {
  const client = h.tenant.client;
  const sys = await mintArtifact(client, 'system', 'You are a coding agent. Keep answers short. '.repeat(60));
  const tools: Anthropic.ToolUnion[] = [
    { type: 'bash_20250124', name: 'bash' },
    { type: 'text_editor_20250429', name: 'str_replace_based_edit_tool' },
  ];
  const handle = await mintArtifact(client, 'tools', tools);
  const bare = h.anthropic({ headers: { 'x-ph-prefix': sys.id } });
  const sdk = mode === 'inline' ? bare : h.anthropic({ headers: { 'x-ph-prefix': (await mintBundle(client, [handle.id, sys.id])).id } });
  const params = { model: 'claude-sonnet-4-6', messages: [{ role: 'user' as const, content: 'Run the tests.' }], ...(mode === 'inline' ? { tools } : {}) };
  // Counted through the proxy by the simulator: the tools add 244 and 700 on Sonnet 4.6, and its tool-use prompt 497.
  const counted = (await sdk.messages.countTokens(params)).input_tokens;
  expect(counted - (await bare.messages.countTokens({ ...params, tools: undefined })).input_tokens).toBe(244 + 700 + 497);
  const { data, response } = await sdk.messages.create({ ...params, max_tokens: 128 }).withResponse();
  expect(data.usage.input_tokens + (data.usage.cache_creation_input_tokens ?? 0) + (data.usage.cache_read_input_tokens ?? 0)).toBe(counted);
  await committed(h);
  const { outcome, usage } = (await client.get(`/v1/requests/${response.headers.get('x-ph-request-id')}`)).json;
  expect(usage.total_prompt_tokens).toBe(counted);
  expect(outcome.estimated_prompt_tokens).toBe(counted);
  // The tools come first: their segment (the handle's, or the caller's inline) holds the figures and the tool-use prompt.
  const first = outcome.segments[0] as { source: string; start: number; end: number };
  expect(first.source).toBe(mode === 'inline' ? 'inline' : `${handle.id}@1`);
  expect(first.end - first.start).toBe(244 + 700 + 497);
  if (mode === 'tools handle') {
    const report = (await client.get(`/v1/reports/handles/${handle.id}`)).json;
    expect(report.tokens.referenced).toBe(244 + 700 + 497);
  }
});
