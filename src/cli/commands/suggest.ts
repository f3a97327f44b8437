import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CliError, readInput, UsageError, type Command } from '../command';
import { table, tokens } from '../table';
import { sha256Hex } from '../../domain/digest';
import { DomainError } from '../../domain/errors';
import type { InlineContent } from '../../domain/render/inline-content';
import type { RequestFormat } from '../../domain/render/request';
import type { TokenizerFamily } from '../../domain/tokens';

// Loaded when the command runs: the content schemas must not be built before the service's zod extension (serve).
const domain = async () => ({
  ...(await import('../../domain/handles')),
  ...(await import('../../domain/render/inline-content')),
  ...(await import('../../domain/render/request')),
  ...(await import('../../domain/prompt-tokens')),
  ...(await import('../../domain/tokens')),
  ...(await import('../../domain/volatility')),
});
type Domain = Awaited<ReturnType<typeof domain>>;

/** The tokenizer a format's estimate is counted in (the model's own is not needed to rank what repeats). */
const FAMILY: Record<RequestFormat, TokenizerFamily> = { anthropic: 'anthropic', 'openai-chat': 'o200k_base', 'openai-responses': 'o200k_base', gemini: 'gemini' };

interface Group {
  kind: 'tools' | 'system';
  bytes: Buffer;
  lines: Set<number>;
  /** Lines on which the content, minted, is the prompt the provider read (import --match-handles takes them). */
  matching: Set<number>;
  tokens: number;
  where: Set<string>;
}

