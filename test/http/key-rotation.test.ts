// Key rotation is one SQLite transaction: a new key for the tenant and the old key revoked, both or neither.
// Faults are real SQLite failures: a trigger that aborts one of the two writes.
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain/errors';
import { ADMIN_KEY, clientFor, createTestApp, type TestApp } from '../helpers/app';

/** The two writes of a rotation; each can be made to fail. */
const WRITES = {
  revoke: 'before update of revoked_at on api_keys',
  insert: 'before insert on api_keys',
} as const;
type Write = keyof typeof WRITES;

function injectFault(t: TestApp, write: Write): () => void {
  t.sqlite.exec(`create trigger fault ${WRITES[write]} begin select raise(abort, 'injected fault'); end`);
  return () => t.sqlite.exec('drop trigger fault');
}

const keysOf = (t: TestApp, tenant: string) =>
  t.sqlite.prepare('select id, key_hash, revoked_at from api_keys where tenant_id = ? order by rowid').all(tenant) as Array<{ id: string; key_hash: string; revoked_at: number | null }>;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ph-rotation-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('key rotation', () => {
  for (const write of ['revoke', 'insert'] as const)
    it(`a fault in the ${write} leaves neither change: the old key still valid (also after a restart), no new key`, async () => {
      const file = join(dir, `${write}.db`);
      const t = createTestApp({ databasePath: file });
      const { id: tenant, key } = t.tenant('acme');
      const [old] = keysOf(t, tenant);
      const admin = clientFor(t.app, ADMIN_KEY);
      const before = (await admin.get('/v1/tenants')).json;
      // The old key is in the authentication caches: a failed rotation must not leave them saying otherwise.
      expect((await clientFor(t.app, key).get('/v1/handles')).status).toBe(200);

      const heal = injectFault(t, write);
      expect(() => t.services.tenants.rotateKey(old!.id)).toThrow('injected fault');
      heal();

      expect(keysOf(t, tenant)).toEqual([old]);
      expect((await admin.get('/v1/tenants')).json).toEqual(before);
      expect((await clientFor(t.app, key).get('/v1/handles')).status).toBe(200);
      t.close();
      const restarted = createTestApp({ databasePath: file });
      try {
        expect(keysOf(restarted, tenant)).toEqual([old]);
        expect((await clientFor(restarted.app, key).get('/v1/handles')).status).toBe(200);
        // The key can still be rotated, and then is: the success path, unchanged.
        restarted.clock.advance(1000);
        const rotated = await clientFor(restarted.app, ADMIN_KEY).post(`/v1/keys/${old!.id}/rotate`);
        expect(rotated.status).toBe(201);
        const now = restarted.clock.now();
        expect(rotated.json).toEqual({ id: expect.stringMatching(/^key_/), tenant, api_key: expect.stringMatching(/^phk_/), created_at: new Date(now).toISOString() });
        expect(keysOf(restarted, tenant).map((k) => [k.id, k.revoked_at])).toEqual([[old!.id, now], [rotated.json.id, null]]);
        const refused = await clientFor(restarted.app, key).get('/v1/handles');
        expect([refused.status, refused.json.detail]).toEqual([401, `the API key was revoked on ${new Date(now).toISOString()}: use the key that replaced it, or ask the operator for a new one`]);
        expect((await clientFor(restarted.app, rotated.json.api_key).get('/v1/handles')).status).toBe(200);
      } finally {
        restarted.close();
      }
    });

  it('the store rotates only an active key: one revoked (or absent) by the time the transaction runs is a false, with no new key', () => {
    const t = createTestApp();
    try {
      const { id: tenant } = t.tenant();
      const [old] = keysOf(t, tenant);
      const row = (id: string) => ({ id, tenantId: tenant, keyHash: `hash-${id}`, hint: 'phk_test', createdAt: 5, revokedAt: null });
      expect(t.store.rotateApiKey('key_absent', row('key_a'), 5)).toBe(false);
      t.store.revokeApiKey(old!.id, 3);
      expect(t.store.rotateApiKey(old!.id, row('key_b'), 5)).toBe(false);
      expect(keysOf(t, tenant)).toEqual([{ ...old, revoked_at: 3 }]);
    } finally {
      t.close();
    }
  });

  it('any run of issues, rotations and revocations, some rotations failing in either write: the valid keys are exactly those a model of them says', async () => {
    const t = createTestApp();
    const op = fc.oneof(
      fc.constant({ kind: 'issue' as const }),
      fc.record({ kind: fc.constant('revoke' as const), key: fc.nat() }),
      fc.record({ kind: fc.constant('rotate' as const), key: fc.nat(), fault: fc.option(fc.constantFrom<Write>('revoke', 'insert'), { nil: undefined }) }),
    );
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(op, { maxLength: 12 }), async (ops) => {
          const first = t.tenant();
          const model: Array<{ id: string; secret: string; valid: boolean }> = [{ id: keysOf(t, first.id)[0]!.id, secret: first.key, valid: true }];
          for (const o of ops) {
            t.clock.advance(1);
            if (o.kind === 'issue') {
              const k = t.services.tenants.issueKey(first.id);
              model.push({ id: k.id, secret: k.api_key, valid: true });
              continue;
            }
            const target = model[o.key % model.length]!;
            if (o.kind === 'revoke') {
              t.services.tenants.revokeKey(target.id);
              target.valid = false;
            } else if (!target.valid) {
              expect(() => t.services.tenants.rotateKey(target.id)).toThrow(DomainError);
            } else if (o.fault) {
              const heal = injectFault(t, o.fault);
              try {
                expect(() => t.services.tenants.rotateKey(target.id)).toThrow('injected fault');
              } finally {
                heal();
              }
            } else {
              const k = t.services.tenants.rotateKey(target.id);
              target.valid = false;
              model.push({ id: k.id, secret: k.api_key, valid: true });
            }
          }
          expect(keysOf(t, first.id).map((k) => [k.id, k.revoked_at === null])).toEqual(model.map((k) => [k.id, k.valid]));
          for (const k of model) {
            const res = await clientFor(t.app, k.secret).get('/v1/handles');
            expect(res.status).toBe(k.valid ? 200 : 401);
          }
        }),
        { numRuns: 60 },
      );
    } finally {
      t.close();
    }
  });
});
