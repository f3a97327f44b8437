import type { ModelEntry } from '../catalog/types';
import { sha256Hex } from '../digest';
import { DomainError, invalid, withPointer } from '../errors';
import type { HandleService } from '../handles';
import { isDefinedTool } from '../content';
import { learnToolNames, newRenderContext, REQUEST_FORMATS, segmentItems, type RenderContext } from './formats';
import { Lru } from '../lru';
import { semanticKey, unitKey } from '../simulator/semantic';
import { countTokens, type TokenizerFamily } from '../tokens';
import { definedToolTokens, toolCosts, toolPromptParts, unitTokens } from '../prompt-tokens';
import {
  applyEdits,
  childPointer,
  elements,
  expectType,
  parseJsonTree,
  prependProperty,
  prependToArray,
  property,
  propertyNode,
  replaceElement,
  textOf,
  valueOf,
  type Edit,
  type JsonNode,
} from './json-text';
import { orderSegments, type PromptSegment, type RequestFormat, type Section } from './prompt';
import { readCurrentReasoningOnly, readThinkingOnly, type DroppedFrom } from './thinking-units';
import { changedInBody, changedInUnits, checksPrefix, dropsFailedBlocks, recordedThinking, refuseChanged, unitParts, type ChangedPrefix } from '../thinking-prefix';
import { isThinkingBlock, readsEarlierReasoning, reasoningSettings } from '../thinking';
import { pushAll } from '../arrays';
import type { Json } from '../records';
import { estimatedTool, type EstimatedTool } from '../estimated-tools';
import { storedTool } from './inline-content';
import { buildSegments, newChainMemo, segmentOfUnit } from './segments';
import { costedTool, fnv1a, inlineIdentity, inRole, itemKey, itemsFrom, unitOf, type InlineIdentity, type Item, type Unit } from './units';

export { requestFormats, type RequestFormat } from './prompt';

/** One piece of the rendered prompt, in provider serialisation order. */
export interface RenderedSegment {
  /** `art_x@2`, `ses_x@3` (a session batch), or `inline` (the caller's own content). */
  source: string;
  path: string[];
  section: Section;
  byte_start: number;
  byte_end: number;
  token_start: number;
  token_end: number;
  /** true when the span is an estimate (inline content, or a model without an exact tokenizer: Anthropic, Gemini, self-hosted). */
  tokens_estimated: boolean;
  /** Provider content blocks in the segment (Anthropic's lookback counts these). */
  blocks: number;
  digest: string;
  /** P_k = sha256(P_{k-1} ‖ digest_k): equal chains mean equal bytes from the first token through this segment. */
  chain: string;
  /**
   * The segment's units (a tool, a system block, a message; a block where handles stand inside a message) as
   * [semantic key, estimated tokens, provider blocks, the key without the message settings when they apply]:
   * reconciliation keys its simulated cache on them, so the same messages sent inline, then from a session, are one
   * cached prefix. Stored with the request, not shown.
   */
  units?: Array<[string, number, number] | [string, number, number, string]>;
}

export interface Breakpoint {
  segment: number;
  source: string;
  token_end: number;
  ttl: string;
  /** `provider`: one the provider places itself (GPT-5.6's implicit breakpoint at the newest message). */
  set_by: 'caller' | 'service' | 'provider';
}

export interface RenderedRequest {
  bodyText: string;
  segments: RenderedSegment[];
  breakpoints: Breakpoint[];
  promptCacheKey: string | null;
  /** OpenAI `prompt_cache_retention` when it names a TTL of the model (`24h`), else null: the model's default. */
  cacheTtl: string | null;
  /** Bytes of the inline segments that come before a handle (where a drift can be located), by segment index. */
  inlineText: Map<number, string>;
  /** The model the request is for, as resolved from the body (or the caller's override). */
  model: ModelEntry;
  /** Every handle the request named, also one that rendered nothing (a session with no turns yet). */
  handles: string[];
  /**
   * The settings the messages are read under, as canonical JSON (`{}`: none set; null: a format without any): Anthropic's
   * tool_choice and thinking (the messages are cached under them); OpenAI Responses' `reasoning.context`, as
   * `{"reasoning.context": …}` (which turns' reasoning items the model reads; not in the units' keys, which say it).
   */
  messageSettings: string | null;
  /**
   * OpenAI Responses: `previous_response_id` or `conversation` when the body has one — the provider puts the
   * conversation it keeps before this request's input, tokens the service never rendered; else null.
   */
  providerHistory: string | null;
  /** With providerHistory: the first segment a prefix placed in the input, after that history (null: none). */
  prefixAfterHistory: number | null;
  /** OpenAI: the first system or developer message placed after a session's messages, its segment and role (null: none). */
  instructionAfterSession: { segment: number; role: string } | null;
  /** Anthropic: the Anthropic-defined tools the model's catalog entry has no token figure for (counted as their JSON). */
  estimatedTools: EstimatedTool[];
  /**
   * Anthropic: thinking blocks another model produced, which this one does not read (preserved thinking's model check:
   * the API drops them without an error): the first one's segment and every such producer (null: none).
   */
  thinkingNotRead: { segment: number; models: string[] } | null;
  /**
   * Anthropic: thinking blocks that fail preserved thinking's prefix check, which the request lets the API drop
   * (`drop_block`): the first one's segment and every such block, in order (null: none).
   */
  thinkingDropped: { segment: number; blocks: ChangedPrefix[] } | null;
  /** With matchHandles: the caller's content recorded as a handle's, in prompt order. */
  matched: MatchedContent[];
}

