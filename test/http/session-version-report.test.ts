import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientFor, createTestApp, listen, type Client, type TestApp } from '../helpers/app';
import { mintBundle, mintSystem, startSession, userMessage } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report, type VersionRow } from '../helpers/scenario';

// A session report's version row holds that version's content: version k its batch, version 1 also the base bundle
// (set when the session started, sent again by every later turn as batch 1 is), from every request that sent it.
// Before, the base's tokens counted on the row of the version each request used, beside that version's batch.

let t: TestApp;
let server: Awaited<ReturnType<typeof listen>>;
beforeAll(async () => {
  t = createTestApp();
  server = await listen(t.app);
});
afterAll(async () => {
  await server.close();
  t.close();
});

/** A fresh tenant's client over real HTTP. */
function tenantClient(): Client {
  const { key } = t.tenant();
  return clientFor({ request: (path, init) => fetch(`${server.base}${path}`, init) }, key);
}

type Outcome = Awaited<ReturnType<typeof report>>['outcome'];

/** Renders the session at `ref` with a new question, and reports a read of what was predicted and a write past it. */
async function call(client: Client, ref: string): Promise<Outcome> {
  const r = await renderAnthropic(client, { prefix: [ref], messages: [userMessage('go on')] });
  const read = r.prediction.read_tokens;
  const { outcome } = await report(client, t, r, anthropicUsage(promptTokens(r), read, Math.max(0, (r.breakpoints.at(-1)?.token_end ?? 0) - read)));
  t.clock.advance(60_000);
  return outcome;
}

/** A session on a one-member bundle, started with `first` and appended `appends` batches. */
async function session(client: Client, appends: number, first = [userMessage('turn 1')]) {
  const sys = await mintSystem(client, `${LONG_SYSTEM} ${Math.random()}`);
  const bundle = await mintBundle(client, [sys.id]);
  const ses = await startSession(client, { base: bundle.id, messages: first });
  for (let v = 2; v <= appends + 1; v++) {
    const res = await client.post(`/v1/sessions/${ses.id}/messages`, { messages: [{ role: v % 2 ? 'user' : 'assistant', content: `turn ${v}: ${'words '.repeat(10 * v)}` }] });
    expect(res.status, res.text).toBe(201);
  }
  return { sys: `${sys.id}@1`, ses: ses.id };
}

const span = (o: Outcome, source: string) => o.segments.filter((s) => s.source === source).reduce((n, s) => n + s.end - s.start, 0);
const classOf = (o: Outcome, sources: string[], c: string) =>
  o.segments.filter((s) => sources.includes(s.source)).reduce((n, s) => n + ((c === 'opportunity' ? (s as { opportunity?: number }).opportunity : s.classes[c]) ?? 0), 0);

