// Gemini generateContent: a turn's contents and the reply's candidate 0, and a streamed reply rebuilt from its chunks.

import type { ContentBlock, Message } from '../../content';
import { invalid } from '../../errors';
import { IMAGE_TYPES, isRecord, keepsOnly, list, readFrom, str, unsupported, type Json } from './shared';
import type { ProxyFormatRules, StreamReply } from './types';

const KNOWN = {
  geminiContent: new Set(['role', 'parts']),
  geminiPart: new Set(['text', 'inlineData', 'functionCall', 'functionResponse', 'thoughtSignature']),
  geminiInlineData: new Set(['mimeType', 'data']),
  geminiFunctionCall: new Set(['id', 'name', 'args']),
  geminiFunctionResponse: new Set(['id', 'name', 'response']),
};

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
    const content = list(c.parts, `${cAt}/parts`).map((p, j) => readFrom(geminiPart(p, `${cAt}/parts/${j}`, true), `${cAt}/parts/${j}`));
    return readFrom<Message>({ role, content }, cAt);
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
  // As a content of its own: a handle a session cannot keep, said so (not as its unknown field "type").
  if (strict && p.type === 'handle') unsupported(at, 'a handle block');
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

// Every chunk is a GenerateContentResponse whose candidate 0 holds the next parts (text in pieces, a function call
// whole); one carries its finishReason. No event ends the stream: it ends when the provider closes it, so `ended`
// stays false and the relay finishes on the close.
function geminiReply(): StreamReply {
  const parts: Json[] = [];
  let finished = false;
  return {
    push(data) {
      if (!isRecord(data) || !Array.isArray(data.candidates)) return;
      const candidate = data.candidates[0];
      if (!isRecord(candidate)) return;
      if (typeof candidate.finishReason === 'string') finished = true;
      const content = isRecord(candidate.content) ? candidate.content : {};
      for (const raw of Array.isArray(content.parts) ? content.parts : []) {
        if (!isRecord(raw)) continue;
        const p = asGeminiText(raw);
        const last = parts[parts.length - 1];
        // Text pieces join the text before them (a thought's with a thought's), and a signature that comes on a
        // later piece (Gemini may send it on an empty one, or on a part of its own) belongs to the part they make.
        if (typeof p.text === 'string' && last && typeof last.text === 'string' && last.thought === p.thought && last.thoughtSignature === undefined) {
          last.text += p.text;
          if (p.thoughtSignature !== undefined) last.thoughtSignature = p.thoughtSignature;
        } else parts.push({ ...p });
      }
    },
    get ended() {
      return false;
    },
    get succeeded() {
      return finished;
    },
    response: () => ({ candidates: [{ content: { role: 'model', parts } }] }),
  };
}

/**
 * The pointer of the first part of a Gemini body with no field at all, else null. Gemini refuses such a part, and it is
 * what @google/genai sends for a handle block (its converters copy only the fields they know): said before any call.
 */
function emptyPart(body: unknown): string | null {
  if (!isRecord(body)) return null;
  const lists: Array<[string, unknown]> = [];
  if (isRecord(body.systemInstruction)) lists.push(['/systemInstruction/parts', body.systemInstruction.parts]);
  if (Array.isArray(body.contents)) body.contents.forEach((content, i) => isRecord(content) && lists.push([`/contents/${i}/parts`, content.parts]));
  for (const [at, parts] of lists) {
    const i = Array.isArray(parts) ? parts.findIndex((p) => isRecord(p) && Object.keys(p).length === 0) : -1;
    if (i !== -1) return `${at}/${i}`;
  }
  return null;
}

const DROPPED_HANDLE =
  'an empty part ({}): @google/genai keeps only the fields it knows, so a handle block ({"type":"handle","ref":…}) in contents or systemInstruction reaches the proxy as {} and its handle is lost; name handles in the x-ph-prefix and x-ph-session headers (httpOptions.headers), or send the body with fetch';

export const gemini: ProxyFormatRules = {
  messagesKey: 'contents',
  turnMessages: geminiContents,
  replyBlocks(response) {
    // Candidate 0 (the one a session continues); the model's thought summaries are not kept (Gemini does not read
    // them back), the signatures on its other parts are.
    const candidate = Array.isArray(response.candidates) ? response.candidates[0] : undefined;
    const parts = isRecord(candidate) && isRecord(candidate.content) && Array.isArray(candidate.content.parts) ? candidate.content.parts : [];
    return parts.flatMap((p) => (isRecord(p) && p.thought !== true ? [geminiPart(asGeminiText(p), '', false)] : []));
  },
  streamReply: geminiReply,
  chunksAsArray: true,
  droppedHandleBlock(body) {
    const at = emptyPart(body);
    return at === null ? null : { at, detail: DROPPED_HANDLE };
  },
};
