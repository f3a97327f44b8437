import { ApiError, formatProblem, seg, type Api, type Problem } from '../api';
import type { RequestFormat } from '../../domain/render/request';
import { API_HELP, API_OPTIONS, readInput, type Command } from '../command';
import { isoChecks, type IsoChecks } from '../iso';
import { printable, tokens } from '../table';
import { normalizeUsage, UsageShapeError } from '../../domain/usage/normalize';
import { MAX_TIME, MIN_EPOCH_MS } from '../../domain/clock';
import { findInvalidJson } from '../../domain/canonical-json';
import { usageProviderOf } from '../../domain/usage/normalize';
import { listedStreamUsage } from '../../domain/usage/stream';

/** The service's batch limit is larger (PH_USAGE_BATCH_MAX); 500 keeps each request small. */
const BATCH = 500;
/** Renders in flight at once. */
const RENDERS = 8;

/** `f` of each item, at most `limit` running at once; the answers in the items' order. */
async function inTurn<T, R>(items: T[], limit: number, f: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

interface Call {
  format: string;
  request: Record<string, unknown>;
  response?: Record<string, unknown> | unknown[];
  usage?: Record<string, unknown>;
  started_at: number | string;
  first_byte_at?: number | string;
  finished_at?: number | string;
  model?: string;
}

interface Pending {
  line: number;
  record: Record<string, unknown>;
  /** Whether the call referenced a handle (one that did not is on no handle's report, counted apart on the tenant's), and whether any rendered content. */
  handles: 'none' | 'empty' | 'some';
}

/** Inline content POST /v1/render recorded as an artifact version's (match_handles). */
interface Matched {
  segment: number;
  source: string;
  pointer: string;
}

/** A warning of POST /v1/render's. */
interface Warning {
  code: string;
  text: string;
  detail: string;
}

interface BatchResult {
  status: number;
  capture?: string;
  applied_late?: boolean;
  problem?: Problem;
}

export const importCalls: Command = {
  name: 'import',
  summary: 'render and reconcile historical provider calls from JSONL',
  help: `Usage: prefix-handles import <file.jsonl | -> [--match-handles]

Each line is one historical call:
  { "format": "anthropic" | "openai-chat" | "openai-responses" | "gemini",
    "request": { provider request body; may reference handles },
    "response": { provider response body as received }   (or "usage": its usage object),
    "started_at": epoch ms | RFC 3339,  "first_byte_at"?: …,  "finished_at"?: …,
    "model"?: "…" (when the body has none, e.g. Gemini) }

Every line is rendered (POST /v1/render), then reconciled with its timestamps in
batches of ${BATCH} (POST /v1/usage/batch), oldest call first, so the cache simulation
sees them in the order they happened. A line repeated in the file (the same text, or
the same response id and start) is skipped and named, a refused line rejected again;
a call already recorded (the same model, start and provider counts, reconciled: the
file imported before) is skipped, so importing a file again counts each call once.

Shows a progress bar on a terminal, plain lines otherwise, then a summary with the
reason for every rejected line. Exits 1 if any line was rejected.

Options:
  --match-handles   a line's own tools and system prompt that are, as the provider reads
                    them, an artifact version you minted are recorded as that version's
                    (on its report); the summary counts the lines per version matched,
                    and names system prompts close to one matched but not equal
${API_HELP}`,
  options: { ...API_OPTIONS, 'match-handles': { type: 'boolean' } },
  positionals: [1, 1],
  async run({ positionals, values, api }) {
    const matchHandles = values['match-handles'] === true;
    const file = positionals[0]!;
    const text = readInput(file).toString('utf8');
    const lines = text.split('\n').map((s, i) => ({ n: i + 1, s: s.trim() })).filter((l) => l.s !== '');
    const rejected: Array<{ line: number; reason: string }> = [];
    const captures: Record<string, number> = {};
    let accepted = 0;
    let late = 0;
    let noHandle = 0;
    // With --match-handles: lines per artifact version their inline content was recorded as, and where it stood.
    const matches = new Map<string, { lines: number; where: Set<string> }>();
    // The places each line's content was matched at (pointers in the line's request), for the near misses below.
    const matchedAt = new Map<number, Set<string>>();
    let emptyHandles = 0;
    let done = 0;
    const progress = progressBar(lines.length);
    const iso = await isoChecks();

    const calls: Array<{ line: number; call: Call; at: number }> = [];
    // A line given twice (a log shipper's retry, or a logger writing it again): the call is imported once, the repeat
    // skipped and named. The same response id alone is not enough: some OpenAI-compatible servers repeat ids.
    const firstLine = new Map<string, number>();
    const firstId = new Map<string, number>();
    const duplicates: Array<{ line: number; reason: string }> = [];
    for (const l of lines) {
      const parsed = parseCall(l.s, iso);
      const id = typeof parsed === 'string' ? undefined : responseId(parsed);
      const sameLine = firstLine.get(l.s);
      const sameId = id ? firstId.get(id) : undefined;
      if (sameLine !== undefined || sameId !== undefined) {
        duplicates.push({ line: l.n, reason: sameLine !== undefined ? `the same line as line ${sameLine}: skipped` : `the same response id (${printable(id!.slice(id!.lastIndexOf(' ') + 1))}) and start as line ${sameId}: skipped` });
        done++;
        continue;
      }
      if (typeof parsed === 'string') {
        // Not a call: its repeat is rejected for the same reason, not counted as a call imported once.
        rejected.push({ line: l.n, reason: parsed });
        done++;
        continue;
      }
      firstLine.set(l.s, l.n);
      if (id) firstId.set(id, l.n);
      calls.push({ line: l.n, call: parsed, at: typeof parsed.started_at === 'number' ? parsed.started_at : Date.parse(parsed.started_at) });
    }
    // Stable sort: calls that started together keep their file order.
    calls.sort((a, b) => a.at - b.at);
    // A call this tenant already has reconciled (the file, or part of it, imported before; a run again after fixing
    // its rejected lines): skipped, so it is not counted twice.
    const already = await alreadyRecorded(api(), calls);
    for (let i = calls.length - 1; i >= 0; i--) if (already.has(calls[i]!.line)) calls.splice(i, 1);
    done += already.size;

    // The render's warnings, one entry per code (per model for unknown_model): how many lines, the first one's detail.
    const warnings = new Map<string, { code: string; lines: Set<number>; first: number; detail: string }>();
    const warn = (w: Warning, line: number) => {
      const key = w.code === 'unknown_model' ? `${w.code} ${w.text}` : w.code;
      const seen = warnings.get(key) ?? warnings.set(key, { code: w.code, lines: new Set(), first: line, detail: w.detail }).get(key)!;
      seen.lines.add(line);
      // Calls are rendered in start order: the first in the file is the smallest line.
      if (line < seen.first) Object.assign(seen, { first: line, detail: w.detail });
    };

    let pending: Pending[] = [];
    const flush = async () => {
      if (!pending.length) return;
      const res = await api().json<{ results: BatchResult[] }>('POST', '/v1/usage/batch', { records: pending.map((p) => p.record) });
      res.results.forEach((r, i) => {
        if (r.status < 300) {
          accepted++;
          if (r.applied_late) late++;
          if (pending[i]!.handles === 'none') noHandle++;
          if (pending[i]!.handles === 'empty') emptyHandles++;
          captures[r.capture ?? 'reported'] = (captures[r.capture ?? 'reported'] ?? 0) + 1;
        } else rejected.push({ line: pending[i]!.line, reason: r.problem ? formatProblem(relative(r.problem)) : `HTTP ${r.status}` });
      });
      pending = [];
      progress.batch(done, accepted, rejected.length);
    };

    type Rendered = { request_id: string; segments: Array<{ source: string }>; warnings: Warning[]; matched?: Matched[] };
    const render = (call: Call) =>
      api().json<Rendered>('POST', '/v1/render', {
        format: call.format,
        request: call.request,
        ...(call.model ? { model: call.model } : {}),
        ...(matchHandles ? { match_handles: true } : {}),
      });
    // A batch's lines are rendered RENDERS at a time (the service group-commits renders that arrive together; one at a
    // time, each waited for its own commit), then taken in start order as before: the summary is the same.
    for (let from = 0; from < calls.length; from += BATCH) {
      const chunk = calls.slice(from, from + BATCH);
      const answers = await inTurn(chunk, RENDERS, ({ call }) => render(call).then((ok) => ({ ok }), (err: unknown) => ({ err })));
      chunk.forEach(({ line, call }, i) => {
        const answer = answers[i]!;
        if ('ok' in answer) {
          const rendered = answer.ok;
          for (const w of rendered.warnings) warn(w, line);
          for (const m of rendered.matched ?? []) {
            const seen = matches.get(m.source) ?? matches.set(m.source, { lines: 0, where: new Set() }).get(m.source)!;
            seen.lines++;
            seen.where.add(m.pointer.replace(/^\/request/, '').replace(/\/\d+$/, ''));
            (matchedAt.get(line) ?? matchedAt.set(line, new Set()).get(line)!).add(m.pointer.replace(/^\/request/, ''));
          }
          // A handle can be named and render nothing (a session's first turn, still empty): it was referenced all the same.
          const handles = rendered.segments.some((s) => s.source !== 'inline') ? 'some' : namesHandle(call.request) ? 'empty' : 'none';
          pending.push({ line, record: { request_id: rendered.request_id, ...pick(call, RECORD_FIELDS) }, handles });
        } else {
          const { err } = answer;
          // A bad line is reported; an unreachable service or a bad key would fail every line, so stop.
          if (!(err instanceof ApiError) || err.status === 0 || err.status === 401) throw err;
          rejected.push({ line, reason: err.message });
        }
        done++;
        progress.tick(done, rejected.length);
      });
      await flush();
    }
    await flush();
    progress.end(done, rejected.length);

    rejected.sort((a, b) => a.line - b.line);
    const out = [
      `${file === '-' ? 'stdin' : file}: ${lines.length} line${lines.length === 1 ? '' : 's'}, ${accepted} accepted, ${rejected.length} rejected${duplicates.length ? `, ${duplicates.length} duplicate${duplicates.length === 1 ? '' : 's'} skipped` : ''}${already.size ? `, ${already.size} already imported` : ''}`,
    ];
    if (already.size) {
      const first = [...already].sort((a, b) => a - b);
      out.push(
        `${already.size} line${already.size === 1 ? '' : 's'} already imported, skipped (a reconciled request of the same model, start and provider counts is recorded: its call counted once): line${first.length === 1 ? '' : 's'} ${first.slice(0, 10).join(', ')}${first.length > 10 ? ', …' : ''}`,
      );
    }
    if (duplicates.length) out.push(`${duplicates.length} duplicate line${duplicates.length === 1 ? '' : 's'} skipped (a line, or a response id with the same start, seen before in the file: its call imported once)`);
    for (const d of duplicates) out.push(`  line ${d.line}: ${d.reason}`);
    if (captures.unknown) out.push(`${captures.unknown} accepted without cache fields in the usage: capture unknown`);
    if (noHandle)
      out.push(
        `${noHandle} accepted but referenced no handle: recorded (GET /v1/requests), on no handle's report (the tenant report counts them apart, as calls that referenced no handle) — reports count handle content: ${
          // With the flag the lines were matched already: what they repeat, and why it is no artifact, is suggest's to say.
          matchHandles
            ? `their tools and system prompt are no artifact version of this tenant's as the provider read them; 'prefix-handles suggest ${file === '-' ? '<file>' : file}' lists what they repeat, and says why what it lists would not match (a timestamp in the prompt, a schema's key order)`
            : `mint what every call repeats (the system prompt, the tools) and name it in the lines' "prefix"`
        }`,
      );
    if (emptyHandles)
      out.push(
        `${emptyHandles} accepted whose handles rendered nothing (a session with no turns yet): listed under them (GET /v1/requests?handle=), with 0 tokens on their reports`,
      );
    if (matchHandles)
      out.push(
        matches.size
          ? `inline content matched to handles (recorded as theirs, on their reports):`
          : `inline content matched to no handle: no line's tools or system prompt is, as the provider reads it, an artifact version of this tenant's`,
      );
    // Most lines first; a tie in prompt order (as first met: the sort is stable).
    for (const [source, m] of [...matches].sort((a, b) => b[1].lines - a[1].lines))
      out.push(`  ${source}  ${[...m.where].sort().join(', ')}  on ${m.lines} line${m.lines === 1 ? '' : 's'}`);
    if (matchHandles) {
      const system = [...matches.keys()].filter((ref) => [...matches.get(ref)!.where].some((w) => w !== '/tools'));
      // A line the render refused is no near miss: it was not compared at all.
      const refused = new Set(rejected.map((r) => r.line));
      for (const [ref, near] of await nearMisses(api(), calls.filter((c) => !refused.has(c.line)), matchedAt, system))
        out.push(
          `${near.lines} line${near.lines === 1 ? '' : 's'} carr${near.lines === 1 ? 'ies' : 'y'} a system prompt close to ${ref} but not equal to it (first difference at byte ${near.byte} of ${near.pointer} on line ${near.line}): not matched, the provider read other bytes`,
        );
    }
    // A file imported again is applied after its own first import: said so, as "import older logs first" was no help there.
    if (late) out.push(`${late} accepted but applied after later calls of their model (import older logs first): classed as of that later moment`);
    for (const w of warnings.values()) out.push(`warning ${w.code} on ${w.lines.size} line${w.lines.size === 1 ? '' : 's'} (first line ${w.first}): ${printable(w.detail)}`);
    for (const r of rejected) out.push(`  line ${r.line}: ${r.reason}`);
    process.stdout.write(`${out.join('\n')}\n`);
    return rejected.length ? 1 : 0;
  },
};

/**
 * The system prompts of lines that matched nothing there and are close to a system artifact matched elsewhere in the
 * file (a timestamp line added, a date changed): per artifact, how many lines, and the first one's first difference.
 * Only the artifacts this import matched are compared (a timestamped variant of a prompt beside the prompt itself),
 * not every artifact of the tenant. Close: the common start and end cover 90% of the longer text.
 */
async function nearMisses(api: Api, calls: Array<{ line: number; call: Call }>, matchedAt: Map<number, Set<string>>, refs: string[]) {
  const near = new Map<string, { lines: number; line: number; byte: number; pointer: string }>();
  if (!refs.length) return near;
  const { inlineContent } = await import('../../domain/render/inline-content');
  // A system artifact's neutral expansion is {"system":[its text],"messages":[]}.
  const texts = await Promise.all(refs.map(async (ref) => (JSON.parse((await api.bytes(`/v1/handles/${seg(ref)}/expand?format=neutral`)).toString('utf8')) as { system: string[] }).system[0]!));
  for (const { line, call } of calls) {
    let placed: ReturnType<typeof inlineContent>;
    try {
      placed = inlineContent(call.format as RequestFormat, call.request);
    } catch {
      continue;
    }
    for (const c of placed) {
      if (c.kind !== 'system' || matchedAt.get(line)?.has(c.pointer)) continue;
      const text = c.content as string;
      let best: { ref: string; prefix: number; covered: number } | null = null;
      texts.forEach((a, i) => {
        const prefix = commonPrefix(a, text);
        const covered = prefix + commonSuffix(a, text, Math.min(a.length, text.length) - prefix);
        // Equal text unmatched (another block shape the provider reads otherwise) differs in no byte: not said to.
        if (a !== text && covered >= 0.9 * Math.max(a.length, text.length) && (!best || covered > best.covered)) best = { ref: refs[i]!, prefix, covered };
      });
      if (!best) continue;
      const { ref, prefix } = best;
      const seen = near.get(ref);
      if (seen) seen.lines++;
      else near.set(ref, { lines: 1, line, byte: Buffer.byteLength(text.slice(0, prefix)), pointer: c.pointer });
    }
  }
  return near;
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

/** At most `max` characters, so the start and end counted never overlap. */
function commonSuffix(a: string, b: string, max: number): number {
  let i = 0;
  while (i < max && a.charCodeAt(a.length - 1 - i) === b.charCodeAt(b.length - 1 - i)) i++;
  return i;
}

/** A line as a call, or the reason it is not one. */
function parseCall(s: string, iso: IsoChecks): Call | string {
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch (err) {
    return `not valid JSON: ${(err as Error).message}`;
  }
  const c = v as Call;
  if (!v || typeof v !== 'object' || Array.isArray(v)) return 'not a JSON object';
  const missing = ['format', 'request', 'started_at'].filter((k) => (v as Record<string, unknown>)[k] === undefined);
  if (c.response === undefined && c.usage === undefined) missing.push('response');
  if (missing.length) return `missing ${missing.map((k) => `"${k}"`).join(', ')}`;
  return timeProblem(c, iso) ?? usageProblem(c) ?? c;
}

/**
 * The line's times as the service will check them, but for "in the future" (the service's clock decides
 * that): refused before rendering, as an unreadable usage is.
 */
function timeProblem(c: Call, iso: IsoChecks): string | null {
  const times: number[] = [];
  for (const key of ['started_at', 'first_byte_at', 'finished_at'] as const) {
    const v = c[key];
    if (v === undefined) continue;
    // As the service reads them: Date.parse alone takes "2026-11-24 09:34", which the service refuses after rendering.
    const ms = typeof v === 'string' ? (iso.instant(v) ? Date.parse(v) : Number.NaN) : typeof v === 'number' && Number.isInteger(v) ? v : Number.NaN;
    if (Number.isNaN(ms) || ms > MAX_TIME)
      return `"${key}" is not epoch ms or RFC 3339${typeof v === 'string' && iso.zoneless(v) ? `: ${JSON.stringify(v)} has no zone (add Z for UTC, or +01:00)` : ''}`;
    if (ms < MIN_EPOCH_MS) return `"${key}" is before 1973${typeof v === 'number' && v > 0 ? ': epoch milliseconds are expected, this looks like seconds' : ''}`;
    times.push(ms);
  }
  return times.every((t, i) => i === 0 || times[i - 1]! <= t) ? null : 'times must satisfy started_at <= first_byte_at <= finished_at';
}

/**
 * The line's usage read as the service will read it. A line whose usage the service would refuse is refused
 * before it is rendered: rendered first, it would stay a recorded request that is never reconciled.
 */
function usageProblem(c: Call): string | null {
  const field = c.response !== undefined ? 'response' : 'usage';
  // What the service refuses anywhere in the record (a lone surrogate, a number past a double), refused here too.
  const bad = findInvalidJson(pick(c, RECORD_FIELDS));
  if (bad) return formatProblem({ code: 'invalid_request', detail: bad.detail, errors: [{ pointer: bad.pointer, detail: bad.detail }] });
  try {
    usageOf(c);
    return null;
  } catch (err) {
    if (!(err instanceof UsageShapeError)) throw err;
    return formatProblem({ code: 'invalid_request', detail: 'the usage cannot be read', errors: [{ pointer: `/${field}${err.path}`, detail: err.detail }] });
  }
}

/**
 * The lines whose call the tenant has already reconciled: a request of the same model (as the line names it), the
 * same start to the millisecond and the same provider counts (prompt total, cache read and write, each compared where
 * the line's usage gives it) — what a request list line shows. Read from the list of the days the file's calls
 * started on (asked by its first and last instants, so the service reads the tenant's days, whatever its time zone),
 * a page of 500 at a time. Each recorded request stands for one line: a file with two calls alike
 * (a fan-out logged with one start), imported again, skips both, and imported first, neither.
 */
async function alreadyRecorded(api: Api, calls: Array<{ line: number; call: Call; at: number }>): Promise<Set<number>> {
  const skipped = new Set<number>();
  if (!calls.length) return skipped;
  const keyOf = ({ call, at }: { call: Call; at: number }) => `${at} ${call.model ?? (typeof call.request.model === 'string' ? call.request.model : '')}`;
  // Only the listed requests a line could be are kept: the window's other requests (a busy tenant's live traffic, millions
  // in a month) are paged through, not held.
  const wanted = new Set(calls.map(keyOf));
  const recorded = new Map<string, Listed[]>();
  let cursor: string | null = null;
  do {
    const page: { requests: Listed[]; next_cursor: string | null } = await api.json(
      'GET',
      `/v1/requests?from=${new Date(calls[0]!.at).toISOString()}&to=${new Date(calls[calls.length - 1]!.at).toISOString()}&limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    for (const r of page.requests) {
      if (r.status !== 'reconciled' || !r.started_at) continue;
      const key = `${Date.parse(r.started_at)} ${r.model}`;
      if (wanted.has(key)) (recorded.get(key) ?? recorded.set(key, []).get(key)!).push(r);
    }
    cursor = page.next_cursor;
  } while (cursor);
  for (const c of calls) {
    const { line, call } = c;
    const same = recorded.get(keyOf(c));
    if (!same) continue;
    const u = usageOf(call);
    const i = same.findIndex(
      (r) => (u.total_prompt_tokens === null || r.prompt_tokens === u.total_prompt_tokens) && (u.cache_read_tokens === null || r.cache_read_tokens === u.cache_read_tokens) && (u.cache_write_tokens === null || r.cache_write_tokens === u.cache_write_tokens),
    );
    if (i < 0) continue;
    same.splice(i, 1);
    skipped.add(line);
  }
  return skipped;
}

