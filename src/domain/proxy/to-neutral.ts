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
// Each format's reading is a module of formats/ (formats/index.ts); this is the flow they share.

import { canonicalJson, escapePointer } from '../canonical-json';
import { isBlank, isThinking, messageListSchema, type ContentBlock, type Message } from '../content';
import { DomainError } from '../errors';
import { nestedTooDeep, protoMember, refuseProtoMembers, validationError } from '../validation';
import { PROXY_FORMATS, type ProxyFormat, type StreamReply } from './formats';
import { isRecord, readFrom, UNKEEPABLE, whereRead, type Json } from './formats/shared';

export type { ProxyFormat, StreamReply } from './formats';
export { UNKEEPABLE, whereRead } from './formats/shared';
export { asGeminiText } from './formats/gemini';

/** The body member that holds a format's messages. */
export const MESSAGES_KEY = Object.fromEntries(Object.entries(PROXY_FORMATS).map(([format, rules]) => [format, rules.messagesKey])) as Record<ProxyFormat, string>;

/** This turn's new messages from a provider request body, as neutral messages. */
export function turnMessages(format: ProxyFormat, body: Json): Message[] {
  // Kept in the session, a __proto__ member would be dropped on the way (the body itself goes on as sent).
  const rules = PROXY_FORMATS[format];
  const key = rules.messagesKey;
  refuseProtoMembers(body[key], `/${key}`);
  const messages = rules.turnMessages(body[key], `/${key}`);
  const parsed = messageListSchema.safeParse(messages);
  if (!parsed.success) throw inBody(validationError(parsed.error, '', 'these messages cannot be kept in the session'), messages, body, key);
  try {
    canonicalJson(parsed.data);
  } catch (err) {
    throw err instanceof DomainError ? inBody(err, messages, body, key) : err;
  }
  // The checked messages are new objects: each keeps where its message was read (checkTurn's refusals point there).
  parsed.data.forEach((m, i) => {
    const at = whereRead(messages[i]);
    if (at !== undefined) readFrom(m, at);
  });
  return parsed.data;
}

/**
 * A refusal of the converted messages with its pointers into the caller's body. The converted list is not the body's
 * shape (a system message left out, tool outputs joined into one message, Gemini's parts): each pointer goes to the
 * deepest message or block noted where it was read (formats/shared.ts readFrom), and on to the rest of its path where
 * the body has it (a text's `/text`). A format that notes nothing (Anthropic's turn has our shape) keeps the path, under
 * its messages key.
 */
function inBody(err: DomainError, messages: Message[], body: Json, key: string): DomainError {
  return new DomainError(err.code, err.message, err.extra, err.errors.map((e) => ({ ...e, pointer: bodyPointer(e.pointer, messages, body, key) })));
}

function bodyPointer(pointer: string, messages: Message[], body: Json, key: string): string {
  const path = pointer.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  let node: unknown = messages;
  let read: { at: string; depth: number } | undefined;
  for (let i = 0; i < path.length; i++) {
    node = member(node, path[i]!);
    const at = whereRead(node);
    if (at !== undefined) read = { at, depth: i + 1 };
  }
  if (!read) return `/${key}${pointer}`;
  const rest = path.slice(read.depth);
  let there: unknown = body;
  for (const segment of [...read.at.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')), ...rest]) there = member(there, segment);
  return there === undefined ? read.at : read.at + rest.map((s) => `/${escapePointer(s)}`).join('');
}

const member = (node: unknown, segment: string): unknown => (typeof node === 'object' && node !== null && Object.hasOwn(node, segment) ? (node as Record<string, unknown>)[segment] : undefined);

/**
 * The assistant's reply in a provider response body; null when nothing in it has a neutral form (thinking
 * only); UNKEEPABLE when it cannot be kept whole — kept without a tool call, the next tool output would answer nothing.
 */
export function replyMessage(format: ProxyFormat, response: unknown): Message | null | typeof UNKEEPABLE {
  // A stream whose events could not be followed (createStreamReply) has no whole reply to keep.
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
    blocks = PROXY_FORMATS[format].replyBlocks(response);
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

/**
 * Whether a body's input holds a reasoning item a session does not keep (a Responses one without encrypted_content:
 * store: true, read back by id). The proxy says so in x-ph-warnings (`reasoning_not_kept`).
 */
export function reasoningNotKept(format: ProxyFormat, body: Json): boolean {
  return PROXY_FORMATS[format].reasoningNotKept?.(body) ?? false;
}

/**
 * A streamed answer rebuilt into the provider's non-streaming response shape, so `replyMessage` converts both the same
 * way; it also says when the stream has delivered its last meaningful event.
 */
export function createStreamReply(format: ProxyFormat): StreamReply {
  return PROXY_FORMATS[format].streamReply();
}
