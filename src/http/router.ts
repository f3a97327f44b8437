import { OpenAPIHono } from '@hono/zod-openapi';
import type { AuthContext } from '../domain/tenants';
import type { ZodError } from 'zod';
import { DomainError, type ErrorDetailItem } from '../domain/errors';
import { checkDepth, zodIssues } from '../domain/validation';
import { problem } from './problem';

export interface AppEnv {
  Variables: {
    requestId: string;
    auth: AuthContext;
  };
}

// How a message names each place.
const TARGET_NAME: Record<string, string> = { json: 'body', param: 'path', header: 'headers' };

// Where a validation error points: a JSON pointer into the body, or the parameter's place.
const TARGET_PREFIX: Record<string, string> = { json: '', query: 'query:', param: 'path:', header: 'header:', cookie: 'cookie:', form: '' };

/** A router whose validation failures answer 422 problem+json naming every failing path. */
export function newRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (result.success) {
        // Valid by its schema, but too deep for what walks it next (canonical JSON, hashing).
        if (result.target === 'json') checkDepth(result.data);
        return;
      }
      const e = invalidInput(result.error, result.target);
      return problem(c, e.code, e.message, result.target === 'query' ? givenOnce(e.errors, c.req.queries()) : e.errors);
    },
  });
}

/**
 * A parameter given more than once reaches its schema as a list, and its schema's message says nothing of that
 * ("expected string, received array", or `DELETE /v1/tenants/{id}?confirm=a&confirm=b`'s "confirm is required").
 */
function givenOnce(errors: ErrorDetailItem[], queries: Record<string, string[]>): ErrorDetailItem[] {
  return errors.map((e) => {
    const name = e.pointer.slice(TARGET_PREFIX.query!.length);
    const times = Object.hasOwn(queries, name) ? queries[name]!.length : 0;
    return times > 1 ? { pointer: e.pointer, detail: `${name} is given ${times} times: give it once` } : e;
  });
}

/** A zod failure as the 422 every route answers: each failing path, counted in the message. */
export function invalidInput(error: ZodError, target: keyof typeof TARGET_PREFIX): DomainError {
  const errors = zodIssues(error, TARGET_PREFIX[target] ?? '');
  return new DomainError('invalid_request', `${errors.length} invalid field${errors.length === 1 ? '' : 's'} in the ${TARGET_NAME[target] ?? target}`, {}, errors);
}