export const suggest: Command = {
  name: 'suggest',
  summary: 'list the system prompts and tools a JSONL log repeats, and write them out to mint',
  help: `Usage: prefix-handles suggest <file.jsonl | -> [--dir DIR] [--min-lines N]

Reads the lines 'import' takes and lists the content an artifact could stand for, as
'import --match-handles' looks for it: each line's whole tools list (not Gemini's), each
Anthropic system block, Gemini system part and OpenAI system message at the head of the
messages. Each distinct piece carried by N lines or more, most lines first: its kind,
lines, estimated tokens, where it stands, and the file it is written to, as 'mint' takes it
(a system prompt's exact text, no newline added; tools as the artifact stores them). Then
the mint commands. Content that, minted, would render as another prompt than the one the
provider read (a schema's keys in another order than an artifact's sorted ones, a field
it does not keep) is said so, with how many of its lines an import would match.
Reads the file only: no service or key is needed.

Options:
  --dir DIR         where to write the files (default ./suggested; made if missing)
  --min-lines N     list what N lines or more carry (default 2)`,
  options: { dir: { type: 'string' }, 'min-lines': { type: 'string' } },
  positionals: [1, 1],
  async run({ positionals, values }) {
    const d = await domain();
    const file = positionals[0]!;
    const min = values['min-lines'] === undefined ? 2 : String(values['min-lines']);
    if (typeof min === 'string' && !/^[1-9]\d{0,8}$/.test(min)) throw new UsageError(`--min-lines: a whole number of lines from 1 is expected, not '${min}'`);
    const minLines = Number(min);
    const dir = (values.dir as string | undefined) ?? 'suggested';
    const lines = readInput(file).toString('utf8').split('\n');
    const groups = new Map<string, Group>();
    let read = 0;
    let unread = 0;
    // Lines whose system prompt stands where no artifact renders: counted, so an empty list is explained.
    const elsewhere = new Map<string, number>();
    lines.forEach((text, i) => {
      if (text.trim() === '') return;
      // Every line counts as read, as import counts it (`5/5 lines read`): `4 lines read, 1 not a call` of a
      // five-line file read as if a line had been skipped.
      read++;
      const call = parse(d, text);
      if (!call) return void unread++;
      const place = unrenderedPlace(call.format, call.request);
      if (place) elsewhere.set(place, (elsewhere.get(place) ?? 0) + 1);
      for (const c of d.inlineContent(call.format, call.request)) {
        const bytes = stored(d, c);
        if (!bytes) continue;
        const key = `${c.kind} ${sha256Hex(bytes)}`;
        const g = groups.get(key) ?? groups.set(key, { kind: c.kind, bytes, lines: new Set(), matching: new Set(), tokens: estimate(d, call.format, c), where: new Set() }).get(key)!;
        g.lines.add(i + 1);
        g.where.add(c.pointer.replace(/\/\d+$/, ''));
        if (d.renderedAlike(call.format, c, c.kind === 'tools' ? JSON.parse(bytes.toString('utf8')) : c.content)) g.matching.add(i + 1);
      }
    });

    const notes = [...elsewhere].map(
      ([place, n]) => `${n} line${n === 1 ? '' : 's'} carr${n === 1 ? 'ies' : 'y'} a system prompt as ${place}, where no artifact renders (a system artifact is a system message): not listed, and an import will not match it`,
    );
    notes.push(...volatileVariants(d, [...groups.values()].filter((g) => g.kind === 'system' && g.lines.size < minLines), minLines));
    const listed = [...groups.values()].filter((g) => g.lines.size >= minLines).sort((a, b) => b.lines.size - a.lines.size || b.tokens - a.tokens);
    const out = [`${file === '-' ? 'stdin' : file}: ${read} line${read === 1 ? '' : 's'} read${unread ? `, ${unread} not a call (not JSON, or no known "format" and "request")` : ''}`];
    if (!listed.length) {
      out.push(`no system prompt or tools list is on ${minLines} line${minLines === 1 ? '' : 's'} or more`, ...notes);
      process.stdout.write(`${out.join('\n')}\n`);
      return 0;
    }
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new CliError(`cannot make ${dir}: ${(err as Error).message}`);
    }
    const files = listed.map((g, n) => {
      const path = join(dir, `${g.kind}-${n + 1}.${g.kind === 'tools' ? 'json' : 'txt'}`);
      try {
        writeFileSync(path, g.bytes);
      } catch (err) {
        throw new CliError(`cannot write ${path}: ${(err as Error).message}`);
      }
      return path;
    });
    out.push(`repeated on ${minLines} line${minLines === 1 ? '' : 's'} or more, most lines first, written to ${dir}:`, '');
    out.push(
      table(
        ['#', 'kind', 'lines', 'tokens (est.)', 'where', 'file', 'starts with'],
        listed.map((g, n) => [String(n + 1), g.kind, tokens(g.lines.size), tokens(g.tokens), [...g.where].sort().join(', '), files[n]!, preview(g)]),
        ['right', 'left', 'right', 'right'],
      ),
    );
    const apart = listed.filter((g) => g.matching.size < g.lines.size);
    if (apart.length || notes.length) out.push('', ...notes);
    for (const g of apart)
      out.push(
        `#${listed.indexOf(g) + 1}: on ${g.lines.size - g.matching.size} of its ${g.lines.size} lines the provider read it otherwise than an artifact of it renders (a schema's keys in another order than the sorted ones an artifact stores, a field it does not keep): 'import --match-handles' will match ${g.matching.size}; name the handle in the calls from now on`,
      );
    out.push('', 'mint them, then import:', ...listed.map((g, n) => `  prefix-handles mint ${g.kind} ${files[n]} --name ${g.kind}-${n + 1}`), `  prefix-handles import --match-handles ${file}`);
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  },
};

/**
 * System prompts each on too few lines to list that are one prompt but for volatile values (a timestamp line, a
 * request id): on minLines lines or more together, they are said so, with the first value that differs. The biggest
 * leak a log can hold — every call another prompt from that byte on — would otherwise show as nothing repeated.
 */
