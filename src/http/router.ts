import { OpenAPIHono } from '@hono/zod-openapi';
import type { AuthContext } from '../domain/tenants';
import { zodIssues } from '../domain/validation';
import { problem } from './problem';

export interface AppEnv {
  Variables: {
    requestId: string;
    auth: AuthContext;
  };
}

// Where a validation error points: a JSON pointer into the body, or the parameter's place.
const TARGET_PREFIX: Record<string, string> = { json: '', query: 'query:', param: 'path:', header: 'header:', cookie: 'cookie:', form: '' };

/** A router whose validation failures answer 422 problem+json naming every failing path. */
export function newRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (result.success) return;
      const errors = zodIssues(result.error, TARGET_PREFIX[result.target] ?? '');
      return problem(c, 'invalid_request', `${errors.length} invalid field${errors.length === 1 ? '' : 's'} in the ${result.target === 'json' ? 'body' : result.target}`, errors);
    },
  });
}
