// The shapes of what reconciliation answers — a usage report's result, a
// request, the per-handle and tenant reports — for /openapi.json. Tests hold
// real answers to them (a field added to a view and not here fails there).

import { z } from '@hono/zod-openapi';
import { CLASSES, MONEY_LEAKS, ROLLUP_CLASSES } from '../domain/reconcile/waterfall';
import { BreakpointSchema, PredictionSchema, SegmentSchema } from './routes/render';
import { ProblemSchema } from './schemas';

const int = z.number().int();
const counts = <K extends string>(keys: readonly K[]) => z.object(Object.fromEntries(keys.map((k) => [k, int])) as Record<K, typeof int>);
const time = z.string().openapi({ format: 'date-time' });
/** A named schema or null: as anyOf, since .nullable() on a $ref becomes an allOf no null can pass. */
const orNull = <T extends z.ZodType>(schema: T) => z.union([schema, z.null()]);

export const NormalizedUsageSchema = z
  .object({
    provider: z.enum(['anthropic', 'openai-chat', 'openai-responses', 'gemini', 'vllm']),
    model: z.string().nullable(),
    total_prompt_tokens: int.nullable(),
    cache_read_tokens: int.nullable().openapi({ description: 'null: the provider did not say (unknown, not 0).' }),
    cache_write_tokens: int.nullable(),
    cache_write_by_ttl: z.record(z.string(), int).nullable(),
    uncached_tokens: int.nullable(),
    output_tokens: int.nullable(),
    tool_use_prompt_tokens: int
      .nullable()
      .optional()
      .openapi({
        description:
          "Gemini only (`toolUsePromptTokenCount`): input tokens of the prompts Gemini's tools ran (Search grounding, code execution), billed at the input price but not in `total_prompt_tokens` nor in any segment. Absent for other providers; null: not reported.",
      }),
    cache_fields_reported: z.boolean(),
    complete: z.boolean().openapi({ description: 'false for a stream cut off before its final usage.' }),
  })
  .openapi('NormalizedUsage');

const excerptSide = z.object({ source: z.string(), digest: z.string(), excerpt: z.string().optional() });

export const DriftFindingSchema = z
  .object({
    handle: z.string().openapi({ description: 'The handle version whose cached prefix drifted.' }),
    previous_request: z.string(),
    segment: int.openapi({ description: 'The earliest segment whose bytes changed.' }),
    now: excerptSide,
    before: excerptSide,
    byte_offset: int.optional().openapi({ description: 'Where the bytes first differ, when both sides are still held.' }),
    formats: z.object({ now: z.string(), before: z.string() }).optional().openapi({ description: 'The two requests used different API formats.' }),
    settings: z
      .array(z.object({ name: z.string(), now: z.unknown(), before: z.unknown() }))
      .optional()
      .openapi({
        description:
          'Set when the first message the provider could not read was referenced before, with the same content before it, and a setting Anthropic caches the messages under changed since (`tool_choice`, `thinking`; null: not sent): the messages were sent again uncached. `previous_request` is the request that last had them; `segment` is the segment of that message. Also set, with the name `reasoning.context`, when an OpenAI Responses request sends the bytes `previous_request` sent through `segment` under another `reasoning.context` and reads every turn\'s reasoning items (`all_turns`) where that one dropped the earlier turns\' (`current_turn`): the prefix it cached held other items than the model read now.',
      }),
    thinking: z.enum(['earlier_turn', 'earlier_reasoning']).optional().openapi({
      description:
        "Set when the bytes through `segment` are those `previous_request` sent, but the model reads them otherwise once a new question followed the tool loop: a Claude model that strips earlier turns' thinking (Claude Sonnet 4.5 and earlier, Opus 4.1 and earlier, Haiku 4.5) removed it (`earlier_turn`), or OpenAI dropped earlier turns' reasoning items from a Responses request (`earlier_reasoning`), so the prefix through the first message or item that held some was never cached in that form.",
    }),
    reasoning_context: z.enum(['all_turns']).optional().openapi({
      description:
        "Set with `thinking: \"earlier_reasoning\"` when the model accepts OpenAI's `reasoning.context` (GPT-5.6 and newer): sending `reasoning: {\"context\": \"all_turns\"}` keeps earlier turns' reasoning items read, in the cached prefix, so a new question reads it from cache.",
    }),
  })
  .openapi('DriftFinding');

