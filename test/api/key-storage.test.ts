// Key storage and the audit chain on both stores: the experience layer's migrations (1000+) apply
// beside the engine's, keys verify and revoke, and concurrent audit appends on a connection pool
// still form one chain. PostgreSQL runs when MIDDLEMART_TEST_PG_URL is set.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  API_KEY_MIGRATIONS,
  createApiKey,
  listApiKeys,
  revokeApiKey,
  verifyApiKey,
} from '../../src/api/auth/api-keys.js';
import { appendAudit, verifyAudit } from '../../src/api/auth/audit.js';
import { BACKENDS } from '../store/backends.js';

for (const backend of BACKENDS) {
  void describe(`key storage: ${backend.name}`, { skip: backend.skip }, () => {
    void test('migrations, keys and a concurrent audit chain', async (t) => {
      const database = await backend.create();
      const store = await database.open({ poolSize: 4 });
      t.after(async () => {
        await store.close();
        await database.drop();
      });
      assert.deepEqual(await store.migrate(API_KEY_MIGRATIONS), [1000, 1001]);
      assert.deepEqual(await store.migrate(API_KEY_MIGRATIONS), []);

      const { key, record } = await createApiKey(store, {
        name: 'pos fleet',
        roles: ['channel'],
        tier: 'premium',
      });
      assert.deepEqual(await verifyApiKey(store, key), {
        keyPrefix: record.prefix,
        name: 'pos fleet',
        roles: ['channel'],
        tier: 'premium',
      });
      assert.equal((await listApiKeys(store)).length, 1);
      assert.equal(await revokeApiKey(store, record.prefix), true);
      assert.equal(await verifyApiKey(store, key), undefined);
      assert.equal(
        (await listApiKeys(store, { includeRevoked: true }))[0]?.revokedAt !== null,
        true,
      );

      await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          appendAudit(store, { actor: 'cli', action: 'key.created', target: `k${i}` }),
        ),
      );
      assert.deepEqual(await verifyAudit(store), { ok: true, entries: 30 });
    });
  });
}
