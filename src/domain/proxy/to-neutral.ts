// Provider messages → our neutral Message shape (src/domain/content.ts), for
// the proxy's `x-ph-session`: the body's messages of one turn and the
// assistant's reply become the session's next batch.
//
// The body is checked strictly (a block a session cannot hold is a 422 before
// the provider is called, so nothing is spent on a turn we could not keep). The
// reply is taken as far as it goes: blocks without a neutral form (server tool
// results) are dropped. The model's reasoning state is kept (Anthropic thinking
// blocks, Gemini thought signatures, OpenAI Responses reasoning items with their
// encrypted_content): the providers require it back during a tool loop, and it
// renders only for the provider that produced it.

import { canonicalJson, escapePointer } from '../canonical-json';
import { BLANK_TEXT, isBlank, isThinking, messageListSchema, type ContentBlock, type ImageBlock, type Message, type ReasoningItemBlock, type TextBlock } from '../content';
import { DomainError, invalid } from '../errors';
import { nestedTooDeep, protoMember, refuseProtoMembers, tooDeep, validationError } from '../validation';
import { pushAll } from '../arrays';

export type ProxyFormat = 'anthropic' | 'openai-chat' | 'openai-responses' | 'gemini';

/** The body member that holds a format's messages. */
export const MESSAGES_KEY: Record<ProxyFormat, string> = { anthropic: 'messages', 'openai-chat': 'messages', 'openai-responses': 'input', gemini: 'contents' };

type Json = Record<string, unknown>;

const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

/** This turn's new messages from a provider request body, as neutral messages. */
export function turnMessages(format: ProxyFormat, body: Json): Message[] {
  // Kept in the session, a __proto__ member would be dropped on the way (the body itself goes on as sent).
  const key = MESSAGES_KEY[format];
  refuseProtoMembers(body[key], `/${key}`);
  const messages =
    format === 'anthropic'
      ? anthropicMessages(body.messages, '/messages')
      : format === 'openai-chat'
        ? chatMessages(body.messages, '/messages')
        : format === 'gemini'
          ? geminiContents(body.contents, '/contents')
          : responsesInput(body.input, '/input');
  const parsed = messageListSchema.safeParse(messages);
  // The pointers are into the converted list; the messages keep their order, so they point close enough.
  if (!parsed.success) throw validationError(parsed.error, `/${key}`, 'these messages cannot be kept in the session');
  canonicalJson(parsed.data, '/messages');
  return parsed.data;
}

/** A reply that holds something the session cannot keep as it is (a tool call whose arguments are not an object, nesting too deep, a streamed index no place in the answer). */
export const UNKEEPABLE = 'unkeepable';

/**
 * The assistant's reply in a provider response body; null when nothing in it has a neutral form (thinking
 * only); UNKEEPABLE when it cannot be kept whole — kept without a tool call, the next tool output would answer nothing.
 */
