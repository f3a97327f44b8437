// Provider credentials are never stored: a provider or a gateway that echoes the caller's key in its error body
// (`Invalid API key: sk-…`) reaches the SDK as it came, but the request's record keeps it redacted.
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { credentialFingerprint, credentialsOf, redactCredentials } from '../../src/http/proxy/upstream';
import { committed, rejection, startHarness, type Harness } from './harness';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const KEYS = { anthropic: 'sk-ant-api03-ECHOED-anthropic-0123456789', openai: 'sk-proj-ECHOED-openai-0123456789', gemini: 'AIzaECHOED-gemini-0123456789' };

/** Every text cell of every table of the database, as one string. */
function everyCell(h: Harness): string {
  const tables = h.t.sqlite.prepare("select name from sqlite_master where type = 'table'").pluck().all() as string[];
  return tables.map((t) => JSON.stringify(h.t.sqlite.prepare(`select * from "${t}"`).raw().all(), (_k, v) => (Buffer.isBuffer(v) ? v.toString('latin1') : typeof v === 'bigint' ? String(v) : v))).join('\n');
}

type Provider = keyof typeof KEYS;
/** One failing call of each provider's client, its key in `KEYS`; the answer's status, text and request id. */
async function failingCall(h: Harness, provider: Provider): Promise<{ status: number; text: string; id: string | null }> {
  const fault = { 'x-simulator-status': '401' };
  if (provider === 'gemini') {
    const res = await fetch(`${h.url}/proxy/gemini/v1beta/models/gemini-2.5-flash:generateContent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-ph-key': h.key, 'x-goog-api-key': KEYS.gemini, ...fault },
      body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }),
    });
    return { status: res.status, text: await res.text(), id: res.headers.get('x-ph-request-id') };
  }
  const err =
    provider === 'anthropic'
      ? await rejection(h.anthropic({ apiKey: KEYS.anthropic, headers: fault }).messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }))
      : await rejection(h.openai({ apiKey: KEYS.openai, headers: fault }).chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }));
  return { status: err.status, text: JSON.stringify(err.error), id: err.headers.get('x-ph-request-id') };
}

describe('a provider error that echoes the credential', () => {
  it.each(Object.keys(KEYS) as Provider[])('%s: reaches the client unchanged and is recorded with the credential redacted', async (provider) => {
    const key = KEYS[provider];
    // A gateway's 401 that names the key it was sent (in its message).
    h = await startHarness({ rewrite: (body) => body.replace('"Simulated error 401"', JSON.stringify(`Invalid API key: ${key}`)) });
    const answer = await failingCall(h, provider);
    expect(answer.status).toBe(401);
    expect(answer.text).toContain(`Invalid API key: ${key}`);
    await committed(h);

    const row = (await h.tenant.client.get(`/v1/requests/${answer.id}`)).json;
    expect(row.status).toBe('failed');
    expect(JSON.stringify(row.error)).toContain('Invalid API key: [redacted]');
    const page = await (await h.t.app.request(`/ui/requests/${answer.id}`, { headers: { cookie: `ph_ui_key=${h.key}` } })).text();
    expect(page).toContain('Invalid API key: [redacted]');
    expect(page).not.toContain(key);
    expect((await h.tenant.client.get('/v1/requests?format=csv')).text).not.toContain(key);
    expect(everyCell(h)).not.toContain(key);
  });

  it('a body nested too deep to store is recorded as failed without it, whether or not the call carried a credential', async () => {
    const deep = `${'['.repeat(200_000)}"x"${']'.repeat(200_000)}`;
    h = await startHarness({ rewrite: (body) => (body.includes('Simulated error') ? deep : body) });
    // A key too short to be taken for a secret: nothing to redact, the body is still walked.
    const headers = { 'content-type': 'application/json', 'x-ph-key': h.key, 'anthropic-version': '2023-06-01', 'x-api-key': 'short', 'x-simulator-status': '400' };
    const res = await fetch(`${h.url}/proxy/anthropic/v1/messages`, { method: 'POST', headers, body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }) });
    expect(res.status).toBe(400);
    // The client gets the body as it came.
    expect((await res.text()).length).toBe(deep.length);
    await committed(h);
    const row = (await h.tenant.client.get(`/v1/requests/${res.headers.get('x-ph-request-id')}`)).json;
    expect(row.status).toBe('failed');
    expect(row.error).toEqual({ status: 400, body: '[not kept: nested too deep to redact]' });
  });
});

describe('credentialsOf and redactCredentials', () => {
  it("take every credential header and Gemini's ?key=, not values too short to be one, and never throw on a deep body", () => {
    const headers = { 'x-api-key': 'sk-ant-0123456789', authorization: 'Bearer sk-9876543210', 'x-goog-api-key': 'short' };
    const secrets = credentialsOf(headers, 'http://h/proxy/gemini/v1/models/m:generateContent?alt=sse&key=AIzaQUERY0123');
    expect(new Set(secrets)).toEqual(new Set(['sk-ant-0123456789', 'sk-9876543210', 'AIzaQUERY0123']));
    expect(redactCredentials({ error: { message: 'bad key sk-ant-0123456789 (short)', ['sk-9876543210']: [1, 'AIzaQUERY0123'] } }, secrets)).toEqual({
      error: { message: 'bad key [redacted] (short)', '[redacted]': [1, '[redacted]'] },
    });
    let deep: unknown = 'sk-9876543210';
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(redactCredentials(deep, secrets)).toBe('[not kept: nested too deep to redact]');
    expect(redactCredentials(deep, [])).toBe('[not kept: nested too deep to redact]');
    // Another scheme's token, echoed without it.
    expect(redactCredentials('denied: dXNlcjpzM2NyZXQ=', credentialsOf({ authorization: 'Basic dXNlcjpzM2NyZXQ=' }))).toBe('denied: [redacted]');
    expect(redactCredentials({ error: 'plain' }, [])).toEqual({ error: 'plain' });
  });

  it("take Azure OpenAI's api-key, and an Authorization without a scheme whole", () => {
    expect(credentialsOf({ 'api-key': '0123456789abcdef0123456789abcdef' })).toEqual(['0123456789abcdef0123456789abcdef']);
    expect(credentialsOf({ authorization: 'sk-no-scheme-0123' })).toEqual(['sk-no-scheme-0123']);
    // And its fingerprint is the cache scope's, as a bearer token's is (none before: every Azure account shared one scope).
    const one = credentialFingerprint('openai', { 'api-key': '0123456789abcdef0123456789abcdef' });
    expect(one).toMatch(/^[0-9a-f]{12}$/);
    expect(credentialFingerprint('openai', { 'api-key': 'fedcba9876543210fedcba9876543210' })).not.toBe(one);
  });

  it('property: no run of 8 characters or more that starts or ends the key is left in what is recorded, whatever surrounds it', () => {
    const char = fc.constantFrom(...'abcXYZ019-_ …'.split(''));
    fc.assert(
      fc.property(fc.string({ unit: char, minLength: 8, maxLength: 40 }), fc.integer({ min: 8, max: 40 }), fc.boolean(), fc.string({ unit: char, maxLength: 20 }), fc.string({ unit: char, maxLength: 20 }), (key, cut, head, before, after) => {
        const part = head ? key.slice(0, cut) : key.slice(-cut);
        const out = redactCredentials(`${before}${part}${after}`, credentialsOf({ 'x-api-key': key })) as string;
        expect(out).toContain('[redacted]');
        for (let i = 0; i + 8 <= key.length; i++) if (i === 0 || i + 8 === key.length) expect(out).not.toContain(key.slice(i, i + 8));
      }),
    );
  });

  it('redact a run of 8 characters or more that starts or ends a key (a gateway echoing part of it), not a shorter one', () => {
    const key = 'sk-ant-api03-SECRETPART-0123456789';
    const secrets = credentialsOf({ 'x-api-key': key });
    expect(redactCredentials('key sk-ant-api03-SECR… refused', secrets)).toBe('key [redacted]… refused');
    expect(redactCredentials('key …-0123456789 refused', secrets)).toBe('key …[redacted] refused');
    expect(redactCredentials('key sk-ant-api03-SE…23456789 refused', secrets)).toBe('key [redacted]…[redacted] refused');
    // Seven characters of either end are no key; the middle alone is not looked for.
    expect(redactCredentials('key sk-ant-… …3456789 SECRETPART', secrets)).toBe('key sk-ant-… …3456789 SECRETPART');
    // The whole key, twice, and once beside a partial echo: each one redaction.
    expect(redactCredentials(`${key}${key} / ${key.slice(0, 10)}`, secrets)).toBe('[redacted][redacted] / [redacted]');
    expect(redactCredentials({ [key.slice(-9)]: key.slice(0, 8) }, secrets)).toEqual({ '[redacted]': '[redacted]' });
  });

  it.each([
    ['x-api-key', (key: string) => key.slice(0, 16)],
    ['api-key', (key: string) => key],
    ['api-key', (key: string) => `…${key.slice(-10)}`],
  ] as const)('over HTTP: %s, echoed in part or whole by a gateway, is recorded redacted', async (header, echo) => {
    const key = 'azure0123456789abcdef0123456789ab';
    h = await startHarness({ rewrite: (body) => body.replace('"Simulated error 401"', JSON.stringify(`Access denied: ${echo(key)}`)) });
    const provider = header === 'x-api-key' ? 'anthropic' : 'openai';
    const res = await fetch(`${h.url}/proxy/${provider}/v1/${provider === 'anthropic' ? 'messages' : 'chat/completions'}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-ph-key': h.key, [header]: key, 'x-simulator-status': '401', ...(provider === 'openai' ? { authorization: 'Bearer azure' } : {}) },
      body: JSON.stringify({ model: provider === 'anthropic' ? 'claude-sonnet-4-6' : 'gpt-4.1', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect([res.status, await res.text()]).toEqual([401, expect.stringContaining(`Access denied: ${echo(key)}`)]);
    await committed(h);
    const row = (await h.tenant.client.get(`/v1/requests/${res.headers.get('x-ph-request-id')}`)).json;
    expect(JSON.stringify(row.error)).toMatch(/Access denied: …?\[redacted\]/);
    expect(everyCell(h)).not.toContain(echo(key).replace('…', ''));
  });
});