const SegmentOutcomeSchema = z.object({
  source: z.string(),
  path: z.array(z.string()),
  section: z.string(),
  start: int,
  end: int,
  read: int.nullable().openapi({ description: "The provider's cache read within the segment; null when the provider reported no cache fields (capture unknown)." }),
  write: int.nullable().openapi({ description: "The provider's cache write within the segment; null when the provider reports no writes (OpenAI, Gemini, vLLM) or no cache fields." }),
  predicted: int,
  opportunity: int,
  classes: counts(CLASSES).openapi({ description: 'Every token of the segment in exactly one class.' }),
  cost: z.object({
    actual: z.number(),
    no_cache: z.number(),
    perfect: z.number(),
    write_premium: z.number(),
    leaked: z
      .partialRecord(z.enum(MONEY_LEAKS), z.number())
      .optional()
      .openapi({ description: 'actual − perfect by the classes that missed it (those above 0; absent when nothing leaked or capture is unknown): every token of the segment the provider did not read cost the same, and each miss class has its tokens\' share.' }),
  }),
});

export const OutcomeSchema = z
  .object({
    capture: z.enum(['reported', 'unknown']),
    total_prompt_tokens: int.nullable(),
    estimated_prompt_tokens: int,
    predicted: z.object({ read: int, write: int }),
    provider: z.object({ read: int.nullable(), write: int.nullable() }),
    segments: z.array(SegmentOutcomeSchema),
    drift: orNull(DriftFindingSchema),
    applied_late: z
      .object({ started_at: int, applied_at: int })
      .optional()
      .openapi({
        description:
          "The call was applied to its scope's simulated cache at a later start (epoch ms) than its own: a call of the scope that started after it was reconciled first. Its classes are those of that later moment (import oldest logs first).",
      }),
    first_in_scope: z
      .literal(true)
      .optional()
      .openapi({
        description:
          "The first call applied to its cache scope (tenant, provider, model; of calls imported from before the live traffic, the first of them): nothing earlier could be read, so all it sent was `cold`. Absent otherwise, and on calls reconciled before it was recorded.",
      }),
    expired: z
      .object({ last_used_at: int, gap_ms: int, ttl: z.string() })
      .optional()
      .openapi({
        description:
          'Set when tokens were `expired`: the start (epoch ms) of the last call that wrote or read the expired prefix, the gap from then to this call (to `applied_late.applied_at` when that is set), and the cache lifetime it had (`5m`, `1h`, …): a gap over the lifetime is the miss.',
      }),
    concurrent: z
      .object({ writer: z.string(), writer_started_at: int, readable_at: int })
      .optional()
      .openapi({
        description:
          "Set when tokens were `concurrent`: the earlier call that wrote the prefix (`writer`, a request id), its start, and when its write became readable (epoch ms: its first byte, or its end when that was not reported) — after this call started, so this call paid the same write again.",
      }),
    overflow: z
      .object({ prompt_cache_key: z.string().nullable(), starts: int })
      .optional()
      .openapi({
        description:
          "Set on an OpenAI call with `unconfirmed` tokens when its `prompt_cache_key` (null: none) and leading prefix (its first ~256 tokens) started more than 15 calls in the minute through its start (`starts`, this one included): OpenAI routes such a burst to more machines, whose caches do not hold the prefix. Counted from the reports as they came since the service started.",
      }),
    calibrated_by: z
      .number()
      .optional()
      .openapi({
        description:
          "Set when the provider gave no prompt total (capture `unknown`): the model's calibration ratio (provider / estimated tokens, from this tenant's earlier reports) the segments' estimates were scaled by. Absent: the provider's total was used, or there was no calibration yet (the estimates as they are).",
      }),
    total_mismatch: z
      .object({ estimated: int, reported: int, ratio: z.number().nullable() })
      .optional()
      .openapi({
        description:
          "The provider's prompt total is under half or over twice the rendered estimate (and over 1,024 tokens away): likely not the request rendered (a wrong request_id, a body changed after rendering) or images, estimated as text. Attribution is still scaled to the provider's total; the report is left out of calibration.",
      }),
    provider_history: z
      .object({ field: z.string(), tokens: int, read: int.nullable() })
      .optional()
      .openapi({
        description:
          "An OpenAI Responses call with `previous_response_id` or `conversation` (`field`): the provider put the conversation it keeps before the call's input; a Gemini call with `cachedContent`: its explicit cache, before everything. `tokens`: that history (the provider's total less the rendered estimate); `read`: the provider's cache read within it. The segments carry the provider's figures over the rendered part only; `provider` and `total_prompt_tokens` are the provider's own; the report is left out of calibration.",
      }),
    tool_use_prompt: z
      .object({ tokens: int, cost: z.number() })
      .optional()
      .openapi({
        description:
          "Input billed outside the prompt and every segment (Gemini's `toolUsePromptTokenCount`), and its cost (USD) at the input price: no cache reads it. In the request's input cost only: like inline content it is on no handle and not in the tenant report's totals (they count handle content). Absent when none.",
      }),
  })
  .openapi('Outcome');

