// The built-in provider simulator: an HTTP server that answers like Anthropic
// (Messages), OpenAI (Chat Completions, Responses) and Gemini (generateContent,
// streamGenerateContent) with respect to prompt
// caching, with the project's CacheSimulator behind it. One cache per
// (provider, API key, model), as a provider scopes its cache to an account.
//
// Test hooks (request headers):
//   x-simulator-status: <4xx|5xx>   answer that status in the provider's error shape; the cache is untouched
//   x-simulator-abort-after: <n>    on a stream, write n events, then drop the connection before the final usage
//   x-simulator-prompt-tokens-details: off   a self-hosted (vLLM entry) model answers as a vLLM server started without
//                                   --enable-prompt-tokens-details: "prompt_tokens_details": null
//   x-simulator-overflow-rate: <n>  an OpenAI model's overflow threshold for this call (starts a minute of one prefix
//                                   and prompt_cache_key one machine serves; `off`: none), in place of `overflowRate`

import { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, type HttpBindings, type ServerType } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import type { ModelCatalog } from '../domain/catalog/catalog';
import type { CacheRules, ModelEntry } from '../domain/catalog/types';
import { systemClock, type Clock } from '../domain/clock';
import { anthropicMarkProblem, blocksFromRequest, type RequestFormat, type ThinkingFilter } from '../domain/simulator/blocks';
import { currentTurnStart, readsEarlierReasoning, readsProducer, readsThinking } from '../domain/thinking';
import { toolCosts } from '../domain/prompt-tokens';
import { CacheSimulator, SimulationError, type SimBlock } from '../domain/simulator/cache';
import { Lru } from '../domain/lru';
import { machineOf, OVERFLOW_RATE, routeKey, StartWindow } from '../domain/simulator/overflow';
import { countTokens } from '../domain/tokens';
import { MAX_JSON_DEPTH, nestedTooDeep } from '../domain/validation';
import { anthropicError, anthropicMessage, anthropicModelList, anthropicModels, anthropicStreamFrames } from './anthropic';
import { openaiError, openaiModelList, type OpenAIErrorOptions } from './openai';
import { geminiError, geminiModel, geminiModelList, geminiResponse, geminiStreamFrames, lastGeminiUserText } from './gemini';
import { chatCompletion, chatStreamFrames } from './openai-chat';
import { newResponseParts, responseBody, responsesStreamFrames } from './openai-responses';
import { sleep, sseResponse } from './sse';
import { anthropicPrefixes, anthropicSigner, anthropicThinkingOn, boundToAnotherConversation, anthropicThinkingProblem, geminiSignatureProblem, geminiSignsCalls, openaiReasoningProblem, openaiReasons, openaiReturnsReasoning } from './reasoning';
import { chooseToolCall, structuredReply } from './tools';
import { cutToTokens, lastUserText, providerId, replyText, splitDeltas, splitJson, type ProviderApi, type Reply, type Turn } from './turn';
import { isRecord } from '../domain/records';

export interface SimulatorOptions {
  catalog: ModelCatalog;
  clock?: Clock;
  /** Simulated time to first byte: the cache entry a request writes becomes readable this long after it starts. Also really waited. */
  firstByteDelayMs?: number;
  /** Real delay between streamed events. */
  chunkDelayMs?: number;
  /**
   * OpenAI: past this many starts in a minute of one prefix and prompt_cache_key (per API key and model), calls are
   * routed round-robin over ceil(rate / this) machines, each with its own cache (overflow.ts). Default 15; null: never.
   */
  overflowRate?: number | null;
}

type Json = Record<string, unknown>;

/** The beta under which Anthropic reports the thinking blocks it removed (`input_transformations`). */
const BINDING_BETA = 'thinking-binding-controls-2026-08-01';
/** One entry of Anthropic's `input_transformations` (the SDK's BetaThinkingDroppedInputTransformation). */
interface InputTransformation {
  type: 'thinking_dropped';
  path: string;
  reason: 'model_binding_mismatch' | 'prefix_binding_mismatch';
}

/** One endpoint family: which provider's errors and keys, which request format. */
interface Api {
  provider: ProviderApi;
  format: RequestFormat;
  /** The prompt field a request must carry. */
  promptField: 'messages' | 'input' | 'contents';
}

const ANTHROPIC: Api = { provider: 'anthropic', format: 'anthropic', promptField: 'messages' };
const OPENAI_CHAT: Api = { provider: 'openai', format: 'openai-chat', promptField: 'messages' };
const OPENAI_RESPONSES: Api = { provider: 'openai', format: 'openai-responses', promptField: 'input' };
const GEMINI: Api = { provider: 'gemini', format: 'gemini', promptField: 'contents' };

/** Gemini's `models/{model}:{method}` path segment. */
function geminiCall(segment: string): { model: string; method: string } {
  const colon = segment.lastIndexOf(':');
  return colon === -1 ? { model: segment, method: '' } : { model: decodeURIComponent(segment.slice(0, colon)), method: segment.slice(colon + 1) };
}