describe("a session report's version rows", () => {
  it("hold each version's own content: version 1 the base and batch 1, version k batch k, from every request that sent it", async () => {
    const client = tenantClient();
    const { sys, ses } = await session(client, 2);
    // Sent at versions 1, 2, 3 and 3 again.
    const refs = [`${ses}@1`, `${ses}@2`, `${ses}@3`, `${ses}@3`];
    const outcomes: Outcome[] = [];
    for (const ref of refs) outcomes.push(await call(client, ref));
    const base = span(outcomes[0]!, sys);
    const batch = [1, 2, 3].map((k) => span(outcomes.at(-1)!, `${ses}@${k}`));
    expect(base).toBeGreaterThan(1000);
    for (const b of batch) expect(b).toBeGreaterThan(0);
    // Each request sent the same base and batches (reported totals equal to the estimates: no rescaling).
    for (const o of outcomes) expect(span(o, sys)).toBe(base);

    const rep = (await client.get(`/v1/reports/handles/${ses}`)).json;
    const rows: VersionRow[] = rep.versions;
    expect(rows.map((r) => [r.version, r.requests, r.requests_including])).toEqual([
      [1, 1, 4],
      [2, 1, 3],
      [3, 2, 2],
    ]);
    expect(rows.map((r) => r.tokens.referenced)).toEqual([4 * (base + batch[0]!), 3 * batch[1]!, 2 * batch[2]!]);
    // Each class where its tokens were: the base is cold once (its first use), then read, on version 1's row.
    const sources = (k: number) => (k === 1 ? [sys, `${ses}@1`] : [`${ses}@${k}`]);
    for (const c of ['cold', 'opportunity', 'captured', 'unconfirmed'])
      expect(rows.map((r) => r.tokens[c]), c).toEqual(rows.map((r) => outcomes.reduce((n, o) => n + classOf(o, sources(r.version), c), 0)));
    expect(rows[0]!.tokens.cold).toBe(base + batch[0]!);
    expect(rows[0]!.tokens.captured).toBeGreaterThanOrEqual(3 * base);

    // The rows sum to the totals; the base bundle's own report counts the base in every request.
    for (const c of Object.keys(rep.tokens)) expect(rows.reduce((n, r) => n + r.tokens[c]!, 0), c).toBe(rep.tokens[c]);
    expect(rows.reduce((n, r) => n + r.requests, 0)).toBe(rep.requests);
    const sysReport = (await client.get(`/v1/reports/handles/${sys.split('@')[0]}`)).json;
    expect(sysReport.tokens.referenced).toBe(4 * base);
  });

  it('of a session started without messages: version 1 is the base alone, sent in every request', async () => {
    const client = tenantClient();
    const { sys, ses } = await session(client, 2, []);
    const outcomes = [await call(client, `${ses}@2`), await call(client, `${ses}@3`)];
    const base = span(outcomes[0]!, sys);
    const rows: VersionRow[] = (await client.get(`/v1/reports/handles/${ses}`)).json.versions;
    expect(rows.map((r) => [r.version, r.requests, r.requests_including, r.tokens.referenced])).toEqual([
      [1, 0, 2, 2 * base],
      [2, 1, 2, 2 * span(outcomes[1]!, `${ses}@2`)],
      [3, 1, 1, span(outcomes[1]!, `${ses}@3`)],
    ]);
  });

  it('sum to the totals, each holding its batch (and version 1 the base) from the requests at it or later, over random histories', async () => {
    const client = tenantClient();
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 4 }), fc.array(fc.nat(4), { minLength: 1, maxLength: 5 }), async (appends, picks) => {
        const { sys, ses } = await session(client, appends);
        const at = picks.map((p) => 1 + (p % (appends + 1)));
        const outcomes: Outcome[] = [];
        for (const v of at) outcomes.push(await call(client, `${ses}@${v}`));
        const rep = (await client.get(`/v1/reports/handles/${ses}?versions=1000`)).json;
        const rows: VersionRow[] = rep.versions;
        const sent = (k: number) => at.filter((v) => v >= k).length;
        const versions = [...new Set(at)].sort((a, b) => a - b);
        expect(rows.map((r) => r.version)).toEqual(Array.from({ length: versions.at(-1)! }, (_, i) => i + 1));
        for (const r of rows) {
          const own = r.version === 1 ? [sys, `${ses}@1`] : [`${ses}@${r.version}`];
          expect(r.requests_including, `v${r.version}`).toBe(sent(r.version));
          expect(r.requests, `v${r.version}`).toBe(at.filter((v) => v === r.version).length);
          expect(r.tokens.referenced, `v${r.version}`).toBe(outcomes.reduce((n, o) => n + own.reduce((m, s) => m + span(o, s), 0), 0));
        }
        for (const c of Object.keys(rep.tokens)) {
          expect(rows.reduce((n, r) => n + r.tokens[c]!, 0), c).toBe(rep.tokens[c]);
          expect(rows.reduce((n, r) => n + r.requests_with[c]!, 0), c).toBe(rep.requests_with[c]);
        }
        expect(rows.reduce((n, r) => n + r.requests, 0)).toBe(at.length);
      }),
      { numRuns: 15 },
    );
  }, 120_000);
});
