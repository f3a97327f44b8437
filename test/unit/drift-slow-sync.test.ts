// A drift is located against the last request that had the handle even while that request's row still waits in the
// write queue: on a slow disk the next commit waits for the running sync, and the calls after it are reconciled
// meanwhile (the demo, run under heavy load, lost its "drift located" line this way).
import { afterEach, describe, expect, it } from 'vitest';
import { openDb, type OpenedDb } from '../../src/store/db';
import { SqliteStore } from '../../src/store/sqlite-store';
import { FakeClock } from '../helpers/clock';
import { createTestApp, type TestApp } from '../helpers/app';
import { mintSystem } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM } from '../helpers/scenario';

/** A real store whose syncs, once held, wait for the test to release them. */
class SlowSyncStore extends SqliteStore {
  hold = false;
  private held: Array<() => void> = [];
  override durable(): Promise<void> {
    if (!this.hold) return super.durable();
    return new Promise<void>((release) => this.held.push(release)).then(() => super.durable());
  }
  release(): void {
    this.hold = false;
    for (const r of this.held.splice(0)) r();
  }
}

let t: TestApp;
let opened: OpenedDb;
afterEach(() => {
  t?.close();
  opened?.close();
});

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('drift while the previous request is not yet committed', () => {
  it('is located to the byte from the row still in the write queue', async () => {
    const clock = new FakeClock();
    opened = openDb(':memory:');
    const store = new SlowSyncStore(opened.db, opened.walSync, clock);
    t = createTestApp({ clock, deps: { store } });
    const { id: tenantId, client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    const body = (stamp: string) =>
      JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 64, system: [{ type: 'text', text: `Current time: ${stamp}` }, { type: 'handle', ref: sys.id }], messages: [{ role: 'user', content: 'hello' }] });
    const render = (stamp: string) => t.services.requests.render({ tenantId, format: 'anthropic', bodyText: body(stamp), pointer: '' });
    const ingest = (r: ReturnType<typeof render>) => {
      const total = r.segments[r.segments.length - 1]!.token_end;
      const started = clock.now();
      return t.services.reconciler.ingest(tenantId, { request_id: r.requestId, usage: anthropicUsage(total, 0, r.breakpoints[0]!.token_end), started_at: started, first_byte_at: started + 500, finished_at: started + 1000 });
    };

    // A first request's commit whose sync does not finish: every write after it waits in the queue.
    store.hold = true;
    const first = render('2026-11-21T09:59:00Z');
    await turn();
    const r1 = render('2026-11-21T10:00:00Z');
    const p1 = ingest(r1);
    clock.advance(60_000);
    const r2 = render('2026-11-21T10:01:00Z');
    const p2 = ingest(r2);
    // r1's row was never committed while r2 was reconciled.
    expect(t.services.writes.pendingRequest(r1.requestId)).toBeDefined();
    expect(store.getRequest(r1.requestId)).toBeUndefined();

    store.release();
    await Promise.all([first.committed, r1.committed, r2.committed, p1]);
    const o2 = (await p2).outcome as { drift: { previous_request: string; segment: number; byte_offset?: number; now: { excerpt?: string } } | null };
    expect(o2.drift).toMatchObject({ previous_request: r1.requestId, segment: 0 });
    const text = '{"type":"text","text":"Current time: 2026-11-21T10:00:00Z"}';
    expect(o2.drift!.byte_offset).toBe(text.indexOf('T10:0') + 5);
    expect(o2.drift!.now.excerpt).toContain('10:01:00Z');
  });
});
