import { z } from '@hono/zod-openapi';
import {
  artifactKinds,
  messageListSchema,
  messageSchema,
  toolsContentSchema,
} from '../domain/content';
import { hasLoneSurrogate } from '../domain/canonical-json';
import { canonicalZone, zoneRefusal } from '../domain/time-zone';
import { expansionFormats } from '../domain/render/prompt';
import { RENDER_WARNINGS } from '../domain/requests';
import { handleIdPattern, ID_PREFIX, type HandleType } from '../domain/ids';
import { PROBLEM_CODES } from './problem';
import { VOLATILITY_KINDS } from '../domain/volatility';

// API shapes, written by hand (never derived from tables) and mapped from rows in views.ts.

export const RefParam = z.string().min(1).openapi({ param: { name: 'ref', in: 'path' }, example: 'bnd_V1StGXR8Z5jdHi6B3myTq@2' });
/** A handle id in the path, of the kind the route serves (no @version: the route acts on the handle). */
const idParam = (types: HandleType[], what: string) =>
  z
    .string()
    .regex(handleIdPattern(types), `expected ${what}, without @version`)
    .openapi({ param: { name: 'id', in: 'path' }, example: `${ID_PREFIX[types[0]!]}_V1StGXR8Z5jdHi6B3myTq` });
export const IdParam = idParam(['artifact', 'bundle', 'session'], 'a handle id (art_, bnd_ or ses_ and 21 letters or digits)');
export const ArtifactIdParam = idParam(['artifact'], 'an artifact id (art_ and 21 letters or digits)');
export const BundleIdParam = idParam(['bundle'], 'a bundle id (bnd_ and 21 letters or digits)');
export const SessionIdParam = idParam(['session'], 'a session id (ses_ and 21 letters or digits)');

/** A label: Unicode text (a lone surrogate is refused, never stored as replacement characters). */
export const Label = z.string().min(1).max(200).refine((s) => !hasLoneSurrogate(s), 'contains a lone UTF-16 surrogate (not valid Unicode)');
/** A tenant's time zone: an IANA name Intl knows (stored as canonicalZone names it). */
export const TimeZoneName = z
  .string()
  .max(100)
  .refine((s) => canonicalZone(s) !== undefined, { error: (i) => `${JSON.stringify(i.input)} ${zoneRefusal(String(i.input))}` })
  .openapi({ description: "An IANA time zone name (America/Los_Angeles, Asia/Kolkata, UTC): the tenant's reports, dashboard and CLI count whole days in it.", example: 'America/Los_Angeles' });
const name = Label.optional().openapi({ description: 'A label for people; never rendered.' });
const metadata = z.record(z.string(), z.unknown()).optional().openapi({ description: 'Free-form JSON kept with the handle; never rendered.' });

export const MessageSchema = messageSchema.openapi('Message');
const ToolsSchema = toolsContentSchema.openapi('Tools');

export const CreateArtifactBody = z
  .discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('system'), content: z.string().openapi({ description: 'System prompt text, stored byte-exact.' }), name, metadata }),
    z.strictObject({ kind: z.literal('document'), content: z.string().openapi({ description: 'Document text, placed in a context user message.' }), name, metadata }),
    z.strictObject({ kind: z.literal('tools'), content: ToolsSchema.openapi({ description: 'Tool definitions `{ name, description?, input_schema }` (with Anthropic\'s explicit `"type": "custom"` if given: kept, and sent to Anthropic as given), and Anthropic-defined tools `{ type, name, …their settings }` (`bash_20250124`, `text_editor_20250429`, `computer_20250124`, …: stored and sent as given, to Anthropic only; another format is a 422).' }), name, metadata }),
    z.strictObject({ kind: z.literal('messages'), content: z.array(MessageSchema).min(1), name, metadata }),
  ])
  .openapi('CreateArtifact');

// The content is checked against the artifact's kind (a 422 names what is wrong); the document names the three shapes.
export const NewArtifactVersionBody = z
  .strictObject({
    content: z.unknown().openapi({
      description: "Content of the artifact's kind: text (system, document), tool definitions (tools) or messages (messages).",
      anyOf: [{ type: 'string' }, { $ref: '#/components/schemas/Tools' }, { type: 'array', items: { $ref: '#/components/schemas/Message' } }],
    }),
  })
  .openapi('NewArtifactVersion', { required: ['content'] });

// A handle named twice (any versions) would be sent twice, billed twice, and its tools named twice are refused.
const refList = z
  .array(z.string().min(1))
  .min(1)
  .max(1000)
  .superRefine((refs, ctx) => {
    const first = new Map<string, number>();
    refs.forEach((ref, i) => {
      const id = ref.split('@')[0]!;
      const at = first.get(id);
      if (at === undefined) first.set(id, i);
      else ctx.addIssue({ code: 'custom', path: [i], message: `${id} is already member ${at}: its content would be sent twice` });
    });
  });
