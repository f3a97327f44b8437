// A request recorded before its message settings were kept (migration 0006) has none to compare: a drift against
// it names no setting, whatever its units look like — keyed with the settings but without a key without them
// (58a3a33..666e38a), or no units at all (before units).
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientFor, createTestApp } from '../helpers/app';
import { mintBundle, mintSystem, mintTools, startSession } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report } from '../helpers/scenario';

type Units = unknown[][] | undefined;

/**
 * Turn 1 with `before` as tool_choice, its row rewritten as an older version wrote it (`units` from its units,
 * message_settings null), then turn 2 with `auto` after a restart: the outcome of turn 2.
 */
async function driftAgainstOldRow(before: object, units: (u: NonNullable<Units>) => Units) {
  const dir = mkdtempSync(join(tmpdir(), 'ph-settings-'));
  const file = join(dir, 'db.sqlite');
  try {
    const first = createTestApp({ databasePath: file });
    const { key, client } = first.tenant();
    const b = await mintBundle(client, [(await mintTools(client)).id, (await mintSystem(client, LONG_SYSTEM)).id]);
    const s = await startSession(client, { messages: [{ role: 'user', content: 'Where is order 1003? '.repeat(200) }, { role: 'assistant', content: 'At the depot. '.repeat(100) }] });
    const body = (tool_choice: object) => ({ prefix: [b.id, s.id], tool_choice, messages: [{ role: 'user', content: 'Which depot?' }] });
    const r1 = await renderAnthropic(client, body(before));
    await report(client, first, r1, anthropicUsage(promptTokens(r1), 0, r1.breakpoints.at(-1)!.token_end));
    first.close();

    const second = createTestApp({ databasePath: file, clock: first.clock });
    // As the store reads them (a session's batches are stored apart: see src/store/compact.ts), written back whole.
    const segments = (second.store.getRequest(r1.request_id)!.segments as Array<{ units: unknown[][] }>).map((seg: { units: unknown[][] }) => ({ ...seg, units: units(seg.units) }));
    second.sqlite.prepare('update requests set segments = ?, message_settings = null where id = ?').run(JSON.stringify(segments), r1.request_id);
    second.clock.advance(60_000);
    const again = clientFor(second.app, key);
    const r2 = await renderAnthropic(again, body({ type: 'auto' }));
    const bundleEnd = r2.breakpoints[0]!.token_end;
    const o2 = (await report(again, second, r2, anthropicUsage(promptTokens(r2), bundleEnd, r2.breakpoints.at(-1)!.token_end - bundleEnd))).outcome;
    second.close();
    return { o2, session: s.id };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('settings drift against an old row', () => {
  it('names no setting against a row whose settings were never recorded (it had tool_choice any)', async () => {
    // As that era wrote it: message units keyed with the settings, no key without them.
    const { o2, session } = await driftAgainstOldRow({ type: 'any' }, (units) => units.map((u) => u.slice(0, 3)));
    expect(o2.segments.find((x) => x.source.startsWith(session))!.classes.drift).toBeGreaterThan(0);
    // The earlier request sent tool_choice {type: any}: "not sent" would be wrong; unknown settings name none.
    expect(o2.drift?.settings).toBeUndefined();
  });

  it('a row recorded before units (same tool_choice auto both times) is not blamed on tool_choice', async () => {
    const { o2, session } = await driftAgainstOldRow({ type: 'auto' }, () => undefined);
    expect(o2.segments.find((x) => x.source.startsWith(session))!.classes.drift).toBeGreaterThan(0);
    // Both sent tool_choice auto: the drift is the keying change, not a setting.
    expect(o2.drift?.settings).toBeUndefined();
  });
});