/** What the kept responses may weigh together (JSON characters; a chain's history counted in each response of it). */
const STORED_RESPONSES_BUDGET = 64 * 2 ** 20;

interface StoredResponse {
  /** The conversation through this response: its effective input items, then its output items. */
  items: unknown[];
  weight: number;
}

class Failure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly openai: OpenAIErrorOptions = {},
  ) {
    super(message);
  }
}

interface Scope {
  sim: CacheSimulator;
  lastStartedAt: number;
  /** Its model's longest TTL: idle longer, every entry it holds has expired, and a fresh cache answers the same. */
  idleMs: number;
}

/** How often (by the clock) the caches idle past their longest TTL are dropped. */
const SWEEP_EVERY_MS = 60_000;

/** Drops the caches idle past their longest TTL at `now` (an overflow machine's, a key or model no longer called). */
function sweepIdle(scopes: Map<string, Scope>, now: number): void {
  for (const [key, scope] of scopes) if (now - scope.lastStartedAt > scope.idleMs) scopes.delete(key);
}

/** The simulator's app; `caches()`: how many caches (per provider, API key, model, and overflow machine) it holds. */
export type SimulatorApp = Hono & { caches(): number };

export function createSimulatorApp(opts: SimulatorOptions): SimulatorApp {
  const clock = opts.clock ?? systemClock;
  const firstByteDelayMs = opts.firstByteDelayMs ?? 0;
  const chunkDelayMs = opts.chunkDelayMs ?? 0;
  const overflowRate = opts.overflowRate === undefined ? OVERFLOW_RATE : opts.overflowRate;
  // One cache per provider, API key, model (and OpenAI overflow machine), dropped once idle past its longest TTL.
  const scopes = new Map<string, Scope>();
  let nextSweep = Number.NEGATIVE_INFINITY;
  // OpenAI's routes (API key, model, prompt_cache_key, leading prefix): their starts in the last minute, and calls sent
  // (the 10,000 latest routes: a long run of distinct prompts would keep a count of each forever).
  const routeStarts = new StartWindow();
  // Responses kept for `previous_response_id` (those not sent with `store: false`), per API key: each holds the
  // conversation through it (its effective input, then its output), weighed by its JSON size; the least used go first.
  const stored = new Lru<string, StoredResponse>(STORED_RESPONSES_BUDGET, (r) => r.weight);
  const storedKey = (apiKey: string, id: string) => JSON.stringify([apiKey, id]);
  // A stored response's function call (`fc_…`, per API key) → the reasoning item before it, which OpenAI requires
  // back with it (reasoning.ts).
  const reasoningOfCall = new Lru<string, string>(100_000);
  // A stored response's output items by their id (per API key), for an `item_reference` input to stand for: what the
  // Vercel AI SDK sends for an earlier reply while `store` is not false.
  const storedItems = new Lru<string, unknown>(STORED_RESPONSES_BUDGET, (item) => JSON.stringify(item).length);
  let replies = 0;

  /**
   * Anthropic: the thinking blocks the model reads (thinking.ts) — the current turn's, or every turn's, by the model; of
   * those another model produced (its signature says which), only those the model check lets it read. On a model with
   * preserved thinking, the prefix check too: a block whose system, tools or earlier messages changed since it was
   * produced is refused with Anthropic's 400, or, with `thinking.block_binding.prefix_mismatch_behavior: "drop_block"`,
   * dropped with every later thinking block. Dropped blocks are not billed ("Removed blocks contribute nothing to
   * `usage.input_tokens`"); `removed` lists them as the response's `input_transformations` does.
   */
  function anthropicThinking(format: RequestFormat, body: Json, entry: ModelEntry): { filter?: ThinkingFilter; problem: string | null; removed: InputTransformation[] } {
    const removed: InputTransformation[] = [];
    if (format !== 'anthropic' || !entry.thinking) return { problem: null, removed };
    const messages = Array.isArray(body.messages) ? body.messages : [];
    const turnStart = currentTurnStart(messages);
    const producer = (b: Json) => {
      const by = anthropicSigner(b).bound?.model;
      if (by === undefined) return null;
      // A name the catalog does not know: not known, as the render takes it (requests.ts producerOf).
      const found = opts.catalog.lookup(by, 'anthropic');
      return found.fallback ? null : found.entry.id;
    };
    const binding = isRecord(body.thinking) && isRecord(body.thinking.block_binding) ? body.thinking.block_binding : {};
    const prefixes = anthropicPrefixes(body);
    const dropped = new Set<unknown>();
    let failed = false;
    for (const [i, m] of messages.entries()) {
      if (!isRecord(m) || m.role !== 'assistant' || !Array.isArray(m.content)) continue;
      for (const [j, b] of m.content.entries()) {
        if (!isRecord(b) || (b.type !== 'thinking' && b.type !== 'redacted_thinking')) continue;
        const path = `messages.${i}.content.${j}`;
        // The model check first (its reason takes precedence): a block of a model this one does not read.
        if (!readsProducer(entry, producer(b))) {
          removed.push({ type: 'thinking_dropped', path, reason: 'model_binding_mismatch' });
          continue;
        }
        if (entry.thinking.readsFrom === undefined) continue;
        const bound = anthropicSigner(b).bound;
        // A block of a model without the prefix check names its model alone (prefix '').
        if (!failed && (bound === null || bound.prefix === '' || bound.prefix === prefixes(i, j))) continue;
        if (binding.prefix_mismatch_behavior !== 'drop_block') return { problem: boundToAnotherConversation(i, j), removed: [] };
        failed = true;
        dropped.add(b);
        removed.push({ type: 'thinking_dropped', path, reason: 'prefix_binding_mismatch' });
      }
    }
    return { problem: null, removed, filter: (message, block) => !dropped.has(block) && readsThinking(entry, message, turnStart, producer(block)) };
  }

  /** Runs one prompt through the cache of its scope and builds the reply. */
  /** `betas`: the request's anthropic-beta header (with thinking-binding-controls, the response lists what was removed). */
  function simulate(api: Api, apiKey: string, body: Json, model: string, entry: ModelEntry, betas = '', threshold = overflowRate): Turn {
    const count = (text: string) => countTokens(text, entry.tokenizer);
    // Refused (a 400) before the cache is touched.
    const choices = api.format === 'openai-chat' ? choiceCount(body) : 1;
    const limit = outputLimit(api, body);
    const thinkingRead = anthropicThinking(api.format, body, entry);
    const { blocks, totalTokens, lastInput, marks } = blocksFromRequest(api.format, body, count, toolCosts(api.format, entry.tokenizer, entry), thinkingRead.filter, readsEarlierReasoning(entry, body.reasoning));
    if (api.format === 'anthropic') {
      const markProblem = anthropicMarkProblem(body);
      if (markProblem !== null) throw new Failure(400, `${markProblem.path.join('.')}: ${markProblem.message}`);
      checkAnthropicBreakpoints(marks ?? [], entry.cache.maxBreakpoints ?? 4);
    }
    if (api.provider === 'openai') {
      checkRetention(body, entry.cache);
      checkReasoningContext(body, entry);
    }
    // The reasoning state a tool loop must send back (reasoning.ts): refused before the cache is touched.
    const reasoningProblem =
      api.format === 'anthropic'
        ? (anthropicThinkingProblem(body) ?? thinkingRead.problem)
        : api.format === 'gemini'
          ? geminiSignatureProblem(model, body)
          : api.format === 'openai-responses'
            ? openaiReasoningProblem(inputItems(body.input), (id) => reasoningOfCall.get(storedKey(apiKey, id)))
            : null;
    if (reasoningProblem !== null) throw new Failure(400, reasoningProblem, api.format === 'openai-responses' ? { param: 'input' } : {});
    // Chat Completions: a reasoning model reasons on every call, its reasoning never shown, only counted in
    // completion_tokens_details.reasoning_tokens (and billed inside completion_tokens).
    const thinkingOn =
      api.format === 'anthropic'
        ? anthropicThinkingOn(body)
        : api.format === 'openai-responses'
          ? openaiReturnsReasoning(model, body)
          : api.format === 'openai-chat' && openaiReasons(model);
    if (entry.cache.implicitBreakpoint) addImplicitBreakpoint(blocks[lastInput], entry.cache, body);
    // vLLM hashes the prompt as the model reads it, the chat template's reply header included: a prompt sent again is
    // cached whole, and read but for its last token (readCap).
    const last = blocks.at(-1);
    if (entry.cache.lastTokenComputed && last && totalTokens > last.endToken) blocks.push({ key: `${last.key}\nreply`, endToken: totalTokens });

    // OpenAI past ~15 calls a minute of one prefix and prompt_cache_key: some go to other machines, each its own cache.
    let overflow: [string, number] | [] = [];
    if (entry.provider === 'openai' && api.provider === 'openai') {
      const route = JSON.stringify([apiKey, model, routeKey(typeof body.prompt_cache_key === 'string' ? body.prompt_cache_key : null, blocks)]);
      const { starts, sent } = routeStarts.record(route, clock.now());
      const machine = machineOf(starts, sent, threshold);
      if (machine > 0) overflow = [route, machine];
    }
    const scopeKey = JSON.stringify([api.provider, apiKey, model, ...overflow]);
    if (clock.now() >= nextSweep) {
      sweepIdle(scopes, clock.now());
      nextSweep = clock.now() + SWEEP_EVERY_MS;
    }
    let scope = scopes.get(scopeKey);
    if (!scope) {
      scope = { sim: new CacheSimulator(entry.cache), lastStartedAt: Number.NEGATIVE_INFINITY, idleMs: Math.max(0, ...entry.cache.ttls.map((t) => t.seconds)) * 1000 };
      scopes.set(scopeKey, scope);
    }
    // The simulator rejects out-of-order starts; a clock that steps back is treated as standing still.
    const startedAt = Math.max(clock.now(), scope.lastStartedAt);
    scope.lastStartedAt = startedAt;
    const n = ++replies;
    const outcome =
      entry.cache.supported === false
        ? null
        : scope.sim.apply({ id: `sim_${n}`, startedAt, firstByteAt: startedAt + firstByteDelayMs, blocks, ttl: retentionOf(api, body, entry), promptTokens: totalTokens });

    // Chat `n`: several choices of one prompt, each its own answer (a tool call gets its own id); counted together.
    const answers: Reply[] = [];
    let outputTokens = 0;
    let reasoningTokens = 0;
    for (let i = 0; i < choices; i++) {
      const call = chooseToolCall(api.format, body);
      const structured = call ? null : structuredReply(api.format, body);
      const question = api.format === 'gemini' ? lastGeminiUserText(body.contents) : lastUserText(body[api.promptField]);
      let text = call ? '' : (structured ?? replyText(i === 0 ? n : `${n}.${i}`, question));
      const thinking = thinkingOn ? `Simulated thinking #${n}: ${call ? `call ${call.name}` : 'answer in text'}.` : null;
      // A text reply longer than the output limit stops there, as the model would: the limit's tokens are billed, and
      // the reply says why it stopped. (A tool call or a structured reply is kept whole: cut, it would not parse.)
      const truncated = !call && structured === null && limit !== null && count(text) > limit;
      if (truncated) text = cutToTokens(text, limit, count);
      answers.push({
        text,
        chunks: call ? [] : text === '' ? [] : splitDeltas(text),
        toolCall: call && { id: providerId(api.format === 'anthropic' ? 'toolu_' : 'call_'), ...call, argumentChunks: splitJson(call.arguments) },
        truncated,
        thinking,
        signed: api.format === 'gemini' && geminiSignsCalls(model),
      });
      // Thinking is billed as output (its full text here: the simulator does not summarise).
      outputTokens += (truncated ? limit : Math.max(1, count(call ? call.name + call.arguments : text))) + (thinking === null ? 0 : count(thinking));
      if (thinking !== null) reasoningTokens += count(thinking);
    }
    const [first, ...more] = answers as [Reply, ...Reply[]];
    return {
      model,
      ...first,
      more,
      // A Claude thinking model's signature names it (the model check reads it on every model); one with preserved
      // thinking also ties its thinking to the conversation before it.
      thinkingBinding:
        api.format !== 'anthropic' || !entry.thinking
          ? null
          : { model, prefix: entry.thinking.readsFrom ? anthropicPrefixes(body)(Array.isArray(body.messages) ? body.messages.length : 0, 0) : '' },
      // Anthropic reports it with the beta, on every response of a thinking model ([] when nothing was removed).
      inputTransformations: api.format === 'anthropic' && entry.thinking && betas.split(',').some((b) => b.trim() === BINDING_BETA) ? thinkingRead.removed : null,
      createdAt: startedAt,
      usage: {
        promptTokens: totalTokens,
        readTokens: outcome?.readTokens ?? 0,
        writeTokens: outcome?.writeTokens ?? 0,
        writeByTtl: outcome?.writeByTtl ?? {},
        outputTokens,
        reasoningTokens,
        writesBilled: entry.cache.writesBilled,
      },
    };
  }

  /** The stored item an `item_reference` names; one not kept for this key (unknown, or sent with `store: false`) is OpenAI's 404. */
  function referencedItem(apiKey: string, id: unknown): unknown {
    const item = typeof id === 'string' ? storedItems.get(storedKey(apiKey, id)) : undefined;
    if (item === undefined)
      throw new Failure(404, `Item with id '${String(id)}' not found. Items are not persisted when \`store\` is set to false. Try again with \`store\` set to true, or remove this item from your input.`, { param: 'input' });
    return item;
  }

  /** `gemini`: the model and whether to stream, from the URL (Gemini's bodies carry neither). */
  async function generate(c: Context, api: Api, gemini?: { model: string; stream: boolean }): Promise<Response> {
    const apiKey = requireKey(c, api.provider);
    injectedFault(c);
    const body = await readBody(c, api);
    // Required for a message (not for count_tokens, which reads the body the same way).
    if (api.provider === 'anthropic' && body.max_tokens === undefined) throw new Failure(400, 'max_tokens: Field required');
    const model = gemini ? gemini.model : (body.model as string);
    const { entry } = opts.catalog.lookup(model, api.provider);
    // Responses: `previous_response_id` puts the conversation through that response (its input and output, not its
    // instructions) before this call's input; the model reads, the cache serves and the usage counts all of it.
    let prompt = body;
    if (api.format === 'openai-responses' && body.previous_response_id !== undefined && body.previous_response_id !== null) {
      const previous = body.previous_response_id;
      const history = typeof previous === 'string' ? stored.get(storedKey(apiKey, previous)) : undefined;
      if (!history)
        throw new Failure(400, `Previous response with id '${String(previous)}' not found.`, { param: 'previous_response_id', code: 'previous_response_not_found' });
      prompt = { ...body, input: [...history.items, ...inputItems(body.input)] };
    }
    // An `item_reference` is the stored item it names: the model reads, the cache serves and the usage counts that item.
    if (api.format === 'openai-responses' && inputItems(prompt.input).some(isItemReference))
      prompt = { ...prompt, input: inputItems(prompt.input).map((item) => (isItemReference(item) ? referencedItem(apiKey, item.id) : item)) };
    const turn = simulate(api, apiKey, prompt, model, entry, c.req.header('anthropic-beta'), overflowOf(c, overflowRate));

    const requestId = providerId('req_');
    const headers: Record<string, string> =
      api.provider === 'anthropic' ? { 'request-id': requestId } : { 'x-request-id': requestId };
    const stream = gemini ? gemini.stream : body.stream === true;
    let payload: unknown;
    let frames: string[];
    switch (api.format) {
      case 'anthropic': {
        const id = providerId('msg_');
        payload = anthropicMessage(turn, id);
        frames = anthropicStreamFrames(turn, id);
        break;
      }
      case 'openai-chat': {
        const id = providerId('chatcmpl-');
        const options = body.stream_options;
        const includeUsage = isRecord(options) && options.include_usage === true;
        const shape = entry.provider !== 'vllm' ? 'openai' : c.req.header('x-simulator-prompt-tokens-details') === 'off' ? 'vllm-without-details' : 'vllm';
        payload = chatCompletion(turn, id, shape);
        frames = chatStreamFrames(turn, id, includeUsage, shape);
        break;
      }
      case 'openai-responses': {
        const parts = newResponseParts(body);
        const response = responseBody(turn, parts);
        payload = response;
        frames = responsesStreamFrames(turn, parts);
        if (body.store !== false) {
          const items = [...inputItems(prompt.input), ...response.output];
          stored.set(storedKey(apiKey, parts.id), { items, weight: JSON.stringify(items).length });
          if (turn.thinking !== null && turn.toolCall) reasoningOfCall.set(storedKey(apiKey, parts.functionCallId), parts.reasoningId);
          for (const item of response.output) if (isRecord(item) && typeof item.id === 'string') storedItems.set(storedKey(apiKey, item.id), item);
        }
        break;
      }
      case 'gemini': {
        const id = providerId('');
        payload = geminiResponse(turn, id);
        frames = geminiStreamFrames(turn, id);
        break;
      }
    }
    if (stream) {
      return sseResponse(frames, { firstByteDelayMs, chunkDelayMs, abortAfter: abortAfter(c), drop: dropper(c) }, headers);
    }
    await sleep(firstByteDelayMs);
    return json(200, payload, headers);
  }

  const app = new Hono();

  app.post('/v1/messages', (c) => generate(c, ANTHROPIC));
  app.post('/v1/chat/completions', (c) => generate(c, OPENAI_CHAT));
  app.post('/v1/responses', (c) => generate(c, OPENAI_RESPONSES));

  app.post('/v1/messages/count_tokens', async (c) => {
    requireKey(c, 'anthropic');
    injectedFault(c);
    const body = await readBody(c, ANTHROPIC);
    const { entry } = opts.catalog.lookup(body.model as string, 'anthropic');
    const { totalTokens } = blocksFromRequest('anthropic', body, (text) => countTokens(text, entry.tokenizer), toolCosts('anthropic', entry.tokenizer, entry), anthropicThinking('anthropic', body, entry).filter);
    return json(200, { input_tokens: totalTokens });
  });

  // Gemini: POST /v1beta/models/{model}:generateContent, :streamGenerateContent (SSE with ?alt=sse, else the chunks
  // as one JSON array, as Gemini answers), :countTokens; the model is in the path, not the body.
  const geminiCallRoute = async (c: Context) => {
    const { model, method } = geminiCall(c.req.param('call') ?? '');
    if (method === 'generateContent') return generate(c, GEMINI, { model, stream: false });
    if (method === 'streamGenerateContent') {
      if (c.req.query('alt') === 'sse') return generate(c, GEMINI, { model, stream: true });
      const res = await generate(c, GEMINI, { model, stream: false });
      return json(200, [await res.json()], Object.fromEntries([...res.headers].filter(([k]) => k !== 'content-type' && k !== 'content-length')));
    }
    if (method !== 'countTokens') throw new Failure(404, `Method ${method || '(none)'} is not simulated`);
    requireKey(c, 'gemini');
    injectedFault(c);
    const raw = await readBody(c, { ...GEMINI, promptField: 'contents' }, true);
    // A whole request to count is sent as generateContentRequest; a bare one as contents.
    const body = isRecord(raw.generateContentRequest) ? raw.generateContentRequest : raw;
    const { entry } = opts.catalog.lookup(model, 'gemini');
    const { totalTokens } = blocksFromRequest('gemini', body, (text) => countTokens(text, entry.tokenizer));
    return json(200, { totalTokens, promptTokensDetails: [{ modality: 'TEXT', tokenCount: totalTokens }] });
  };
  const geminiModels = (c: Context) => {
    requireKey(c, 'gemini');
    injectedFault(c);
    return json(200, geminiModelList(opts.catalog.entries()));
  };
  const geminiModelById = (c: Context) => {
    requireKey(c, 'gemini');
    injectedFault(c);
    const entry = opts.catalog.entries().find((e) => e.provider === 'gemini' && e.id === c.req.param('id'));
    if (!entry) throw new Failure(404, `models/${c.req.param('id')} is not found`);
    return json(200, geminiModel(entry));
  };
  // Under v1beta (the REST docs) and v1 (@google/genai's default since 3.0); GET /v1/models is Gemini's by its key header.
  app.post('/v1beta/models/:call', geminiCallRoute);
  app.post('/v1/models/:call', geminiCallRoute);
  app.get('/v1beta/models', geminiModels);
  app.get('/v1beta/models/:id', geminiModelById);

  app.get('/v1/models', (c) => {
    const provider = providerOf(c);
    if (provider === 'gemini') return geminiModels(c);
    requireKey(c, provider);
    injectedFault(c);
    const entries = opts.catalog.entries();
    // OpenAI's list is every model in one answer, whatever the query; Anthropic's is paged.
    if (provider === 'openai') return json(200, openaiModelList(entries));
    const page = anthropicModelList(entries, { limit: c.req.query('limit'), after_id: c.req.query('after_id'), before_id: c.req.query('before_id') });
    if (typeof page === 'string') throw new Failure(400, page);
    return json(200, page);
  });

  // One model by id (the SDKs' models.retrieve): the list's entry, or the provider's 404.
  app.get('/v1/models/:id', (c) => {
    const provider = providerOf(c);
    if (provider === 'gemini') return geminiModelById(c);
    requireKey(c, provider);
    injectedFault(c);
    const id = c.req.param('id');
    const list: Array<{ id: string }> = provider === 'anthropic' ? anthropicModels(opts.catalog.entries()) : openaiModelList(opts.catalog.entries()).data;
    const model = list.find((m) => m.id === id);
    if (!model) throw new Failure(404, provider === 'anthropic' ? `model: ${id}` : `The model '${id}' does not exist`, { type: 'invalid_request_error', code: 'model_not_found' });
    return json(200, model);
  });

  app.notFound((c) => errorResponse(providerOf(c), new Failure(404, `${c.req.method} ${c.req.path} is not simulated`)));

  app.onError((err, c) => {
    const provider = providerOf(c);
    if (err instanceof Failure) return errorResponse(provider, err);
    if (err instanceof SimulationError && err.code === 'invalid_request') return errorResponse(provider, new Failure(400, err.message));
    console.error('simulator error', err);
    return errorResponse(provider, new Failure(500, 'Internal simulator error'));
  });

  return Object.assign(app, { caches: () => scopes.size });
}