export interface RenderRequestInput {
  tenantId: string;
  format: RequestFormat;
  /** The provider request body, as JSON text. */
  bodyText: string;
  /** True when bodyText is known to be valid JSON (the caller parsed it): it is not validated again. */
  bodyIsJson?: boolean;
  /** JSON pointer of the body inside the API request (for error paths). */
  pointer: string;
  /** Resolves the body's `model` (undefined when it has none) to its catalog entry. */
  resolveModel: (nameInBody: string | undefined) => ModelEntry;
  /** Refs to prepend in addition to a body `prefix` (the proxy's headers), each with the header that gave it. */
  extraPrefix?: Array<{ ref: string; pointer: string }>;
  /** Requested TTL for the breakpoints the service places. */
  cacheTtl?: string;
  /** The catalog id of a model that produced a stored thinking block (null: not known); without it none is known. */
  producerOf?: (modelName: string) => string | null;
  /**
   * The caller's own tools and system prompt that are an artifact version of the tenant, as the provider reads them,
   * are recorded as that version's segments (see matchInline); the body is not changed.
   */
  matchHandles?: boolean;
}

/** Inline content recorded as a handle's (matchHandles): its segment, the version, where the content stood. */
export interface MatchedContent {
  segment: number;
  source: string;
  pointer: string;
}

const HANDLE_TYPE = 'handle';

type ResolvedRef = ReturnType<HandleService['resolve']>;

/**
 * Renders a provider request body in which handles appear (a top-level
 * `prefix`, or `{"type":"handle","ref":…}` where a tool, system block,
 * message or content block may stand). Every byte the caller sent outside
 * those places comes through unchanged, in the caller's order.
 */
export class RequestRenderer {
  // Rendered items of immutable segments, per format: a bundle is not re-serialised on every request.
  private readonly items = new Lru<string, string[]>(64 * 1024 * 1024, (texts) => texts.reduce((n, t) => n + t.length, 64));

  // The caller's own units by their exact text: an agent loop sends every earlier message again on every turn.
  // A unit is kept from its second sighting on: one-off content is neither copied nor kept (its copies would
  // outlive the young generation and cost more in garbage collection than the cache saves).
  private readonly inlineUnits = new Lru<string, InlineIdentity>(32 * 1024 * 1024, (v) => v.weight);
  // Sightings by a 32-bit hash of the key: no strings kept; a collision only admits a unit one sighting early.
  private readonly inlineSeen = new Lru<number, true>(64 * 1024);
  // matchHandles: the version found for the caller's units (by tenant, format, section and their keys). Only found
  // ones: a version minted later is never older than one found, and one deleted fails to resolve and is looked up again.
  private readonly matches = new Lru<string, string>(16_384);
  // A message unit's key under the request's message settings, a pure function of the format, the settings and the
  // unit's own key: a long session's 1,200 messages are not canonicalised and hashed again on every call. Per format
  // and settings (one lookup of their text a call), then by the unit's key (a string already hashed); at most 8
  // settings × 16,384 keys, ~330 bytes each: 43 MB of heap when full (a 300-round session under one setting takes 1,200).
  private readonly settingsKeys = new Lru<string, Lru<string, string>>(8);
  // The chain of segment digests, link by link (segments.ts).
  private readonly chains = newChainMemo();

  constructor(private readonly handles: HandleService) {}

  forgetCaches(): void {
    for (const cache of [this.items, this.inlineUnits, this.inlineSeen, this.matches, this.settingsKeys, this.chains]) cache.clear();
  }

  private inline(format: RequestFormat, section: Section, source: string, node: JsonNode, blocks = 1): Unit {
    const text = textOf(source, node);
    // Keyed by length, head and tail (hashing a whole long key costs more than comparing it), then compared whole.
    const key = text.length > 96 ? `${text.length}:${text.slice(0, 48)}${text.slice(-48)}` : text;
    let id = this.inlineUnits.get(key);
    if (!id || id.text !== text) {
      id = inlineIdentity(text, format, section);
      // Slices of the body would keep the whole body alive: what is kept is a copy.
      const sighting = fnv1a(key);
      if (this.inlineSeen.get(sighting)) this.inlineUnits.set(` ${key}`.slice(1), { ...id, text: ` ${text}`.slice(1) });
      else this.inlineSeen.set(sighting, true);
    }
    const semantic = (id.keys[`${format}|${section}`] ??= unitKey(format, section, JSON.parse(id.hashText)));
    const counts = id.tokens;
    const tokens = (family: TokenizerFamily) =>
      (counts[`${format}|${section}|${family}`] ??= unitTokens(format, section, JSON.parse(id.countText), (t) => countTokens(t, family), toolCosts(format, family)));
    return { section, hashText: id.hashText, item: null, segment: null, blocks, callerBreakpoints: id.callerBreakpoints, callerTtl: id.callerTtl, caller5m: id.caller5m, key: semantic, tokens };
  }