export const UsageResultSchema = z
  .object({ request_id: z.string(), duplicate: z.boolean(), outcome: OutcomeSchema, usage: NormalizedUsageSchema })
  .openapi('UsageResult');

export const UsageBatchResultSchema = z
  .object({
    accepted: int,
    rejected: int,
    results: z.array(
      z.object({
        index: int,
        status: int,
        request_id: z.string().optional(),
        capture: z.enum(['reported', 'unknown']).optional(),
        applied_late: z.literal(true).optional().openapi({ description: "Applied after a later call of its scope (see the outcome's applied_late)." }),
        problem: ProblemSchema.optional().openapi({ description: 'The problem+json a single report would have been answered with.' }),
      }),
    ),
  })
  .openapi('UsageBatchResult');

const money = z.object({
  currency: z.literal('USD'),
  actual_input_cost: z.number(),
  cost_without_caching: z.number(),
  cost_at_perfect_capture: z.number(),
  realised_savings: z.number(),
  leaked_savings: z.number(),
  leaked_by_class: z
    .object(Object.fromEntries(MONEY_LEAKS.map((c) => [c, z.number()])) as Record<(typeof MONEY_LEAKS)[number], z.ZodNumber>)
    .openapi({
      description:
        "leaked_savings by the class that missed it, summing to it to the micro-dollar: each call's leaked money divided among its missed tokens (every token a segment did not read costs that segment's average unread price). Cold tokens leak nothing (perfect capture pays a first send as the call did, written or not). Rows written before migration 0018 are divided so from the calls still stored, and the rest (calls pruned since) by their missed tokens' share of the day's and model's misses.",
    }),
  write_premiums_paid: z.number(),
  write_premiums_unread: z.number().openapi({ description: 'Premiums for writes no later request read within their TTL (the parts of a write past what a later request read count here).' }),
  write_premiums_pending: z.number().openapi({ description: 'Premiums for writes not read yet whose TTL has not passed: they may still be read.' }),
  unknown_capture_input_cost: z.number().openapi({ description: 'Input cost of requests whose provider reported no cache fields, counted apart.' }),
});

const totals = {
  requests: int,
  tokens: counts(ROLLUP_CLASSES).openapi({ description: 'Tokens per waterfall level and class.' }),
  requests_with: counts(ROLLUP_CLASSES).openapi({ description: 'Requests that had any tokens of each class.' }),
  capture_rate: z.number().nullable().openapi({ description: 'captured / reported_opportunity; null when no request with reported cache fields had an opportunity.' }),
  money,
};

const { requests: _requests, ...totalsAfterRequests } = totals;

/** One handle type's rows added up, and how many handles they are. */
const typeTotals = z.object({ handles_total: int.openapi({ description: "How many handles of the type have figures in the range (a count, as the report's own `handles_total` is)." }), ...totals });

const range = z.object({
  from: time.nullable(),
  to: time,
  model: z.string().nullable(),
  time_zone: z.string().optional().openapi({ description: "The tenant's time zone, whose whole days the range counts (`from`: its first day's first instant, `to`: its last day's last millisecond). Absent: UTC." }),
});

