import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientFor, createTestApp } from '../helpers/app';
import { mintBundle, mintSystem, mintTools, startSession } from '../helpers/factories';
import { expansionFormats } from '../../src/domain/render/prompt';

describe('restart on a real database file', () => {
  it('gives the same bytes and ETags after the service restarts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ph-restart-'));
    const file = join(dir, 'db.sqlite');
    try {
      const first = createTestApp({ databasePath: file });
      const { key, client } = first.tenant();
      const tools = await mintTools(client);
      const sys = await mintSystem(client, 'persisted ✓');
      const b = await mintBundle(client, [sys.id, tools.id]);
      const s = await startSession(client, { base: b.id, messages: [{ role: 'user', content: 'hi' }] });
      await client.post(`/v1/sessions/${s.id}/messages`, { messages: [{ role: 'assistant', content: 'hello' }] });
      const before: Record<string, { text: string; etag: string | null }> = {};
      for (const f of expansionFormats) {
        const res = await client.get(`/v1/handles/${s.id}/expand?format=${f}`);
        before[f] = { text: res.text, etag: res.headers.get('etag') };
      }
      // Prompts are in the file and its WAL: readable by their owner only.
      for (const f of [file, `${file}-wal`]) expect(statSync(f).mode & 0o777, f).toBe(0o600);
      first.close();

      const second = createTestApp({ databasePath: file });
      const again = clientFor(second.app, key);
      for (const f of expansionFormats) {
        const res = await again.get(`/v1/handles/${s.id}/expand?format=${f}`);
        expect(res.status).toBe(200);
        expect(res.text).toBe(before[f]!.text);
        expect(res.headers.get('etag')).toBe(before[f]!.etag);
      }
      expect((await again.get(`/v1/handles/${s.id}`)).json.latest_version).toBe(2);
      second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