export interface RunningSimulator {
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:8788 */
  url: string;
  /** How many caches it holds (see SimulatorApp). */
  caches(): number;
  close(): Promise<void>;
}

/** Serves the simulator on `host:port` (default 127.0.0.1, port 0 = a free port) and resolves once it listens. */
export async function startSimulator(
  opts: SimulatorOptions & { port?: number; host?: string },
): Promise<RunningSimulator> {
  const host = opts.host ?? '127.0.0.1';
  const app = createSimulatorApp(opts);
  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, port: opts.port ?? 0, hostname: host }, () => resolve(s));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    url,
    caches: () => app.caches(),
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Open streams and keep-alive sockets would otherwise hold close() open.
        if (server instanceof HttpServer) server.closeAllConnections();
      }),
  };
}

// ── request handling helpers ─────────────────────────────────────────────────

function requireKey(c: Context, provider: ProviderApi): string {
  if (provider === 'gemini') {
    const key = c.req.header('x-goog-api-key') ?? c.req.query('key');
    if (key) return key;
    throw new Failure(403, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.");
  }
  const bearer = /^Bearer\s+(\S.*)$/i.exec(c.req.header('authorization') ?? '')?.[1]?.trim();
  const key = provider === 'anthropic' ? (c.req.header('x-api-key') ?? bearer) : bearer;
  if (key) return key;
  throw provider === 'anthropic'
    ? new Failure(401, 'x-api-key header is required')
    : new Failure(401, "You didn't provide an API key. Send it as an Authorization header: 'Bearer YOUR_KEY'.");
}

function injectedFault(c: Context): void {
  const raw = c.req.header('x-simulator-status');
  if (raw === undefined) return;
  const status = Number(raw);
  if (!Number.isInteger(status) || status < 400 || status > 599) return;
  const message = status === 529 ? 'Overloaded' : status === 429 ? 'Rate limit exceeded (simulated)' : `Simulated error ${status}`;
  throw new Failure(status, message);
}

/** The overflow threshold for this call: `x-simulator-overflow-rate` (a positive number, or `off`), else the option's. */
function overflowOf(c: Context, fallback: number | null): number | null {
  const raw = c.req.header('x-simulator-overflow-rate');
  if (raw === 'off') return null;
  const n = raw === undefined ? Number.NaN : Number(raw);
  return n > 0 ? n : fallback;
}

function abortAfter(c: Context): number | null {
  const raw = c.req.header('x-simulator-abort-after');
  const n = raw === undefined ? Number.NaN : Number(raw);
  return Number.isInteger(n) && n >= 0 ? n : null;
}

/** Under @hono/node-server, destroying the response drops the socket without the adapter logging a stream error. */
function dropper(c: Context): (() => void) | undefined {
  const outgoing = (c.env as Partial<HttpBindings> | undefined)?.outgoing;
  return outgoing ? () => outgoing.destroy() : undefined;
}

/** `anyPrompt`: Gemini's countTokens, whose prompt may sit in generateContentRequest. */
async function readBody(c: Context, api: Api, anyPrompt = false): Promise<Json> {
  const text = await c.req.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Failure(400, 'The request body is not valid JSON.');
  }
  if (!isRecord(body)) throw new Failure(400, 'The request body must be a JSON object.');
  // A provider refuses a body nested past its limit; walking one recursively would overflow the stack (a 500).
  if (nestedTooDeep(body)) throw new Failure(400, `The request body is nested more than ${MAX_JSON_DEPTH} levels deep.`);
  // Gemini names the model in the path; a request without contents is its 400.
  if (api.provider === 'gemini') {
    if (!anyPrompt && !Array.isArray(body.contents)) throw new Failure(400, '* GenerateContentRequest.contents: contents is not specified');
    return body;
  }
  if (typeof body.model !== 'string' || body.model === '') {
    throw api.provider === 'anthropic'
      ? new Failure(400, 'model: Field required')
      : new Failure(400, 'you must provide a model parameter');
  }
  const prompt = body[api.promptField];
  const ok = Array.isArray(prompt) || (api.promptField === 'input' && typeof prompt === 'string');
  if (!ok) {
    throw api.provider === 'anthropic'
      ? new Failure(400, `${api.promptField}: Field required`)
      : new Failure(400, `Missing required parameter: '${api.promptField}'.`, {
          param: api.promptField,
          code: 'missing_required_parameter',
        });
  }
  return body;
}

