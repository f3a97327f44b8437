import { z } from 'zod';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { canonicalZone, UTC, zoneRefusal } from './domain/time-zone';
import { parseKeyPairsIntoRecord } from '@opentelemetry/core';

/**
 * A whole number written in decimal digits. `Number()` (z.coerce) reads an empty variable (`PORT=` in an env
 * file) as 0 and `0x10` as 16: each a silent wrong setting, not a refusal.
 */
const digits = (min: number, max: number, ms = false) =>
  z
    .string()
    .regex(/^[0-9]+$/, { error: (i) => (i.input === '' ? EMPTY : `must be a whole number${ms ? ` of milliseconds in decimal digits${inMs(String(i.input))}` : ' in decimal digits'}`) })
    .transform(Number)
    .pipe(z.number().min(min, `must be at least ${min}${ms ? ' ms' : ''}`).max(max, `must be at most ${max}${ms ? ' ms' : ''}`));
/** A duration written with a unit (`10s`, `5 s`, `2m`), as the milliseconds it is: `, 10000 for 10s`; else nothing. */
function inMs(input: string): string {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)\s*$/i.exec(input);
  const factor = m && { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 }[m[2]!.toLowerCase()];
  const value = factor ? Number(m[1]) * factor : NaN;
  return Number.isSafeInteger(value) ? `, ${value} for ${input.trim()}` : '';
}
const whole = (def: number, min: number, max: number = Number.MAX_SAFE_INTEGER) => digits(min, max).default(def);
const EMPTY = 'is empty: unset it to use the default';
const int = (def: number) => whole(def, 1);
/** A timer's delay: Node fires a longer one at once (TimeoutOverflowWarning), as if it were 1 ms. */
const MAX_TIMER = 2_147_483_647;
const ms = (def: number, min = 1) => whole(def, min, MAX_TIMER);
const text = () => z.string().min(1, EMPTY);

/**
 * A provider base URL: an origin and a path. The proxy sends each call to the origin and the path with the
 * caller's own path and query after it, so a user:password, a query or a fragment here would be dropped without a
 * word (an Azure `?api-version=` base URL then answered 404 on every call).
 */
const baseUrl = () =>
  z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).superRefine((value, ctx) => {
    // zod runs this check after a failed z.url too: `api.anthropic.com` would throw here, a stack trace at start.
    if (!URL.canParse(value)) return;
    const url = new URL(value);
    const extra = url.username || url.password ? 'a user or password' : url.search ? 'a query string' : url.hash ? 'a fragment' : null;
    if (extra) ctx.addIssue({ code: 'custom', message: `must be an origin and a path, without ${extra}: the proxy would drop it (the caller's own query goes on; provider credentials travel in the caller's headers)` });
  });

/**
 * gRPC's endpoint without a scheme, `host:port` (as a Collector's own configuration writes it): the specification's
 * gRPC endpoint takes the gRPC client's forms besides an http(s) URL; TLS unless OTEL_EXPORTER_OTLP_INSECURE=true.
 */
const HOST_PORT = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$/;
/** An OTLP endpoint: an http(s) URL (a collector's, Langfuse's `…/api/public/otel`; gRPC's `http://collector:4317`), or gRPC's `host:port`. */
const otlpUrl = () => z.union([z.url({ protocol: /^https?$/ }), z.string().regex(HOST_PORT)], { error: 'must be an http(s) URL (with gRPC, a host:port too)' }).optional();
/**
 * OTLP headers in the standard `key=value,key2=value2` form (values URL-encoded: Langfuse's `Authorization=Basic%20…`).
 * The exporter library drops an entry without `=` without a word, and cuts a value at a `;` (W3C Baggage's properties,
 * which OpenTelemetry's format leaves out): each refused here, so a missing or cut auth header is not a 401 on every
 * export. A value must be printable ASCII once decoded: neither an HTTP header nor gRPC metadata carries another. A
 * name must be an HTTP token (Node refuses any other on every export: a quote a compose file kept, `"Authorization`).
 */