export const CreateBundleBody = z.strictObject({ members: refList.openapi({ description: 'Artifact or bundle refs, in render order; each is pinned to its current version.' }), name, metadata }).openapi('CreateBundle');
export const NewBundleVersionBody = z.strictObject({ members: refList }).openapi('NewBundleVersion');

export const CreateSessionBody = z
  .strictObject({ base: z.string().min(1).optional().openapi({ description: 'Bundle ref rendered before the messages; pinned.' }), messages: messageListSchema.optional(), name, metadata })
  .openapi('CreateSession');
export const AppendMessagesBody = z.strictObject({ messages: z.array(MessageSchema).min(1) }).openapi('AppendMessages');

export const IfMatchHeader = z.object({
  'if-match': z
    .string()
    // Quoted (the ETag an append answers with) or bare, never half-quoted; at most 15 digits, so the number is exact.
    // A weak tag is refused: If-Match compares strongly, so W/"3" never matches (RFC 9110 §13.1.1).
    .refine((v) => !v.startsWith('W/'), {
      // Names the caller's own tag and the strong one to send instead (W/"3" → "3").
      error: (iss) => {
        const weak = String(iss.input);
        const tag = weak.slice(2);
        return `If-Match compares strong tags: a weak one (${weak}) never matches; send ${/^"[^"]*"$/.test(tag) ? tag : `"${tag}"`}`;
      },
      abort: true,
    })
    // `*` is any current version (RFC 9110 §13.1.1): the session exists, which the append needs anyway.
    .regex(/^("[1-9][0-9]{0,14}"|[1-9][0-9]{0,14}|\*)$/, 'If-Match must be a version number, e.g. "3", or *')
    .optional()
    .openapi({ description: 'Append only if the session is still at this version (`*`: at any version).' }),
});

const int = z.number().int();
/** Tokens per tokenizer family. */
const familyTokens = z.object({ o200k_base: int, cl100k_base: int, anthropic: int, gemini: int });
/** Volatile values found in the text (volatility.ts). */
const findings = z.array(z.object({ kind: z.enum(VOLATILITY_KINDS), offset: int.openapi({ description: 'UTF-8 byte offset.' }), text: z.string() }));

/** A version's reuse metadata, as minted (fields minted since the first versions are optional). */
const ReuseMetaSchema = z
  .object({
    bytes: int,
    // A system prompt's or document's also names the families whose figure is an estimate.
    tokens: familyTokens.extend({ estimated: z.array(z.string()).optional() }),
    tokens_basis: z.enum(['text+tools+refs', 'text+tools', 'text']).optional(),
    estimated: z.array(z.string()).openapi({ description: 'Tokenizer families whose counts are estimates.' }),
    volatility: z.object({
      count: int,
      findings: findings.optional().openapi({ description: 'An artifact: its volatile values (the first 1,000).' }),
      sources: int.optional().openapi({ description: 'A bundle or session: how many sources hold a volatile value.' }),
      by_source: z.record(z.string(), int).optional().openapi({ description: 'A bundle or session: findings per source, the first 50 in prompt order.' }),
    }),
    clears_minimum: z.record(z.string(), z.boolean()).openapi({ description: "Catalog entry → whether this prefix alone reaches the model's cache minimum." }),
    change: z
      .object({
        first_diff_byte: int.nullable(),
        first_diff_token: familyTokens.optional().openapi({ description: 'An artifact: tokens before the first change.' }),
        first_diff_segment: z.string().nullable().optional().openapi({ description: 'A bundle or session: the first segment that changed.' }),
        invalidated_tokens: familyTokens,
      })
      .optional()
      .openapi({ description: 'Against the previous version (absent on version 1).' }),
    batch: z
      .object({ tokens: familyTokens, volatility: z.object({ count: int, findings: findings.openapi({ description: 'The first 100.' }) }) })
      .optional()
      .openapi({ description: "A session version: the messages it appended, on their own (the figures above are the whole session's)." }),
  })
  .openapi('ReuseMetadata');

