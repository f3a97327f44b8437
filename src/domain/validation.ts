import type { ZodError } from 'zod';
import { escapePointer } from './canonical-json';
import { DomainError, invalid, type ErrorDetailItem } from './errors';

type Issue = ZodError['issues'][number];

const toPointer = (path: PropertyKey[]) => path.map((p) => `/${escapePointer(String(p))}`).join('');

/**
 * Every failing path of a zod error as JSON pointers under `base`. A union
 * reports the branch that got furthest (not a bare "invalid input"), and an
 * unknown key points at the key itself.
 */
export function zodIssues(error: { issues: Issue[] }, base = ''): ErrorDetailItem[] {
  // A base like "query:" names a parameter, not a JSON document: "query:format", not "query:/format".
  const join = (p: PropertyKey[]) => (base.endsWith(':') ? base + toPointer(p).slice(1) : base + toPointer(p));
  const all = error.issues.flatMap((issue) => expand(issue, []).map(({ path, message }) => ({ pointer: join(path), detail: message })));
  // A body with 150,000 bad blocks is answered with the first ones, not a problem document of megabytes.
  if (all.length <= MAX_LISTED_ISSUES) return all;
  return [...all.slice(0, MAX_LISTED_ISSUES), { pointer: base.endsWith(':') ? base.slice(0, -1) : base, detail: `and ${all.length - MAX_LISTED_ISSUES} more failing places, not listed` }];
}

const MAX_LISTED_ISSUES = 100;

function expand(issue: Issue, prefix: PropertyKey[]): { path: PropertyKey[]; message: string }[] {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'invalid_union' && issue.errors.length) {
    // A loop, not Math.max(...): a branch can hold more issues than a call takes arguments (150,000 blocks).
    const depth = (branch: Issue[]) => branch.reduce((d, i) => Math.max(d, i.path.length + (i.code === 'invalid_type' ? 0 : 0.5)), -Infinity);
    // The deepest; of equally deep ones, one that knows every field sent (a field another branch has says it is meant).
    const unknownKeys = (branch: Issue[]) => branch.some((i) => i.code === 'unrecognized_keys');
    // A branch that refuses the value's `type`, beside one that takes it, is not the one meant (a tool typed "custom"
    // is a custom tool, one typed with a version an Anthropic-defined tool: each is told its own faults).
    const refusesType = (branch: Issue[]) => branch.some((i) => i.path.length === 1 && i.path[0] === 'type');
    const meant = issue.errors.some((b) => !refusesType(b)) ? issue.errors.filter((b) => !refusesType(b)) : issue.errors;
    const best = meant.reduce((a, b) => (depth(b) > depth(a) || (depth(b) === depth(a) && unknownKeys(a) && !unknownKeys(b)) ? b : a));
    if (depth(best) > 0) return best.flatMap((i) => expand(i, path));
  }
  if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => ({ path: [...path, k], message: `unknown field "${k}"` }));
  return [{ path, message: issue.message }];
}

export function validationError(error: { issues: Issue[] }, base: string, message: string): DomainError {
  return new DomainError('invalid_request', message, {}, zodIssues(error, base));
}

/**
 * Deeper documents are refused: the tree walks, canonical JSON and hashing
 * recurse, and a stack overflow would be our 500. No provider request comes
 * near it (the JSON Schemas of tools nest a few dozen levels).
 */
export const MAX_JSON_DEPTH = 512;

export const tooDeep = (pointer: string) =>
  new DomainError('invalid_request', `${pointer || 'the body'} is nested deeper than ${MAX_JSON_DEPTH} levels`, {}, [{ pointer, detail: `nested deeper than ${MAX_JSON_DEPTH} levels` }]);

/**
 * JSON.parse of a body already decoded (its one allowed byte-order mark dropped by the decoder): a mark still there
 * was a second, said as the middleware says it, rather than as the parser's "Unexpected token".
 */
export function parseJsonBody(text: string): unknown {
  if (text.charCodeAt(0) === 0xfeff) throw new SyntaxError('it starts with two byte-order marks');
  return JSON.parse(text);
}

/**
 * Refuses a member named `__proto__`: JSON.parse keeps it, but the objects built from it (zod's, ours) drop it
 * without a word, so what is stored would not be what was sent. Walked only when the text can hold one (the name, or
 * an escape that can spell it). Call after checkDepth (the walk recurses).
 */
export function checkProtoMembers(text: string, value: unknown): void {
  if (!text.includes('__proto__') && !text.includes('\\u')) return;
  refuseProtoMembers(value, '');
}

/** The same for a value about to be kept (a session's turn): a 422 at the first `__proto__` member. */
export function refuseProtoMembers(value: unknown, pointer: string): void {
  const at = protoMember(value, pointer);
  if (at !== null) throw invalid(at, 'a member named "__proto__" cannot be stored: JavaScript objects drop it; rename it');
}

/** The pointer of the first member named `__proto__` in a parsed value, or null. */
export function protoMember(value: unknown, pointer: string): string | null {
  if (value === null || typeof value !== 'object') return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = protoMember(value[i], `${pointer}/${i}`);
      if (found !== null) return found;
    }
    return null;
  }
  if (Object.hasOwn(value, '__proto__')) return `${pointer}/__proto__`;
  for (const key of Object.keys(value)) {
    const found = protoMember((value as Record<string, unknown>)[key], `${pointer}/${escapePointer(key)}`);
    if (found !== null) return found;
  }
  return null;
}

/** Refuses a parsed document nested deeper than MAX_JSON_DEPTH, naming the top-level member that is. */
export function checkDepth(value: unknown): void {
  if (value === null || typeof value !== 'object') return;
  for (const [key, member] of Object.entries(value)) if (nestedTooDeep(member, 1)) throw tooDeep(`/${escapePointer(key)}`);
}

/** True when a value nests deeper than MAX_JSON_DEPTH below `depth` (0: the document itself, as in the render's JSON tree). */
export function nestedTooDeep(value: unknown, depth = 0): boolean {
  if (depth > MAX_JSON_DEPTH) return true;
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) {
    for (const v of value) if (nestedTooDeep(v, depth + 1)) return true;
    return false;
  }
  for (const key in value) if (nestedTooDeep((value as Record<string, unknown>)[key], depth + 1)) return true;
  return false;
}