function volatileVariants(d: Domain, rare: Group[], minLines: number): string[] {
  const variants = new Map<string, { groups: Group[]; lines: number }>();
  for (const g of rare) {
    const text = g.bytes.toString('utf8');
    const found = d.findVolatility(text);
    if (!found.length) continue;
    // The text with each value's bytes replaced by its kind: equal for prompts that differ in those values alone.
    const bytes = g.bytes;
    let masked = '';
    let at = 0;
    for (const f of found) {
      masked += `${bytes.subarray(at, f.offset).toString('utf8')}\u0000${f.kind}\u0000`;
      at = f.offset + Buffer.byteLength(f.text);
    }
    masked += bytes.subarray(at).toString('utf8');
    const v = variants.get(masked) ?? variants.set(masked, { groups: [], lines: 0 }).get(masked)!;
    v.groups.push(g);
    v.lines += g.lines.size;
  }
  const notes: string[] = [];
  for (const v of [...variants.values()].filter((x) => x.groups.length > 1 && x.lines >= minLines).sort((a, b) => b.lines - a.lines)) {
    const [a, b] = v.groups.map((g) => g.bytes);
    let byte = 0;
    while (a![byte] === b![byte]) byte++;
    const f = d.findVolatility(a!.toString('utf8')).find((x) => byte < x.offset + Buffer.byteLength(x.text))!;
    const line = Math.min(...v.groups.flatMap((g) => [...g.lines]));
    notes.push(
      `${v.lines} lines carry a system prompt (≈${tokens(v.groups[0]!.tokens)} tokens, "${preview(v.groups[0]!)}") that is the same but for volatile values, first ${f.kind} "${f.text}" at byte ${f.offset} on line ${line}: each call is another prompt from that byte on, never read from the cache, and no artifact can match it; move the value out of the system prompt (into the newest message), mint the rest and name it in the calls`,
    );
  }
  return notes;
}

/** Where an OpenAI call keeps its system prompt when no artifact can be it: a developer message, Responses instructions. */
function unrenderedPlace(format: RequestFormat, request: Record<string, unknown>): string | null {
  if (format === 'openai-responses' && typeof request.instructions === 'string' && request.instructions !== '') return 'Responses instructions';
  const list = request[format === 'openai-chat' ? 'messages' : 'input'];
  const first: unknown = (format === 'openai-chat' || format === 'openai-responses') && Array.isArray(list) ? list[0] : undefined;
  return typeof first === 'object' && first !== null && (first as { role?: unknown }).role === 'developer' ? 'a developer message' : null;
}

/** A line's format and request body, or null when it is not a call 'import' would read. */
function parse(d: Domain, text: string): { format: RequestFormat; request: Record<string, unknown> } | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  const call = v as { format?: unknown; request?: unknown };
  if (!v || typeof v !== 'object' || !d.requestFormats.includes(call.format as RequestFormat)) return null;
  if (!call.request || typeof call.request !== 'object' || Array.isArray(call.request)) return null;
  return { format: call.format as RequestFormat, request: call.request as Record<string, unknown> };
}

/** The bytes a mint of the content stores, or null when it is not content of its kind (a tool without a schema). */
function stored(d: Domain, c: InlineContent): Buffer | null {
  try {
    return d.encodeArtifact(c.kind, c.content, '/content');
  } catch (err) {
    if (err instanceof DomainError) return null;
    throw err;
  }
}

/** The content's prompt tokens as a request's estimate counts the caller's units (its tools' shared prompt apart). */
function estimate(d: Domain, format: RequestFormat, c: InlineContent): number {
  const family = FAMILY[format];
  return c.values.reduce<number>((n, v) => n + d.unitTokens(format, c.section, v, (t) => d.countTokens(t, family), d.toolCosts(format, family)), 0);
}

/** The start of a system prompt, or a tools list's names, for telling the rows apart. */
function preview(g: Group): string {
  if (g.kind === 'tools') {
    const names = (JSON.parse(g.bytes.toString('utf8')) as Array<{ name: string }>).map((t) => t.name).join(', ');
    return names.length > 40 ? `${names.slice(0, 39)}…` : names;
  }
  const text = g.bytes.toString('utf8').replace(/\s+/g, ' ');
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}