function isItemReference(item: unknown): item is { type: 'item_reference'; id: unknown } {
  return isRecord(item) && item.type === 'item_reference';
}

/** A Responses `input` as a list of items: a string is the one user message it stands for. */
function inputItems(input: unknown): unknown[] {
  return typeof input === 'string' ? [{ role: 'user', content: input }] : Array.isArray(input) ? input : [];
}

/**
 * The most output tokens the request allows: Anthropic `max_tokens`, Chat `max_completion_tokens` (or the older
 * `max_tokens`), Responses `max_output_tokens` (at least 16, as the API requires); null when not set.
 */
function outputLimit(api: Api, body: Json): number | null {
  if (api.format === 'gemini') {
    const config = isRecord(body.generationConfig) ? body.generationConfig : {};
    const max = config.maxOutputTokens;
    if (max === undefined || max === null) return null;
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1) throw new Failure(400, '* GenerateContentRequest.generation_config.max_output_tokens: must be a positive integer');
    return max;
  }
  const field = api.format === 'anthropic' ? 'max_tokens' : api.format === 'openai-responses' ? 'max_output_tokens' : body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
  const value = body[field];
  if (value === undefined || value === null) return null;
  const min = api.format === 'openai-responses' ? 16 : 1;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    if (api.provider === 'anthropic') throw new Failure(400, `${field}: Input should be greater than or equal to 1`);
    throw new Failure(400, `Invalid '${field}': integer below minimum value. Expected a value >= ${min}, but got ${String(value)} instead.`, { param: field, code: 'integer_below_min_value' });
  }
  return value;
}

