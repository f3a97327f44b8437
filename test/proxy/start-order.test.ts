// Calls of one cache scope that overlap: a later call that finishes first is
// reconciled after the earlier one, so each is classified by what the provider
// actually had when it started. Order of events is asserted, never durations.

import { afterEach, describe, expect, it } from 'vitest';
import { StartOrder } from '../../src/domain/reconcile/start-order';
import { mintBundle, mintSystem, mintTools } from '../helpers/factories';
import { LONG_SYSTEM } from '../helpers/scenario';
import { committed, eventually, startHarness, type Harness } from './harness';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

const MODEL = 'claude-sonnet-4-6';
const requestRow = (id: string) => h.t.services.requests.get(h.tenant.id, id);

/** The classes of a reconciled request's segments under the bundle (its members), the non-zero ones. */
function bundleClasses(id: string, bundleId: string) {
  const outcome = requestRow(id).outcome as { segments: Array<{ path: string[]; classes: Record<string, number> }> };
  const sum: Record<string, number> = {};
  for (const seg of outcome.segments.filter((s) => s.path.some((ref) => ref.startsWith(bundleId))))
    for (const [c, n] of Object.entries(seg.classes)) if (n > 0) sum[c] = (sum[c] ?? 0) + n;
  return sum;
}

/** A gate: `hold` parks the first call's final usage event until `release()`. */
function gateFirstCallUsage() {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  return { release, hold: (call: number, chunk: string) => (call === 0 && chunk.includes('message_delta') ? gate : undefined) };
}

async function setup(opts: { proxyOrderWaitMs?: number } = {}) {
  const gate = gateFirstCallUsage();
  h = await startHarness({ hold: gate.hold, ...opts });
  const client = h.tenant.client;
  const bundle = await mintBundle(client, [(await mintTools(client)).id, (await mintSystem(client, LONG_SYSTEM)).id]);
  const sdk = h.anthropic({ headers: { 'x-ph-prefix': bundle.id } });
  // A: a long streamed answer. It starts answering (the provider wrote the prefix), then its end is held.
  const a = await sdk.messages.create({ model: MODEL, max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'a long answer' }] }).withResponse();
  const aId = a.response.headers.get('x-ph-request-id')!;
  const aDone = (async () => {
    for await (const event of a.data) void event;
  })();
  await eventually(() => h.tap[0]?.response.includes('message_start'), 'the first call started answering');
  h.clock.advance(10_000);
  return { bundle, sdk, aId, aDone, release: gate.release };
}

describe('overlapping calls of one scope', () => {
  it('a later call that finishes first is reconciled after the earlier one: cold then captured, not unconfirmed and bonus', async () => {
    const { bundle, sdk, aId, aDone, release } = await setup();
    // B starts after A started answering, reads A's write, and finishes while A is still streaming.
    const b = await sdk.messages.create({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'a short one' }] }).withResponse();
    const bId = b.response.headers.get('x-ph-request-id')!;
    expect(b.data.usage.cache_read_input_tokens).toBeGreaterThan(0);
    await committed(h);
    // B waits for A, which started before it.
    expect(requestRow(bId).status).toBe('rendered');
    const waiting = () => h.t.services.metrics.registry.getSingleMetricAsString('ph_proxy_reconciliations_waiting');
    expect(await waiting()).toContain('ph_proxy_reconciliations_waiting 1');

    h.clock.advance(10_000);
    release();
    await aDone;
    await eventually(() => requestRow(bId).status === 'reconciled', 'B reconciled once A settled');
    await committed(h);
    expect(requestRow(aId).status).toBe('reconciled');
    expect(await waiting()).toContain('ph_proxy_reconciliations_waiting 0');
    // A wrote the bundle (its first use in the scope); B read it, as the provider says.
    expect(Object.keys(bundleClasses(aId, bundle.id))).toEqual(['cold']);
    expect(Object.keys(bundleClasses(bId, bundle.id))).toEqual(['captured']);
    const rep = (await h.tenant.client.get(`/v1/reports/handles/${bundle.id}`)).json;
    expect(rep.tokens).toMatchObject({ bonus: 0, unconfirmed: 0, concurrent: 0 });
    expect(rep.tokens.captured).toBe(rep.tokens.cold);
    expect(rep.capture_rate).toBe(1);
  });

  it('a failed call in between does not hold the calls after it', async () => {
    const { bundle, sdk, aId, aDone, release } = await setup();
    const failed = await sdk.messages
      .create({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'fails' }] }, { headers: { 'x-simulator-status': '500' } })
      .catch((e: unknown) => e);
    expect((failed as { status: number }).status).toBe(500);
    h.clock.advance(10_000);
    const c = await sdk.messages.create({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'after the failure' }] }).withResponse();
    const cId = c.response.headers.get('x-ph-request-id')!;
    await committed(h);
    expect(requestRow(cId).status).toBe('rendered');

    release();
    await aDone;
    await eventually(() => requestRow(cId).status === 'reconciled', 'C reconciled once A settled');
    expect(Object.keys(bundleClasses(aId, bundle.id))).toEqual(['cold']);
    expect(Object.keys(bundleClasses(cId, bundle.id))).toEqual(['captured']);
  });

  it('past PH_PROXY_ORDER_WAIT_MS a finished call goes in without the earlier one', async () => {
    const { sdk, aId, aDone, release } = await setup({ proxyOrderWaitMs: 1 });
    const b = await sdk.messages.create({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'a short one' }] }).withResponse();
    const bId = b.response.headers.get('x-ph-request-id')!;
    await eventually(() => requestRow(bId).status === 'reconciled', 'B reconciled while A still streams');
    expect(requestRow(aId).status).toBe('rendered');
    release();
    await aDone;
    await eventually(() => requestRow(aId).status === 'reconciled', 'A reconciled when it ends');
  });
});

