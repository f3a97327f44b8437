// a request recorded before units carried their key without settings (58a3a33..666e38a: message keys
// already held tool_choice/thinking, but no 4th element) and before migration 0006 is read as "no settings".
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientFor, createTestApp } from '../helpers/app';
import { mintBundle, mintSystem, mintTools, startSession } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report } from '../helpers/scenario';

describe('settings drift against an old row', () => {
  it('names no setting against a row whose settings were never recorded (it had tool_choice any)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ph-settings-'));
    const file = join(dir, 'db.sqlite');
    try {
      const first = createTestApp({ databasePath: file });
      const { key, client } = first.tenant();
      const b = await mintBundle(client, [(await mintTools(client)).id, (await mintSystem(client, LONG_SYSTEM)).id]);
      const s = await startSession(client, { messages: [{ role: 'user', content: 'Where is order 1003? '.repeat(200) }, { role: 'assistant', content: 'At the depot. '.repeat(100) }] });
      const body = (tool_choice: object) => ({ prefix: [b.id, s.id], tool_choice, messages: [{ role: 'user', content: 'Which depot?' }] });
      const r1 = await renderAnthropic(client, body({ type: 'any' }));
      const w1 = r1.breakpoints.at(-1)!.token_end;
      await report(client, first, r1, anthropicUsage(promptTokens(r1), 0, w1));
      first.close();

      // The same row as that era wrote it: message units keyed with the settings, no key without them, no message_settings.
      const second = createTestApp({ databasePath: file, clock: first.clock });
      const row = second.sqlite.prepare('select segments from requests where id = ?').get(r1.request_id) as { segments: string };
      const segments = JSON.parse(row.segments).map((seg: { units: unknown[][] }) => ({ ...seg, units: seg.units.map((u) => u.slice(0, 3)) }));
      second.sqlite.prepare('update requests set segments = ?, message_settings = null where id = ?').run(JSON.stringify(segments), r1.request_id);

      second.clock.advance(60_000);
      const again = clientFor(second.app, key);
      const r2 = await renderAnthropic(again, body({ type: 'auto' }));
      const bundleEnd = r2.breakpoints[0]!.token_end;
      const o2 = (await report(again, second, r2, anthropicUsage(promptTokens(r2), bundleEnd, r2.breakpoints.at(-1)!.token_end - bundleEnd))).outcome;
      expect(o2.segments.find((x) => x.source.startsWith(s.id))!.classes.drift).toBeGreaterThan(0);
      // The earlier request sent tool_choice {type: any}: "not sent" is wrong; unknown settings should name none.
      expect(o2.drift?.settings).toBeUndefined();
      second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('a row recorded before units (same tool_choice auto both times) is not blamed on tool_choice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ph-settings-'));
    const file = join(dir, 'db.sqlite');
    try {
      const first = createTestApp({ databasePath: file });
      const { key, client } = first.tenant();
      const b = await mintBundle(client, [(await mintTools(client)).id, (await mintSystem(client, LONG_SYSTEM)).id]);
      const s = await startSession(client, { messages: [{ role: 'user', content: 'Where is order 1003? '.repeat(200) }, { role: 'assistant', content: 'At the depot. '.repeat(100) }] });
      const body = (tool_choice: object) => ({ prefix: [b.id, s.id], tool_choice, messages: [{ role: 'user', content: 'Which depot?' }] });
      const r1 = await renderAnthropic(client, body({ type: 'auto' }));
      const w1 = r1.breakpoints.at(-1)!.token_end;
      await report(client, first, r1, anthropicUsage(promptTokens(r1), 0, w1));
      first.close();

      // The same row as that era wrote it: message units keyed with the settings, no key without them, no message_settings.
      const second = createTestApp({ databasePath: file, clock: first.clock });
      const row = second.sqlite.prepare('select segments from requests where id = ?').get(r1.request_id) as { segments: string };
      const segments = JSON.parse(row.segments).map((seg: { units: unknown[][] }) => ({ ...seg, units: undefined }));
      second.sqlite.prepare('update requests set segments = ?, message_settings = null where id = ?').run(JSON.stringify(segments), r1.request_id);

      second.clock.advance(60_000);
      const again = clientFor(second.app, key);
      const r2 = await renderAnthropic(again, body({ type: 'auto' }));
      const bundleEnd = r2.breakpoints[0]!.token_end;
      const o2 = (await report(again, second, r2, anthropicUsage(promptTokens(r2), bundleEnd, r2.breakpoints.at(-1)!.token_end - bundleEnd))).outcome;
      expect(o2.segments.find((x) => x.source.startsWith(s.id))!.classes.drift).toBeGreaterThan(0);
      // Both sent tool_choice auto: the drift is the keying change, not a setting.
      expect(o2.drift?.settings).toBeUndefined();
      second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
