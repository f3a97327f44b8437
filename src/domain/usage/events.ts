// Reading a stream event's data, for every provider's stream accumulator (providers/*.ts) and listed streams.

import { isRecord } from '../records';
import { unreportedUsage } from './counts';
import type { NormalizedUsage, UsageProvider } from './types';

/** OpenAI's end-of-stream sentinel, sent as the data of a last event. */
export const DONE = '[DONE]';

// Accepts parsed JSON or the raw data string straight from SseParser; the
// "[DONE]" sentinel, keep-alives and anything that is not a JSON object carry no usage.
export function parseData(data: unknown): Record<string, unknown> | null {
  if (typeof data !== 'string') return isRecord(data) ? data : null;
  if (data.trim() === '' || data === DONE) return null;
  try {
    const parsed: unknown = JSON.parse(data);
    return isRecord(parsed) ? parsed : null;
  } catch {
    return null;
  }
}

/** A stream's usage before its final usage arrived: capture unknown. */
export function incomplete(provider: UsageProvider, model: string | null, totalPromptTokens: number | null): NormalizedUsage {
  return unreportedUsage(provider, model, totalPromptTokens, false);
}
