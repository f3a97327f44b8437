// OpenAI Chat Completions wire shapes, after the official SDK types
// (openai/openai-node src/resources/chat/completions/completions.ts: ChatCompletion,
// ChatCompletionChunk; src/resources/completions.ts: CompletionUsage).

import { promptDetails } from './openai';
import { sseFrame, unixSeconds, type Turn } from './turn';

const SYSTEM_FINGERPRINT = 'fp_simulator';

function chatUsage(turn: Turn) {
  const u = turn.usage;
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.outputTokens,
    total_tokens: u.promptTokens + u.outputTokens,
    prompt_tokens_details: { ...promptDetails(u), audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

/** A text answer, or a tool call (`content: null`, `finish_reason: "tool_calls"`). */
function assistantMessage(turn: Turn) {
  const call = turn.toolCall;
  if (!call) return { role: 'assistant', content: turn.text, refusal: null, annotations: [] };
  return { role: 'assistant', content: null, refusal: null, annotations: [], tool_calls: [{ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } }] };
}

const finishReason = (turn: Turn) => (turn.toolCall ? 'tool_calls' : 'stop');

export function chatCompletion(turn: Turn, id: string) {
  return {
    id,
    object: 'chat.completion',
    created: unixSeconds(turn.createdAt),
    model: turn.model,
    choices: [
      {
        index: 0,
        message: assistantMessage(turn),
        logprobs: null,
        finish_reason: finishReason(turn),
      },
    ],
    usage: chatUsage(turn),
    service_tier: 'default',
    system_fingerprint: SYSTEM_FINGERPRINT,
  };
}

/**
 * A role chunk, one chunk per text delta (a tool call: its id and name, then its arguments in pieces), a finish chunk, then, only with
 * `stream_options.include_usage`, a chunk with `choices: []` and the usage (every other
 * chunk then carries `usage: null`), then `[DONE]`.
 */
export function chatStreamFrames(turn: Turn, id: string, includeUsage: boolean): string[] {
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
  const choice = (delta: Record<string, unknown>, finish: string | null = null) => ({
    index: 0,
    delta,
    logprobs: null,
    finish_reason: finish,
  });
  const call = turn.toolCall;
  const body = call
    ? [
        chunk([choice({ role: 'assistant', content: null, tool_calls: [{ index: 0, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }], refusal: null })]),
        ...call.argumentChunks.map((args) => chunk([choice({ tool_calls: [{ index: 0, function: { arguments: args } }] })])),
      ]
    : [chunk([choice({ role: 'assistant', content: '', refusal: null })]), ...turn.chunks.map((content) => chunk([choice({ content })]))];
  const chunks = [
    ...body,
    chunk([choice({}, finishReason(turn))]),
    ...(includeUsage ? [chunk([], chatUsage(turn))] : []),
  ];
  return [...chunks.map((c) => sseFrame(c)), sseFrame('[DONE]')];
}
