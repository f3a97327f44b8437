import type { Context } from 'hono';
import { randomUUID } from 'node:crypto';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { DomainError, type DomainErrorCode, type ErrorDetailItem } from '../domain/errors';
import { BodyError } from './body';

/** The stable codes a client can branch on. */
export type ProblemCode =
  | DomainErrorCode
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'route_not_found'
  | 'method_not_allowed'
  | 'internal'
  | 'bad_gateway'
  | 'gateway_timeout';

// One table: domain error code → HTTP status.
const STATUS: Record<ProblemCode, ContentfulStatusCode> = {
  invalid_request: 422,
  malformed_json: 400,
  unauthorized: 401,
  not_found: 404,
  request_pruned: 404,
  route_not_found: 404,
  method_not_allowed: 405,
  gone: 410,
  version_conflict: 409,
  handle_in_use: 409,
  conflict: 409,
  tenant_name_taken: 409,
  time_zone_fixed: 409,
  thinking_prefix_changed: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  internal: 500,
  bad_gateway: 502,
  gateway_timeout: 504,
};

/** Every code a problem can carry (a client branches on them: they never change meaning). */
export const PROBLEM_CODES = Object.keys(STATUS) as ProblemCode[];

const TITLE: Record<ProblemCode, string> = {
  invalid_request: 'The request is not valid',
  malformed_json: 'The body is not valid JSON',
  unauthorized: 'Missing or invalid credentials',
  not_found: 'Not found',
  request_pruned: 'Pruned past retention',
  route_not_found: 'No such route',
  method_not_allowed: 'Method not allowed',
  gone: 'Deleted',
  version_conflict: 'Version conflict',
  handle_in_use: 'Handle still in use',
  conflict: 'Conflict',
  tenant_name_taken: 'Tenant name taken',
  time_zone_fixed: 'Time zone fixed by reconciled requests',
  thinking_prefix_changed: 'Thinking produced under another prefix',
  payload_too_large: 'Payload too large',
  unsupported_media_type: 'Unsupported media type',
  internal: 'Internal error',
  bad_gateway: 'The upstream provider could not be reached',
  gateway_timeout: 'The upstream provider did not answer in time',
};

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ProblemCode;
  errors?: ErrorDetailItem[];
  requestId?: string;
  [extra: string]: unknown;
}

export function problemBody(c: Context, code: ProblemCode, detail: string, errors?: ErrorDetailItem[], extra: Record<string, unknown> = {}, status: ContentfulStatusCode = STATUS[code]): ProblemBody {
  return {
    ...extra,
    type: `urn:prefix-handles:problem:${code}`,
    title: TITLE[code],
    status,
    detail,
    code,
    ...(errors && errors.length ? { errors } : {}),
    // The hot path runs without the request-id middleware: name the problem all the same.
    requestId: c.get('requestId') ?? saneRequestId(c.req.header('x-request-id')) ?? randomUUID(),
  };
}

/** A client's x-request-id as the request-id middleware takes it (anything else is replaced by one of ours). */
export const REQUEST_ID = /^[\w\-=]{1,255}$/;
/** The client's x-request-id when it is a sane one (what the request-id middleware keeps), else undefined. */
export const saneRequestId = (given: string | undefined) => (given !== undefined && REQUEST_ID.test(given) ? given : undefined);

/** `status`: the table's, unless a route answers a code with another (the proxy's invalid_request is a 400). */
export function problem(c: Context, code: ProblemCode, detail: string, errors?: ErrorDetailItem[], extra: Record<string, unknown> = {}, status: ContentfulStatusCode = STATUS[code]): Response {
  const body = problemBody(c, code, detail, errors, extra, status);
  return c.body(JSON.stringify(body), status, { 'content-type': 'application/problem+json', 'x-request-id': body.requestId! });
}

/** The malformed-JSON detail: the parser's own words say where (`… in JSON at position 31`). */
export function malformedJson(err: unknown): string {
  return err instanceof SyntaxError ? `The request body is not valid JSON: ${err.message}` : 'The request body is not valid JSON.';
}

/**
 * The validator's "Malformed JSON" drops the parser's words: the body's text is
 * still cached on the request, so parsing it again says where it breaks.
 */
async function malformedBody(c: Context): Promise<Response> {
  let detail = malformedJson(null);
  try {
    // The body was read (and cached) by the validator.
    JSON.parse(await c.req.text());
  } catch (e) {
    detail = malformedJson(e);
  }
  return problem(c, 'malformed_json', detail);
}

export function statusOf(code: ProblemCode): number {
  return STATUS[code];
}

/**
 * The one error handler: our domain errors, the framework's HTTP errors, and
 * the unknown — whose message never reaches the client.
 */
export function handleError(err: Error, c: Context): Response | Promise<Response> {
  if (err instanceof DomainError) return problem(c, err.code, err.message, err.errors.length ? err.errors : pathErrors(c, err), err.extra);
  if (err instanceof BodyError) return problem(c, err.code, err.message);
  if (err instanceof HTTPException) {
    if (err.status === 400 && /json/i.test(err.message)) return malformedBody(c);
    if (err.status === 413) return problem(c, 'payload_too_large', err.message);
    if (err.status === 401) return problem(c, 'unauthorized', 'Missing or invalid credentials.');
    const code: ProblemCode = err.status === 404 ? 'route_not_found' : err.status < 500 ? 'invalid_request' : 'internal';
    return problem(c, code, err.status < 500 ? err.message : 'An internal error occurred.');
  }
  if (err instanceof SyntaxError) return problem(c, 'malformed_json', malformedJson(err));
  // The client left while its body was read (Node's "aborted"): its error, not ours, as on the hand-written routes.
  // (Only the body reader's own errors: any other error after the client left is still ours, and logged.)
  if ((err as NodeJS.ErrnoException).code === 'ECONNRESET' || err.message === 'aborted')
    return problem(c, 'malformed_json', 'the client closed the connection before the body ended');
  logUnhandled(c, err);
  return problem(c, 'internal', 'An internal error occurred; quote the requestId when reporting it.');
}

/** A fault of ours, logged with the request's id (the one its problem quotes). */
export function logUnhandled(c: Context, err: unknown): void {
  console.error(JSON.stringify({ level: 'error', time: new Date().toISOString(), requestId: c.get('requestId'), msg: 'unhandled error', error: (err instanceof Error ? err.stack : undefined) ?? String(err) }));
}

/** A 404 or 410 on a route that names its subject in the path (`/v1/requests/{id}`): the pointer is that parameter. */
function pathErrors(c: Context, err: DomainError): ErrorDetailItem[] {
  if (err.code !== 'not_found' && err.code !== 'gone' && err.code !== 'request_pruned') return [];
  const params = c.req.param() as Record<string, string>;
  const name = 'id' in params ? 'id' : 'ref' in params ? 'ref' : undefined;
  return name ? [{ pointer: `path:${name}`, detail: err.message }] : [];
}