/** A line of GET /v1/requests, the fields a call already imported is told by. */
interface Listed {
  status: string;
  model: string;
  started_at: string | null;
  prompt_tokens: number | null;
  cache_read_tokens: number | null;
  cache_write_tokens: number | null;
}

/** The line's usage as the service reads it: a streamed answer's chunks (a list is read as a response only), else the response or the usage object. */
function usageOf(c: Call) {
  const provider = usageProviderOf(c.format);
  if (Array.isArray(c.response)) return listedStreamUsage(c.response, provider).usage;
  return normalizeUsage(c.response !== undefined ? c.response : c.usage, provider);
}

/**
 * The provider's id of the answer (Anthropic's msg_…, OpenAI's chatcmpl-… or resp_…, Gemini's responseId) with the
 * call's format and start: one call logged twice has all three.
 */
function responseId(c: Call): string | undefined {
  const r = c.response;
  if (!r || Array.isArray(r)) return undefined;
  const id = r.id ?? r.responseId ?? r.response_id;
  return typeof id === 'string' && id !== '' ? `${c.format} ${String(c.started_at)} ${id}` : undefined;
}

/** Whether a request body names a handle: a non-empty top-level "prefix", or a {"type":"handle"} block anywhere. */
function namesHandle(request: Record<string, unknown>): boolean {
  if (Array.isArray(request.prefix) && request.prefix.length > 0) return true;
  const walk = (v: unknown): boolean => {
    if (Array.isArray(v)) return v.some(walk);
    if (v === null || typeof v !== 'object') return false;
    const o = v as Record<string, unknown>;
    return (o.type === 'handle' && typeof o.ref === 'string') || Object.values(o).some(walk);
  };
  return walk(request);
}