  /** `at`: what named the segment, for a refusal (an Anthropic-defined tool in another format). */
  private itemsOf(format: RequestFormat, seg: PromptSegment, ctx: RenderContext, at: string): Item[] {
    const key = `${format}|${seg.source}`;
    const cacheable = REQUEST_FORMATS[format].reusesItems(seg);
    let texts = cacheable ? this.items.get(key) : undefined;
    if (texts) learnToolNames(seg, ctx);
    else {
      try {
        texts = segmentItems(format, seg, ctx);
      } catch (err) {
        throw err instanceof DomainError ? withPointer(err, at) : err;
      }
      if (cacheable) this.items.set(key, texts);
    }
    return itemsFrom(seg, texts);
  }

  render(input: RenderRequestInput): RenderedRequest {
    const { format, bodyText, pointer } = input;
    const root = parseJsonTree(bodyText, pointer, input.bodyIsJson);
    if (root.type !== 'object') throw invalid(pointer, 'the request body must be a JSON object');
    const modelNode = property(root, 'model');
    if (modelNode !== undefined && modelNode.type !== 'string') throw invalid(`${pointer}/model`, 'must be a string (the model name)');
    const model = input.resolveModel(modelNode?.type === 'string' ? (modelNode.value as string) : undefined);
    const rules = REQUEST_FORMATS[format];
    const ctx = newRenderContext();
    const edits: Edit[] = [];
    const named = new Set<string>();
    let sessionNamed = false;
    const resolve = (ref: string, at: string) => {
      const r = this.handles.resolve(input.tenantId, ref, at);
      named.add(r.handle.id);
      if (r.handle.type === 'session') sessionNamed = true;
      return r;
    };
    const placements: { items: Item[]; build: (texts: string[]) => Edit }[] = [];
    // Where each of the caller's own whole tools, system blocks and messages stood (for matchHandles).
    const inlineAt = new Map<Unit, string>();

    // ---- top-level prefix (and the proxy's header refs) ----
    // Each ref with where it was given (a proxy header, or an entry of the body's prefix).
    const prefixRefs = [...(input.extraPrefix ?? [])];
    const prefixProp = propertyNode(root, 'prefix');
    if (prefixProp) {
      const list = prefixProp.children![1]!;
      const at = childPointer(pointer, 'prefix');
      if (list.type !== 'array') throw invalid(at, 'prefix must be an array of handle refs');
      elements(list).forEach((n, i) => {
        if (n.type !== 'string') throw invalid(childPointer(at, i), 'prefix entries are handle refs (strings)');
        prefixRefs.push({ ref: n.value as string, pointer: childPointer(at, i) });
      });
      const idx = root.children!.indexOf(prefixProp);
      edits.push(replaceElement(root, idx, []));
    }
    const placed = prefixRefs.flatMap(({ ref, pointer: at }) => {
      const r = resolve(ref, at);
      return this.handles.segmentsOf(r.handle, r.version.version).map((segment) => ({ segment, at }));
    });
    const prefixSegments = orderSegments(placed.map((p) => p.segment));
    const prefixItems = (section: Section) =>
      prefixSegments.filter((s) => s.section === section).flatMap((s) => this.itemsOf(format, s, ctx, childPointer(pointer, 'prefix')));
    // Where each prefix tool came from: each appearance of a tools segment is a placement of its own (one handle
    // placed twice, or an artifact in a bundle and again in a session's base, names its tools twice).
    const toolFrom: Array<{ pointer: string; source: string; appearance?: number }> = [];
    const appearances = new Map<string, number>();
    const pTools = placed
      .filter((p) => p.segment.section === 'tools')
      .flatMap(({ segment, at }) => {
        const n = (appearances.get(segment.source) ?? 0) + 1;
        appearances.set(segment.source, n);
        const items = this.itemsOf(format, segment, ctx, at);
        for (const it of items) toolFrom.push({ pointer: at, source: it.segment?.source ?? 'prefix', ...(n > 1 ? { appearance: n } : {}) });
        return items;
      });
    const pSystem = prefixItems('system');
    const pMessages = prefixItems('messages');

    // ---- tools ----
    const toolsNode = expectType(property(root, 'tools'), 'array', childPointer(pointer, 'tools'), 'tools');
    const toolUnits: Unit[] = [];
    const costs = toolCosts(format, model.tokenizer, model);
    if (pTools.length) {
      placements.push({
        items: pTools,
        build: (texts) => {
          const json = rules.toolEntries(texts);
          return toolsNode ? prependToArray(toolsNode, json) : prependProperty(root, 'tools', `[${json.join(',')}]`);
        },
      });
      pushAll(toolUnits, pTools.map((it) => unitOf(format, 'tools', it)));
    }
    // Where each tool unit came from (the prefix's above): a handle's tools that another source names again are refused below.
    elements(toolsNode).forEach((node, i) => {
      const at = childPointer(childPointer(pointer, 'tools'), i);
      const ref = handleRef(node, at);
      if (ref) {
        const items = this.inPlace(resolve, format, ref, at, ['tools'], ctx);
        placements.push({
          items,
          build: (texts) => replaceElement(toolsNode!, i, rules.toolEntries(texts)),
        });
        pushAll(toolUnits, items.map((it) => unitOf(format, 'tools', it)));
        pushAll(toolFrom, items.map((it) => ({ pointer: at, source: it.segment?.source ?? ref })));
      } else {
        // An Anthropic-defined tool costs the model's figure for its version, not its JSON (a handle's: below).
        const type = node.type === 'object' ? property(node, 'type') : undefined;
        toolUnits.push(costedTool(this.inline(format, 'tools', bodyText, node), type && valueOf(type), costs));
        inlineAt.set(toolUnits.at(-1)!, at);
        toolFrom.push({ pointer: at, source: 'inline' });
      }
    });
    refuseDuplicateTools(format, toolUnits, toolFrom);
    // A tools handle's Anthropic-defined tool (anthropic format only: another refuses it) costs the model's figure too.
    toolUnits.forEach((u, i) => {
      const seg = u.item?.segment;
      const tool = seg?.section === 'tools' && u.item!.index !== undefined ? seg.tools[u.item!.index] : undefined;
      if (tool && isDefinedTool(tool)) toolUnits[i] = costedTool(u, tool.type, costs);
    });
    // Those the model has no figure for: sent as given and counted as their JSON, which the render warns of.
    // Only a tool whose text holds a version-like type is parsed: most are custom tools, and this runs on every render.
    const unfigured =
      rules.definedTools
        ? toolUnits.flatMap((u, i) => (MAYBE_DEFINED_TOOL.test(u.hashText) ? (estimatedTool(JSON.parse(u.hashText), (type) => definedToolTokens(type, costs) !== undefined, i) ?? []) : []))
        : [];

    // ---- system ----
    const systemUnits: Unit[] = [];
    // Anthropic's system given as a string: a text block in the body (after a prefix's blocks), or read as one.
    let systemString: Unit | undefined;
    const messageUnits: Unit[] = [];
    const systemField = rules.systemField;
    if (systemField) {
      const key = systemField.key(root);
      const at = childPointer(pointer, key);
      const sysNode = property(root, key);
      const { node: partsNode, at: partsAt } = systemField.blocks(sysNode, at, key);
      if (pSystem.length) {
        placements.push({ items: pSystem, build: (texts) => systemField.prepend(texts, root, key, sysNode, partsNode, bodyText) });
        pushAll(systemUnits, pSystem.map((it) => unitOf(format, 'system', it)));
      }
      if (partsNode?.type === 'string') {
        systemUnits.push((systemString = this.inline(format, 'system', bodyText, partsNode)));
        inlineAt.set(systemUnits.at(-1)!, at);
      } else if (partsNode && partsNode.type !== 'array') throw invalid(at, `${key} must be a string or an array of blocks`);
      elements(partsNode).forEach((node, i) => {
        const nodeAt = childPointer(partsAt, i);
        const ref = handleRef(node, nodeAt);
        if (ref) {
          const items = this.inPlace(resolve, format, ref, nodeAt, ['system'], ctx);
          placements.push({ items, build: (texts) => replaceElement(partsNode!, i, texts) });
          pushAll(systemUnits, items.map((it) => unitOf(format, 'system', it)));
        } else {
          systemUnits.push(this.inline(format, 'system', bodyText, node));
          inlineAt.set(systemUnits.at(-1)!, nodeAt);
        }
      });
    } else if (rules.instructionsKey) {
      const instructions = property(root, rules.instructionsKey);
      if (instructions && instructions.type === 'string') systemUnits.push(this.inline(format, 'system', bodyText, instructions));
    }

    // ---- messages ----
    const msgKey = rules.messagesKey;
    const msgAt = childPointer(pointer, msgKey);
    let msgNode = property(root, msgKey);
    if (!msgNode) throw invalid(msgAt, `${msgKey} is required`);
    const leading = systemField ? pMessages : [...pSystem, ...pMessages];
    // The prefix's units at the head of the messages (OpenAI: its system items too), told apart from the caller's own.
    const leadingUnits = new Set<Unit>();
    if (leading.length) {
      const node = msgNode;
      placements.push({
        items: leading,
        build: (texts) => {
          // A plain-string Responses input becomes a list: our items, then the caller's user message.
          if (node.type === 'string') return { offset: node.offset, length: node.length, pieces: [`[${texts.join(',')},{"role":"user","content":${textOf(bodyText, node)}}]`] };
          return prependToArray(node, texts);
        },
      });
      const system = systemField ? [] : pSystem.map((it) => unitOf(format, 'system', it));
      const messages = pMessages.map((it) => unitOf(format, 'messages', it));
      pushAll(systemUnits, system);
      pushAll(messageUnits, messages);
      for (const u of [...system, ...messages]) leadingUnits.add(u);
    }
    // OpenAI: a system or developer message after a session's messages (a session is not kept with them, so it stands
    // after the history on every turn, where no cache read reaches it): its first unit's place in messageUnits, its role.
    let instruction = null as { at: number; role: string } | null;
    if (msgNode.type === 'string' && rules.stringInput) messageUnits.push(this.inline(format, 'messages', bodyText, msgNode));
    else {
      msgNode = expectType(msgNode, 'array', msgAt, msgKey)!;
      const list = msgNode;
      elements(list).forEach((node, i) => {
        const at = childPointer(msgAt, i);
        const ref = handleRef(node, at);
        if (ref) {
          const items = this.inPlace(resolve, format, ref, at, ['messages'], ctx);
          placements.push({ items, build: (texts) => replaceElement(list, i, texts) });
          pushAll(messageUnits, items.map((it) => unitOf(format, 'messages', it)));
          return;
        }
        const instructs = instruction || !sessionNamed ? null : (rules.instructionRole?.(node) ?? null);
        if (instructs) instruction = { at: messageUnits.length, role: instructs };
        const contentKey = rules.contentKey;
        const content = property(node, contentKey);
        const blocks = elements(content);
        const handleBlocks = blocks.map((b, j) => handleRef(b, childPointer(childPointer(at, contentKey), j)));
        if (!handleBlocks.some(Boolean)) {
          messageUnits.push(this.inline(format, 'messages', bodyText, node, Math.max(1, blocks.length)));
          inlineAt.set(messageUnits.at(-1)!, at);
          return;
        }
        // A message mixing the caller's blocks and handle blocks: one unit per block.
        const roleNode = property(node, 'role');
        const role = roleNode ? JSON.stringify(valueOf(roleNode)) : 'null';
        blocks.forEach((b, j) => {
          const ref = handleBlocks[j];
          if (!ref) {
            messageUnits.push(inRole(format, role, this.inline(format, 'messages', bodyText, b)));
            return;
          }
          const blockAt = childPointer(childPointer(at, contentKey), j);
          const r = resolve(ref, blockAt);
          const segs = this.handles.segmentsOf(r.handle, r.version.version);
          const items = segs.map((s) => {
            const text = textOfContentSegment(s, blockAt);
            return { text: rules.textBlock(text), segment: s, blocks: 1 };
          });
          placements.push({ items, build: (texts) => replaceElement(content!, j, texts) });
          pushAll(messageUnits, items.map((it) => inRole(format, role, unitOf(format, 'messages', it))));
        });
      });
    }

    const matchedAt = input.matchHandles ? this.matchInline(input.tenantId, format, toolUnits, systemUnits, messageUnits, inlineAt, resolve) : new Map<PromptSegment, string>();

    // Preserved thinking: a session's thinking blocks sent under another prefix than they were produced under
    // (thinking-prefix.ts) are refused below, before the provider is called, or, with drop_block, dropped by the API.
    // Checked on the units, whose session messages are digested once per batch; a message mixing handle blocks into
    // the caller's is no unit: then the body (cache marks aside, which the digests leave out) is parsed whole.
    let failed: ChangedPrefix[] = [];
    let dropped: DroppedFrom | undefined;
    const recorded = rules.preservedThinking && checksPrefix(model) ? recordedThinking(messageUnits.map((u) => u.segment), input.producerOf ?? (() => null)) : undefined;
    if (recorded?.size) {
      const thinkingNode = property(root, 'thinking');
      const drop = dropsFailedBlocks(thinkingNode && valueOf(thinkingNode));
      const mixed = messageUnits.some((u) => u.part);
      const body = mixed ? (JSON.parse(applyEdits(bodyText, [...edits, ...placements.map((p) => p.build(p.items.map((it) => it.text)))])) as Record<string, unknown>) : undefined;
      failed = body ? changedInBody(model, body, recorded) : changedInUnits(model, unitParts(toolUnits, systemUnits, systemString, messageUnits), recorded);
      if (drop && failed.length) dropped = droppedFrom(failed[0]!, messageUnits, body);
    }

    // ---- segments, breakpoints, body ----
    // A Claude model reads only some of the thinking sent back (thinking.ts): the rest is keyed and counted as not there.
    const notRead = rules.preservedThinking ? readThinkingOnly(messageUnits, model, input.producerOf ?? (() => null), dropped) : [];
    // OpenAI reads the reasoning items of the current turn only, but with reasoning.context all_turns (thinking.ts).
    const reasoning = property(root, 'reasoning');
    if (rules.currentTurnReasoning && !readsEarlierReasoning(model, reasoning && valueOf(reasoning))) readCurrentReasoningOnly(messageUnits);
    // The settings the messages are cached under (Anthropic's tool_choice and thinking): another value is another
    // cached prefix from the first message on (tools and system stay).
    const context = rules.messageSettings ? rules.messageSettings(root) : null;
    if (context) {
      const under = `${format}|${context}`;
      let keys = this.settingsKeys.get(under);
      if (!keys) this.settingsKeys.set(under, (keys = new Lru<string, string>(16_384)));
      for (const u of messageUnits) {
        u.base = u.key;
        let key = keys.get(u.key);
        if (key === undefined) keys.set(u.key, (key = semanticKey(format, [context, u.key])));
        u.key = key;
      }
    }
    const units = [...toolUnits, ...systemUnits, ...messageUnits];
    // What the provider adds once for the tools (Anthropic's tool-use system prompt, OpenAI's end of its functions):
    // the request's, never in a handle's meta.tokens; counted with its first tool (on a tools handle's report when that
    // tool is a handle's), but for what tool_choice any or tool adds, with the first message (as the simulator does).
    const toolChoice = property(root, 'tool_choice');
    const toolPrompt = toolPromptParts(
      (function* () {
        for (const u of toolUnits) yield JSON.parse(u.hashText) as unknown;
      })(),
      toolChoice ? valueOf(toolChoice) : undefined,
      costs,
    );
    const firstMessage = messageUnits.length ? toolUnits.length + systemUnits.length : 0;
    const added = new Map<number, number>([[0, toolPrompt.withTools]]);
    added.set(firstMessage, (added.get(firstMessage) ?? 0) + toolPrompt.withMessages);
    const segments = buildSegments(units, model, added, this.chains);
    let instructionAfterSession: RenderedRequest['instructionAfterSession'] = null;
    if (instruction) {
      // The segment holding that unit: segments tile the units in order.
      instructionAfterSession = { segment: segmentOfUnit(segments.list, toolUnits.length + systemUnits.length + instruction.at), role: instruction.role };
    }
    // Tool units come first: the n-th tool's unit index is its segment's.
    const estimatedTools = unfigured.map((t) => ({ ...t, segment: segmentOfUnit(segments.list, t.segment!) }));
    const thinkingNotRead = notRead.length
      ? { segment: segmentOfUnit(segments.list, toolUnits.length + systemUnits.length + notRead[0]!.unit), models: [...new Set(notRead.map((u) => u.producer))] }
      : null;
    const thinkingDropped = dropped ? { segment: segmentOfUnit(segments.list, toolUnits.length + systemUnits.length + dropped.unit), blocks: failed } : null;
    const marks = rules.breakpoints;
    const autoTtl = marks?.autoTtl?.(root);
    const callerBreakpoints = units.reduce((n, u) => n + u.callerBreakpoints, 0) + (autoTtl ? 1 : 0);
    const breakpoints = marks
      ? marks.place({ root, pointer, model, units, segments: segments.list, lastUnit: segments.lastUnit, callerMarked: segments.callerMarked, callerBreakpoints, autoTtl, cacheTtl: input.cacheTtl })
      : [];

    // A conversation or cache the provider keeps itself, put before this request's prompt.
    const providerHistory = rules.providerHistory?.(root, pointer, [...named].some((id) => id.startsWith('ses_'))) ?? null;
    // A handle the caller placed in its own input is this turn's content, kept in that history from then on; the
    // prefix's are sent again on every turn.
    const afterHistory = !rules.prefixAfterHistory || providerHistory === null ? -1 : segments.lastUnit.findIndex((u) => leadingUnits.has(u));

    const cacheKey = rules.promptCacheKey?.(root, model, segments.list, segments.lastUnit);
    if (cacheKey?.edit) edits.push(cacheKey.edit);
    const promptCacheKey = cacheKey?.key ?? null;
    const cacheTtl = rules.cacheTtl?.(root, model) ?? null;

    for (const p of placements) edits.push(p.build(p.items.map((it) => it.text)));
    // Only inline content before a handle can explain that handle's drift: keep those bytes, not the rest.
    const inlineText = new Map<number, string>();
    const lastHandle = segments.list.findLastIndex((s) => s.source !== 'inline');
    segments.list.forEach((s, i) => {
      if (s.source === 'inline' && i < lastHandle) inlineText.set(i, segments.texts[i]!);
    });
    const matched: MatchedContent[] = [];
    segments.list.forEach((s, i) => {
      const seg = segments.lastUnit[i]!.segment;
      const at = seg ? matchedAt.get(seg) : undefined;
      if (at !== undefined) matched.push({ segment: i, source: s.source, pointer: at });
    });
    const rendered = applyEdits(bodyText, edits);
    // Refused as the last of the render's faults, as it was when the check read the finished body.
    if (!dropped) refuseChanged(model, failed, pointer);
    return { bodyText: rendered, segments: segments.list, breakpoints, promptCacheKey, cacheTtl, inlineText, model, handles: [...named], messageSettings: rules.messageSettings ? (context ?? '{}') : rules.currentTurnReasoning ? reasoningSettings(reasoning && valueOf(reasoning)) : null, providerHistory, prefixAfterHistory: afterHistory < 0 ? null : afterHistory, instructionAfterSession, estimatedTools, thinkingNotRead, thinkingDropped, matched };
  }

