// OpenAI Chat Completions wire shapes, after the official SDK types
// (openai/openai-node src/resources/chat/completions/completions.ts: ChatCompletion,
// ChatCompletionChunk; src/resources/completions.ts: CompletionUsage).

import { promptDetails } from './openai';
import { sseFrame, unixSeconds, type Reply, type Turn } from './turn';

const SYSTEM_FINGERPRINT = 'fp_simulator';

/**
 * How a chat answer reports its usage: OpenAI's, or a vLLM server's (`UsageInfo`: no audio or completion details; its
 * `prompt_tokens_details` `{cached_tokens}` only when started with `--enable-prompt-tokens-details`, else `null`).
 */
export type ChatUsageShape = 'openai' | 'vllm' | 'vllm-without-details';

function chatUsage(turn: Turn, shape: ChatUsageShape) {
  const u = turn.usage;
  if (shape !== 'openai')
    return {
      prompt_tokens: u.promptTokens,
      total_tokens: u.promptTokens + u.outputTokens,
      completion_tokens: u.outputTokens,
      prompt_tokens_details: shape === 'vllm' ? { cached_tokens: u.readTokens } : null,
    };
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.outputTokens,
    total_tokens: u.promptTokens + u.outputTokens,
    prompt_tokens_details: { ...promptDetails(u), audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: u.reasoningTokens ?? 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

/** A text answer, or a tool call (`content: null`, `finish_reason: "tool_calls"`). */
function assistantMessage(reply: Reply) {
  const call = reply.toolCall;
  if (!call) return { role: 'assistant', content: reply.text, refusal: null, annotations: [] };
  return { role: 'assistant', content: null, refusal: null, annotations: [], tool_calls: [{ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } }] };
}

const finishReason = (reply: Reply) => (reply.toolCall ? 'tool_calls' : reply.truncated ? 'length' : 'stop');

/** Every choice: the turn's own (index 0), then those of `n` > 1. */
const choicesOf = (turn: Turn): Reply[] => [turn, ...turn.more];

export function chatCompletion(turn: Turn, id: string, shape: ChatUsageShape = 'openai') {
  return {
    id,
    object: 'chat.completion',
    created: unixSeconds(turn.createdAt),
    model: turn.model,
    choices: choicesOf(turn).map((reply, index) => ({
      index,
      message: assistantMessage(reply),
      logprobs: null,
      finish_reason: finishReason(reply),
    })),
    usage: chatUsage(turn, shape),
    service_tier: 'default',
    system_fingerprint: SYSTEM_FINGERPRINT,
  };
}

/**
 * A role chunk, one chunk per text delta (a tool call: its id and name, then its arguments in pieces), a finish chunk, then, only with
 * `stream_options.include_usage`, a chunk with `choices: []` and the usage (every other
 * chunk then carries `usage: null`), then `[DONE]`. With `n` > 1 every chunk carries one choice, named by its
 * `index`: the role chunks of all choices, their deltas in turn, then their finish chunks.
 */
export function chatStreamFrames(turn: Turn, id: string, includeUsage: boolean, shape: ChatUsageShape = 'openai'): string[] {
  const chunk = (choices: unknown[], usage?: unknown) => ({
    id,
    object: 'chat.completion.chunk',
    created: unixSeconds(turn.createdAt),
    model: turn.model,
    service_tier: 'default',
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices,
    ...(includeUsage ? { usage: usage ?? null } : {}),
  });
  const choice = (index: number, delta: Record<string, unknown>, finish: string | null = null) => ({
    index,
    delta,
    logprobs: null,
    finish_reason: finish,
  });
  const replies = choicesOf(turn);
  const opening = replies.map((reply, i) => {
    const call = reply.toolCall;
    return call
      ? chunk([choice(i, { role: 'assistant', content: null, tool_calls: [{ index: 0, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }], refusal: null })])
      : chunk([choice(i, { role: 'assistant', content: '', refusal: null })]);
  });
  const deltas = replies.map((reply, i) =>
    reply.toolCall
      ? reply.toolCall.argumentChunks.map((args) => chunk([choice(i, { tool_calls: [{ index: 0, function: { arguments: args } }] })]))
      : reply.chunks.map((content) => chunk([choice(i, { content })])),
  );
  const interleaved: unknown[] = [];
  for (let k = 0; k < Math.max(...deltas.map((d) => d.length)); k++) for (const d of deltas) if (k < d.length) interleaved.push(d[k]);
  const chunks = [
    ...opening,
    ...interleaved,
    ...replies.map((reply, i) => chunk([choice(i, {}, finishReason(reply))])),
    ...(includeUsage ? [chunk([], chatUsage(turn, shape))] : []),
  ];
  return [...chunks.map((c) => sseFrame(c)), sseFrame('[DONE]')];
}