export const VersionSchema = z
  .object({
    version: z.number().int(),
    ref: z.string(),
    digest: z.string().openapi({ description: 'sha256 (hex) of the stored content (artifacts) or of the neutral expansion.' }),
    size: z.number().int().openapi({ description: 'Bytes of that content.' }),
    created_at: z.string(),
    members: z.array(z.string()).optional(),
    base: z.string().nullable().optional(),
    message_count: z.number().int().optional(),
    meta: ReuseMetaSchema.optional().openapi({
      description:
        "Reuse metadata computed at mint: bytes, tokens, volatility, clears_minimum, change. `tokens_basis: \"text+tools+refs\"`: tokens are counted as request estimates count the content (the text the model reads and its framing, OpenAI's function definitions as OpenAI renders them, with the types their schemas' `$ref`s name and their `anyOf` alternatives), without what a request adds once for its tools; `\"text+tools\"` on versions minted from the evening of 2026-12-03 (a `$ref` or `anyOf` member counted as its name alone), `\"text\"` on versions minted earlier that day (tools counted as their text); absent on tools, messages, bundles and sessions minted before, whose tokens counted the stored JSON. A bundle's or session's `volatility` is `count` (every finding), `sources` (how many sources hold one) and `by_source` (the first 50 of those in prompt order; versions minted before `sources` existed list every one).",
    }),
  })
  .openapi('HandleVersion');

/** A warning: the render (and the proxy's x-ph-warnings, by code) and a mint still succeed. */
export const RenderWarningSchema = z
  .object({
    code: z.enum(RENDER_WARNINGS),
    segment: z.number().int().nullable().openapi({ description: 'The segment it concerns; null for the request as a whole (unknown_model), and at mint.' }),
    kind: z.string(),
    text: z.string(),
    detail: z.string(),
  })
  .openapi('Warning');

export const MintResultSchema = z
  .object({
    id: z.string(),
    type: z.enum(['artifact', 'bundle', 'session']),
    kind: z.enum(artifactKinds).nullable(),
    name: z.string().nullable(),
    created: z.boolean().openapi({ description: 'false when the content equalled the latest version, which is returned.' }),
    latest_version: z.number().int(),
    warnings: z
      .array(RenderWarningSchema)
      .optional()
      .openapi({ description: 'A tools artifact: its Anthropic-defined tools whose version no catalog model has a token figure for (`tool_tokens_estimated`: counted as their JSON). Absent when none.' }),
  })
  .extend(VersionSchema.shape)
  .openapi('MintResult');

export const HandleSchema = z
  .object({
    id: z.string(),
    type: z.enum(['artifact', 'bundle', 'session']),
    kind: z.enum(artifactKinds).nullable(),
    name: z.string().nullable(),
    metadata: z.record(z.string(), z.unknown()).nullable().openapi({ description: 'The metadata given at mint; null when none was.' }),
    latest_version: z.number().int(),
    created_at: z.string(),
    version: VersionSchema.openapi({ description: 'The version the ref named (latest for a bare id).' }),
    versions: z.array(VersionSchema).openapi({ description: 'Every version, oldest first; with `?versions=N`, the newest N.' }),
    calibrated_tokens: z
      .array(z.object({ model: z.string(), family: z.string(), ratio: z.number(), reports: z.number(), estimate: z.number().nullable(), calibrated: z.number().nullable() }))
      .openapi({ description: 'The estimate beside its calibration: per model, the ratio of provider-reported to estimated prompt tokens.' }),
  })
  .openapi('Handle');

export const HandleListSchema = z
  .object({
    handles: z.array(HandleSchema.omit({ versions: true, version: true, calibrated_tokens: true })),
    next_cursor: z.string().nullable(),
  })
  .openapi('HandleList');

/** A page size: a plain number from 1 to 500 (not 0x10, 1e2 or " 5"). */
export const Limit = z
  .string()
  .regex(/^[0-9]{1,3}$/, 'limit must be a whole number from 1 to 500')
  .transform(Number)
  .pipe(z.number().int().min(1, 'limit must be a whole number from 1 to 500').max(500, 'limit must be a whole number from 1 to 500'))
  .default(50)
  .openapi({ type: 'integer', minimum: 1, maximum: 500, default: 50 });

export const ListQuery = z.object({
  kind: z.enum(['artifact', 'bundle', 'session', ...artifactKinds]).optional().openapi({ description: 'A handle type, or an artifact kind.' }),
  cursor: z.string().regex(/^(art|bnd|ses)_[0-9A-Za-z]{21}$/, 'cursor must be a next_cursor value').optional(),
  limit: Limit,
});