export function replyMessage(format: ProxyFormat, response: unknown): Message | null | typeof UNKEEPABLE {
  // A stream whose events could not be followed (stream-reply.ts) has no whole reply to keep.
  if (response === UNKEEPABLE) return UNKEEPABLE;
  if (!isRecord(response)) return null;
  // A member the session could not keep as it came (a tool input's __proto__): not kept without it. An answer nested
  // past the stack cannot be walked (the provider's body: no depth check ran on it) and is not kept either.
  try {
    if (protoMember(response, '') !== null) return UNKEEPABLE;
  } catch (err) {
    if (err instanceof RangeError) return UNKEEPABLE;
    throw err;
  }
  let blocks: ContentBlock[];
  try {
    if (format === 'anthropic') {
      // Its thinking is tied to the model that answered (preserved thinking): kept with its name.
      const model = typeof response.model === 'string' && response.model !== '' && response.model.length <= 256 ? response.model : undefined;
      blocks = Array.isArray(response.content) ? response.content.flatMap((b) => anthropicReplyBlock(b, model)) : [];
    }
    else if (format === 'openai-chat') {
      const choice = Array.isArray(response.choices) ? response.choices.find((c) => isRecord(c) && (c.index ?? 0) === 0) : undefined;
      blocks = isRecord(choice) && isRecord(choice.message) ? chatAssistantBlocks(choice.message, '/choices/0/message', false) : [];
    } else if (format === 'gemini') {
      // Candidate 0 (the one a session continues); the model's thought summaries are not kept (Gemini does not read
      // them back), the signatures on its other parts are.
      const candidate = Array.isArray(response.candidates) ? response.candidates[0] : undefined;
      const parts = isRecord(candidate) && isRecord(candidate.content) && Array.isArray(candidate.content.parts) ? candidate.content.parts : [];
      blocks = parts.flatMap((p) => (isRecord(p) && p.thought !== true ? [geminiPart(asGeminiText(p), '', false)] : []));
    } else blocks = Array.isArray(response.output) ? response.output.flatMap(responsesReplyItem) : [];
  } catch (e) {
    // A tool call whose arguments (Anthropic: input) are not a JSON object: the reply cannot be kept as it is.
    if (e instanceof DomainError) return UNKEEPABLE;
    throw e;
  }
  // Blank text says nothing, and providers refuse it when it is sent back: not kept (nor a Gemini signature on it:
  // Gemini requires back only those of function calls).
  blocks = blocks.filter((b) => b.type !== 'text' || !isBlank(b.text));
  // Thinking alone is not a reply: nothing would be left of it for another provider.
  if (blocks.every(isThinking)) return null;
  // Nor can a reply that ends in thinking (an answer cut inside it) be kept whole: a breakpoint on its last block would be refused.
  if (isThinking(blocks.at(-1)!)) return UNKEEPABLE;
  // A reply nested too deep for canonical JSON cannot be kept either.
  if (nestedTooDeep(blocks)) return UNKEEPABLE;
  const parsed = messageListSchema.safeParse([{ role: 'assistant', content: blocks }]);
  return parsed.success ? parsed.data[0]! : UNKEEPABLE;
}

// Fields the neutral shape has no place for. Dropped, they would change later turns silently: an image
// resent at another detail (and price), a participant's name lost. "auto" is the default: nothing is lost.
function keepsNoDetail(detail: unknown, at: string): void {
  if (detail !== undefined && detail !== null && detail !== 'auto') unsupported(at, `an image detail ("${String(detail)}")`);
}

function keepsNoName(m: Json, at: string): void {
  if (m.name !== undefined && m.name !== null) unsupported(`${at}/name`, 'a message name');
}

/**
 * The same for any other field: a turn is kept with the fields its neutral form has, so one with a field it has
 * no place for (citations, a chat message's audio, a new field of a newer API) is refused rather than kept without
 * it. `null` and an empty list say nothing and pass, as do `known` fields (read by the caller, or metadata that is
 * not prompt content: cache_control, a Responses item's id and status).
 */
