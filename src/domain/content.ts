import { z } from 'zod';

// The documented shapes of handle content. Objects are strict: a field we do
// not know would be stored but never rendered, which is worse than an error.

export const artifactKinds = ['system', 'tools', 'document', 'messages'] as const;
export type ArtifactKind = (typeof artifactKinds)[number];

const jsonObject = z.record(z.string(), z.unknown());

// Providers refuse text that is empty or only whitespace (Anthropic: "text content blocks must contain
// non-whitespace text"): kept, it would break every later request that renders it.
const NON_BLANK = /\S/;
export const BLANK_TEXT = 'must contain non-whitespace text (providers refuse empty text blocks)';
export const isBlank = (s: string) => !NON_BLANK.test(s);
const text = z.string().regex(NON_BLANK, BLANK_TEXT);

// Opaque reasoning state a provider requires back while a tool loop is under way, kept with the assistant's reply
// and rendered only for the provider that produced it (render/formats/); every other format leaves it out.
// Gemini signs the part it came on (https://ai.google.dev/gemini-api/docs/thought-signatures): the signature
// rides on that text or tool_use block.
export const geminiSignatureSchema = z.strictObject({ provider: z.literal('gemini'), signature: z.string().min(1) });

// A tool result's text is the caller's, never signed: a signature there would be stored and rendered nowhere.
const resultTextSchema = z.strictObject({ type: z.literal('text'), text });
export const textBlockSchema = resultTextSchema.extend({ thought_signature: geminiSignatureSchema.optional() });

// Anthropic's thinking blocks, kept whole: the API checks the signature and refuses a block changed in any way
// (https://platform.claude.com/docs/en/build-with-claude/extended-thinking#preserving-thinking-blocks). The
// thinking text may be empty (display "omitted" returns the signature alone). `model`: the model that produced it, as
// the reply named it (absent when unknown: a block from the caller's own messages): with preserved thinking a block is
// tied to its model, and another model may not read it (https://platform.claude.com/docs/en/build-with-claude/preserved-thinking).
// `prefix`: the digests of what came before it when it was produced (thinking-prefix.ts), kept from a reply on a model
// with preserved thinking's prefix check; absent when unknown. Both are ours, not Anthropic's: never rendered.
const producedBy = z.string().min(1).max(256).optional();
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const producedUnder = z.strictObject({ tools: sha256, system: sha256, messages: sha256 }).optional();
export const thinkingBlockSchema = z.strictObject({
  type: z.literal('thinking'),
  provider: z.literal('anthropic'),
  thinking: z.string(),
  signature: z.string().min(1),
  model: producedBy,
  prefix: producedUnder,
});
export const redactedThinkingBlockSchema = z.strictObject({ type: z.literal('redacted_thinking'), provider: z.literal('anthropic'), data: z.string().min(1), model: producedBy, prefix: producedUnder });

// An OpenAI Responses reasoning item, kept with its encrypted_content (a reply to `include:
// ["reasoning.encrypted_content"]`): the API reads it back from that, statelessly, and wants the item as it returned
// it (https://platform.openai.com/docs/guides/reasoning, "Encrypted reasoning items"). Its id, summary and
// encrypted_content round-trip byte for byte; its status is not kept (metadata, as on other items). An item without
// encrypted_content (store: true, read back by id) is not kept: the id names state a session does not hold.
export const summaryTextSchema = z.strictObject({ type: z.literal('summary_text'), text: z.string() });
export const reasoningItemBlockSchema = z.strictObject({
  type: z.literal('reasoning'),
  provider: z.literal('openai'),
  id: z.string().min(1),
  summary: z.array(summaryTextSchema),
  encrypted_content: z.string().min(1),
});

export const imageBlockSchema = z.strictObject({
  type: z.literal('image'),
  source: z.discriminatedUnion('type', [
    z.strictObject({
      type: z.literal('base64'),
      media_type: z.enum(['image/png', 'image/jpeg', 'image/gif', 'image/webp']),
      // Empty data is no image: providers refuse it, and kept, it would break every later request.
      data: z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be base64, not empty'),
    }),
    // Providers fetch http(s) only (a data: URL is kept as base64): ftp:, file: or javascript: would be refused on every later request.
    z.strictObject({ type: z.literal('url'), url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }) }),
  ]),
});