/** The fields of a line that make its usage record; anything else on the line is ignored. */
const RECORD_FIELDS = ['response', 'usage', 'model', 'started_at', 'first_byte_at', 'finished_at'] as const;

function pick(call: Call, keys: readonly (keyof Call)[]): Partial<Call> {
  return Object.fromEntries(keys.filter((k) => call[k] !== undefined).map((k) => [k, call[k]]));
}

/** Batch pointers start with /records/<i>; the rest names a field of the line itself. */
function relative(p: Problem): Problem {
  return { ...p, errors: p.errors?.map((e) => ({ ...e, pointer: e.pointer.replace(/^\/records\/\d+/, '') || '/' })) };
}

/** A bar redrawn in place on a terminal; one plain line per batch otherwise (logs, CI). */
function progressBar(total: number) {
  const tty = Boolean(process.stderr.isTTY);
  let drawn = 0;
  const draw = (done: number, rejected: number) => {
    const width = 30;
    const filled = total ? Math.round((width * done) / total) : width;
    process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${tokens(done)}/${tokens(total)} lines, ${tokens(rejected)} rejected`);
  };
  return {
    tick(done: number, rejected: number) {
      // Redraw at most ten times a second: a terminal write per line would dominate a fast import.
      if (!tty || (Date.now() - drawn < 100 && done < total)) return;
      drawn = Date.now();
      draw(done, rejected);
    },
    batch(done: number, accepted: number, rejected: number) {
      if (tty) draw(done, rejected);
      else process.stderr.write(`import: ${done}/${total} lines read, ${accepted} accepted, ${rejected} rejected\n`);
    },
    end(done: number, rejected: number) {
      if (tty) {
        draw(done, rejected);
        process.stderr.write('\n');
      }
    },
  };
}
