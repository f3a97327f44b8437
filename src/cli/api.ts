// A tiny client over the REST API: one request function, errors as ApiError.

export interface ProblemItem {
  pointer: string;
  detail: string;
}

/** The service's RFC 9457 body (README: Errors). */
export interface Problem {
  code: string;
  detail: string;
  status?: number;
  errors?: ProblemItem[];
  requestId?: string;
}

/** `code: detail (pointer: detail; …)` — plus the requestId when the service asks for it to be quoted. */
export function formatProblem(p: Problem): string {
  const items = p.errors?.length ? ` (${p.errors.map((e) => (e.detail === p.detail ? e.pointer : `${e.pointer}: ${e.detail}`)).join('; ')})` : '';
  const quote = p.code === 'internal' && p.requestId ? ` [requestId ${p.requestId}]` : '';
  return `${p.code}: ${p.detail}${items}${quote}`;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem: Problem | null,
    message: string,
  ) {
    super(message);
  }
}

export interface Api {
  url: string;
  /** Parsed JSON of a 2xx answer (undefined for a 204); throws ApiError otherwise. `headers`: more to send (If-Match). */
  json<T = unknown>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<T>;
  /** The exact body bytes of a 2xx answer. */
  bytes(path: string): Promise<Buffer>;
  /** A CSV export's bytes (`?format=csv` in `path`) and its next page's cursor, from the `Link: <…>; rel="next"` header. */
  csv(path: string): Promise<{ bytes: Buffer; nextCursor: string | null }>;
}

/** `keyFrom`: where the key was read (`--key`, `PH_API_KEY`, the api-key file's path), named when the service refuses it. */
export function createApi(url: string, key: string, keyFrom?: string): Api {
  async function send(method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<Response> {
    const headers: Record<string, string> = { ...extra, authorization: `Bearer ${key}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiError(0, null, `cannot reach ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message} (is the service running? see --url)`);
    }
    if (res.ok) return res;
    const text = await res.text();
    let problem: Problem | null = null;
    try {
      const parsed = JSON.parse(text) as Problem;
      if (typeof parsed.code === 'string') problem = parsed;
    } catch {
      // Not ours (a proxy's HTML page, say): report the status and the start of the body.
    }
    // A refused key, named by where it came from: a stale PH_API_KEY from another clone shadows the key file.
    const from = res.status === 401 && problem && keyFrom ? ` (the key from ${keyFrom}${keyFrom === '--key' ? '' : keyFrom === 'PH_API_KEY' ? ', which --key overrides and the api-key file does not' : ', read when neither --key nor PH_API_KEY is set'})` : '';
    throw new ApiError(res.status, problem, problem ? formatProblem(problem) + from : `HTTP ${res.status}: ${text.slice(0, 200)}`);
  }

  return {
    url,
    json: async <T>(method: string, path: string, body?: unknown, headers?: Record<string, string>) => {
      const res = await send(method, path, body, headers);
      return (res.status === 204 ? undefined : await res.json()) as T;
    },
    bytes: async (path) => Buffer.from(await (await send('GET', path)).arrayBuffer()),
    csv: async (path) => {
      const res = await send('GET', path);
      const next = /<([^>]*)>;\s*rel="next"/.exec(res.headers.get('link') ?? '')?.[1];
      return { bytes: Buffer.from(await res.arrayBuffer()), nextCursor: next ? new URL(next, url).searchParams.get('cursor') : null };
    },
  };
}

/** A path segment: refs carry '@', which stays readable. */
export const seg = (s: string) => encodeURIComponent(s).replace(/%40/g, '@');