export const toolUseBlockSchema = z.strictObject({
  type: z.literal('tool_use'),
  id: z.string().min(1),
  name: z.string().min(1),
  input: jsonObject,
  thought_signature: geminiSignatureSchema.optional(),
});

export const toolResultBlockSchema = z.strictObject({
  type: z.literal('tool_result'),
  tool_use_id: z.string().min(1),
  content: z.union([z.string(), z.array(z.discriminatedUnion('type', [resultTextSchema, imageBlockSchema]))]).optional(),
  is_error: z.boolean().optional(),
});

export const contentBlockSchema = z.discriminatedUnion('type', [
  textBlockSchema,
  imageBlockSchema,
  toolUseBlockSchema,
  toolResultBlockSchema,
  thinkingBlockSchema,
  redactedThinkingBlockSchema,
  reasoningItemBlockSchema,
]);

export const messageSchema = z.strictObject({
  role: z.enum(['user', 'assistant']),
  content: z.union([text, z.array(contentBlockSchema).min(1)]),
});

// 64: the strictest provider limit (OpenAI); Anthropic allows 128.
const toolName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'tool names are 1-64 letters, digits, _ or -');

export const toolDefinitionSchema = z.strictObject({
  // Anthropic's explicit mark of a user-defined tool (the Messages API takes `"type": "custom"` or none): the same tool,
  // kept as given.
  type: z.literal('custom', { error: 'a custom tool\'s type is "custom" (or none); an Anthropic-defined tool\'s is a version such as "bash_20250124"' }).optional(),
  name: toolName,
  description: z.string().optional(),
  input_schema: jsonObject,
});

/** An Anthropic tool version: its name and date (`bash_20250124`, `text_editor_20250429`, `computer_20250124`). */
export const DEFINED_TOOL_TYPE = /^[a-z][a-z0-9_]*_\d{8}$/;

// An Anthropic-defined tool carries no schema: the API writes its own definition for the version in `type`. Its
// settings (a display size, max_characters, max_uses) are the tool's own and are sent as stored; only Anthropic's API
// takes it. A cache mark is the service's to place, as on any handle content.
export const definedToolSchema = z
  .looseObject({
    // Aborting: a tool typed "custom" fails here as a custom one's does on a version, and the union tells it its own faults.
    type: z.string().regex(DEFINED_TOOL_TYPE, { message: 'must be an Anthropic tool version such as "bash_20250124"', abort: true }),
    name: toolName,
  })
  .refine((t) => !Object.hasOwn(t, 'cache_control'), { path: ['cache_control'], message: 'cache marks are placed when a request is rendered, not stored' });

