import { afterEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app';

let t: TestApp;
afterEach(() => t?.close());

describe('numbers past a double range', () => {
  // 210 nines times 1e99 is ~1e309: Infinity, yet no 3-digit exponent and no run of 309 digits.
  for (const num of [`${'9'.repeat(210)}e99`, `1${'0'.repeat(300)}e10`, `${'1'.repeat(250)}.5E+60`]) {
    it(`refuses ${num.slice(0, 12)}… (${num.length} chars) like 1e309`, async () => {
      t = createTestApp();
      expect(JSON.parse(num)).toBe(Infinity);
      const { client } = t.tenant();
      const res = await client.post('/v1/render', `{"format":"anthropic","request":{"model":"claude-sonnet-4-6","max_tokens":64,"messages":[{"role":"user","content":[{"type":"text","text":"hi","citations":${num}}]}]}}`);
      expect(res.status, res.text).toBe(422);
      expect(res.json.errors[0].pointer).toBe('/request/messages/0/content/0/citations');
    });
  }
});
