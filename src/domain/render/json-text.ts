import { getNodeValue, parseTree, printParseErrorCode, type Node, type ParseError } from 'jsonc-parser';
import { escapePointer } from '../canonical-json';
import { DomainError, invalid } from '../errors';
import { MAX_JSON_DEPTH, tooDeep } from '../validation';
import { pushAll } from '../arrays';

// Byte-preserving JSON editing: we splice expansions into the caller's text
// and leave every other byte (key order, number spelling, escapes) as sent.

export type JsonNode = Node;

/** Parses strict JSON into a tree with offsets; malformed text is a 400 with the offset. */
export function parseJsonTree(text: string, pointer: string, validated = false): JsonNode {
  let fast: JsonNode | null;
  try {
    fast = strictJsonTree(text, validated);
  } catch (e) {
    if (e instanceof DuplicateName)
      throw invalid(pointer + pointerOf(e.member), `the member "${e.key}" appears twice in one object: readers disagree on which counts (JSON.parse keeps the last, others the first); send it once`);
    throw e === TOO_DEEP ? tooDeep(pointer) : e;
  }
  if (fast) return fast;
  // Not strict JSON: jsonc-parser decides, and names the error.
  const errors: ParseError[] = [];
  let root: JsonNode | undefined;
  try {
    root = parseTree(text, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
  } catch (e) {
    // jsonc-parser recurses too: a text too deep for it is refused as such, not as our failure.
    throw e instanceof RangeError ? tooDeep(pointer) : e;
  }
  if (errors.length || !root) {
    const e = errors[0];
    throw new DomainError('invalid_request', `${pointer || 'body'} is not valid JSON${e ? `: ${printParseErrorCode(e.error)} at offset ${e.offset}` : ''}`, {}, [
      { pointer, detail: 'not valid JSON' },
    ]);
  }
  return root;
}

const NUMBER_CHAR = /[0-9eE.+-]/;

/** An object holds a member name twice: edited, one occurrence would stay behind (a `prefix` sent on to the provider). */
class DuplicateName extends Error {
  constructor(
    readonly member: JsonNode,
    readonly key: string,
  ) {
    super('duplicate member name');
  }
}

function checkUniqueNames(obj: JsonNode): void {
  const props = obj.children!;
  const name = (p: JsonNode) => {
    try {
      return p.children![0]!.value as string;
    } catch {
      // An escape that does not decode: not JSON after all (told wrongly that it was validated).
      throw NOT_JSON;
    }
  };
  if (props.length <= 8) {
    for (let i = 1; i < props.length; i++) for (let j = 0; j < i; j++) if (name(props[i]!) === name(props[j]!)) throw new DuplicateName(props[i]!.children![1]!, name(props[i]!));
    return;
  }
  const seen = new Set<string>();
  for (const p of props) {
    if (seen.has(name(p))) throw new DuplicateName(p.children![1]!, name(p));
    seen.add(name(p));
  }
}

/** The JSON Pointer of a node of a parsed tree, from its root. */
export function pointerOf(node: JsonNode): string {
  const parts: string[] = [];
  for (let n = node; n.parent; ) {
    const up = n.parent;
    // A member's value: its property's name, then the object holding it; an element: its index in the array.
    if (up.type === 'property') {
      parts.push(escapePointer(String(up.children![0]!.value)));
      n = up.parent!;
    } else {
      // Not in the array yet while it is being built: the next index.
      const i = up.children!.indexOf(n);
      parts.push(String(i < 0 ? up.children!.length : i));
      n = up;
    }
  }
  return parts.reverse().map((p) => `/${p}`).join('');
}

const NOT_JSON = new Error('not JSON');
const TOO_DEEP = new Error('nested too deep');

/** A string node with escapes: its value is decoded when it is read. */
class EscapedString {
  readonly type = 'string';
  constructor(
    readonly offset: number,
    readonly length: number,
    readonly parent: Building | undefined,
    private readonly literal: string,
  ) {}

  get value(): string {
    return JSON.parse(this.literal) as string;
  }
}

/** A node while it is built (jsonc-parser's Node, writable). */
type Building = { -readonly [K in keyof JsonNode]: K extends 'children' ? Building[] : K extends 'parent' ? Building : JsonNode[K] };

/**
 * The same tree as jsonc-parser's parseTree (types, offsets, lengths, values,
 * parents) for strict JSON, or null for anything else; throws TOO_DEEP past
 * MAX_JSON_DEPTH. Four times faster: JSON.parse validates natively, then a scan
 * that may trust the text finds each string's end with indexOf and decodes a
 * string with escapes only when its value is read, where jsonc-parser rebuilds
 * every string a character at a time.
 */
export function strictJsonTree(text: string, validated = false): JsonNode | null {
  if (!validated) {
    try {
      JSON.parse(text);
    } catch {
      return null;
    }
  }
  let pos = 0;
  const skip = () => {
    let c: number;
    while ((c = text.charCodeAt(pos)) === 32 || c === 10 || c === 13 || c === 9) pos++;
  };
  const string = (parent: Building | undefined): Building => {
    const start = pos;
    let end = text.indexOf('"', start + 1);
    // A quote ends the string unless an odd number of backslashes escapes it.
    for (;;) {
      if (end < 0) throw NOT_JSON;
      let slashes = 0;
      while (text.charCodeAt(end - 1 - slashes) === 0x5c) slashes++;
      if (slashes % 2 === 0) break;
      end = text.indexOf('"', end + 1);
    }
    pos = end + 1;
    const raw = text.slice(start + 1, end);
    if (!raw.includes('\\')) return { type: 'string', offset: start, length: pos - start, parent, value: raw } as Building;
    // Decoded when read: the long strings with escapes (message texts) are hashed from their text, never read here.
    return new EscapedString(start, pos - start, parent, text.slice(start, pos)) as unknown as Building;
  };
  const literal = (parent: JsonNode | undefined, length: number, value: boolean | null): Building => {
    const node = { type: value === null ? 'null' : 'boolean', offset: pos, length, parent, value } as Building;
    pos += length;
    return node;
  };
  const value = (parent: Building | undefined, depth: number): Building => {
    const c = text.charCodeAt(pos);
    if (depth > MAX_JSON_DEPTH) throw TOO_DEEP;
    if (c === 0x22) return string(parent);
    if (c === 0x7b) {
      const obj = { type: 'object', offset: pos, length: -1, parent, children: [] as Building[] } as Building;
      pos++;
      skip();
      while (text.charCodeAt(pos) !== 0x7d) {
        const prop = { type: 'property', offset: pos, length: -1, parent: obj, children: [] as Building[] } as Building;
        prop.children!.push(string(prop));
        skip();
        prop.colonOffset = pos++;
        skip();
        const v = value(prop, depth + 1);
        prop.children!.push(v);
        prop.length = v.offset + v.length - prop.offset;
        obj.children!.push(prop);
        skip();
        if (text.charCodeAt(pos) === 0x2c) pos++, skip();
      }
      pos++;
      obj.length = pos - obj.offset;
      if (obj.children!.length > 1) checkUniqueNames(obj);
      return obj;
    }
    if (c === 0x5b) {
      const arr = { type: 'array', offset: pos, length: -1, parent, children: [] as Building[] } as Building;
      pos++;
      skip();
      while (text.charCodeAt(pos) !== 0x5d) {
        arr.children!.push(value(arr, depth + 1));
        skip();
        if (text.charCodeAt(pos) === 0x2c) pos++, skip();
      }
      pos++;
      arr.length = pos - arr.offset;
      return arr;
    }
    if (c === 0x74) return literal(parent, 4, true);
    if (c === 0x66) return literal(parent, 5, false);
    if (c === 0x6e) return literal(parent, 4, null);
    const start = pos;
    while (NUMBER_CHAR.test(text[pos] ?? '')) pos++;
    // Every step consumes text: a wrong "validated" ends here, not in an endless loop.
    if (pos === start) throw NOT_JSON;
    return { type: 'number', offset: start, length: pos - start, parent, value: Number(text.slice(start, pos)) } as Building;
  };
  try {
    skip();
    const root = value(undefined, 0);
    // jsonc-parser's root has no parent property at all.
    delete root.parent;
    return root as JsonNode;
  } catch (e) {
    // Not JSON after all (told wrongly that it was validated): the slow path decides.
    if (e === NOT_JSON) return null;
    throw e;
  }
}

export const textOf = (source: string, node: JsonNode) => source.slice(node.offset, node.offset + node.length);
export const valueOf = (node: JsonNode): unknown => getNodeValue(node);

/** The value node of an object's property, or undefined. Last one wins, as JSON.parse does. */
export function property(obj: JsonNode | undefined, key: string): JsonNode | undefined {
  if (!obj || obj.type !== 'object') return undefined;
  let found: JsonNode | undefined;
  for (const p of obj.children ?? []) if (p.children?.[0]?.value === key) found = p.children[1];
  return found;
}

export function propertyNode(obj: JsonNode, key: string): JsonNode | undefined {
  let found: JsonNode | undefined;
  for (const p of obj.children ?? []) if (p.children?.[0]?.value === key) found = p;
  return found;
}

export function elements(node: JsonNode | undefined): JsonNode[] {
  return node?.type === 'array' ? (node.children ?? []) : [];
}

export function childPointer(base: string, key: string | number): string {
  return `${base}/${escapePointer(String(key))}`;
}

export function expectType(node: JsonNode | undefined, type: JsonNode['type'], pointer: string, what: string): JsonNode | undefined {
  if (node && node.type !== type) throw invalid(pointer, `${what} must be ${type === 'array' ? 'an array' : `a ${type}`}`);
  return node;
}

/** A text edit: replace [offset, offset+length) with the pieces, in order. */
export interface TextEdit {
  offset: number;
  length: number;
  pieces: string[];
}

/** A change to an array's elements: items put first, or one element replaced by zero or more items. */
export interface ArrayEdit {
  array: JsonNode;
  prepend?: string[];
  index?: number;
  items?: string[];
}

export type Edit = TextEdit | ArrayEdit;

const isArrayEdit = (e: Edit): e is ArrayEdit => 'array' in e;

/** Replaces an element of an array (or removes a property of an object) by zero or more items. */
export function replaceElement(container: JsonNode, index: number, items: string[]): Edit {
  if (container.type === 'array') return { array: container, index, items };
  // Object property removal (the top-level "prefix"): drop it with one adjacent comma.
  const kids = container.children ?? [];
  const node = kids[index]!;
  const next = kids[index + 1];
  if (next) return { offset: node.offset, length: next.offset - node.offset, pieces: [] };
  const prev = kids[index - 1];
  if (prev) return { offset: prev.offset + prev.length, length: node.offset + node.length - (prev.offset + prev.length), pieces: [] };
  return { offset: node.offset, length: node.length, pieces: [] };
}

/** Inserts items at the start of an array. */
export function prependToArray(array: JsonNode, items: string[]): Edit {
  return { array, prepend: items };
}

/** Inserts a new property as the first one of an object. */
export function prependProperty(obj: JsonNode, key: string, valueJson: string): TextEdit {
  const nonEmpty = (obj.children ?? []).length > 0;
  return { offset: obj.offset + 1, length: 0, pieces: [`${JSON.stringify(key)}:${valueJson}${nonEmpty ? ',' : ''}`] };
}

/**
 * Applies edits. Every array that changes is rebuilt once from its new items
 * and its untouched elements' own text (with any edits inside them applied),
 * so removals, replacements and prepends in one array never fight over commas.
 */
export function applyEdits(text: string, edits: Edit[]): string {
  const byArray = new Map<JsonNode, ArrayEdit[]>();
  let plain: TextEdit[] = [];
  for (const e of edits) {
    if (isArrayEdit(e)) byArray.set(e.array, [...(byArray.get(e.array) ?? []), e]);
    else plain.push(e);
  }
  // Innermost arrays first, so an outer array's elements already carry their inner edits.
  for (const [array, ops] of [...byArray].sort((a, b) => a[0].length - b[0].length)) {
    const inside = (e: TextEdit, n: JsonNode) => e.offset >= n.offset && e.offset + e.length <= n.offset + n.length;
    const nested = plain.filter((e) => inside(e, array));
    plain = plain.filter((e) => !inside(e, array));
    const parts = ops.flatMap((o) => o.prepend ?? []);
    (array.children ?? []).forEach((el, i) => {
      const replaced = ops.find((o) => o.index === i);
      if (replaced) {
        pushAll(parts, replaced.items ?? []);
        return;
      }
      const own = nested.filter((e) => inside(e, el)).map((e) => ({ ...e, offset: e.offset - el.offset }));
      parts.push(applyTextEdits(text.slice(el.offset, el.offset + el.length), own));
    });
    plain.push({ offset: array.offset, length: array.length, pieces: [`[${parts.join(',')}]`] });
  }
  return applyTextEdits(text, plain);
}

/** Non-overlapping text edits; at one offset, inserts go first, in their given order. */
function applyTextEdits(text: string, edits: TextEdit[]): string {
  const sorted = edits
    .map((e, i) => ({ e, i }))
    .sort((a, b) => a.e.offset - b.e.offset || Math.sign(a.e.length) - Math.sign(b.e.length) || a.i - b.i);
  let out = '';
  let at = 0;
  for (const { e } of sorted) {
    if (e.offset < at) throw new Error('overlapping JSON edits');
    out += text.slice(at, e.offset) + e.pieces.join('');
    at = e.offset + e.length;
  }
  return out + text.slice(at);
}
