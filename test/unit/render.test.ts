import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseTree, type ParseError } from 'jsonc-parser';
import { strictJsonTree as strictJsonTreeOf, type JsonNode } from '../../src/domain/render/json-text';
import { createTestApp, type TestApp } from '../helpers/app';
import { expansionFormats } from '../../src/domain/render/prompt';

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

const text = fc.string({ unit: 'grapheme', maxLength: 40 });
// Text a session keeps: providers refuse blank text blocks.
const prose = text.filter((s) => /\S/.test(s));
const block = fc.oneof(
  prose.map((s) => ({ type: 'text' as const, text: s })),
  fc.record({ type: fc.constant('tool_use' as const), id: fc.constantFrom('call_1', 'call_2'), name: fc.constantFrom('f', 'g'), input: fc.dictionary(fc.string({ maxLength: 5 }), fc.oneof(fc.integer(), text), { maxKeys: 3 }) }),
  fc.record({ type: fc.constant('tool_result' as const), tool_use_id: fc.constantFrom('call_1', 'call_2'), content: text }),
  fc.constant({ type: 'image' as const, source: { type: 'base64' as const, media_type: 'image/png' as const, data: 'iVBORw0KGgo=' } }),
);
const message = fc.record({ role: fc.constantFrom('user' as const, 'assistant' as const), content: fc.oneof(prose, fc.array(block, { minLength: 1, maxLength: 3 })) });
type Msg = { role: 'user' | 'assistant'; content: string | Array<{ type: string; id?: string; tool_use_id?: string }> };
const blocksOf = (m: Msg | undefined) => (m && Array.isArray(m.content) ? m.content : []);
/**
 * Tool calls as a session can keep them (the service refuses the rest): a result only right after its call,
 * a call only when the next message answers it. Unpaired blocks are dropped (a message left empty says "x").
 */
function paired(list: Msg[][]): Msg[][] {
  const all = list.flat();
  // Calls only from the assistant, results only from the user and first in it, each id once in a message.
  for (const m of all)
    if (Array.isArray(m.content)) {
      const ids = new Set<string | undefined>();
      const kept = m.content.filter((b) => {
        if (b.type === 'tool_use' && m.role !== 'assistant') return false;
        if (b.type === 'tool_result' && m.role !== 'user') return false;
        if (b.type !== 'tool_use' && b.type !== 'tool_result') return true;
        const id = b.id ?? b.tool_use_id;
        return ids.has(id) ? false : (ids.add(id), true);
      });
      m.content = [...kept.filter((b) => b.type === 'tool_result'), ...kept.filter((b) => b.type !== 'tool_result')];
    }
  all.forEach((m, k) => {
    const prev = all[k - 1];
    const calls = new Set(prev?.role === 'assistant' ? blocksOf(prev).filter((b) => b.type === 'tool_use').map((b) => b.id) : []);
    if (Array.isArray(m.content)) m.content = m.content.filter((b) => b.type !== 'tool_result' || calls.has(b.tool_use_id));
    const answered = new Set(blocksOf(m).filter((b) => b.type === 'tool_result').map((b) => b.tool_use_id));
    if (prev && Array.isArray(prev.content)) prev.content = prev.content.filter((b) => b.type !== 'tool_use' || answered.has(b.id));
    for (const x of [prev, m]) if (x && Array.isArray(x.content) && x.content.length === 0) x.content = [{ type: 'text', text: 'x' } as never];
  });
  return list;
}
const batches = fc.array(fc.array(message, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 4 }).map((b) => paired(b as Msg[][]) as typeof b);

describe('rendering properties', () => {
  it('a session at v+1 extends v, byte for byte, in every format; expansion is deterministic', async () => {
    await fc.assert(
      fc.asyncProperty(text, batches, async (system, appended) => {
        const { client, id: tenantId } = t.tenant();
        const sys = await client.post('/v1/artifacts', { kind: 'system', content: system });
        const bundle = await client.post('/v1/bundles', { members: [sys.json.id] });
        const s = await client.post('/v1/sessions', { base: bundle.json.id });
        for (const batch of appended) expect((await client.post(`/v1/sessions/${s.json.id}/messages`, { messages: batch })).status).toBe(201);
        for (const format of expansionFormats) {
          let previous = '';
          for (let v = 1; v <= appended.length + 1; v++) {
            const res = await client.get(`/v1/handles/${s.json.id}@${v}/expand?format=${format}`);
            expect(res.status).toBe(200);
            // Deterministic: a fresh render (no cache) of the same version gives the same bytes.
            const fresh = t.services.handles.segmentsOf(t.services.handles.getHandle(tenantId, s.json.id), v);
            const { renderExpansion } = await import('../../src/domain/render/formats');
            expect(renderExpansion(format, structuredClone(fresh))).toBe(res.text);
            if (previous) expect(res.text.startsWith(previous.slice(0, -2)), `${format} v${v}`).toBe(true);
            previous = res.text;
          }
        }
      }),
      { numRuns: 25 },
    );
  });
});