export const toolsContentSchema = z
  .array(z.union([toolDefinitionSchema, definedToolSchema]))
  .min(1)
  .superRefine((tools, ctx) => {
    const seen = new Set<string>();
    tools.forEach((t, i) => {
      if (seen.has(t.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate tool name "${t.name}"` });
      seen.add(t.name);
    });
  });

export const messageListSchema = z.array(messageSchema);
export const messagesContentSchema = messageListSchema.min(1);

export type TextBlock = z.infer<typeof textBlockSchema>;
export type ImageBlock = z.infer<typeof imageBlockSchema>;
export type ContentBlock = z.infer<typeof contentBlockSchema>;
export type ReasoningItemBlock = z.infer<typeof reasoningItemBlockSchema>;
/** The model's reasoning state that is a block of its own (Anthropic thinking, an OpenAI Responses reasoning item). */
export type ThinkingBlock = z.infer<typeof thinkingBlockSchema> | z.infer<typeof redactedThinkingBlockSchema> | ReasoningItemBlock;
export const isThinking = (b: ContentBlock): b is ThinkingBlock => b.type === 'thinking' || b.type === 'redacted_thinking' || b.type === 'reasoning';
export type Message = z.infer<typeof messageSchema>;
export type CustomTool = z.infer<typeof toolDefinitionSchema>;
export type DefinedTool = z.infer<typeof definedToolSchema>;
export type ToolDefinition = CustomTool | DefinedTool;
/** Whether a stored tool is Anthropic-defined (a tool version in `type`, no schema); `"type": "custom"` is a custom tool. */
export const isDefinedTool = (t: ToolDefinition): t is DefinedTool => t.type !== undefined && t.type !== 'custom';

// Providers reject empty text blocks, so empty (or blank) system or document text is refused at mint.
export const contentSchemaByKind = {
  system: text,
  document: text,
  tools: toolsContentSchema,
  messages: messagesContentSchema,
} as const;

export function isJsonKind(kind: ArtifactKind): kind is 'tools' | 'messages' {
  return kind === 'tools' || kind === 'messages';
}

/** A message list a provider would refuse for its tool calls: where, and why. */
export interface ToolPairingProblem {
  pointer: string;
  detail: string;
}

export const toolUseIds = (m: Message | undefined): string[] =>
  m?.role === 'assistant' && Array.isArray(m.content) ? m.content.flatMap((b) => (b.type === 'tool_use' ? [b.id] : [])) : [];
const toolResultIds = (m: Message): Array<{ id: string; j: number }> =>
  Array.isArray(m.content) ? m.content.flatMap((b, j) => (b.type === 'tool_result' ? [{ id: b.tool_use_id, j }] : [])) : [];

/**
 * Calls only from the assistant, results only from the user and ahead of its other blocks (Anthropic), each id
 * once: the other formats cannot render the rest (a call in a user message has no OpenAI chat form at all).
 */
function toolPlacementProblem(m: Message, at: string): ToolPairingProblem | null {
  if (!Array.isArray(m.content)) return null;
  const seen = new Set<string>();
  let other = false;
  for (const [j, b] of m.content.entries()) {
    // The model's own reasoning state: the providers take it back on assistant turns only.
    if ((isThinking(b) || (b.type !== 'tool_result' && b.type !== 'image' && b.thought_signature)) && m.role !== 'assistant')
      return { pointer: `${at}/content/${j}`, detail: 'thinking blocks, reasoning items and thought signatures come from the assistant' };
    if (b.type === 'tool_use' || b.type === 'tool_result') {
      const where = `${at}/content/${j}`;
      if (b.type === 'tool_use' && m.role !== 'assistant') return { pointer: where, detail: 'a tool_use comes from the assistant' };
      if (b.type === 'tool_result' && m.role !== 'user') return { pointer: where, detail: 'a tool_result comes from the user' };
      if (b.type === 'tool_result' && other) return { pointer: where, detail: "tool_result blocks come before the message's other blocks" };
      const id = b.type === 'tool_use' ? b.id : b.tool_use_id;
      if (seen.has(id)) return { pointer: where, detail: `"${id}" appears twice in this message` };
      seen.add(id);
    } else other = true;
  }
  // Rendered for another provider, such a message would be left with nothing in it.
  if (m.content.every(isThinking)) return { pointer: `${at}/content`, detail: 'a message of thinking blocks (or reasoning items) alone has nothing to send to other providers' };
  // The service's cache breakpoint goes on a message's last block, and Anthropic refuses one on a thinking block.
  if (isThinking(m.content.at(-1)!)) return { pointer: `${at}/content/${m.content.length - 1}`, detail: 'a message ends with its answer, not with a thinking block' };
  return null;
}

/**
 * Providers take a tool result only as the answer to a call in the message just before it, and a call only
 * when the next message answers it (every provider refuses the request otherwise): kept, such a list would
 * break every later request that renders it. `before` is the message the list follows (a session's last);
 * without one, results at the very start are not checked (they may answer a handle placed before them).
 */
export function toolPairingProblem(before: Message | undefined, list: Message[], pointer: string, checkStart = true): ToolPairingProblem | null {
  for (let i = 0; i < list.length; i++) {
    const prev = i === 0 ? before : list[i - 1];
    const m = list[i]!;
    const placement = toolPlacementProblem(m, `${pointer}/${i}`);
    if (placement) return placement;
    const calls = toolUseIds(prev);
    const results = toolResultIds(m);
    if (i > 0 || checkStart) {
      for (const r of results)
        if (!calls.includes(r.id)) return { pointer: `${pointer}/${i}/content/${r.j}/tool_use_id`, detail: `answers no tool_use of the message before it ("${r.id}")` };
    }
    const answered = new Set(results.map((r) => r.id));
    const open = calls.find((id) => !answered.has(id));
    if (open !== undefined) return { pointer: `${pointer}/${i}`, detail: `must answer the tool_use "${open}" of the message before it with a tool_result` };
  }
  return null;
}