  /**
   * matchHandles: the caller's own content that is an artifact version of the tenant, found by the digest of the
   * content a mint would store, taken only when that version rendered in this format is the same prompt, unit for
   * unit (equal semantic keys: what the provider reads, cache marks and a string-or-block spelling aside). The units
   * keep their bytes, tokens and keys (the request recorded is the one sent); their segment becomes the version's.
   * The whole tools list (not Gemini's: its declarations are one unit inline, one each from a handle); each Anthropic
   * system block (or its string) and Gemini system part; OpenAI's leading system messages (a developer message is
   * another role than a system artifact renders; Responses instructions another place).
   */
  private matchInline(
    tenantId: string,
    format: RequestFormat,
    tools: Unit[],
    system: Unit[],
    messages: Unit[],
    inlineAt: Map<Unit, string>,
    resolve: (ref: string, at: string) => ResolvedRef,
  ): Map<PromptSegment, string> {
    const matched = new Map<PromptSegment, string>();
    /** The version that, rendered here, is these units, if the tenant has one (`content`: as a mint would store it). */
    const find = (units: Unit[], section: Section, kind: 'system' | 'tools', content: () => unknown, at: string): { ref: string; seg: PromptSegment } | null => {
      // The units' keys hashed: a long tools list's joined keys would make each of the cache's entries kilobytes.
      const key = `${tenantId}|${format}|${section}|${sha256Hex(units.map((u) => u.key).join(','))}`;
      const known = this.matches.get(key);
      let candidates: ResolvedRef[] | undefined;
      try {
        if (known) candidates = [this.handles.resolve(tenantId, known)];
      } catch (err) {
        if (!(err instanceof DomainError)) throw err; // deleted since: look again
      }
      for (const candidate of candidates ?? this.handles.withContent(tenantId, kind, content())) {
        const seg = this.handles.segmentsOf(candidate.handle, candidate.version.version)[0]!;
        let items: Item[];
        try {
          items = this.itemsOf(format, seg, newRenderContext(), at);
        } catch (err) {
          if (err instanceof DomainError) return null; // a tools version this format cannot send (an Anthropic-defined tool)
          throw err;
        }
        if (items.length !== units.length || items.some((it, i) => itemKey(format, section, it) !== units[i]!.key)) continue;
        this.matches.set(key, candidate.ref);
        return { ref: candidate.ref, seg };
      }
      return null;
    };
    const take = (units: Unit[], section: Section, kind: 'system' | 'tools', content: () => unknown, at: string) => {
      const found = find(units, section, kind, content, at);
      if (!found) return;
      resolve(found.ref, at);
      // A copy per place: the same version matched twice is two segments, as a handle named twice is.
      const placed = { ...found.seg };
      for (const u of units) u.segment = placed;
      matched.set(placed, at);
    };
    const value = (u: Unit): unknown => (inlineAt.has(u) && !u.item && !u.segment ? JSON.parse(u.hashText) : undefined);

    const rules = REQUEST_FORMATS[format];
    if (rules.inline.storedTool && tools.length && tools.every((u) => value(u) !== undefined)) {
      const stored = tools.map((u) => storedTool(format, value(u)));
      if (stored.every((t) => t !== null)) take(tools, 'tools', 'tools', () => stored, inlineAt.get(tools[0]!)!.replace(/\/\d+$/, ''));
    }
    if (rules.systemField)
      for (const u of system) {
        const text = rules.inline.systemText(value(u));
        if (text !== null) take([u], 'system', 'system', () => text, inlineAt.get(u)!);
      }
    else
      for (const u of messages) {
        if (u.item) continue; // the prefix's own, placed first
        const text = rules.inline.systemText(value(u));
        if (text === null) break;
        take([u], 'messages', 'system', () => text, inlineAt.get(u)!);
      }
    return matched;
  }