describe('StartOrder', () => {
  it('runs each scope in begin order, scopes independently, and a settle only once', () => {
    const order = new StartOrder(60_000);
    const ran: string[] = [];
    const a = order.begin('s1');
    const b = order.begin('s1');
    const other = order.begin('s2');
    const c = order.begin('s1');
    b(() => ran.push('b'));
    other(() => ran.push('other'));
    expect(ran).toEqual(['other']);
    expect(order.waiting).toBe(1);
    c(() => ran.push('c'));
    a(() => ran.push('a'));
    a(() => ran.push('a again'));
    expect(ran).toEqual(['other', 'a', 'b', 'c']);
    expect(order.waiting).toBe(0);
  });

  it('a reconciliation that throws does not stop the ones after it', () => {
    const order = new StartOrder(60_000);
    const ran: string[] = [];
    const a = order.begin('s');
    const b = order.begin('s');
    b(() => ran.push('b'));
    a(() => {
      throw new Error('boom');
    });
    expect(ran).toEqual(['b']);
  });

  it('past the wait, the settled calls up to the one that waited go in; the unsettled one holds nobody after', async () => {
    const order = new StartOrder(1);
    const ran: string[] = [];
    const a = order.begin('s');
    const b = order.begin('s');
    const c = order.begin('s');
    const d = order.begin('s');
    b(() => ran.push('b'));
    await eventually(() => ran.length === 1, 'b released');
    // a left the queue unsettled: c, settled after the release, does not wait for it again.
    c(() => ran.push('c'));
    expect(ran).toEqual(['b', 'c']);
    expect(order.waiting).toBe(0);
    // a goes in when it ends; d is not held by anyone.
    a(() => ran.push('a'));
    d(() => ran.push('d'));
    expect(ran).toEqual(['b', 'c', 'a', 'd']);
  });

  it('releaseAll (a shutdown): the waiting calls go in now, in start order; the rest, and calls begun later, as they settle; pending counts what has not gone in', () => {
    const order = new StartOrder(60_000);
    const ran: string[] = [];
    const a = order.begin('s');
    const b = order.begin('s');
    const c = order.begin('s');
    c(() => ran.push('c'));
    b(() => ran.push('b'));
    expect([ran, order.pending]).toEqual([[], 3]);
    order.releaseAll();
    expect([ran, order.pending, order.waiting]).toEqual([['b', 'c'], 1, 0]);
    a(() => ran.push('a'));
    const late = order.begin('s');
    expect(order.pending).toBe(1);
    late(() => ran.push('late'));
    expect([ran, order.pending]).toEqual([['b', 'c', 'a', 'late'], 0]);
  });
});