const otlpHeaders = () =>
  z
    .string()
    .refine((v) => Object.keys(parseKeyPairsIntoRecord(v)).length === v.split(',').filter((e) => e.trim()).length, 'must be key=value pairs separated by commas, each value non-empty')
    .refine((v) => !v.includes(';'), "must not hold a ';': the library ends the value there (W3C Baggage's properties) and would send it cut; write it %3B")
    .refine((v) => Object.values(parseKeyPairsIntoRecord(v)).every((value) => /^[ -~]*$/.test(value)), 'each value must be printable ASCII once decoded (no %0A, no accented letters): no header carries another')
    // Node refuses to send a header whose name is not an HTTP token: every export would fail (`my key`, `x(y)`, a
    // quote a compose file kept: `"Authorization`).
    .refine((v) => Object.keys(parseKeyPairsIntoRecord(v)).every((name) => /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)), "each name must be an HTTP token (letters, digits and !#$%&'*+-.^_`|~; no space, quote or ':' once decoded): every export would fail; quotes around the whole variable (a compose file's `- OTEL_EXPORTER_OTLP_HEADERS=\"…\"`) are kept in it: drop them")
    .optional();
/** The OTLP protocols (OTEL_EXPORTER_OTLP_PROTOCOL), the specification's default first. */
export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json', 'grpc'] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];
const otlpProtocol = () => z.enum(OTLP_PROTOCOLS, { error: `must be ${OTLP_PROTOCOLS.join(', ')} (the default: http/protobuf)` }).optional();

const otel = <T extends z.ZodType>(schema: T) => z.preprocess((v) => (typeof v === 'string' && v.trim() === '' ? undefined : v), schema);
/** A number's or a name's spaces around it dropped (`5000 ` in an env file), as the exporter library reads them. */
const otelTrimmed = <T extends z.ZodType>(schema: T) => otel(z.preprocess((v) => (typeof v === 'string' ? v.trim() : v), schema));
/**
 * A whole number an OTEL_ variable holds, unset when absent (its default is applied where it is read: a `TRACES_` one
 * and the general one are told apart). The libraries read some of these themselves and skip a bad value with a warning
 * nobody sees (`10s`, `-1`): refused here instead.
 */
const otelWhole = (min: number, max = Number.MAX_SAFE_INTEGER, ms = false) => otelTrimmed(digits(min, max, ms).optional());
const otelMs = (min: number) => otelWhole(min, MAX_TIMER, true);
const otlpCompression = () => otelTrimmed(z.enum(['gzip', 'none'], { error: 'must be gzip or none, in lower case as the specification writes them (the default: none)' }).optional());

/**
 * OTEL_RESOURCE_ATTRIBUTES: `key=value,…`, a ',' or '=' in a key or value percent-encoded (`%2C`, `%3D`), both
 * percent-decoded. The specification has a bad value dropped whole: refused at start instead. A problem, or the attributes.
 */