export const ExpandQuery = z.object({ format: z.enum(expansionFormats).default('neutral') });

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    // Those answered before routing (client-error.ts) too: a client branches on any of them.
    code: z.enum([...PROBLEM_CODES, 'headers_too_large', 'malformed_request', 'request_timeout']).openapi({ description: 'Stable machine-readable code (README: Errors).' }),
    errors: z.array(z.object({ pointer: z.string(), detail: z.string() })).optional(),
    requestId: z.string().optional(),
    current_version: z.number().int().optional().openapi({ description: 'version_conflict: the session\'s (or handle\'s) latest version.' }),
    referrers: z.array(z.string()).optional().openapi({ description: 'handle_in_use: the handles that pin it.' }),
    tenant: z.string().optional().openapi({ description: 'tenant_name_taken: the tenant that has the name; time_zone_fixed: the tenant whose zone is fixed.' }),
    blocks: z
      .array(z.object({ path: z.string(), source: z.string(), changed: z.array(z.enum(['tools', 'system', 'messages'])) }))
      .optional()
      .openapi({ description: 'thinking_prefix_changed: each thinking block whose prefix changed, where it is in the body and what changed.' }),
  })
  .openapi('Problem');

export const IssuedKeySchema = z
  .object({ id: z.string(), tenant: z.string(), api_key: z.string().openapi({ description: 'Shown once; stored only as a hash.' }), created_at: z.string() })
  .openapi('IssuedKey');

export const TenantSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    same_name_as: z.array(z.string()).openapi({ description: 'Other tenants with the same name (compared ignoring case and extra whitespace), oldest first: made before names were unique. Empty when the name is unique.' }),
    time_zone: z.string().openapi({ description: 'The IANA time zone its days are counted in (UTC unless set).' }),
    created_at: z.string(),
    keys: z.array(
      z.object({
        id: z.string(),
        hint: z.string().openapi({ description: "The secret's first 12 characters: phk_ and 8 of its random ones (keys issued before 2026-12-03 show 8: phk_ and 4). The secret itself is stored only as a hash." }),
        created_at: z.string(),
        revoked_at: z.string().nullable(),
      }),
    ),
  })
  .openapi('Tenant');

const TenantDeletingSchema = z
  .object({
    id: z.string(),
    name: z.string().nullable().openapi({ description: 'Its name when this process began deleting it (null: taken up again after a restart, the name already gone).' }),
    running: z.boolean().openapi({ description: 'Being deleted now; false: a stop cut it short or a batch failed with an error, and the next start (or a DELETE of it, whatever `confirm` says) takes it up again.' }),
    rows: z.number().int().openapi({ description: 'Rows this process has deleted of it so far (its keys with the mark).' }),
    batches: z.number().int().openapi({ description: 'Transactions they took.' }),
    requests_left: z.number().int().openapi({ description: 'Its requests still stored, each with its rows (deleted first).' }),
    handles_left: z.number().int().openapi({ description: 'Its handles still stored, each with its versions (deleted after its requests and reports).' }),
  })
  .openapi('TenantDeleting');

export const TenantListSchema = z
  .object({
    tenants: z.array(TenantSchema),
    deleting: z.array(TenantDeletingSchema).openapi({ description: 'Tenants whose deletion is under way or was cut short: gone for every other route, their rows going a batch at a time. Empty when none is.' }),
  })
  .openapi('TenantList');

export const problemResponse = (description: string) => ({ content: { 'application/problem+json': { schema: ProblemSchema } }, description });

/**
 * The document with a `default` answer on every operation that lists none: any other error is problem+json too (a
 * 5xx, or a refusal before routing: 400 malformed_request, 408 request_timeout, 431 headers_too_large), so a
 * generated client parses it as a Problem rather than failing on an undocumented status.
 */
export function withOtherErrors<D extends { paths?: object }>(doc: D): D {
  const other = { description: 'Any other error: problem+json with its stable `code` (a 5xx, or a refusal before routing: malformed_request, request_timeout, headers_too_large)', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } };
  for (const item of Object.values(doc.paths ?? {}) as object[])
    for (const op of Object.values(item) as Array<{ responses?: Record<string, unknown> }>) if (op.responses && !op.responses.default) op.responses.default = other;
  return doc;
}

/** The refusal before routing every route can give (client-error.ts): listed on the routes that take no input. */
export const HEADERS_TOO_LARGE = problemResponse('headers_too_large: the request line and headers are larger than the server accepts (16 KB), refused before routing');

/** Error responses of an authenticated route without a body (GET, DELETE). */
export const readErrors = {
  401: problemResponse('unauthorized: missing or invalid API key'),
  404: problemResponse('not_found: no such handle (or request) for this tenant'),
  422: problemResponse('invalid_request: every failing path is listed in errors[]'),
} as const;

/** Error responses every authenticated route with a JSON body can give; spread into each route. */
export const commonErrors = {
  400: problemResponse('malformed_json: the body is not JSON'),
  ...readErrors,
  413: problemResponse('payload_too_large'),
  415: problemResponse('unsupported_media_type: send application/json'),
} as const;

export const conflictErrors = {
  409: problemResponse('version_conflict or handle_in_use'),
  410: problemResponse('gone: the handle was deleted'),
} as const;