/** Chat `n` (how many choices): 1 when absent or null; an integer from 1 to 128 as the API allows, else its 400. */
function choiceCount(body: Json): number {
  const n = body.n;
  if (n === undefined || n === null) return 1;
  if (typeof n !== 'number' || !Number.isInteger(n))
    throw new Failure(400, `Invalid type for 'n': expected an integer, but got ${typeof n === 'number' ? 'a decimal number' : `a ${typeof n}`} instead.`, { param: 'n', code: 'invalid_type' });
  if (n < 1) throw new Failure(400, `Invalid 'n': integer below minimum value. Expected a value >= 1, but got ${n} instead.`, { param: 'n', code: 'integer_below_min_value' });
  if (n > 128) throw new Failure(400, `Invalid 'n': integer above maximum value. Expected a value <= 128, but got ${n} instead.`, { param: 'n', code: 'integer_above_max_value' });
  return n;
}

/** OpenAI's `prompt_cache_retention` (`"24h"`) when the model keeps a cache that long; else the default. */
function retentionOf(api: Api, body: Json, entry: ModelEntry): string | null {
  const retention = api.provider === 'openai' ? body.prompt_cache_retention : undefined;
  return typeof retention === 'string' && entry.cache.ttls.some((t) => t.name === retention) ? retention : null;
}