function resourceAttributes(raw: string | undefined): Record<string, string> | string {
  const attrs: Record<string, string> = {};
  // A compose file's `- OTEL_RESOURCE_ATTRIBUTES="a=b"` keeps its quotes: the first key and the last value would carry them.
  if (/^(["']).*\1$/s.test(raw?.trim() ?? '')) return "quotes around the whole variable (a compose file's `- OTEL_RESOURCE_ATTRIBUTES=\"…\"`) are kept in it, in the first key and the last value: drop them";
  for (const entry of (raw ?? '').split(',')) {
    if (!entry.trim()) continue;
    const [key, value, ...more] = entry.split('=');
    if (value === undefined || more.length > 0 || !key!.trim()) return `each entry must be key=value, the key not empty, a ',' or '=' in either written %2C or %3D: ${JSON.stringify(entry)} is not`;
    try {
      attrs[decodeURIComponent(key!.trim())] = decodeURIComponent(value.trim());
    } catch {
      return `each '%' must start a percent-encoded UTF-8 byte (%2C, %3D, %20; a '%' itself is %25): ${JSON.stringify(entry)} does not decode`;
    }
  }
  return attrs;
}

const envSchema = z.object({
  PORT: whole(8787, 0, 65535),
  HOST: text().default('127.0.0.1'),
  PH_DATA_DIR: text().default('./data'),
  PH_DATABASE: text().optional(),
  // A key read from a secret file often ends in a newline; the Bearer header cannot carry it, so every admin call was a 401.
  PH_ADMIN_KEY: z.string().min(16, 'must be at least 16 characters').regex(/^\S*$/, 'must not contain whitespace (a trailing newline from a secret file?): no Authorization header can carry it').optional(),
  PH_MAX_BODY_BYTES: int(8 * 1024 * 1024),
  PH_EXPANSION_CACHE_BYTES: int(256 * 1024 * 1024),
  PH_CATALOG_FILE: text().optional(),
  PH_LOG: z.enum(['json', 'off']).default('json'),
  PH_INLINE_KEEP_BYTES: int(64 * 1024),
  PH_INLINE_RETENTION_HOURS: int(7 * 24),
  PH_CACHE_TTL: z.enum(['5m', '1h']).default('5m'),
  PH_USAGE_BATCH_MAX: int(1000),
  // 0: keep every request. Pruning deletes what GET /v1/requests/{id} shows: an upgrade must not do it unasked.
  PH_REQUEST_RETENTION_DAYS: whole(0, 0, 36_500),
  // 0: off (none written, none read).
  PH_SCOPE_SNAPSHOT_EVERY: whole(2000, 0),
  PH_ANTHROPIC_BASE_URL: baseUrl().default('https://api.anthropic.com'),
  PH_OPENAI_BASE_URL: baseUrl().default('https://api.openai.com'),
  PH_GEMINI_BASE_URL: baseUrl().default('https://generativelanguage.googleapis.com'),
  PH_UPSTREAM: z.enum(['providers', 'simulator']).default('providers'),
  // The SDKs' own default timeout is 10 minutes: a long answer must not be cut shorter by the proxy.
  PH_UPSTREAM_TIMEOUT_MS: ms(600_000),
  PH_PROXY_ORDER_WAIT_MS: ms(120_000),
  // Under `docker stop`'s 10 s before its SIGKILL, with time left to commit what the cut calls leave.
  PH_SHUTDOWN_GRACE_MS: ms(8_000, 0),
  // 0: the listener closes at the signal. Behind a load balancer, the time it takes to see /readyz fail.
  PH_SHUTDOWN_DELAY_MS: ms(0, 0),
  PH_SIMULATOR_FIRST_BYTE_MS: ms(0, 0),
  PH_SIMULATOR_CHUNK_DELAY_MS: ms(0, 0),
  // 0: any free port (printed at start).
  PH_SIMULATOR_PORT: whole(0, 0, 65535),
  // The default tenant's zone (the first start makes it): an IANA name, stored as canonicalZone names it.
  PH_TIME_ZONE: z
    .string()
    .transform((v, ctx) => canonicalZone(v) ?? (ctx.addIssue({ code: 'custom', message: zoneRefusal(v) }), z.NEVER))
    .default(UTC),
  // OpenTelemetry's own names (the exporter library reads them too): the trace export is on when an endpoint is set.
  // OpenTelemetry's variables: empty is unset, as its specification says (a compose file's `OTEL_EXPORTER_OTLP_ENDPOINT=`).
  OTEL_EXPORTER_OTLP_ENDPOINT: otel(otlpUrl()),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otel(otlpUrl()),
  OTEL_EXPORTER_OTLP_HEADERS: otel(otlpHeaders()),
  OTEL_EXPORTER_OTLP_TRACES_HEADERS: otel(otlpHeaders()),
  OTEL_EXPORTER_OTLP_PROTOCOL: otel(otlpProtocol()),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: otel(otlpProtocol()),
  // Read for a gRPC endpoint without a scheme alone (an http:// or https:// one says it), as the specification has it.
  OTEL_EXPORTER_OTLP_INSECURE: otel(z.string().optional()),
  OTEL_EXPORTER_OTLP_TRACES_INSECURE: otel(z.string().optional()),
  // An export's time, retries included; the signal's own first (the exporter library's is skipped with a warning when
  // bad). 0: no limit, the specification's timeout zero (the library's would refuse it: otlp.ts gives it the longest timer).
  OTEL_EXPORTER_OTLP_TIMEOUT: otelMs(0),
  OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: otelMs(0),
  OTEL_EXPORTER_OTLP_COMPRESSION: otlpCompression(),
  OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: otlpCompression(),
  // Unset: service.name from OTEL_RESOURCE_ATTRIBUTES, else prefix-handles (the specification's precedence).
  OTEL_SERVICE_NAME: otel(z.string().optional()),
  OTEL_RESOURCE_ATTRIBUTES: otel(
    z
      .string()
      .superRefine((v, ctx) => {
        const parsed = resourceAttributes(v);
        if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
      })
      .optional(),
  ),
  OTEL_SDK_DISABLED: otel(z.string().optional()),
  OTEL_TRACES_EXPORTER: otel(z.string().optional()),
  // The batch span processor's: how long a span waits for its batch, the batch's size and the export's wait.
  OTEL_BSP_SCHEDULE_DELAY: otelMs(0),
  OTEL_BSP_EXPORT_TIMEOUT: otelMs(0),
  OTEL_BSP_MAX_QUEUE_SIZE: otelWhole(1),
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: otelWhole(1),
  // The spans' limits (the model's own first, then the general one); links: none made, not read. A value length of 0
  // is refused: the SDK ignores it with a warning nobody sees, every value kept whole (not cut to nothing).
  OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: otelWhole(1),
  OTEL_ATTRIBUTE_COUNT_LIMIT: otelWhole(0),
  OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT: otelWhole(1),
  OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT: otelWhole(0),
  OTEL_SPAN_EVENT_COUNT_LIMIT: otelWhole(0),
  OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT: otelWhole(0),
});

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  /** SQLite file path, or ':memory:'. */
  databasePath: string;
  adminKey: string | undefined;
  maxBodyBytes: number;
  expansionCacheBytes: number;
  catalogFile: string | undefined;
  log: 'json' | 'off';
  inlineKeepBytes: number;
  inlineRetentionMs: number;
  /** TTL for cache breakpoints the service places (1h only where the model offers it). */
  cacheTtl: '5m' | '1h';
  usageBatchMax: number;
  /** Requests rendered longer ago are pruned, with their detail, every hour (0: never). */
  requestRetentionDays: number;
  /** A cache scope's state is snapshot every this many reconciliations of it, so a start replays only those after (0: never). */
  scopeSnapshotEvery: number;
  /**
   * The most entries of a scope snapshot's new chain one group commit writes (over every scope): a long history's
   * are written over several. Not read from the environment (tests write chains in small parts).
   */
  scopeSnapshotPart: number;
  /** The most rows of the request list a page filtered by class or model reads (LIST_SCAN_BUDGET when absent). Not read from the environment (tests page past it with a few). */
  listScanBudget?: number;
  /** Where the proxy sends Anthropic, OpenAI and Gemini calls (no trailing slash). */
  anthropicBaseUrl: string;
  openaiBaseUrl: string;
  geminiBaseUrl: string;
  /** `simulator`: main.ts starts the built-in provider simulator and points the base URLs at it. */
  upstream: 'providers' | 'simulator';
  /** Longest wait for the upstream's headers, and for each next chunk of its body. */
  upstreamTimeoutMs: number;
  /** How long a finished proxied call's reconciliation waits for a call of its scope that started earlier. */
  proxyOrderWaitMs: number;
  /** On SIGTERM, how long requests under way may take before their connections are cut. */
  shutdownGraceMs: number;
  /** On SIGTERM, how long requests are still served (and /readyz says draining) before the listener closes. */
  shutdownDelayMs: number;
  /** The built-in simulator's pace (PH_UPSTREAM=simulator): time to first byte, and between streamed events. */
  /** The time zone of the default tenant the first start creates (PH_TIME_ZONE). */
  timeZone: string;
  simulator: { firstByteDelayMs: number; chunkDelayMs: number; port: number };
  /** Where each reconciled request is sent as an OpenTelemetry span (over OTLP, `protocol`); null: off. */
  otlp: OtlpConfig | null;
}

export interface OtlpConfig {
  /**
   * OTLP/HTTP: the traces URL, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as it is, or OTEL_EXPORTER_OTLP_ENDPOINT with
   * /v1/traces. gRPC: either as it is (its origin; no path: the service's method is the path); a `host:port` as
   * https:// (TLS), or http:// with OTEL_EXPORTER_OTLP_(TRACES_)INSECURE=true.
   */
  url: string;
  /** OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL, else the specification's http/protobuf. */
  protocol: OtlpProtocol;
  /** HTTP headers; gRPC metadata (names lowercased). */
  headers: Record<string, string>;
  /** The resource's `service.name`: OTEL_SERVICE_NAME, else OTEL_RESOURCE_ATTRIBUTES' own, else prefix-handles. */
  serviceName: string;
  /** The resource's other attributes: OTEL_RESOURCE_ATTRIBUTES, decoded. */
  resourceAttributes: Record<string, string>;
  /** An export's time, retries included: OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT, 10 s by default; 0: no limit. */
  timeoutMs: number;
  /** The body's: OTEL_EXPORTER_OTLP_(TRACES_)COMPRESSION, none by default. */
  compression: 'gzip' | 'none';
  /** Spans waiting for export at most; past it they are dropped (counted). OTEL_BSP_MAX_QUEUE_SIZE, 2,048. */
  maxQueueSize: number;
  /** Spans in one export at most: OTEL_BSP_MAX_EXPORT_BATCH_SIZE, 512 (the queue's size when that is smaller). */
  maxExportBatchSize: number;
  /** How long a span waits for its batch: OTEL_BSP_SCHEDULE_DELAY, 5 s (tests flush instead). */
  scheduledDelayMs: number;
  /** How long the batch waits for an export before it sends the next one: OTEL_BSP_EXPORT_TIMEOUT, 30 s; 0: no limit. */
  exportTimeoutMs: number;
  /** The spans' limits (the OTEL_…_LIMIT variables), as the SDK takes them. */
  spanLimits: { attributeCountLimit: number; attributeValueLengthLimit: number; eventCountLimit: number; attributePerEventCountLimit: number };
  /** At most one line about failed exports per this many ms. Not read from the environment. */
  errorLogEveryMs: number;
}

/**
 * The export's settings where no variable sets them: the specification's, but for the span limits (a request naming
 * many handles keeps them all: an event per handle run, where the SDK's default keeps 128; 256 attributes).
 */
export const OTLP_DEFAULTS = {
  serviceName: 'prefix-handles',
  resourceAttributes: {},
  timeoutMs: 10_000,
  compression: 'none',
  maxQueueSize: 2048,
  maxExportBatchSize: 512,
  scheduledDelayMs: 5_000,
  exportTimeoutMs: 30_000,
  spanLimits: { attributeCountLimit: 256, attributeValueLengthLimit: Infinity, eventCountLimit: 1_000, attributePerEventCountLimit: 128 },
  errorLogEveryMs: 60_000,
} as const satisfies Omit<OtlpConfig, 'url' | 'protocol' | 'headers'>;

export class ConfigError extends Error {}

/** PH_ variables read by the CLI (src/cli/), which an operator's shell or env file holds beside the service's. */
const CLI_VARIABLES = new Set(['PH_URL', 'PH_API_KEY']);
/**
 * What Kubernetes sets in every pod for each Service of its namespace (service links, on by default): a Service named
 * `ph` or `ph-…` gives PH_SERVICE_HOST, PH_PORT, PH_PORT_8787_TCP_ADDR and the like, which are not settings.
 */
const SERVICE_LINK = /^PH_(?:[A-Z0-9_]+_)?(?:SERVICE_HOST|SERVICE_PORT(?:_[A-Z0-9_]+)?|PORT_[0-9]+_(?:TCP|UDP|SCTP)(?:_(?:PROTO|PORT|ADDR))?)$/;
/** A bare `…_PORT` link holds the Service's address (`tcp://10.96.0.7:8787`): a misspelt `PH_SIMULATR_PORT=0` is still refused. */
const isServiceLink = (name: string, value: string | undefined) => SERVICE_LINK.test(name) || (/^PH_(?:[A-Z0-9_]+_)?PORT$/.test(name) && /^(?:tcp|udp|sctp):\/\//.test(value ?? ''));

/**
 * A PH_ variable that is neither the service's nor the CLI's: a misspelt one (`PH_REQUEST_RETENTION_DAY`) would
 * otherwise leave its setting at the default without a word. Named with the nearest real one.
 */
function unknownVariables(env: Record<string, string | undefined>): string[] {
  const known = Object.keys(envSchema.shape).filter((k) => k.startsWith('PH_'));
  return Object.keys(env)
    .filter((name) => name.startsWith('PH_') && env[name] !== undefined && !(name in envSchema.shape) && !CLI_VARIABLES.has(name) && !isServiceLink(name, env[name]))
    .map((name) => {
      const [nearest] = known.map((k) => [k, editDistance(name, k)] as const).sort((a, b) => a[1] - b[1]);
      // Else a real name the misspelt one extends, as other tools spell it: PH_DATABASE_PATH, PH_DATABASE_URL.
      const extended = known.filter((k) => name.startsWith(`${k}_`)).sort((a, b) => b.length - a.length)[0];
      const guess = nearest && nearest[1] <= 3 ? nearest[0] : extended;
      const meant = guess ? `; did you mean ${guess}?` : '';
      // Its value is never shown: it may be a secret under a wrong name (PH_ADMINKEY).
      return `  ${name}: not a variable of the service${meant} (value not shown)`;
    });
}

/** Levenshtein distance: insertions, deletions and substitutions. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

/** Reads the environment once; one readable error lists every bad variable. */
const SECRETS = new Set(['PH_ADMIN_KEY', 'OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS']);

/** A URL's password is a secret too: shown as ***. */
function withoutPassword(value: string | undefined): string | undefined {
  if (!value || !URL.canParse(value)) return value;
  const url = new URL(value);
  if (!url.password) return value;
  url.password = '***';
  return url.href;
}

/**
 * A setting read only with another: PH_SIMULATOR_PORT without PH_UPSTREAM=simulator started no simulator, and the
 * proxy called the providers without a word (a user's trial: the SDK's placeholder key then met the provider's 401).
 */
function inertVariables(env: Record<string, string | undefined>): string[] {
  const port = env.PH_SIMULATOR_PORT;
  if (port === undefined || env.PH_UPSTREAM === 'simulator' || isServiceLink('PH_SIMULATOR_PORT', port)) return [];
  return [`  PH_SIMULATOR_PORT: read only with PH_UPSTREAM=simulator, which is ${env.PH_UPSTREAM === undefined ? 'not set' : `"${env.PH_UPSTREAM}"`}: no simulator would start, and the proxy would call the providers; set PH_UPSTREAM=simulator, or unset PH_SIMULATOR_PORT (got ${JSON.stringify(port)})`];
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = envSchema.safeParse(env);
  const unknown = [...unknownVariables(env), ...inertVariables(env), ...(parsed.success ? [...grpcProblems(parsed.data), ...tlsFileProblems(env, otlpConfig(parsed.data) !== null), ...tracesTwice(parsed.data), ...batchProblems(parsed.data)] : [])];
  if (!parsed.success || unknown.length > 0) {
    // A secret is never echoed back, even a wrong one (it may be close to the real key).
    const shown = (name: string) => (SECRETS.has(name) ? '(value not shown)' : `(got ${JSON.stringify(withoutPassword(env[name]))})`);
    const lines = (parsed.error?.issues ?? []).map((i) => `  ${i.path.join('.')}: ${i.message} ${shown(String(i.path[0]))}`);
    throw new ConfigError(`invalid configuration:\n${[...lines, ...unknown].join('\n')}`);
  }
  const e = parsed.data;
  const dataDir = resolve(e.PH_DATA_DIR);
  return {
    port: e.PORT,
    host: e.HOST,
    dataDir,
    databasePath: e.PH_DATABASE === ':memory:' ? ':memory:' : resolve(e.PH_DATABASE ?? `${dataDir}/prefix-handles.db`),
    adminKey: e.PH_ADMIN_KEY,
    maxBodyBytes: e.PH_MAX_BODY_BYTES,
    expansionCacheBytes: e.PH_EXPANSION_CACHE_BYTES,
    catalogFile: e.PH_CATALOG_FILE,
    log: e.PH_LOG,
    inlineKeepBytes: e.PH_INLINE_KEEP_BYTES,
    inlineRetentionMs: e.PH_INLINE_RETENTION_HOURS * 3_600_000,
    cacheTtl: e.PH_CACHE_TTL,
    usageBatchMax: e.PH_USAGE_BATCH_MAX,
    requestRetentionDays: e.PH_REQUEST_RETENTION_DAYS,
    scopeSnapshotEvery: e.PH_SCOPE_SNAPSHOT_EVERY,
    scopeSnapshotPart: 4_000,
    anthropicBaseUrl: e.PH_ANTHROPIC_BASE_URL.replace(/\/+$/, ''),
    openaiBaseUrl: e.PH_OPENAI_BASE_URL.replace(/\/+$/, ''),
    geminiBaseUrl: e.PH_GEMINI_BASE_URL.replace(/\/+$/, ''),
    upstream: e.PH_UPSTREAM,
    upstreamTimeoutMs: e.PH_UPSTREAM_TIMEOUT_MS,
    proxyOrderWaitMs: e.PH_PROXY_ORDER_WAIT_MS,
    shutdownGraceMs: e.PH_SHUTDOWN_GRACE_MS,
    shutdownDelayMs: e.PH_SHUTDOWN_DELAY_MS,
    timeZone: e.PH_TIME_ZONE,
    simulator: { firstByteDelayMs: e.PH_SIMULATOR_FIRST_BYTE_MS, chunkDelayMs: e.PH_SIMULATOR_CHUNK_DELAY_MS, port: e.PH_SIMULATOR_PORT },
    otlp: otlpConfig(e),
  };
}

/** The trace export's protocol, as OpenTelemetry's SDKs read it: the signal's own variable first. */
const protocolOf = (e: z.infer<typeof envSchema>): OtlpProtocol => e.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? e.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf';

/** The trace export's settings, as OpenTelemetry's SDKs read them (the signal's own endpoint and headers first). */
function otlpConfig(e: z.infer<typeof envSchema>): OtlpConfig | null {
  const protocol = protocolOf(e);
  const base = e.OTEL_EXPORTER_OTLP_ENDPOINT;
  // gRPC takes the endpoint as it is: the trace service's method is the path (`/v1/traces` is OTLP/HTTP's).
  let endpoint = e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (base && (protocol === 'grpc' ? base : `${base.replace(/\/+$/, '')}/v1/traces`));
  // gRPC's host:port: TLS unless the insecure setting says otherwise, written as the URL that says it (the library
  // reads it alike, and the start line shows which).
  const insecure = (e.OTEL_EXPORTER_OTLP_TRACES_INSECURE ?? e.OTEL_EXPORTER_OTLP_INSECURE)?.trim().toLowerCase() === 'true';
  if (endpoint && HOST_PORT.test(endpoint)) endpoint = `${insecure ? 'http' : 'https'}://${endpoint}`;
  if (!endpoint || e.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true' || e.OTEL_TRACES_EXPORTER?.trim() === 'none') return null;
  const headers = { ...parseKeyPairsIntoRecord(e.OTEL_EXPORTER_OTLP_HEADERS), ...parseKeyPairsIntoRecord(e.OTEL_EXPORTER_OTLP_TRACES_HEADERS) };
  const { 'service.name': named, ...resource } = resourceAttributes(e.OTEL_RESOURCE_ATTRIBUTES) as Record<string, string>;
  const d = OTLP_DEFAULTS;
  const maxQueueSize = e.OTEL_BSP_MAX_QUEUE_SIZE ?? d.maxQueueSize;
  const limits = d.spanLimits;
  return {
    ...d,
    url: endpoint,
    protocol,
    headers,
    // An empty service.name in the attributes is none (the specification's merge takes the other value over an empty one).
    serviceName: e.OTEL_SERVICE_NAME ?? (named || d.serviceName),
    resourceAttributes: resource,
    timeoutMs: e.OTEL_EXPORTER_OTLP_TRACES_TIMEOUT ?? e.OTEL_EXPORTER_OTLP_TIMEOUT ?? d.timeoutMs,
    compression: e.OTEL_EXPORTER_OTLP_TRACES_COMPRESSION ?? e.OTEL_EXPORTER_OTLP_COMPRESSION ?? d.compression,
    maxQueueSize,
    // Past the queue's size it is refused (batchProblems); the default is cut to a smaller queue, as the SDK does.
    maxExportBatchSize: e.OTEL_BSP_MAX_EXPORT_BATCH_SIZE ?? Math.min(d.maxExportBatchSize, maxQueueSize),
    scheduledDelayMs: e.OTEL_BSP_SCHEDULE_DELAY ?? d.scheduledDelayMs,
    exportTimeoutMs: e.OTEL_BSP_EXPORT_TIMEOUT ?? d.exportTimeoutMs,
    spanLimits: {
      attributeCountLimit: e.OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT ?? e.OTEL_ATTRIBUTE_COUNT_LIMIT ?? limits.attributeCountLimit,
      attributeValueLengthLimit: e.OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT ?? e.OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT ?? limits.attributeValueLengthLimit,
      eventCountLimit: e.OTEL_SPAN_EVENT_COUNT_LIMIT ?? limits.eventCountLimit,
      attributePerEventCountLimit: e.OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT ?? e.OTEL_ATTRIBUTE_COUNT_LIMIT ?? limits.attributePerEventCountLimit,
    },
  };
}

/**
 * A batch larger than the queue: the SDK would cut it to the queue's size with a warning nobody sees. Refused, as the
 * specification has the batch at most the queue.
 */
function batchProblems(e: z.infer<typeof envSchema>): string[] {
  const batch = e.OTEL_BSP_MAX_EXPORT_BATCH_SIZE;
  const queue = e.OTEL_BSP_MAX_QUEUE_SIZE ?? OTLP_DEFAULTS.maxQueueSize;
  if (batch === undefined || batch <= queue) return [];
  return [`  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: must be at most the queue's size, ${queue} (OTEL_BSP_MAX_QUEUE_SIZE${e.OTEL_BSP_MAX_QUEUE_SIZE === undefined ? ', its default' : ''}): a batch is taken from the queue (got ${JSON.stringify(String(batch))})`];
}

/**
 * What gRPC cannot carry, refused at start: an endpoint's path or query (the library would drop it and call the
 * collector's root: a Langfuse `…/api/public/otel` URL, which speaks OTLP/HTTP only) or user and password (dropped
 * too), and a header name gRPC metadata does not allow (`-bin` ones are binary, `grpc-` ones its own): @grpc/grpc-js
 * would throw building the metadata, a stack trace at start instead of this line. And a host:port endpoint with
 * another protocol: OTLP/HTTP's must be a URL.
 */
function grpcProblems(e: z.infer<typeof envSchema>): string[] {
  // The endpoint the traces use: the signal's own when set (the other may serve other signals over OTLP/HTTP).
  const name = e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT';
  const hostPort = HOST_PORT.test(e[name] ?? '');
  if (protocolOf(e) !== 'grpc') return hostPort ? [`  ${name}: must be an http(s) URL: a host:port without a scheme is an OTLP/gRPC endpoint (OTEL_EXPORTER_OTLP_PROTOCOL=grpc) (got ${JSON.stringify(e[name])})`] : [];
  const via = `with ${e.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL'}=grpc`;
  const problems: string[] = [];
  const url = e[name] && !hostPort && new URL(e[name]);
  if (url && ((url.pathname !== '/' && url.pathname !== '') || url.search))
    problems.push(`  ${name}: ${via}, must be an origin alone (http://collector:4317; https:// for TLS): gRPC sends to the trace service's own path, and the library would drop "${url.pathname}${url.search}"; for an OTLP/HTTP endpoint set the protocol to http/protobuf (got ${JSON.stringify(withoutPassword(e[name]))})`);
  else if (url && (url.username || url.password))
    problems.push(`  ${name}: ${via}, must be an origin alone, without a user or password: the library would drop them; send credentials in OTEL_EXPORTER_OTLP_HEADERS (got ${JSON.stringify(withoutPassword(e[name]))})`);
  for (const name of ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS'] as const) {
    const bad = Object.keys(parseKeyPairsIntoRecord(e[name])).filter((key) => !/^[0-9a-z_.-]+$/.test(key.toLowerCase()) || key.toLowerCase().endsWith('-bin') || key.toLowerCase().startsWith('grpc-'));
    if (bad.length > 0) problems.push(`  ${name}: ${via}, each name must be gRPC metadata's (letters, digits, '_', '.', '-'; not ending in -bin, not starting with grpc-): ${bad.map((k) => JSON.stringify(k)).join(', ')} (value not shown)`);
  }
  return problems;
}

/**
 * The TLS files the exporters read themselves (a CA, a client key and certificate; the signal's own first), when the
 * export is on: one they cannot read they skip with a warning nobody sees, and every export's TLS connection is then
 * refused (a private CA's collector), the cause nowhere. Refused at start instead.
 */
function tlsFileProblems(env: Record<string, string | undefined>, on: boolean): string[] {
  if (!on) return [];
  const nameOf = (file: string) => (env[`OTEL_EXPORTER_OTLP_TRACES_${file}`]?.trim() ? `OTEL_EXPORTER_OTLP_TRACES_${file}` : `OTEL_EXPORTER_OTLP_${file}`);
  const unread = (['CERTIFICATE', 'CLIENT_KEY', 'CLIENT_CERTIFICATE'] as const).flatMap((file) => {
    const name = nameOf(file);
    const path = env[name]?.trim();
    try {
      if (path) readFileSync(resolve(path));
      return [];
    } catch (err) {
      return [`  ${name}: cannot be read (${(err as NodeJS.ErrnoException).code}): the exporter would go on without it, and its TLS connection fail on every export (got ${JSON.stringify(path)})`];
    }
  });
  // Mutual TLS takes the client's key and its certificate together: one alone presents no client certificate.
  const [set, unset] = [nameOf('CLIENT_KEY'), nameOf('CLIENT_CERTIFICATE')].sort((a, b) => Number(!env[a]?.trim()) - Number(!env[b]?.trim()));
  if (!env[set!]?.trim() || env[unset!]?.trim()) return unread;
  return [...unread, `  ${set}: set without ${unset}: mutual TLS takes the client's key and certificate together, and the collector would refuse every export`];
}

/**
 * OTEL_EXPORTER_OTLP_ENDPOINT is a base URL, to which OTLP/HTTP adds /v1/traces: one that ends in it already (the
 * traces URL a receiver's page shows) would send every export to …/v1/traces/v1/traces, a 404 each.
 */
function tracesTwice(e: z.infer<typeof envSchema>): string[] {
  const base = e.OTEL_EXPORTER_OTLP_ENDPOINT;
  // Only a URL: a host:port (gRPC's form, refused with OTLP/HTTP above) has no path to check.
  if (protocolOf(e) === 'grpc' || e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || !base || !URL.canParse(base) || !/\/v1\/traces\/*$/.test(new URL(base).pathname)) return [];
  return [`  OTEL_EXPORTER_OTLP_ENDPOINT: the base URL, to which OTLP/HTTP adds /v1/traces: this one would send to ${JSON.stringify(withoutPassword(`${base.replace(/\/+$/, '')}/v1/traces`))}; drop its /v1/traces, or set the whole URL as OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (got ${JSON.stringify(withoutPassword(base))})`];
}

/** Config for tests and embedding: defaults plus overrides, no environment. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return { ...loadConfig({}), databasePath: ':memory:', log: 'off', ...overrides };
}