  /** Items for a handle that stands in place of one element; only the allowed sections may appear there. */
  private inPlace(resolve: (ref: string, at: string) => ResolvedRef, format: RequestFormat, ref: string, at: string, allowed: Section[], ctx: RenderContext): Item[] {
    const r = resolve(ref, at);
    const segs = this.handles.segmentsOf(r.handle, r.version.version);
    const wrong = segs.find((s) => !allowed.includes(s.section));
    if (wrong) {
      // On OpenAI's formats a system prompt is a message: wrapped in one, it keeps its place among the messages.
      const wrap = wrong.section === 'system' && !REQUEST_FORMATS[format].systemField && allowed.includes('messages');
      throw invalid(at, `${ref} contains ${wrong.section} content (${wrong.source}), which cannot stand here; put it in "prefix" instead${wrap ? `, or keep its place in a system message: {"role":"system","content":[{"type":"handle","ref":"${ref}"}]}` : ''}`);
    }
    return segs.flatMap((s) => this.itemsOf(format, s, ctx, at));
  }
}

/** Text that may hold an Anthropic-defined tool's type (DEFINED_TOOL_TYPE, quoted); estimatedTool decides. */
const MAYBE_DEFINED_TOOL = /"type":"[a-z][a-z0-9_]*_\d{8}"/;

