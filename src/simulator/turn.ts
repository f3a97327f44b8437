// What one simulated model call produced, independent of the provider's wire shape:
// the reply text and the cache simulator's verdict on the prompt. The provider
// modules (anthropic.ts, openai-chat.ts, openai-responses.ts) render it.

import { customAlphabet } from 'nanoid';
import type { ThinkingBinding } from './reasoning';

export interface SimUsage {
  /** Every prompt token, cached or not. */
  promptTokens: number;
  readTokens: number;
  writeTokens: number;
  /** Written tokens per TTL name ("5m", "1h", …). */
  writeByTtl: Record<string, number>;
  outputTokens: number;
  /** Of outputTokens, the reasoning's (OpenAI Chat Completions and Responses report them); 0 when absent. */
  reasoningTokens?: number;
  /** Whether the model bills (and so reports) cache writes. */
  writesBilled: boolean;
}

/** A tool the simulated model calls instead of answering in text (see tools.ts for when). */
export interface SimToolCall {
  /** `toolu_…` (Anthropic) or `call_…` (OpenAI). */
  id: string;
  name: string;
  /** The arguments as JSON text; streamed in `argumentChunks`, which join back to it. */
  arguments: string;
  argumentChunks: string[];
}

/** One answer of the model: text, or a tool call. */
export interface Reply {
  /** Empty when the model calls a tool. */
  text: string;
  /** The text split into stream deltas; joined they equal `text`. */
  chunks: string[];
  toolCall: SimToolCall | null;
  /** The text stopped at the request's output limit (max_tokens, max_completion_tokens, max_output_tokens). */
  truncated: boolean;
  /**
   * Anthropic with `thinking` on: the thinking block's text, which comes first (reasoning.ts signs it); OpenAI
   * Responses with a reasoning model asked for its encrypted reasoning: the reasoning item's; an OpenAI reasoning model
   * on Chat Completions: its reasoning, counted and never shown; else null.
   */
  thinking: string | null;
  /** Gemini 3: the answer's parts carry thought signatures (on a function call, else on the last part). */
  signed: boolean;
}

export interface Turn extends Reply {
  /** The model name exactly as requested. */
  model: string;
  /** Anthropic: what its thinking is tied to (a model with preserved thinking), else null. */
  thinkingBinding: ThinkingBinding | null;
  /** Anthropic, with the thinking-binding beta on a thinking model: the thinking blocks the API removed; else null (not reported). */
  inputTransformations: unknown[] | null;
  /** The further choices of a Chat request with `n` > 1 (choice 0 is the turn itself); empty otherwise. */
  more: Reply[];
  /** ms, from the simulator's clock. */
  createdAt: number;
  /** `outputTokens` counts every choice. */
  usage: SimUsage;
}

export type ProviderApi = 'anthropic' | 'openai' | 'gemini';

const alnum = customAlphabet('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 24);

/** Provider-looking ids (`msg_…`, `chatcmpl-…`, `resp_…`); random, never parsed. */
export function providerId(prefix: string): string {
  return `${prefix}${alnum()}`;
}

/** `n` numbers the reply (`7`, or `7.1` for the second choice of reply 7). */
export function replyText(n: number | string, lastUserText: string): string {
  const quoted = lastUserText.replace(/\s+/g, ' ').trim().slice(0, 40);
  return quoted === '' ? `Simulated reply #${n}.` : `Simulated reply #${n} to: ${quoted}`;
}

/** The longest run of whole words from the start of `text` within `limit` tokens. */
export function cutToTokens(text: string, limit: number, count: (text: string) => number): string {
  let out = '';
  for (const word of text.match(/\S+\s*/g) ?? []) {
    if (count((out + word).trimEnd()) > limit) break;
    out += word;
  }
  return out.trimEnd();
}

/** Splits text into deltas of a few words each (whitespace kept, so the deltas join back exactly). */
export function splitDeltas(text: string, wordsPerDelta = 3): string[] {
  const words = text.match(/\S+\s*/g) ?? [text];
  const out: string[] = [];
  for (let i = 0; i < words.length; i += wordsPerDelta) out.push(words.slice(i, i + wordsPerDelta).join(''));
  return out;
}

/** JSON text in stream pieces of a few characters, as providers send tool arguments. */
export function splitJson(text: string, size = 12): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out.length > 0 ? out : [''];
}

/** Text of a message `content` that is a string or a list of text-ish parts. */
export function textOfContent(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part: unknown) => {
      if (typeof part === 'string') return part;
      if (typeof part === 'object' && part !== null && typeof (part as { text?: unknown }).text === 'string') {
        return (part as { text: string }).text;
      }
      return '';
    })
    .filter((t) => t !== '')
    .join(' ');
}

/** The content of the last `role: "user"` item of a message or input list; a string input is itself. */
export function lastUserText(items: unknown): string {
  if (typeof items === 'string') return items;
  if (!Array.isArray(items)) return '';
  for (let i = items.length - 1; i >= 0; i--) {
    const item: unknown = items[i];
    if (typeof item === 'object' && item !== null && (item as { role?: unknown }).role === 'user') {
      return textOfContent((item as { content?: unknown }).content);
    }
  }
  return '';
}

/** One server-sent event. `event` is omitted for OpenAI chat, which sends data-only events. */
export function sseFrame(data: unknown, event?: string): string {
  const payload = typeof data === 'string' ? data : JSON.stringify(data);
  return event === undefined ? `data: ${payload}\n\n` : `event: ${event}\ndata: ${payload}\n\n`;
}

export const unixSeconds = (ms: number): number => Math.floor(ms / 1000);