export const HandleReportSchema = z
  .object({
    handle: z.object({ id: z.string(), type: z.string(), kind: z.string().nullable(), name: z.string().nullable(), deleted: z.boolean() }),
    range,
    ...totals,
    versions_total: int.openapi({ description: 'How many versions the handle has (its latest version number).' }),
    versions_listed: z
      .object({ from: int, to: int })
      .openapi({ description: 'The versions `versions` covers, both included: the newest `?versions=` (50 by default) through `?versions_through=` (the latest by default). `from` > 1: older ones were left out; ask with `versions_through=from-1` for them.' }),
    versions: z
      .array(
        z.object({
          version: int,
          requests: int.openapi({
            description:
              "Requests whose newest version of the handle was this one (for a session: that rendered it at this version); `requests_with` counts these too, by the classes of all the handle's tokens in them. Summed over the versions, each request once.",
          }),
          requests_including: int.openapi({
            description:
              "Requests whose prompt had this version's content: those its `tokens` and money are summed over. For a session, version k's batch is in every request at version k or later, and so is version 1's base bundle (counted on version 1, with batch 1); for an artifact or bundle, the same as `requests`.",
          }),
          ...totalsAfterRequests,
        }),
      )
      .openapi({ description: 'Figures per version of `versions_listed`, oldest first: only versions with figures in the range. Tokens count on the version whose content they are.' }),
    models: z.array(z.object({ model: z.string(), ...totals })),
    drift: z.array(DriftFindingSchema.omit({ previous_request: true }).extend({ request_id: z.string(), previous_request_id: z.string(), at: time })).openapi({ description: 'The most recent drift findings in the range, newest first.' }),
  })
  .openapi('HandleReport');

export const TenantReportSchema = z
  .object({
    range,
    ...totals,
    handles_total: int.openapi({ description: 'How many handles have figures in the range (`handles` lists the first `limit` of them).' }),
    handles: z
      .array(z.object({ id: z.string(), type: z.string().nullable(), kind: z.string().nullable(), name: z.string().nullable(), deleted: z.boolean(), ...totals }))
      .openapi({ description: 'One row per handle, by leaked money, largest first (all of them, or the first `limit`; of `type` only when given).' }),
    days: z
      .array(z.object({ day: z.string().openapi({ description: "A day of the tenant's time zone, YYYY-MM-DD." }), ...totals }))
      .optional()
      .openapi({ description: "With `?days=true` only: the totals of each day (of the tenant's time zone) of the range that has figures, oldest first (a day without any is left out); each as the report of that day alone gives them." }),
    by_type: z
      .object({ artifact: typeTotals, bundle: typeTotals, session: typeTotals })
      .optional()
      .openapi({
        description:
          "With `?by_type=true` only: each handle type's rows added up (every handle of the type with figures in the range, whatever `type` and `limit` list): counts exactly, money each row's figure as its report rounds it, added in whole micro-dollars; the capture rate that of the summed tokens. The sessions' is the overview's sessions row. Tokens under handles of two types (an artifact inside a bundle) count in both.",
      }),
    no_handle: z
      .object({
        requests: int.openapi({ description: 'Reconciled calls that named no handle: their whole prompt was the caller\'s inline content.' }),
        tokens: z.object({
          prompt: int.openapi({ description: "Their prompt tokens (the provider's total, over the rendered prompt)." }),
          repeated: int.openapi({ description: 'Of those, tokens whose prefix, from the first token through them, the cache scope had been sent before: what a handle would let be read from cache alike.' }),
          cache_read: int.openapi({ description: "Of those, tokens the provider reported reading from its cache." }),
        }),
        money: z.object({
          currency: z.literal('USD'),
          actual_input_cost: z.number().openapi({ description: 'Their input cost, of the calls whose provider reported cache fields.' }),
          cost_without_caching: z.number(),
          unknown_capture_input_cost: z.number().openapi({ description: 'Input cost of those whose provider reported no cache fields, at full price.' }),
          write_premiums_paid: z.number().openapi({ description: "What their cache writes cost above the input price (calls reconciled before 2026-12-05's release count none)." }),
          write_premiums_unread: z.number().openapi({ description: 'Of those, the premiums of writes no later call read within their TTL, followed as a handle\'s are.' }),
          write_premiums_pending: z.number().openapi({ description: 'Of those, the premiums of writes not read yet whose TTL has not passed: they may still be read.' }),
        }),
      })
      .openapi({
        description:
          "The calls in the range (by start day, of `model`) that referenced no handle, beside the totals, which count handle content only: what went through no handle. A call naming a session with no turns yet named a handle and is not one. Kept on ingestion (migration 0017 counted the reconciled calls a database held; those pruned before it are not). Their write premiums are followed as a handle's.",
      }),
  })
  .openapi('TenantReport', { description: "Totals over handle content (each token once, whatever number of handles it is under); the caller's inline content is not counted." });