/**
 * The message unit and thinking block (by order) of the first block the API drops (`first`: its place in the body).
 * A body message is one unit, but one mixing handle blocks into the caller's, whose blocks are a unit each (`body`:
 * the parsed body, given then): its thinking blocks are not left out of the count.
 */
function droppedFrom(first: ChangedPrefix, units: readonly Unit[], body?: Record<string, unknown>): DroppedFrom {
  let unit = first.message;
  if (body) {
    const messages = body.messages as Array<{ content: unknown }>;
    unit = 0;
    for (let m = 0; m < first.message; m++) unit += units[unit]!.part && Array.isArray(messages[m]!.content) ? (messages[m]!.content as unknown[]).length : 1;
    if (units[unit]!.part) return { unit: unit + first.block, thinking: 0 };
  }
  const content = (JSON.parse(units[unit]!.hashText) as { content: unknown }).content;
  return { unit, thinking: Array.isArray(content) ? content.slice(0, first.block).filter(isThinkingBlock).length : 0 };
}

function textOfContentSegment(s: PromptSegment, at: string): string {
  if (s.section === 'system') return s.text;
  if (s.section === 'messages' && s.messages.length === 1) {
    const m = s.messages[0]!;
    const only = typeof m.content === 'string' ? m.content : m.content.length === 1 && m.content[0]!.type === 'text' ? m.content[0]!.text : null;
    if (m.role === 'user' && only !== null) return only;
  }
  throw invalid(at, `${s.source} is not text (a document or system artifact) and cannot stand inside a message's content`);
}

