// `middlemart keys create|list|revoke` against a SQLite file, and the keys it makes used against
// the real API: a created key authenticates, a revoked one does not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyApiKey, API_KEY_MIGRATIONS } from '../../src/api/auth/api-keys.js';
import { listAudit } from '../../src/api/auth/audit.js';
import { openStore } from '../../src/store/index.js';
import { runInProcess } from './helpers.js';

void test('keys create prints the key once; list never shows it; revoke ends it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-keys-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = ['--database-url', `sqlite:${join(dir, 'mm.db')}`];

  const created = await runInProcess([
    'keys',
    'create',
    '--role',
    'operator',
    '--role',
    'payload-reader',
    '--name',
    'night shift',
    '--tier',
    'premium',
    ...db,
  ]);
  assert.equal(created.code, 0, created.stderr);
  const key = created.stdout.trim();
  assert.match(key, /^mm_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
  assert.match(created.stderr, /not shown again/);
  const prefix = key.slice(3, 15);

  const asJson = await runInProcess([
    'keys',
    'create',
    '--role',
    'channel,auditor',
    '--name',
    'shop',
    '--json',
    ...db,
  ]);
  assert.equal(asJson.code, 0, asJson.stderr);
  const second = JSON.parse(asJson.stdout) as {
    key: string;
    record: { roles: string[]; tier: string };
  };
  assert.deepEqual(second.record.roles, ['channel', 'auditor']);
  assert.equal(second.record.tier, 'standard');

  const list = await runInProcess(['keys', 'list', ...db]);
  assert.equal(list.code, 0);
  assert.match(
    list.stdout,
    new RegExp(`^${prefix}\\s+operator,payload-reader\\s+premium .* active  night shift$`, 'm'),
  );
  assert.ok(!list.stdout.includes(key.slice(16)), 'the secret is never listed');
  const listJson = JSON.parse(
    (await runInProcess(['keys', 'list', '--json', ...db])).stdout,
  ) as unknown[];
  assert.equal(listJson.length, 2);

  const store = await openStore(`sqlite:${join(dir, 'mm.db')}`);
  t.after(() => store.close());
  await store.migrate(API_KEY_MIGRATIONS);
  assert.deepEqual((await verifyApiKey(store, key))?.roles, ['operator', 'payload-reader']);

  const revoked = await runInProcess(['keys', 'revoke', prefix, ...db]);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.equal(await verifyApiKey(store, key), undefined);
  assert.equal((await runInProcess(['keys', 'revoke', prefix, ...db])).code, 1);
  assert.doesNotMatch((await runInProcess(['keys', 'list', ...db])).stdout, new RegExp(prefix));
  assert.match(
    (await runInProcess(['keys', 'list', '--all', ...db])).stdout,
    new RegExp(`${prefix}.*revoked`),
  );

  const audit = await listAudit(store);
  assert.deepEqual(
    audit.items.map((a) => [a.actor, a.action]),
    [
      ['cli', 'key.revoked'],
      ['cli', 'key.created'],
      ['cli', 'key.created'],
    ],
  );
});

void test('keys create refuses unknown roles, tiers and missing names with exit code 2', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-keys-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = ['--database-url', `sqlite:${join(dir, 'mm.db')}`];
  const cases: Array<[string[], RegExp]> = [
    [['--role', 'root', '--name', 'x'], /--role: 'root' is not one of/],
    [['--name', 'x'], /--role: required/],
    [['--role', 'admin'], /--name: required/],
    [['--role', 'admin', '--name', 'x', '--tier', 'gold'], /--tier: 'gold'/],
  ];
  for (const [args, message] of cases) {
    const r = await runInProcess(['keys', 'create', ...args, ...db]);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, message);
  }
  const bad = await runInProcess(['keys', 'revoke', 'not-a-prefix', ...db]);
  assert.equal(bad.code, 2);
});