/**
 * A model whose only retention is the extended one (GPT-5.5 and newer but GPT-5.6: catalog ttls `24h` alone) refuses
 * `prompt_cache_retention: "in_memory"` with OpenAI's 400 (community.openai.com/t/1387096); "24h" or none is its default.
 */
function checkRetention(body: Json, rules: CacheRules): void {
  if (body.prompt_cache_retention !== 'in_memory' || !rules.ttls.every((t) => t.name === '24h')) return;
  throw new Failure(400, 'This model is compatible only with 24h extended prompt caching', { type: 'invalid_request_error', param: 'prompt_cache_retention', code: 'invalid_parameter' });
}

/**
 * `reasoning.context` on a model that does not take it (the catalog's `reasoningContext`: GPT-5.6 and newer): OpenAI's
 * 400 for a parameter the model does not support (`unsupported_parameter`, as it answers `max_tokens` on a reasoning
 * model). A null is the parameter not sent.
 */
function checkReasoningContext(body: Json, entry: ModelEntry): void {
  if (entry.provider !== 'openai' || entry.reasoningContext || !isRecord(body.reasoning) || body.reasoning.context === undefined || body.reasoning.context === null) return;
  throw new Failure(400, "Unsupported parameter: 'reasoning.context' is not supported with this model.", { type: 'invalid_request_error', param: 'reasoning.context', code: 'unsupported_parameter' });
}