function handleRef(node: JsonNode, at: string): string | null {
  if (node.type !== 'object' || property(node, 'type')?.value !== HANDLE_TYPE) return null;
  const ref = property(node, 'ref');
  // An empty ref is refused here: its callers take a falsy ref for "not a handle block".
  if (!ref || ref.type !== 'string' || ref.value === '') throw invalid(childPointer(at, 'ref'), 'a handle block needs "ref": "<handle ref>"');
  const extra = (node.children ?? []).map((p) => p.children?.[0]?.value).filter((k) => k !== 'type' && k !== 'ref');
  if (extra.length) throw invalid(childPointer(at, String(extra[0])), 'a handle block takes only "type" and "ref"');
  return ref.value as string;
}




/**
 * A tool name given twice — by a handle and the caller's own tools, by two handles, or by one handle placed twice —
 * is refused by every provider, so it is refused here, naming the later one. Within one placement of a handle the
 * names were checked when it was minted; a request with a single placement is not parsed again.
 */
function refuseDuplicateTools(format: RequestFormat, units: Unit[], from: Array<{ pointer: string; source: string; appearance?: number }>): void {
  const placementOf = (f: { pointer: string; source: string; appearance?: number }) => `${f.pointer} ${f.source} ${f.appearance ?? 1}`;
  const placements = new Set(from.map(placementOf));
  if (placements.size < 2) return;
  const seen = new Map<string, { placement: string; source: string }>();
  units.forEach((unit, i) => {
    const here = { placement: placementOf(from[i]!), source: from[i]!.source };
    for (const name of toolNames(format, unit.item ? unit.item.text : unit.hashText)) {
      const first = seen.get(name);
      if (first !== undefined && first.placement !== here.placement)
        throw invalid(
          from[i]!.pointer,
          `the tool "${name}" is also defined by ${first.source === 'inline' ? "the request's own tools" : first.source}${first.source === here.source ? ' (the same tools placed twice: a bundle or a session based on one sends them already; name it alone)' : ''}: providers refuse a name given twice`,
        );
      seen.set(name, here);
    }
  });
}

/** The function names a tools element declares, in the format's shape. */
function toolNames(format: RequestFormat, text: string): string[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return [];
  }
  if (typeof v !== 'object' || v === null) return [];
  return REQUEST_FORMATS[format].toolNames(v as Json).filter((n): n is string => typeof n === 'string');
}
