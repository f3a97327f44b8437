import type { Edit, JsonNode } from '../json-text';
import type { ModelEntry } from '../../catalog/types';
import type { Json } from '../../records';
import type { Breakpoint, RenderedSegment } from '../request';
import type { PromptSegment, Section } from '../prompt';

export interface RenderContext {
  /** tool_use id → tool name, for providers that answer tool results by name (Gemini). */
  toolNames: Map<string, string>;
}

/**
 * How one format writes a prompt: each segment becomes a list of items (JSON texts); an expansion wraps the items of
 * every section in the format's request shape. Changing any byte here resets users' caches: bump RENDERER_VERSION
 * (index.ts) and the golden digests together.
 */
export interface Serialisation {
  /** Items of one segment (segmentItems has refused what the format cannot take, and learnt its tool names). */
  items(seg: PromptSegment, ctx: RenderContext): string[];
  /** Section items in the format's request shape; empty sections are left out. */
  wrap(tools: string[], system: string[], messages: string[]): string;
  /** Whether the format takes Anthropic-defined tools (another refuses a segment holding one). */
  definedTools: boolean;
}

/**
 * A provider request body's rules, beside its serialisation: where the body keeps each section, how handles' items
 * are placed there (request.ts keeps the flow every format shares).
 */
export interface RequestFormatRules extends Serialisation {
  /** The body field holding the messages (Responses: `input`, Gemini: `contents`). */
  messagesKey: string;
  /** A message's field holding its blocks (Gemini: `parts`). */
  contentKey: string;
  /** A text block as the format writes one in a message's content (a text handle placed there). */
  textBlock(text: string): string;
  /** The tools list's entries for a tools handle's items (Gemini: one `functionDeclarations` entry holding them). */
  toolEntries(texts: string[]): string[];
  /** Whether a segment's rendered items may be kept and reused across requests. */
  reusesItems(seg: PromptSegment): boolean;
  /** Where the system prompt is: a field of its own, or (null) system messages at the head of the messages (OpenAI). */
  systemField: SystemField | null;
  /** A field whose string the provider reads as system text besides (Responses `instructions`), if any. */
  instructionsKey?: string;
  /** Whether the messages field may be a plain string, one user message (Responses `input`). */
  stringInput?: boolean;
  /** A message that is a system prompt among the messages (OpenAI's system or developer message): its role, else null. */
  instructionRole?(node: JsonNode): string | null;
  /** The function names an element of the tools list declares (as parsed; not yet checked to be strings). */
  toolNames(tool: Json): unknown[];
  /** The caller's own content an artifact can stand for (render's match_handles, the CLI's suggest and import). */
  inline: InlineRules;
  /** How the provider's cache breakpoints are set (null: it takes none). */
  breakpoints: BreakpointRules | null;
  /**
   * A conversation or cache the provider keeps itself and reads before this request's prompt (Responses'
   * previous_response_id or conversation, Gemini's cachedContent): the field naming it, else null. One a session
   * would send again is refused (`session`: the request names a session), Anthropic's thread too, which is not recorded.
   */
  providerHistory?(root: JsonNode, pointer: string, session: boolean): string | null;
  /** Whether that history stands between the prefix and the caller's input (RenderedRequest.prefixAfterHistory). */
  prefixAfterHistory?: boolean;
  /** The request's cache routing key (OpenAI's prompt_cache_key): the caller's, or one the service adds (`edit`). */
  promptCacheKey?(root: JsonNode, model: ModelEntry, segments: RenderedSegment[], lastUnit: MarkableUnit[]): { key: string | null; edit?: Edit };
  /** The TTL the request asks its writes to live for, when the model has it (OpenAI's prompt_cache_retention), else null. */
  cacheTtl?(root: JsonNode, model: ModelEntry): string | null;
  /**
   * The settings beyond the messages that the provider caches the messages under (Anthropic's tool_choice and
   * thinking), as canonical JSON (null: none set); absent where the messages' cache depends on none.
   */
  messageSettings?(root: JsonNode): string | null;
  /**
   * Whether the provider checks the thinking blocks sent back (Anthropic's preserved thinking: thinking-prefix.ts) and
   * reads only some of them (thinking-units.ts).
   */
  preservedThinking: boolean;
  /**
   * Whether the input holds reasoning items of which the model reads only the current turn's (OpenAI Responses:
   * thinking.ts); the others are keyed and counted as not there (thinking-units.ts).
   */
  currentTurnReasoning?: boolean;
}

export interface BreakpointRules {
  /** The caller's automatic mark (Anthropic's top-level cache_control): its TTL, else undefined. */
  autoTtl?(root: JsonNode): string | undefined;
  /**
   * Marks the items at the boundaries chosen (their texts change) and lists every breakpoint in segment order: the
   * service's, the caller's, the provider's own; refuses more marks than the model takes where the provider does.
   */
  place(req: MarkRequest): Breakpoint[];
}

/** A unit of the prompt as breakpoints see it (units.ts's Unit). */
export interface MarkableUnit {
  section: Section;
  /** The unit's identity text (a block inside a message: the message's role, `:`, the block). */
  hashText: string;
  /** The item of ours the unit renders, whose text takes a mark; null: the caller's content, which is not marked. */
  item: { text: string } | null;
  /** The longest TTL among the caller's marks in the unit, and whether any is 5m. */
  callerTtl?: string;
  caller5m?: boolean;
}

export interface MarkRequest {
  root: JsonNode;
  /** The body's pointer, for a refusal. */
  pointer: string;
  model: ModelEntry;
  units: MarkableUnit[];
  segments: RenderedSegment[];
  /** Each segment's last unit. */
  lastUnit: MarkableUnit[];
  /** The segments holding a mark of the caller's, with its TTL. */
  callerMarked: Map<number, string>;
  /** The marks the caller set, the automatic one included. */
  callerBreakpoints: number;
  autoTtl: string | undefined;
  /** The TTL the service is asked to use (the policy's). */
  cacheTtl: string | undefined;
}

/** Where an artifact's content appears in a request body of the format, as the content a mint of it would store. */
export interface InlineRules {
  /**
   * A caller's tool (an object, not a handle) as a tools artifact stores it (its definition; the cache mark apart), or
   * null when it is not one; null for the format: its tools list is not matched (Gemini's declarations are one unit).
   */
  storedTool: ((tool: Json) => unknown) | null;
  /** The text of a caller's system unit a system artifact renders as (a block or its string, a part, a system message), else null. */
  systemText(v: unknown): string | null;
  /** The body's system units a system artifact can stand for, in prompt order. */
  systemUnits(body: Json): InlineSystem[];
}

export interface InlineSystem {
  /** JSON pointer in the body. */
  pointer: string;
  value: unknown;
  text: string;
  /** The section the unit is in (an OpenAI system message is among the messages). */
  section: Section;
}

/** A system prompt kept in a body field of its own (Anthropic's `system`, Gemini's `systemInstruction`). */
export interface SystemField {
  /** The field's name in this body. */
  key(root: JsonNode): string;
  /** The node holding the blocks inside the field's node, and its pointer; a wrong shape is refused. */
  blocks(field: JsonNode | undefined, at: string, key: string): { node: JsonNode | undefined; at: string };
  /** The edit placing a prefix's system items before the caller's (`blocks`: what blocks() found). */
  prepend(texts: string[], root: JsonNode, key: string, field: JsonNode | undefined, blocks: JsonNode | undefined, bodyText: string): Edit;
}
