import { expect } from 'vitest';

/** A page of GET /v1/requests as a test reads it: its lines (of the fields the test reads), paging and problem. */
export interface RequestPage<Line> {
  requests: Line[];
  next_cursor: string | null;
  scanned?: number;
  scan_budget_spent?: boolean;
  code?: string;
  errors?: Array<{ pointer: string; detail: string }>;
}

/** GET /v1/requests?<query> over HTTP with a tenant's key: its status, content type, headers and JSON. */
export async function getRequests<Page>(base: string, key: string, query: string) {
  const res = await fetch(`${base}/v1/requests?${query}`, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, type: res.headers.get('content-type'), headers: res.headers, json: (await res.json()) as Page };
}

/** Every page of a query, following next_cursor; each must be a 200. */
export async function allRequestPages<Page extends { next_cursor: string | null }>(base: string, key: string, query: string): Promise<Page[]> {
  const pages: Page[] = [];
  let cursor: string | null = null;
  do {
    const res: { status: number; json: Page } = await getRequests<Page>(base, key, `${query}${cursor ? `&cursor=${cursor}` : ''}`);
    expect(res.status, query).toBe(200);
    pages.push(res.json);
    cursor = res.json.next_cursor;
  } while (cursor);
  return pages;
}