export const RequestViewSchema = z
  .object({
    id: z.string(),
    status: z.enum(['rendered', 'reconciled', 'failed']),
    format: z.string(),
    model: z.string(),
    catalog_entry: z.string(),
    catalog_fallback: z.boolean(),
    rendered_at: time,
    started_at: time.nullable(),
    first_byte_at: time.nullable(),
    finished_at: time.nullable(),
    segments: z.array(SegmentSchema),
    breakpoints: z.array(BreakpointSchema),
    prompt_cache_key: z
      .string()
      .nullable()
      .openapi({ description: "The OpenAI `prompt_cache_key` the request was sent with: the caller's, or the one the service set (`ph-<leading handle id>`); null: none (other providers, or a self-hosted model)." }),
    cache_ttl: z.string().nullable().openapi({ description: "The cache lifetime the request asked for (OpenAI `prompt_cache_retention`, when its model has it); null: the model's default." }),
    prediction: orNull(PredictionSchema).openapi({ description: 'What the simulated cache predicted at render time.' }),
    outcome: orNull(OutcomeSchema).openapi({ description: 'null until usage is reconciled.' }),
    usage: orNull(NormalizedUsageSchema),
    usage_raw: z.unknown().nullable().openapi({ description: "The provider's usage as received." }),
    error: z
      .object({ status: int.nullable(), body: z.unknown() })
      .nullable()
      .openapi({ description: "A failed request: the provider's status and error body as it sent them (status null: it could not be reached or did not answer in time)." }),
    diagnostics: z.unknown().nullable().openapi({ description: "The provider's own cache-miss explanation." }),
  })
  .openapi('Request');

/** One line of GET /v1/requests: enough to pick the request to open. */
export const RequestSummarySchema = z
  .object({
    id: z.string(),
    status: z.enum(['rendered', 'reconciled', 'failed']),
    format: z.string(),
    model: z.string(),
    rendered_at: time,
    started_at: time.nullable(),
    capture: z.enum(['reported', 'unknown']).nullable().openapi({ description: 'null until usage is reconciled.' }),
    prompt_tokens: int.nullable().openapi({ description: "The provider's prompt total; null until reconciled, or when it did not say." }),
    cache_read_tokens: int.nullable(),
    cache_write_tokens: int.nullable(),
    handles: z.array(z.string()).openapi({ description: 'The handles on its segment paths, in prompt order.' }),
    classes: z.partialRecord(z.enum(CLASSES), int).openapi({ description: "Handle tokens per class, the classes with any (empty until reconciled); with `handle`, that handle's tokens only; with `type`, those of the handles of that type." }),
    drift: z.boolean().openapi({ description: 'A drift finding was recorded for it (open the request for it).' }),
    class_tokens: int.optional().openapi({ description: "With `class`: its tokens of that class (with `handle`, on that handle's segments; with `type`, on those of handles of that type)." }),
  })
  .openapi('RequestSummary');

export const RequestListSchema = z
  .object({
    requests: z.array(RequestSummarySchema),
    next_cursor: z.string().nullable().openapi({ description: 'Pass as `cursor` for the next page; null: no more.' }),
    scanned: int.optional().openapi({ description: 'Only on a page that read the list in its order to find its matches (`class=captured` or `cold`; `model`): how many requests it read. A page read from an index (any other class, `no_handle`) is exact and has neither this nor `scan_budget_spent`.' }),
    scan_budget_spent: z.boolean().optional().openapi({ description: 'With `scanned`: the page read as many requests as one page may (the scan budget) before it found a match past its `limit`; it may be short, even empty, and `next_cursor` goes on after the last request it read. Only such a page, or the last, is short.' }),
  })
  .openapi('RequestList');
