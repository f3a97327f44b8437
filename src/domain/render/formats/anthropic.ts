// anthropic: the Messages API.
import canonicalize from 'canonicalize';
import { emitJson } from '../../canonical-json';
import { MESSAGE_CACHE_SETTINGS } from '../../simulator/semantic';
import type { ContentBlock, ReasoningItemBlock } from '../../content';
import { childPointer, prependProperty, prependToArray, property, textOf, valueOf } from '../json-text';
import type { Section } from '../prompt';
import type { ModelEntry } from '../../catalog/types';
import { DomainError, invalid } from '../../errors';
import { isRecord } from '../../records';
import { chooseBreakpoints, maxBreakpoints } from '../breakpoints';
import { anthropicMarkProblem } from '../../simulator/blocks';
import { neutral } from './neutral';
import { blocksOf, canon, toolNeutral } from './shared';
import type { Breakpoint } from '../request';
import type { InlineSystem, MarkableUnit, RequestFormatRules } from './types';

export const anthropic: RequestFormatRules = {
  definedTools: true,
  messagesKey: 'messages',
  contentKey: 'content',
  textBlock: (t) => `{"type":"text","text":${JSON.stringify(t)}}`,
  toolEntries: (texts) => texts,
  reusesItems: () => true,
  systemField: {
    key: () => 'system',
    // A string or blocks.
    blocks: (field, at) => ({ node: field, at }),
    prepend(texts, root, key, field, _blocks, bodyText) {
      if (!field) return prependProperty(root, key, `[${texts.join(',')}]`);
      // A plain-string system prompt becomes a list: our blocks first, then the caller's text, unchanged.
      if (field.type === 'string')
        return { offset: field.offset, length: field.length, pieces: [`[${texts.join(',')},{"type":"text","text":${textOf(bodyText, field)}}]`] };
      return prependToArray(field, texts);
    },
  },
  items(seg) {
    if (seg.section === 'tools') return seg.tools.map((t) => emitJson(toolNeutral(t)));
    if (seg.section === 'system') return [emitJson({ type: 'text', text: seg.text })];
    // An OpenAI reasoning item is OpenAI's alone: left out, the message's bytes are those of the message without it.
    return seg.messages.map((m) => emitJson({ role: m.role, content: blocksOf(m).flatMap((b) => (b.type === 'reasoning' ? [] : [anthropicBlock(b)])) }));
  },
  wrap: neutral.wrap,
  toolNames: (tool) => [tool.name],
  inline: {
    storedTool: (tool) => Object.fromEntries(Object.entries(tool).filter(([k]) => k !== 'cache_control')),
    systemText,
    // Each system block, or the system string.
    systemUnits(body) {
      const unit = (pointer: string, value: unknown): InlineSystem[] => {
        const text = systemText(value);
        return text === null ? [] : [{ pointer, value, text, section: 'system' }];
      };
      if (typeof body.system === 'string') return unit('/system', body.system);
      return Array.isArray(body.system) ? body.system.flatMap((b, i) => unit(`/system/${i}`, b)) : [];
    },
  },
  // Anthropic keeps a conversation itself too, in a thread (`"thread": {"type": "continue", "previous_message_id": …}`,
  // which the SDK's toolRunner sends by default from its second turn on): with a session, each earlier turn would be
  // sent twice. The thread is no prompt the service records: null.
  providerHistory(root, pointer, session) {
    if (!session) return null;
    const node = property(root, 'thread');
    const value = node === undefined ? null : valueOf(node);
    if (typeof value === 'object' && value !== null && (value as { type?: unknown }).type === 'continue')
      throw invalid(
        childPointer(pointer, 'thread'),
        "Anthropic carries the conversation from the thread (previous_message_id), and the session carries it here: each earlier turn would be sent twice; use one of them: the thread with x-ph-prefix for the fixed prefix, or the session with each turn's new messages and no thread",
      );
    return null;
  },
  preservedThinking: true,
  // Anthropic caches the messages under the request's tool_choice and thinking settings.
  messageSettings(root) {
    const settings: Record<string, unknown> = {};
    for (const name of MESSAGE_CACHE_SETTINGS) {
      const node = property(root, name);
      const value = node === undefined ? null : valueOf(node);
      // A null is the setting not sent (as the semantic keys drop nulls).
      if (value !== null) settings[name] = value;
    }
    return Object.keys(settings).length ? (canonicalize(settings) ?? null) : null;
  },
  breakpoints: {
    // Top-level cache_control is Anthropic's automatic caching: a mark on the prompt's last block, the caller's.
    autoTtl(root) {
      const autoNode = property(root, 'cache_control');
      const auto = autoNode ? valueOf(autoNode) : undefined;
      // As the provider reads it: an object is a mark (null is none).
      return auto !== null && typeof auto === 'object' && !Array.isArray(auto) ? ((auto as { ttl?: unknown }).ttl === '1h' ? '1h' : '5m') : undefined;
    },
    place({ root, pointer, model, units, segments, lastUnit, callerMarked, callerBreakpoints, autoTtl, cacheTtl }) {
      const max = maxBreakpoints(model);
      // A mark Anthropic refuses (blocks.ts anthropicMarkProblem): a 422 at the field, not a breakpoint.
      const problem = callerBreakpoints > 0 ? anthropicMarkProblem(valueOf(root)) : null;
      if (problem) throw invalid(problem.path.reduce(childPointer, pointer), `Anthropic refuses this cache_control (${problem.path.join('.')}: ${problem.message}); it takes { type: 'ephemeral', ttl?: '5m' | '1h' }`);
      if (callerBreakpoints > max) throw invalid(pointer, `the request sets ${callerBreakpoints} cache_control breakpoints; ${model.id} allows at most ${max}`);
      const breakpoints: Breakpoint[] = [];
      const wanted = consistentTtl(chooseTtl(model, cacheTtl), units, model, autoTtl);
      // A mark after a caller's 5m mark is 5m too, even when the caller also marks 1h (Anthropic refuses 1h after 5m).
      const firstCaller5m = units.findIndex((u) => u.caller5m);
      // A matched segment is the caller's content (no item of ours to mark): the body stays as sent.
      for (const b of chooseBreakpoints(segments, max - callerBreakpoints, model, (i) => lastUnit[i]!.item !== null)) {
        const unit = lastUnit[b]!;
        const ttl = firstCaller5m >= 0 && firstCaller5m <= units.indexOf(unit) ? '5m' : wanted;
        unit.item!.text = withCacheControl(unit.section, unit.item!.text, ttl);
        breakpoints.push({ segment: b, source: segments[b]!.source, token_end: segments[b]!.token_end, ttl, set_by: 'service' });
      }
      segments.forEach((s, i) => {
        const callerTtl = callerMarked.get(i);
        if (callerTtl) breakpoints.push({ segment: i, source: s.source, token_end: s.token_end, ttl: callerTtl, set_by: 'caller' });
      });
      // The automatic mark, on the last block unless a mark is there already (reconciliation simulates its write).
      const last = segments.length - 1;
      if (autoTtl && last >= 0 && !breakpoints.some((b) => b.segment === last))
        breakpoints.push({ segment: last, source: segments[last]!.source, token_end: segments[last]!.token_end, ttl: autoTtl, set_by: 'caller' });
      return breakpoints.sort((a, b) => a.segment - b.segment);
    },
  },
};

