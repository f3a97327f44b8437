// What the proxy needs to know about a caller's body before rendering it, and
// the one edit it makes of its own: asking OpenAI chat streams for their usage.

import { invalid } from '../errors';
import { checkDepth, parseJsonBody } from '../validation';
import { applyEdits, parseJsonTree, prependProperty, property, type Edit } from '../render/json-text';

type Json = Record<string, unknown>;

export interface CallerBody {
  value: Json;
  model: string | undefined;
  stream: boolean;
}

/** Parses the caller's body (a SyntaxError is the usual malformed-JSON problem). */
export function inspectBody(text: string): CallerBody {
  const value: unknown = parseJsonBody(text);
  // Before anything walks it (the session's canonical JSON recurses).
  checkDepth(value);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('', 'the request body must be a JSON object');
  const body = value as Json;
  return { value: body, model: typeof body.model === 'string' ? body.model : undefined, stream: body.stream === true };
}

/** True when a chat stream will end with a usage chunk without our help. */
export function callerAskedForUsage(body: Json): boolean {
  const options = body.stream_options;
  return typeof options === 'object' && options !== null && (options as Json).include_usage === true;
}

const INCLUDE_USAGE = '{"include_usage":true}';

/**
 * The body text with `stream_options.include_usage: true`, every other byte as
 * the caller sent it. The usual case (no stream_options) is one insertion after
 * the opening brace; otherwise the tree locates the object to edit.
 */
export function withIncludeUsage(text: string, body: Json): string {
  if (!('stream_options' in body)) {
    const open = text.indexOf('{');
    const empty = /^\s*\}/.test(text.slice(open + 1));
    return `${text.slice(0, open + 1)}"stream_options":${INCLUDE_USAGE}${empty ? '' : ','}${text.slice(open + 1)}`;
  }
  const root = parseJsonTree(text, '');
  const options = property(root, 'stream_options')!;
  let edit: Edit;
  if (options.type !== 'object') edit = { offset: options.offset, length: options.length, pieces: [INCLUDE_USAGE] };
  else {
    const current = property(options, 'include_usage');
    edit = current ? { offset: current.offset, length: current.length, pieces: ['true'] } : prependProperty(options, 'include_usage', 'true');
  }
  return applyEdits(text, [edit]);
}
