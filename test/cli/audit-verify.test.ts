// `middlemart audit verify` against a SQLite file: intact after key changes; an altered, a
// deleted-from-the-middle and a deleted-from-the-end entry are each found and named (exit 1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/index.js';
import { runInProcess } from './helpers.js';

async function seeded(): Promise<{ dir: string; db: string[]; url: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'mm-audit-'));
  const url = `sqlite:${join(dir, 'mm.db')}`;
  const db = ['--database-url', url];
  for (const name of ['one', 'two', 'three']) {
    const r = await runInProcess(['keys', 'create', '--role', 'channel', '--name', name, ...db]);
    assert.equal(r.code, 0, r.stderr);
  }
  return { dir, db, url };
}

async function tamper(url: string, sql: string): Promise<void> {
  const store = await openStore(url);
  try {
    await store.execute(sql);
  } finally {
    await store.close();
  }
}

void test('an intact log verifies; --json reports the count', async (t) => {
  const { dir, db } = await seeded();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ok = await runInProcess(['audit', 'verify', ...db]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /audit log intact: 3 entries verified/);
  const json = await runInProcess(['audit', 'verify', '--json', ...db]);
  assert.deepEqual(JSON.parse(json.stdout), { ok: true, entries: 3 });
});

void test('an altered entry is found', async (t) => {
  const { dir, db, url } = await seeded();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await tamper(url, "UPDATE api_audit_log SET actor = 'someone-else' WHERE seq = 2");
  const r = await runInProcess(['audit', 'verify', ...db]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /BROKEN at entry 2: its content does not match its hash/);
});

void test('an entry deleted from the middle is found', async (t) => {
  const { dir, db, url } = await seeded();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await tamper(url, 'DELETE FROM api_audit_log WHERE seq = 2');
  const r = await runInProcess(['audit', 'verify', ...db]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /BROKEN at entry 2: entry 2 is missing/);
});

void test('an entry deleted from the end is found', async (t) => {
  const { dir, db, url } = await seeded();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await tamper(url, 'DELETE FROM api_audit_log WHERE seq = 3');
  const r = await runInProcess(['audit', 'verify', ...db]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /entries were deleted from the end/);
});