/**
 * What Anthropic refuses with a 400: more breakpoints than it allows, or a 1h breakpoint after a 5m one. `ttls`: every
 * breakpoint's, in prompt order (nested ones too: blocks.ts markedBlocks).
 */
function checkAnthropicBreakpoints(ttls: string[], max: number): void {
  if (ttls.length > max) throw new Failure(400, `A maximum of ${max} blocks with cache_control may be provided. Found ${ttls.length}.`);
  const shorter = ttls.indexOf('5m');
  if (shorter >= 0 && ttls.slice(shorter).includes('1h'))
    throw new Failure(400, "a ttl='1h' cache_control block must not come after a ttl='5m' cache_control block");
}

/**
 * GPT-5.6 places a breakpoint of its own at the end of the newest message that can carry one (not the model's own
 * output) unless `prompt_cache_options.mode` is 'explicit' (catalog `implicitBreakpoint`).
 */
function addImplicitBreakpoint(newest: SimBlock | undefined, rules: CacheRules, body: Json): void {
  const options = isRecord(body.prompt_cache_options) ? body.prompt_cache_options : {};
  if (options.mode === 'explicit' || !newest || typeof newest.breakpoint === 'string') return;
  newest.breakpoint = typeof options.ttl === 'string' ? options.ttl : rules.defaultTtl;
}

/** Whose error shape and key header apply: by path where it says, else by the Anthropic-only headers. */
function providerOf(c: Context): ProviderApi {
  const path = c.req.path;
  // Gemini's calls are /{version}/models/{model}:{method}; its key header says so elsewhere (/v1/models).
  if (path.startsWith('/v1beta/') || /^\/v1\/models\/[^/]*:/.test(path) || c.req.header('x-goog-api-key') !== undefined) return 'gemini';
  if (path.startsWith('/v1/messages')) return 'anthropic';
  if (path.startsWith('/v1/chat/') || path.startsWith('/v1/responses')) return 'openai';
  const anthropic = c.req.header('x-api-key') !== undefined || c.req.header('anthropic-version') !== undefined;
  return anthropic ? 'anthropic' : 'openai';
}

function errorResponse(provider: ProviderApi, failure: Failure): Response {
  const requestId = providerId('req_');
  if (provider === 'gemini') return json(failure.status, geminiError(failure.status, failure.message));
  return provider === 'anthropic'
    ? json(failure.status, anthropicError(failure.status, failure.message, requestId), { 'request-id': requestId })
    : json(failure.status, openaiError(failure.status, failure.message, failure.openai), { 'x-request-id': requestId });
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}

