// The coding agent of the README's 300-round trial (Sessions), shared by the trials that measure it: a tools + system
// bundle, a session on it, and the official Anthropic SDK through the proxy to the simulator with the session's header.
// Each round asks for a file (thinking on) and answers the tool call with the file, the last block marked `1h`.

import type Anthropic from '@anthropic-ai/sdk';
import { mintBundle, mintSystem, mintTools, startSession } from '../test/helpers/factories';
import { LONG_SYSTEM } from '../test/helpers/scenario';
import { committed, type Harness } from '../test/proxy/harness';

export const MODEL = 'claude-sonnet-4-6';
export const THINKING = { type: 'enabled' as const, budget_tokens: 1024 };
export type Block = Anthropic.ContentBlockParam;
export const marked = (blocks: Block[]): Block[] => [...blocks.slice(0, -1), { ...blocks[blocks.length - 1]!, cache_control: { type: 'ephemeral', ttl: '1h' } } as Block];
/** Round i's file, FILE_LINES lines (40). */
export const file = (i: number) => Array.from({ length: Number(process.env.FILE_LINES ?? 40) }, (_, k) => `export const line${k} = ${i * 100 + k};`).join('\n');

/** The agent's bundle and session minted, and its SDK client, once committed. */
export async function startCodingAgent(h: Harness) {
  const client = h.tenant.client;
  const bundle = await mintBundle(client, [(await mintTools(client, 'read_file')).id, (await mintSystem(client, LONG_SYSTEM)).id]);
  const session = await startSession(client, { base: bundle.id });
  const sdk = h.anthropic({ headers: { 'x-ph-session': session.id } });
  await committed(h);
  return { client, session, sdk };
}