describe('segment digests of handles', () => {
  it('are the same from a warm renderer as from a fresh one, and change with the content', async () => {
    const shape = (segments: Array<Record<string, unknown>>) => segments.map(({ source, path: _path, ...rest }) => ({ inline: source === 'inline', digest: rest.digest as string, ...rest }));
    await fc.assert(
      fc.asyncProperty(text, text, fc.constantFrom('anthropic', 'openai-chat', 'openai-responses', 'gemini'), async (a, b, format) => {
        const key = format === 'openai-responses' ? 'input' : format === 'gemini' ? 'contents' : 'messages';
        const msg = format === 'gemini' ? { role: 'user', parts: [{ text: 'hi' }] } : { role: 'user', content: 'hi' };
        const model = format === 'gemini' ? 'gemini-2.5-pro' : format === 'anthropic' ? 'claude-sonnet-4-5' : 'gpt-5';
        const renderIn = async (app: TestApp, times: number) => {
          const { client } = app.tenant();
          const sysA = (await client.post('/v1/artifacts', { kind: 'system', content: `A: ${a}` })).json.id;
          const sysB = (await client.post('/v1/artifacts', { kind: 'system', content: `B: ${b}` })).json.id;
          const bundle = (await client.post('/v1/bundles', { members: [sysA, sysB] })).json.id;
          const out = [];
          for (let i = 0; i < times; i++) {
            const res = await client.post('/v1/render', { format, request: { model, prefix: [bundle], [key]: [msg] } });
            expect(res.status, res.text).toBe(200);
            out.push(shape(res.json.segments));
          }
          return out;
        };
        // The second render takes the handle digests from the cache; a fresh app (same content, other ids) computes them.
        const [first, again] = await renderIn(t, 2);
        const other = createTestApp();
        try {
          const [fresh] = await renderIn(other, 1);
          expect(again).toEqual(first);
          expect(fresh).toEqual(first);
        } finally {
          other.close();
        }
        const handles = first!.filter((s) => !s.inline);
        expect(handles.length).toBeGreaterThan(0);
        expect(new Set(handles.map((s) => s.digest)).size).toBe(handles.length);
      }),
      { numRuns: 20 },
    );
  });

  it("of the caller's own messages are the same from a warm renderer as from a fresh one, breakpoints included", async () => {
    // The renderer remembers each inline message by its exact text; a remembered one must count exactly as a new one.
    const block = fc.record({ type: fc.constant('text'), text }, { requiredKeys: ['type', 'text'] }).chain((b) =>
      fc.constantFrom(undefined, { type: 'ephemeral' }, { type: 'ephemeral', ttl: '1h' }).map((cc) => (cc ? { ...b, cache_control: cc } : b)),
    );
    const msg = fc.record({ role: fc.constantFrom('user', 'assistant'), content: fc.oneof(text, fc.array(block, { minLength: 1, maxLength: 2 })) });
    await fc.assert(
      fc.asyncProperty(fc.array(msg, { minLength: 1, maxLength: 3 }), fc.array(msg, { minLength: 1, maxLength: 3 }), async (before, after) => {
        const marks = JSON.stringify([...before, ...after]).split('cache_control').length - 1;
        fc.pre(marks <= 3);
        const render = async (app: TestApp, messages: unknown[]) => {
          const { client } = app.tenant();
          const sys = (await client.post('/v1/artifacts', { kind: 'system', content: 'Policy. '.repeat(600) })).json.id;
          const res = await client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', prefix: [sys], messages } });
          expect(res.status, res.text).toBe(200);
          const { segments, breakpoints, body } = res.json;
          // The units reconciliation keys on are stored, not shown: read them back.
          app.services.writes.flushNow();
          const stored = JSON.parse(app.sqlite.prepare('select segments from requests where id = ?').pluck().get(res.json.request_id) as string) as Array<{ units: unknown }>;
          expect(stored.every((seg) => Array.isArray(seg.units) && seg.units.length > 0)).toBe(true);
          return {
            segments: segments.map(({ source: _s, path: _p, chain: _c, ...rest }: Record<string, unknown>) => rest),
            units: stored.map((s) => s.units),
            breakpoints: breakpoints.map(({ source: _s, ...rest }: Record<string, unknown>) => rest),
            body: JSON.stringify(body).replace(/art_\w+/g, 'art'),
          };
        };
        // Warm: the same messages seen before (kept from their second sighting), as an agent loop sends them again.
        await render(t, before);
        await render(t, before);
        const warm = await render(t, [...before, ...after]);
        const other = createTestApp();
        try {
          expect(warm).toEqual(await render(other, [...before, ...after]));
        } finally {
          other.close();
        }
      }),
      { numRuns: 25 },
    );
  });

  it('of two long messages that differ only in the middle are not taken for one another', async () => {
    // The renderer looks a message up by its length, head and tail; a message with the same three must still
    // be compared whole, or a changed TTL in the middle would be reported with the old one.
    const message = (ttl: string) => ({
      role: 'user',
      content: [
        { type: 'text', text: 'P'.repeat(80) },
        { type: 'text', text: 'Q'.repeat(80), cache_control: { type: 'ephemeral', ttl } },
        { type: 'text', text: 'R'.repeat(80) },
      ],
    });
    expect(JSON.stringify(message('1h')).length).toBe(JSON.stringify(message('5m')).length);
    const render = async (app: TestApp, ttl: string) => {
      const res = await app.tenant().client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', messages: [message(ttl)] } });
      expect(res.status, res.text).toBe(200);
      return { digests: res.json.segments.map((s: { digest: string }) => s.digest), breakpoints: res.json.breakpoints.map((b: { ttl: string }) => b.ttl) };
    };
    const warm = createTestApp();
    const fresh = createTestApp();
    try {
      const hour = await render(warm, '1h');
      expect(await render(warm, '1h')).toEqual(hour);
      const minutes = await render(warm, '5m');
      expect(minutes).toEqual(await render(fresh, '5m'));
      expect(minutes.digests).not.toEqual(hour.digests);
      expect(minutes.breakpoints).not.toEqual(hour.breakpoints);
    } finally {
      warm.close();
      fresh.close();
    }
  });
});