function keepsOnly(o: Json, known: ReadonlySet<string>, at: string): void {
  for (const key of Object.keys(o)) {
    const v = o[key];
    if (known.has(key) || v === null || v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    unsupported(`${at}/${escapePointer(key)}`, `the field "${key}"`);
  }
}

const KNOWN = {
  anthropicMessage: new Set(['role', 'content']),
  anthropicBlock: {
    text: new Set(['type', 'text', 'cache_control']),
    image: new Set(['type', 'source', 'cache_control']),
    tool_use: new Set(['type', 'id', 'name', 'input', 'cache_control']),
    tool_result: new Set(['type', 'tool_use_id', 'content', 'is_error', 'cache_control']),
    thinking: new Set(['type', 'thinking', 'signature']),
    redacted_thinking: new Set(['type', 'data']),
  } as Record<string, ReadonlySet<string>>,
  chatMessage: new Set(['role', 'content', 'name', 'tool_calls', 'tool_call_id', 'refusal']),
  chatPart: new Set(['type', 'text', 'image_url']),
  chatImageUrl: new Set(['url', 'detail']),
  chatToolCall: new Set(['id', 'type', 'function', 'index']),
  chatFunction: new Set(['name', 'arguments']),
  geminiContent: new Set(['role', 'parts']),
  geminiPart: new Set(['text', 'inlineData', 'functionCall', 'functionResponse', 'thoughtSignature']),
  geminiInlineData: new Set(['mimeType', 'data']),
  geminiFunctionCall: new Set(['id', 'name', 'args']),
  geminiFunctionResponse: new Set(['id', 'name', 'response']),
  responsesItem: new Set(['type', 'role', 'content', 'id', 'status', 'call_id', 'name', 'arguments', 'output']),
  responsesReasoning: new Set(['type', 'id', 'summary', 'encrypted_content', 'status']),
  responsesSummary: new Set(['type', 'text']),
  responsesPart: new Set(['type', 'text', 'refusal', 'image_url', 'detail', 'annotations']),
};

function unsupported(at: string, what: string): never {
  const hint = what.includes('handle') ? ' (reference handles with x-ph-prefix or "prefix" instead)' : '';
  throw invalid(at, `x-ph-session keeps turns as text, image, tool_use and tool_result content and the model's reasoning state (thinking blocks, thought signatures, reasoning items with encrypted_content); ${what} cannot be kept${hint}`);
}

function list(v: unknown, at: string): unknown[] {
  if (!Array.isArray(v)) throw invalid(at, 'must be an array');
  return v;
}

function str(v: unknown, at: string): string {
  if (typeof v !== 'string') throw invalid(at, 'must be a string');
  return v;
}

function parseArguments(text: unknown, at: string): Record<string, unknown> {
  if (text === undefined || text === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(str(text, at));
  } catch {
    // not JSON: refused below
  }
  if (!isRecord(v)) throw invalid(at, 'tool call arguments must be a JSON object');
  // JSON inside a string is not seen by the body's depth check.
  if (nestedTooDeep(v)) throw tooDeep(at);
  return v;
}

/** data: URLs carry the image itself; anything else is a URL the provider fetches. */
function imageFromUrl(url: string, at: string): ImageBlock {
  const m = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  if (!m) return { type: 'image', source: { type: 'url', url } };
  if (!IMAGE_TYPES.has(m[1]!)) throw invalid(at, `image type ${m[1]} cannot be kept`);
  return { type: 'image', source: { type: 'base64', media_type: m[1] as 'image/png', data: m[2]! } };
}

// ---- Anthropic Messages ----

function anthropicMessages(raw: unknown, at: string): Message[] {
  return list(raw, at).map((m, i) => {
    const mAt = `${at}/${i}`;
    if (!isRecord(m) || m.type === 'handle') unsupported(mAt, 'a handle message');
    if (m.role !== 'user' && m.role !== 'assistant') throw invalid(`${mAt}/role`, 'role must be user or assistant');
    keepsOnly(m, KNOWN.anthropicMessage, mAt);
    const content = typeof m.content === 'string' ? m.content : list(m.content, `${mAt}/content`).map((b, j) => anthropicBlock(b, `${mAt}/content/${j}`));
    return { role: m.role, content };
  });
}

// Only the fields a block means are kept: cache_control is a caching directive, not content.
function anthropicBlock(b: unknown, at: string): ContentBlock {
  if (!isRecord(b)) throw invalid(at, 'must be a content block');
  const known = typeof b.type === 'string' && Object.hasOwn(KNOWN.anthropicBlock, b.type) ? KNOWN.anthropicBlock[b.type] : undefined;
  // Anthropic's own rule, not a field the session lacks (Prompt caching, 'Caching with thinking blocks').
  if ((b.type === 'thinking' || b.type === 'redacted_thinking') && b.cache_control !== undefined && b.cache_control !== null)
    throw invalid(`${at}/cache_control`, `Anthropic refuses cache_control on a ${b.type} block; mark the text or tool_use after it (the service marks a message's last block itself)`);
  if (known) keepsOnly(b, known, at);
  switch (b.type) {
    case 'text':
      return { type: 'text', text: str(b.text, `${at}/text`) };
    case 'image': {
      const s = isRecord(b.source) ? b.source : {};
      if (s.type === 'url') return { type: 'image', source: { type: 'url', url: str(s.url, `${at}/source/url`) } };
      if (s.type === 'base64') return { type: 'image', source: { type: 'base64', media_type: s.media_type as 'image/png', data: str(s.data, `${at}/source/data`) } };
      return unsupported(`${at}/source`, `an image source of type "${String(s.type)}"`);
    }
    case 'tool_use':
      // The session keeps the call as it was made: an input that is not an object is refused, not replaced by {}.
      if (b.input !== undefined && !isRecord(b.input)) throw invalid(`${at}/input`, 'tool_use input must be a JSON object');
      return { type: 'tool_use', id: str(b.id, `${at}/id`), name: str(b.name, `${at}/name`), input: isRecord(b.input) ? b.input : {} };
    case 'tool_result': {
      const content =
        b.content === undefined || typeof b.content === 'string'
          ? b.content
          : list(b.content, `${at}/content`).map((c, k) => {
              const block = anthropicBlock(c, `${at}/content/${k}`);
              if (block.type !== 'text' && block.type !== 'image') unsupported(`${at}/content/${k}`, `a ${block.type} block inside a tool_result`);
              return block;
            });
      return {
        type: 'tool_result',
        tool_use_id: str(b.tool_use_id, `${at}/tool_use_id`),
        ...(content === undefined ? {} : { content }),
        ...(typeof b.is_error === 'boolean' ? { is_error: b.is_error } : {}),
      };
    }
    case 'thinking':
    case 'redacted_thinking': {
      const block = thinkingBlock(b);
      if (!block) throw invalid(at, b.type === 'thinking' ? 'a thinking block needs its thinking text and signature' : 'a redacted_thinking block needs its data');
      return block;
    }
    default:
      if (b.type === undefined) throw invalid(`${at}/type`, 'a content block needs a type');
      return unsupported(at, `a "${String(b.type)}" block`);
  }
}

/** A thinking or redacted_thinking block as Anthropic sent it (with the model that produced it, when known); null without its signature (or data), which the API would refuse back. */
function thinkingBlock(b: Json, model?: string): ContentBlock | null {
  const by = model === undefined ? {} : { model };
  if (b.type === 'thinking' && typeof b.thinking === 'string' && typeof b.signature === 'string' && b.signature !== '')
    return { type: 'thinking', provider: 'anthropic', thinking: b.thinking, signature: b.signature, ...by };
  if (b.type === 'redacted_thinking' && typeof b.data === 'string' && b.data !== '') return { type: 'redacted_thinking', provider: 'anthropic', data: b.data, ...by };
  return null;
}

function anthropicReplyBlock(b: unknown, model: string | undefined): ContentBlock[] {
  if (!isRecord(b)) return [];
  if (b.type === 'thinking' || b.type === 'redacted_thinking') {
    const block = thinkingBlock(b, model);
    return block ? [block] : [];
  }
  if (b.type === 'text' && typeof b.text === 'string') return [{ type: 'text', text: b.text }];
  if (b.type === 'tool_use' && typeof b.id === 'string' && typeof b.name === 'string') {
    // As in a body: an input that is not an object (a call cut off mid-JSON arrives as its text) is refused, not kept as {}.
    if (b.input !== undefined && !isRecord(b.input)) throw invalid('', 'tool_use input must be a JSON object');
    return [{ type: 'tool_use', id: b.id, name: b.name, input: isRecord(b.input) ? b.input : {} }];
  }
  return [];
}

// ---- OpenAI Chat Completions ----

function chatMessages(raw: unknown, at: string): Message[] {
  const out: Message[] = [];
  list(raw, at).forEach((m, i) => {
    const mAt = `${at}/${i}`;
    if (!isRecord(m) || m.type === 'handle') unsupported(mAt, 'a handle message');
    if (m.role !== 'system' && m.role !== 'developer') keepsOnly(m, KNOWN.chatMessage, mAt);
    switch (m.role) {
      // Instructions, not turns: the caller sends them again each turn.
      case 'system':
      case 'developer':
        return;
      case 'user':
        keepsNoName(m, mAt);
        out.push({ role: 'user', content: typeof m.content === 'string' ? m.content : list(m.content, `${mAt}/content`).map((p, j) => chatPart(p, `${mAt}/content/${j}`)) });
        return;
      case 'assistant': {
        keepsNoName(m, mAt);
        const blocks = chatAssistantBlocks(m, mAt, true);
        out.push({ role: 'assistant', content: typeof m.content === 'string' && blocks.length === 1 && blocks[0]!.type === 'text' ? m.content : blocks });
        return;
      }
      case 'tool': {
        const content = typeof m.content === 'string' ? m.content : list(m.content, `${mAt}/content`).map((p, j) => chatPart(p, `${mAt}/content/${j}`));
        const result: ContentBlock = { type: 'tool_result', tool_use_id: str(m.tool_call_id, `${mAt}/tool_call_id`), content };
        // Consecutive tool messages answer one assistant turn: one user message of results.
        const last = out[out.length - 1];
        if (last?.role === 'user' && Array.isArray(last.content) && last.content.every((b) => b.type === 'tool_result')) last.content.push(result);
        else out.push({ role: 'user', content: [result] });
        return;
      }
      default:
        if (m.role === undefined) throw invalid(`${mAt}/role`, 'a message needs a role');
        unsupported(`${mAt}/role`, `a "${String(m.role)}" message`);
    }
  });
  return out;
}

function chatPart(p: unknown, at: string): TextBlock | ImageBlock {
  if (!isRecord(p)) throw invalid(at, 'must be a content part');
  if (p.type === 'text' || p.type === 'image_url') keepsOnly(p, KNOWN.chatPart, at);
  if (p.type === 'image_url' && isRecord(p.image_url)) keepsOnly(p.image_url, KNOWN.chatImageUrl, `${at}/image_url`);
  if (p.type === 'text') return { type: 'text', text: str(p.text, `${at}/text`) };
  if (p.type === 'image_url' && isRecord(p.image_url)) {
    keepsNoDetail(p.image_url.detail, `${at}/image_url/detail`);
    return imageFromUrl(str(p.image_url.url, `${at}/image_url/url`), at);
  }
  if (p.type === undefined) throw invalid(`${at}/type`, 'a content part needs a type');
  return unsupported(at, `a "${String(p.type)}" part`);
}

function chatAssistantBlocks(m: Json, at: string, strict: boolean): ContentBlock[] {
  const blocks: ContentBlock[] = [];
  if (typeof m.content === 'string' && m.content !== '') blocks.push({ type: 'text', text: m.content });
  else if (Array.isArray(m.content))
    m.content.forEach((p, j) => {
      if (isRecord(p) && (p.type === 'text' || p.type === 'refusal')) blocks.push({ type: 'text', text: str(p.text ?? p.refusal, `${at}/content/${j}`) });
      else if (strict) unsupported(`${at}/content/${j}`, 'this part');
    });
  if (blocks.length === 0 && typeof m.refusal === 'string') blocks.push({ type: 'text', text: m.refusal });
  const calls = Array.isArray(m.tool_calls) ? m.tool_calls : [];
  calls.forEach((c, k) => {
    const cAt = `${at}/tool_calls/${k}`;
    // In a reply too: a call the session cannot keep (a custom tool's, which has no `function`) is not dropped from
    // it, or the next turn's tool output would answer nothing: the reply is not kept.
    if (!isRecord(c) || !isRecord(c.function)) return unsupported(cAt, 'this tool call');
    if (strict) {
      keepsOnly(c, KNOWN.chatToolCall, cAt);
      keepsOnly(c.function, KNOWN.chatFunction, `${cAt}/function`);
    }
    blocks.push({ type: 'tool_use', id: str(c.id, `${cAt}/id`), name: str(c.function.name, `${cAt}/function/name`), input: parseArguments(c.function.arguments, `${cAt}/function/arguments`) });
  });
  if (blocks.length === 0 && strict) blocks.push({ type: 'text', text: '' });
  return blocks;
}

// ---- OpenAI Responses ----

function responsesInput(raw: unknown, at: string): Message[] {
  if (typeof raw === 'string') {
    // One user message: its blank text is the input itself.
    if (isBlank(raw)) throw invalid(at, BLANK_TEXT);
    return [{ role: 'user', content: raw }];
  }
  const out: Message[] = [];
  // Function calls join the assistant message before them, outputs the user message of results before them.
  const push = (role: 'user' | 'assistant', blocks: ContentBlock[], join: (b: ContentBlock) => boolean) => {
    const last = out[out.length - 1];
    if (last?.role === role && Array.isArray(last.content) && last.content.every(join)) pushAll(last.content, blocks);
    else out.push({ role, content: blocks });
  };
  list(raw, at).forEach((item, i) => {
    const iAt = `${at}/${i}`;
    if (!isRecord(item) || item.type === 'handle') unsupported(iAt, 'a handle item');
    const type = item.type ?? 'message';
    if (type !== 'reasoning' && item.role !== 'system' && item.role !== 'developer') keepsOnly(item, KNOWN.responsesItem, iAt);
    if (type === 'message') {
      if (item.role === 'system' || item.role === 'developer') return;
      if (item.role !== 'user' && item.role !== 'assistant') throw invalid(`${iAt}/role`, 'role must be user, assistant, system or developer');
      if (typeof item.content === 'string') {
        out.push({ role: item.role, content: item.content });
        return;
      }
      const blocks = list(item.content, `${iAt}/content`).map((p, j) => responsesPart(p, `${iAt}/content/${j}`));
      if (item.role === 'assistant') push('assistant', blocks, () => true);
      else out.push({ role: 'user', content: blocks });
    } else if (type === 'function_call') {
      push('assistant', [{ type: 'tool_use', id: str(item.call_id, `${iAt}/call_id`), name: str(item.name, `${iAt}/name`), input: parseArguments(item.arguments, `${iAt}/arguments`) }], () => true);
    } else if (type === 'function_call_output') {
      const output = typeof item.output === 'string' ? item.output : list(item.output, `${iAt}/output`).map((p, j) => responsesPart(p, `${iAt}/output/${j}`));
      // Rendered for the Responses API, a kept tool output is its text (render/formats/openai-responses.ts): an image in it would be gone from
      // every later turn, silently (the Vercel AI SDK sends a tool's toModelOutput image so).
      if (Array.isArray(output)) output.forEach((b, j) => b.type !== 'text' && unsupported(`${iAt}/output/${j}`, 'an image in a function call output (a session renders a Responses tool output as its text)'));
      push('user', [{ type: 'tool_result', tool_use_id: str(item.call_id, `${iAt}/call_id`), content: output }], (b) => b.type === 'tool_result');
    } else if (type === 'reasoning') {
      // The model's reasoning, read back from its encrypted_content: it joins the assistant's output it preceded.
      // An item with an id alone (store: true) is not kept, as from a reply (content.ts).
      const block = responsesReasoning(item, iAt, true);
      if (block) push('assistant', [block], () => true);
    } else unsupported(iAt, `a "${String(type)}" item`);
  });
  return out;
}

/**
 * Whether a Responses body's input holds a reasoning item a session does not keep: one without encrypted_content
 * (store: true, read back by id). The proxy says so in x-ph-warnings (`reasoning_not_kept`).
 */
export function reasoningNotKept(format: ProxyFormat, body: Json): boolean {
  return format === 'openai-responses' && Array.isArray(body.input) && body.input.some((it) => isRecord(it) && it.type === 'reasoning' && (typeof it.encrypted_content !== 'string' || it.encrypted_content === ''));
}

/** A reasoning item with its encrypted_content, as the API returned it; null without encrypted_content. */
function responsesReasoning(item: Json, at: string, strict: boolean): ReasoningItemBlock | null {
  if (typeof item.encrypted_content !== 'string' || item.encrypted_content === '') return null;
  if (strict) keepsOnly(item, KNOWN.responsesReasoning, at);
  // From a reply, a summary not in the documented shape leaves the item out rather than the reply unkept.
  if (!strict && !(Array.isArray(item.summary) && item.summary.every((x) => isRecord(x) && x.type === 'summary_text' && typeof x.text === 'string') && typeof item.id === 'string')) return null;
  const summary = list(item.summary ?? [], `${at}/summary`).map((s, j) => {
    const sAt = `${at}/summary/${j}`;
    if (!isRecord(s) || s.type !== 'summary_text') throw invalid(sAt, 'a reasoning summary part is {type: "summary_text", text}');
    if (strict) keepsOnly(s, KNOWN.responsesSummary, sAt);
    return { type: 'summary_text' as const, text: str(s.text, `${sAt}/text`) };
  });
  return { type: 'reasoning', provider: 'openai', id: str(item.id, `${at}/id`), summary, encrypted_content: item.encrypted_content };
}

function responsesPart(p: unknown, at: string): TextBlock | ImageBlock {
  if (!isRecord(p)) throw invalid(at, 'must be a content part');
  keepsOnly(p, KNOWN.responsesPart, at);
  if (p.type === 'input_text' || p.type === 'output_text') return { type: 'text', text: str(p.text, `${at}/text`) };
  if (p.type === 'refusal') return { type: 'text', text: str(p.refusal, `${at}/refusal`) };
  if (p.type === 'input_image' && typeof p.image_url === 'string') {
    keepsNoDetail(p.detail, `${at}/detail`);
    return imageFromUrl(p.image_url, at);
  }
  if (p.type === undefined) throw invalid(`${at}/type`, 'a content part needs a type');
  return unsupported(at, `a "${String(p.type)}" part`);
}

// Calls the caller answers with an item of its own (`custom_tool_call_output`, `computer_call_output`, …), which a
// session cannot hold: dropped from a reply, they would leave that answer with no call before it.
const RESPONSES_CLIENT_CALLS = new Set(['custom_tool_call', 'computer_call', 'local_shell_call', 'shell_call', 'apply_patch_call', 'mcp_approval_request']);

function responsesReplyItem(item: unknown): ContentBlock[] {
  if (!isRecord(item)) return [];
  if (typeof item.type === 'string' && RESPONSES_CLIENT_CALLS.has(item.type)) unsupported('', `a "${item.type}" item`);
  if (item.type === 'message' && Array.isArray(item.content))
    return item.content.flatMap((p): ContentBlock[] => {
      if (!isRecord(p)) return [];
      if (p.type === 'output_text' && typeof p.text === 'string') return [{ type: 'text', text: p.text }];
      if (p.type === 'refusal' && typeof p.refusal === 'string') return [{ type: 'text', text: p.refusal }];
      return [];
    });
  if (item.type === 'reasoning') {
    const block = responsesReasoning(item, '', false);
    return block ? [block] : [];
  }
  // Arguments that are not a JSON object (or nest too deep) throw: the reply is not kept, as for chat, rather
  // than kept without a call its next tool output refers to.
  if (item.type === 'function_call' && typeof item.call_id === 'string' && typeof item.name === 'string')
    return [{ type: 'tool_use', id: item.call_id, name: item.name, input: parseArguments(item.arguments, '') }];
  return [];
}

// ---- Gemini generateContent ----

// Gemini names a call's answer by the function's name (and, when the call had one, its id): the name stands in for
// the id a session pairs them by, and the renderer writes it back as the functionResponse's name.
function geminiContents(raw: unknown, at: string): Message[] {
  return list(raw, at).map((c, i) => {
    const cAt = `${at}/${i}`;
    if (!isRecord(c) || c.type === 'handle') unsupported(cAt, 'a handle block');
    keepsOnly(c, KNOWN.geminiContent, cAt);
    // A content without a role is the user's (as the API reads it).
    const role = c.role === undefined || c.role === 'user' ? 'user' : c.role === 'model' ? 'assistant' : null;
    if (role === null) throw invalid(`${cAt}/role`, 'role must be user or model');
    const content = list(c.parts, `${cAt}/parts`).map((p, j) => geminiPart(p, `${cAt}/parts/${j}`, true));
    return { role, content };
  });
}

/**
 * A reply part holding a thoughtSignature and nothing else (Gemini 3 may end a text answer, streamed or not, with
 * one) as the empty text piece it stands for: a stream joins it to the text before it, and alone it is blank text,
 * not kept. As a part of no known kind it made the whole reply unkeepable.
 */
export function asGeminiText(p: Json): Json {
  const signatureOnly = typeof p.thoughtSignature === 'string' && Object.keys(p).every((k) => k === 'thoughtSignature' || k === 'thought');
  return signatureOnly ? { ...p, text: '' } : p;
}

function geminiPart(p: unknown, at: string, strict: boolean): ContentBlock {
  if (!isRecord(p)) throw invalid(at, 'must be a part');
  if (strict) keepsOnly(p, KNOWN.geminiPart, at);
  // Gemini's signature of the part it came on, sent back on that part (Gemini 3 refuses a function call of the
  // current turn without it). Kept on text and function call parts; on others, it is the 422 of a field not kept.
  const sig = typeof p.thoughtSignature === 'string' && p.thoughtSignature !== '' ? { thought_signature: { provider: 'gemini' as const, signature: p.thoughtSignature } } : {};
  if (strict && 'thought_signature' in sig && typeof p.text !== 'string' && !isRecord(p.functionCall)) unsupported(`${at}/thoughtSignature`, 'the field "thoughtSignature"');
  if (typeof p.text === 'string') return { type: 'text', text: p.text, ...sig };
  if (isRecord(p.inlineData)) {
    if (strict) keepsOnly(p.inlineData, KNOWN.geminiInlineData, `${at}/inlineData`);
    const type = str(p.inlineData.mimeType, `${at}/inlineData/mimeType`);
    if (!IMAGE_TYPES.has(type)) unsupported(`${at}/inlineData/mimeType`, `inline data of type ${type}`);
    return { type: 'image', source: { type: 'base64', media_type: type as 'image/png', data: str(p.inlineData.data, `${at}/inlineData/data`) } };
  }
  if (isRecord(p.functionCall)) {
    const call = p.functionCall;
    if (strict) keepsOnly(call, KNOWN.geminiFunctionCall, `${at}/functionCall`);
    if (call.args !== undefined && !isRecord(call.args)) throw invalid(`${at}/functionCall/args`, 'functionCall args must be a JSON object');
    const name = str(call.name, `${at}/functionCall/name`);
    return { type: 'tool_use', id: typeof call.id === 'string' ? call.id : name, name, input: isRecord(call.args) ? call.args : {}, ...sig };
  }
  if (isRecord(p.functionResponse)) {
    const r = p.functionResponse;
    if (strict) keepsOnly(r, KNOWN.geminiFunctionResponse, `${at}/functionResponse`);
    const name = str(r.name, `${at}/functionResponse/name`);
    // The renderer writes a result back as `response: {content: <text>}`: that form is kept as it is, any other
    // response object as its JSON text.
    const response = isRecord(r.response) ? r.response : {};
    const content = Object.keys(response).length === 1 && typeof response.content === 'string' ? response.content : JSON.stringify(response);
    return { type: 'tool_result', tool_use_id: typeof r.id === 'string' ? r.id : name, content };
  }
  return unsupported(at, `a part of kind ${JSON.stringify(Object.keys(p)[0] ?? 'none')}`);
}
