// The typed client of the REST API (README: Typed client): openapi-fetch over the types openapi-typescript
// generates from /openapi.json (./openapi.ts, `npm run client:types`). Each call answers its success body as the
// document types it, or NotModified for a conditional GET's 304; any other answer throws a ProblemError with the
// problem's status, code, detail and errors[].

import createFetchClient, { type Client, type ClientPathsWithMethod, type MaybeOptionalInit, type MethodResponse } from 'openapi-fetch';
import type { components, paths } from './openapi.js';

export type { components, paths } from './openapi.js';
/** The document's named shapes: `Schemas['MintResult']`, `Schemas['HandleReport']`, … */
export type Schemas = components['schemas'];
export type Problem = Schemas['Problem'];

/** A refusal: the service's problem+json (README: Errors), or a status without one (a proxy's page in front of it). */
export class ProblemError extends Error {
  readonly status: number;
  /** The stable code to branch on; undefined when the answer was not a problem. */
  readonly code: Problem['code'] | undefined;
  readonly detail: string;
  /** Each failing place: a JSON pointer into the body, or `query:<name>`, `path:<name>`, `header:<name>`. */
  readonly errors: NonNullable<Problem['errors']>;

  constructor(
    status: number,
    /** The whole problem, with the members some codes carry (`current_version`, `referrers`, …); null when none came. */
    readonly problem: Problem | null,
    text = '',
  ) {
    const detail = problem?.detail ?? `HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}`;
    // The message names each failing place (a log of an uncaught refusal showed "1 invalid field in the body", not which).
    const places = (problem?.errors ?? []).slice(0, 5).map((e) => (e.detail === detail ? e.pointer : `${e.pointer}: ${e.detail}`));
    const more = (problem?.errors?.length ?? 0) > places.length ? '; …' : '';
    super(problem ? `${problem.code}: ${detail}${places.length ? ` [${places.join('; ')}${more}]` : ''}` : detail);
    this.name = 'ProblemError';
    this.status = status;
    this.code = problem?.code;
    this.detail = detail;
    this.errors = problem?.errors ?? [];
  }
}

/** A conditional GET (`If-None-Match`) answered 304: what the caller holds is current; `etag` is the service's. */
export class NotModified {
  readonly status = 304;
  constructor(readonly etag: string | null) {}
}

type Api = Client<paths, 'application/json'>;
/** One of openapi-fetch's methods, called with a path and init the public types have already checked. */
type UntypedCall = (path: string, init?: object) => Promise<{ data?: unknown; error?: unknown; response: Response }>;
type Method = 'get' | 'post' | 'patch' | 'delete';
/** Init is optional when the operation needs no parameter or body (openapi-fetch's own rule). */
type InitArg<I> = undefined extends I ? [init?: I] : [init: I];
/** A call answering the operation's success body (undefined for a 204), typed from the document. */
type Call<M extends Method> = <P extends ClientPathsWithMethod<Api, M>, I extends MaybeOptionalInit<paths[P], M>>(path: P, ...init: InitArg<I>) => Promise<MethodResponse<Api, M, P, I>>;
/** NotModified for a path whose GET the document says may answer 304 (an expansion), else nothing. */
type NotModifiedOf<P> = P extends keyof paths ? (paths[P] extends { get: { responses: { 304: unknown } } } ? NotModified : never) : never;
/** A GET: its success body, or NotModified where a 304 can come (test it with `instanceof NotModified`). */
type GetCall = <P extends ClientPathsWithMethod<Api, 'get'>, I extends MaybeOptionalInit<paths[P], 'get'>>(path: P, ...init: InitArg<I>) => Promise<MethodResponse<Api, 'get', P, I> | NotModifiedOf<P>>;

export interface PrefixHandlesClient {
  get: GetCall;
  post: Call<'post'>;
  patch: Call<'patch'>;
  delete: Call<'delete'>;
  /** A CSV export (`/v1/reports`, `/v1/reports/handles/{id}`, `/v1/requests`) as its bytes, and the next page's cursor (a request list's `Link` header). */
  csv<P extends '/v1/reports' | '/v1/reports/handles/{id}' | '/v1/requests'>(path: P, ...init: InitArg<MaybeOptionalInit<paths[P], 'get'>>): Promise<{ bytes: Uint8Array; nextCursor: string | null }>;
  /** openapi-fetch's own client (its `{ data, error, response }` answers, middleware), with the same key. */
  raw: Api;
}

/** A problem for an answer that is not 2xx (openapi-fetch has parsed its body: the problem, or its text). */
function refusal(response: Response, error: unknown): ProblemError {
  const problem = typeof error === 'object' && error !== null && typeof (error as Problem).code === 'string' ? (error as Problem) : null;
  return new ProblemError(response.status, problem, typeof error === 'string' ? error : '');
}

/** A client of the service at `url` (`http://127.0.0.1:8787`) with a tenant's API key (or the admin key, for the admin routes). */
export function createClient(opts: { url: string; key: string; fetch?: (request: Request) => Promise<Response> }): PrefixHandlesClient {
  const raw = createFetchClient<paths, 'application/json'>({ baseUrl: opts.url.replace(/\/+$/, ''), headers: { authorization: `Bearer ${opts.key}` }, fetch: opts.fetch });
  const call =
    (method: 'GET' | 'POST' | 'PATCH' | 'DELETE') =>
    async (path: string, init?: object): Promise<unknown> => {
      // A CSV answer is not the JSON this call is typed to answer (openapi-fetch threw a SyntaxError on its first row).
      const asked = init as { params?: { query?: { format?: unknown } }; headers?: Record<string, unknown> } | undefined;
      const accept = Object.entries(asked?.headers ?? {}).find(([k]) => k.toLowerCase() === 'accept')?.[1];
      if (asked?.params?.query?.format === 'csv' || (typeof accept === 'string' && accept.includes('text/csv')))
        throw new TypeError(`${method} ${path} as CSV: ph.csv('${path}', …) answers its bytes; ph.${method.toLowerCase()} answers JSON`);
      const { data, error, response } = await (raw[method] as UntypedCall)(path, init);
      // Not a refusal: the caller asked whether what it holds changed, and it did not.
      if (response.status === 304 && method === 'GET') return new NotModified(response.headers.get('etag'));
      if (!response.ok) throw refusal(response, error);
      return data;
    };
  return {
    get: call('GET') as GetCall,
    post: call('POST') as Call<'post'>,
    patch: call('PATCH') as Call<'patch'>,
    delete: call('DELETE') as Call<'delete'>,
    async csv(path, ...[init]) {
      const given = (init ?? {}) as { params?: { query?: Record<string, unknown> } };
      const query = { ...given.params?.query, format: 'csv' };
      const { data, error, response } = await (raw.GET as UntypedCall)(path, {
        ...given,
        params: { ...given.params, query },
        parseAs: 'arrayBuffer',
      });
      if (!response.ok) throw refusal(response, error);
      const next = /<([^>]*)>;\s*rel="next"/.exec(response.headers.get('link') ?? '')?.[1];
      return { bytes: new Uint8Array(data as ArrayBuffer), nextCursor: next ? new URL(next, opts.url).searchParams.get('cursor') : null };
    },
    raw,
  };
}
