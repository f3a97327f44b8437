// Gemini API (generativelanguage v1beta) wire shapes, after the REST reference
// (GenerateContentResponse, UsageMetadata, ModalityTokenCount, Model) and the
// official @google/genai SDK's types: candidates, usageMetadata, modelVersion, responseId.

import type { ModelEntry } from '../domain/catalog/types';
import { simSignature } from './reasoning';
import type { Turn } from './turn';

/**
 * `cachedContentTokenCount` (and its per-modality details) only when the implicit cache served part of the prompt,
 * as Gemini sends it; `candidatesTokenCount` is the reply's tokens so far.
 */
export function geminiUsage(turn: Turn, candidatesTokens: number) {
  const u = turn.usage;
  return {
    promptTokenCount: u.promptTokens,
    candidatesTokenCount: candidatesTokens,
    totalTokenCount: u.promptTokens + candidatesTokens,
    ...(u.readTokens > 0 ? { cachedContentTokenCount: u.readTokens } : {}),
    promptTokensDetails: [{ modality: 'TEXT', tokenCount: u.promptTokens }],
    ...(u.readTokens > 0 ? { cacheTokensDetails: [{ modality: 'TEXT', tokenCount: u.readTokens }] } : {}),
  };
}

const finishReason = (turn: Turn) => (turn.truncated ? 'MAX_TOKENS' : 'STOP');

/**
 * A function call's part (Gemini 3: with its thoughtSignature), or null for a text answer. Gemini's function calls
 * arrive whole, in one chunk when streamed.
 */
function callPart(turn: Turn) {
  const call = turn.toolCall;
  if (!call) return null;
  const functionCall = { name: call.name, args: JSON.parse(call.arguments) as unknown };
  return { functionCall, ...(turn.signed ? { thoughtSignature: simSignature('gemini', functionCall) } : {}) };
}

/** A text answer's last part carries the signature on Gemini 3 (reasoning.ts). */
const textPart = (turn: Turn, text: string, last: boolean) => ({ text, ...(turn.signed && last ? { thoughtSignature: simSignature('gemini', turn.text) } : {}) });

export function geminiResponse(turn: Turn, responseId: string) {
  return {
    candidates: [{ content: { parts: [callPart(turn) ?? textPart(turn, turn.text, true)], role: 'model' }, finishReason: finishReason(turn), index: 0 }],
    usageMetadata: geminiUsage(turn, turn.usage.outputTokens),
    modelVersion: turn.model,
    responseId,
  };
}

/**
 * streamGenerateContent?alt=sse: one GenerateContentResponse per text delta, each with the usage so far (Gemini
 * repeats it, cumulative, on every chunk); the last one carries the finishReason and the final counts. Events end in
 * CRLF CRLF, as Google's servers write them.
 */
export function geminiStreamFrames(turn: Turn, responseId: string): string[] {
  const call = callPart(turn);
  const chunks = call ? [''] : turn.chunks.length ? turn.chunks : [''];
  return chunks.map((text, i) => {
    const last = i === chunks.length - 1;
    const chunk = {
      candidates: [{ content: { parts: [call ?? textPart(turn, text, last)], role: 'model' }, ...(last ? { finishReason: finishReason(turn) } : {}), index: 0 }],
      usageMetadata: geminiUsage(turn, last ? turn.usage.outputTokens : Math.max(1, Math.round((turn.usage.outputTokens * (i + 1)) / chunks.length))),
      modelVersion: turn.model,
      responseId,
    };
    return `data: ${JSON.stringify(chunk)}\r\n\r\n`;
  });
}

const STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

/** Google's error body: `{error: {code, message, status}}`. */
export function geminiError(status: number, message: string) {
  return { error: { code: status, message, status: STATUS[status] ?? (status >= 500 ? 'INTERNAL' : 'FAILED_PRECONDITION') } };
}

export function geminiModel(e: ModelEntry) {
  return {
    name: `models/${e.id}`,
    version: '001',
    displayName: e.id,
    supportedGenerationMethods: ['generateContent', 'countTokens'],
  };
}

export function geminiModelList(entries: ModelEntry[]) {
  return { models: entries.filter((e) => e.provider === 'gemini').map(geminiModel) };
}

/** The text of the newest `user` content's parts (a content without a role is the user's). */
export function lastGeminiUserText(contents: unknown): string {
  if (!Array.isArray(contents)) return '';
  for (let i = contents.length - 1; i >= 0; i--) {
    const c: unknown = contents[i];
    if (typeof c !== 'object' || c === null) continue;
    const { role, parts } = c as { role?: unknown; parts?: unknown };
    if (role !== undefined && role !== 'user') continue;
    if (!Array.isArray(parts)) return '';
    return parts.flatMap((p: unknown) => (typeof p === 'object' && p !== null && typeof (p as { text?: unknown }).text === 'string' ? [(p as { text: string }).text] : [])).join(' ');
  }
  return '';
}