/** The text of a system block, or of the system string. */
function systemText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  return isRecord(v) && typeof v.text === 'string' && v.type === 'text' ? v.text : null;
}

// Thinking blocks render as Anthropic returned them (type, thinking, signature; type, data), the fields in its order.
function anthropicBlock(b: Exclude<ContentBlock, ReasoningItemBlock>): unknown {
  switch (b.type) {
    case 'thinking':
      return { type: 'thinking', thinking: b.thinking, signature: b.signature };
    case 'redacted_thinking':
      return { type: 'redacted_thinking', data: b.data };
    case 'text':
      return { type: 'text', text: b.text };
    case 'image':
      return { type: 'image', source: canon(b.source) };
    case 'tool_use':
      return { type: 'tool_use', id: b.id, name: b.name, input: canon(b.input) };
    case 'tool_result':
      return {
        type: 'tool_result',
        tool_use_id: b.tool_use_id,
        content: typeof b.content === 'string' || b.content === undefined ? b.content : b.content.map(anthropicBlock),
        is_error: b.is_error,
      };
  }
}

function chooseTtl(model: ModelEntry, wanted: string | undefined): string {
  const names = model.cache.ttls.map((t) => t.name);
  return wanted && names.includes(wanted) ? wanted : model.cache.defaultTtl;
}

/**
 * Anthropic requires longer-TTL breakpoints to come before shorter ones. Our
 * marks sit on handle boundaries: use 1h when the caller marks anything 1h (the
 * automatic mark at the end too), and 5m when a caller's 5m mark could precede ours.
 */
function consistentTtl(wanted: string, units: MarkableUnit[], model: ModelEntry, autoTtl: string | undefined): string {
  const callerTtls = units.filter((u) => u.callerTtl).map((u) => u.callerTtl!);
  const has1h = model.cache.ttls.some((t) => t.name === '1h');
  if ((callerTtls.includes('1h') || autoTtl === '1h') && has1h) return '1h';
  if (callerTtls.includes('5m')) return '5m';
  return wanted;
}

/** Adds Anthropic's cache_control to the last block of an item we rendered. */
function withCacheControl(section: Section, text: string, ttl: string): string {
  const marker = ttl === '5m' ? '"cache_control":{"type":"ephemeral"}' : `"cache_control":{"type":"ephemeral","ttl":${JSON.stringify(ttl)}}`;
  // Messages end with the last block's "}" then "]}"; tools, system and content blocks end with "}".
  if (section === 'messages' && text.endsWith('}]}') && text.startsWith('{"role"')) return `${text.slice(0, -3)},${marker}}]}`;
  if (text.endsWith('}')) return `${text.slice(0, -1)},${marker}}`;
  throw new DomainError('invalid_request', 'cannot place a breakpoint here');
}