describe('inline values and the strict JSON tree', () => {
  // The message digests hash a node's value as JSON.parse of its text gives it: that must be exactly what the
  // tree walk gives, or inline digests would change and report drift that never happened.
  const ws = fc.constantFrom('', ' ', '\t', '\n', '\r\n', ' \n\t ');
  /** A JSON string literal spelling `s`, each character raw or escaped at random. */
  const literal = (s: string, escapes: boolean[]) =>
    `"${[...s]
      .map((ch, k) => {
        const code = ch.charCodeAt(0);
        const must = ch === '"' || ch === '\\' || code < 0x20;
        if (!must && !escapes[k % escapes.length]) return ch;
        const short: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\t': '\\t', '\r': '\\r', '\b': '\\b', '\f': '\\f', '/': '\\/' };
        return short[ch] && escapes[(k + 1) % escapes.length] ? short[ch] : [...ch].map((u) => `\\u${u.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
      })
      .join('')}"`;
  // Backslashes and quotes next to each other (a string ending in an escaped backslash) come from the small alphabet.
  const chars = fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.string({ unit: fc.constantFrom('\\', '"', 'a', '/', '\n'), maxLength: 6 }));
  const str = fc.tuple(chars, fc.array(fc.boolean(), { minLength: 1, maxLength: 5 })).map(([v, e]) => literal(v, e));
  const key = fc.oneof(str, fc.constantFrom('__proto__', 'cache_control', 'a', 'constructor').chain((k) => fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }).map((e) => literal(k, e))));
  const number = fc.oneof(
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
    fc.constantFrom('-0', '1E2', '1e+2', '1.50', '0.1e1', '1e400', '-1e-400', '5e-324', '123456789012345678901234567890', '0.30000000000000004', '9007199254740993'),
  );
  const json: fc.Arbitrary<string> = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, str, number, fc.constantFrom('true', 'false', 'null'), tie('array'), tie('object')),
    array: fc.tuple(fc.array(fc.tuple(ws, tie('value'), ws), { maxLength: 4 }), ws).map(([items, w]) => (items.length ? `[${items.map(([a, v, b]) => `${a}${v}${b}`).join(',')}]` : `[${w}]`)),
    object: fc
      .tuple(fc.array(fc.tuple(ws, key, ws, ws, tie('value'), ws), { maxLength: 4 }), ws)
      .map(([props, w]) => (props.length ? `{${props.map(([a, k, b, c, v, d]) => `${a}${k}${b}:${c}${v}${d}`).join(',')}}` : `{${w}}`)),
  })).value as fc.Arbitrary<string>;

  it('equals the tree walk for any JSON text: escapes, number spellings, whitespace, duplicate and "__proto__" keys', async () => {
    const { parseJsonTree, textOf, valueOf } = await import('../../src/domain/render/json-text');
    fc.assert(
      fc.property(json, ws, (text, w) => {
        const source = `{"x":${w}${text}${w}}`;
        // A name twice in one object is refused (an edit of one would leave the other): the rest walks alike.
        if (duplicateNames(slowTree(source)!)) return void expect(() => parseJsonTree(source, '')).toThrow(/appears twice in one object/);
        const node = parseJsonTree(source, '').children![0]!.children![1]!;
        expect(JSON.stringify(JSON.parse(textOf(source, node)))).toBe(JSON.stringify(valueOf(node)));
      }),
      { numRuns: 1000 },
    );
  });

  /** What a node says, without its parent link (compared apart); a string's value may be a getter. */
  const plain = (n: JsonNode): unknown => ({ type: n.type, offset: n.offset, length: n.length, colonOffset: n.colonOffset, value: n.value, children: n.children?.map(plain) });
  const linked = (n: JsonNode): boolean => (n.children ?? []).every((c) => c.parent === n && linked(c));
  const slowTree = (text: string) => {
    const errors: ParseError[] = [];
    const root = parseTree(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
    return errors.length ? null : root!;
  };
  /** Whether some object of a tree holds a member name twice (jsonc-parser keeps both). */
  const duplicateNames = (n: JsonNode): boolean => {
    const names = n.type === 'object' ? (n.children ?? []).map((p) => p.children![0]!.value as string) : [];
    return new Set(names).size < names.length || (n.children ?? []).some(duplicateNames);
  };
  /** The fast tree, or 'duplicate' where it refuses a name twice in one object. */
  const fastTree = (text: string, validated?: boolean) => {
    try {
      return strictJsonTreeOf(text, validated);
    } catch (e) {
      if ((e as Error).message === 'duplicate member name') return 'duplicate' as const;
      throw e;
    }
  };

  it("the fast tree is jsonc-parser's tree for any strict JSON text", async () => {
    fc.assert(
      fc.property(json, ws, ws, (text, a, b) => {
        const source = `${a}${text}${b}`;
        const fast = fastTree(source);
        expect(fast).not.toBeNull();
        if (fast === 'duplicate') return void expect(duplicateNames(slowTree(source)!)).toBe(true);
        expect(duplicateNames(slowTree(source)!)).toBe(false);
        expect(plain(fast!)).toEqual(plain(slowTree(source)!));
        // The proxy's body, already parsed: the same tree without validating again.
        expect(plain(strictJsonTreeOf(source, true)!)).toEqual(plain(fast!));
        expect('parent' in fast!).toBe(false);
        expect(linked(fast!)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('the fast tree refuses whatever jsonc-parser refuses (so the slow path names the error)', async () => {
    // One character deleted, inserted or replaced: mostly invalid texts, some still valid.
    const tricky = fc.constantFrom('"', '\\', ',', ':', '{', '}', '[', ']', '-', '+', '.', 'e', '0', '1', ' ', '\t', '\u0001', '\u00a0', '\ufeff', '/', 'x', 'n', 'u');
    const edited = fc.tuple(json, fc.nat(), tricky, fc.constantFrom('delete', 'insert', 'replace')).map(([text, at, ch, how]) => {
      const i = at % (text.length + 1);
      return how === 'delete' ? text.slice(0, i) + text.slice(i + 1) : how === 'insert' ? text.slice(0, i) + ch + text.slice(i) : text.slice(0, i) + ch + text.slice(i + 1);
    });
    let valid = 0;
    let refused = 0;
    fc.assert(
      fc.property(edited, (source) => {
        const fast = fastTree(source);
        const slow = slowTree(source);
        // Told wrongly that a text is valid, the scan still ends (with a tree, null or a name twice) and never hangs.
        expect(() => fastTree(source, true)).not.toThrow();
        if (fast === 'duplicate') expect(slow !== null && duplicateNames(slow)).toBe(true);
        else if (fast === null) {
          refused++;
          // Refused only what jsonc-parser refuses too, or what JSON.parse refuses (jsonc-parser is laxer there).
          expect(slow === null || isNotStrict(source)).toBe(true);
        } else {
          valid++;
          expect(slow).not.toBeNull();
          expect(plain(fast)).toEqual(plain(slow!));
        }
      }),
      { numRuns: 3000 },
    );
    // Both branches ran.
    expect(valid).toBeGreaterThan(100);
    expect(refused).toBeGreaterThan(100);
  });

  it('the parse error is still named with its offset', async () => {
    const { parseJsonTree } = await import('../../src/domain/render/json-text');
    expect(() => parseJsonTree('{"a":1,}', '/body')).toThrow(/\/body is not valid JSON: .* at offset 7/);
    expect(() => parseJsonTree('{"a":01}', '')).toThrow(/body is not valid JSON: .* at offset 6/);
  });
});

/** Texts jsonc-parser takes although they are not strict JSON (none are known; kept explicit). */
function isNotStrict(source: string): boolean {
  try {
    JSON.parse(source);
    return false;
  } catch {
    return true;
  }
}
