// openai-responses: the Responses API's input items.
import canonicalize from 'canonicalize';
import { emitJson } from '../../canonical-json';
import { isThinking, type Message } from '../../content';
import { childPointer, property, valueOf } from '../json-text';
import { invalid } from '../../errors';
import { arr, blocksOf, canon, dataUrl, objectJson, textOf } from './shared';
import { instructionRole, openaiBreakpoints, openaiInline, promptCacheKey, retention } from './openai';
import type { RequestFormatRules } from './types';

export const openaiResponses: RequestFormatRules = {
  definedTools: false,
  messagesKey: 'input',
  contentKey: 'content',
  textBlock: (t) => `{"type":"input_text","text":${JSON.stringify(t)}}`,
  toolEntries: (texts) => texts,
  preservedThinking: false,
  currentTurnReasoning: true,
  reusesItems: () => true,
  systemField: null,
  instructionsKey: 'instructions',
  stringInput: true,
  instructionRole,
  items(seg) {
    if (seg.section === 'tools')
      return seg.tools.map((t) =>
        // strict: false keeps the schema as written; the Responses API defaults to strict mode, which makes optional fields required.
        emitJson({ type: 'function', name: t.name, description: t.description, parameters: canon(t.input_schema), strict: false }),
      );
    if (seg.section === 'system')
      return [emitJson({ type: 'message', role: 'system', content: [{ type: 'input_text', text: seg.text }] })];
    return seg.messages.flatMap((m) => responsesItems(m).map(emitJson));
  },
  wrap: (tools, system, messages) => objectJson(tools.length > 0 && ['tools', arr(tools)], ['input', arr([...system, ...messages])]),
  toolNames: (tool) => [tool.name],
  inline: openaiInline('input', 'input_text', (tool) => tool),
  breakpoints: openaiBreakpoints,
  promptCacheKey,
  // OpenAI keeps a Responses conversation itself (previous_response_id, conversation): with a session's history
  // too, every earlier turn would be sent (and billed) twice. Without one, the request is recorded as continuing it.
  providerHistory(root, pointer, session) {
    let history: string | null = null;
    for (const name of ['previous_response_id', 'conversation']) {
      const node = property(root, name);
      const value = node === undefined ? null : valueOf(node);
      if (value === null || value === '') continue;
      if (session)
        throw invalid(childPointer(pointer, name), `OpenAI carries the conversation from ${name}, and the session carries it here: each earlier turn would be sent twice; use one of them`);
      history ??= name;
    }
    return history;
  },
  prefixAfterHistory: true,
  cacheTtl: retention,
};

function responsesItems(m: Message): unknown[] {
  const out: unknown[] = [];
  let parts: unknown[] = [];
  const flush = () => {
    if (parts.length) out.push({ type: 'message', role: m.role, content: parts });
    parts = [];
  };
  for (const b of blocksOf(m)) {
    if (b.type === 'text') parts.push({ type: m.role === 'assistant' ? 'output_text' : 'input_text', text: b.text });
    else if (b.type === 'image') parts.push({ type: 'input_image', image_url: dataUrl(b) });
    else if (b.type === 'reasoning') {
      // An OpenAI reasoning item goes back before the items it preceded, its fields as the API returns them.
      flush();
      out.push({ id: b.id, type: 'reasoning', summary: b.summary.map((x) => ({ type: x.type, text: x.text })), encrypted_content: b.encrypted_content });
    } else if (isThinking(b)) continue;
    else if (b.type === 'tool_use') {
      flush();
      out.push({ type: 'function_call', call_id: b.id, name: b.name, arguments: canonicalize(b.input) });
    } else {
      flush();
      out.push({ type: 'function_call_output', call_id: b.tool_use_id, output: textOf(b.content) });
    }
  }
  flush();
  return out;
}
