// The audit log is append-only and hash-chained: concurrent appends form one chain, and any
// altered, inserted or deleted entry is found by verifyAudit (and GET /v1/audit/verify).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendAudit, listAudit, verifyAudit } from '../../src/api/auth/audit.js';
import { startTestApp } from './app-helpers.js';

void test('concurrent appends form one unbroken chain, paged newest first', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const db = api.app.store;
  await Promise.all(
    Array.from({ length: 25 }, (_, i) =>
      appendAudit(db, { actor: 'cli', action: 'key.created', target: `k${i}`, detail: { i } }),
    ),
  );
  assert.deepEqual(await verifyAudit(db, 7), { ok: true, entries: 25 });

  const seqs: number[] = [];
  let cursor: string | undefined;
  do {
    const page = await listAudit(db, { limit: 10, ...(cursor ? { cursor } : {}) });
    seqs.push(...page.items.map((e) => e.seq));
    cursor = page.nextCursor;
  } while (cursor);
  assert.deepEqual(
    seqs,
    Array.from({ length: 25 }, (_, i) => 25 - i),
  );

  const auditor = await api.key(['auditor']);
  const res = await api.call('GET', '/v1/audit/verify', { key: auditor });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json(), { ok: true, entries: 25 });
  assert.equal(
    (await api.call('GET', '/v1/audit/verify', { key: await api.key(['operator']) })).status,
    403,
  );
});

void test('an altered, a deleted and a truncated entry are each detected', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const db = api.app.store;
  for (let i = 1; i <= 6; i++) {
    await appendAudit(db, {
      actor: 'cli',
      action: 'key.revoked',
      target: `k${i}`,
      remote: '127.0.0.1',
    });
  }
  assert.equal((await verifyAudit(db)).ok, true);

  // Altered content.
  await db.execute("UPDATE api_audit_log SET actor = 'someone else' WHERE seq = 3");
  assert.deepEqual(await verifyAudit(db), {
    ok: false,
    entries: 2,
    brokenAt: 3,
    reason: 'its content does not match its hash',
  });
  await db.execute("UPDATE api_audit_log SET actor = 'cli' WHERE seq = 3");
  assert.equal((await verifyAudit(db)).ok, true);

  // A deleted entry in the middle.
  await db.execute('DELETE FROM api_audit_log WHERE seq = 6');
  await db.execute('DELETE FROM api_audit_log WHERE seq = 4');
  const gap = await verifyAudit(db);
  assert.equal(gap.ok, false);
  assert.equal(gap.brokenAt, 4);
  assert.match(gap.reason ?? '', /missing/);

  // Entries deleted from the end (the head still names the last one).
  await db.execute('DELETE FROM api_audit_log WHERE seq = 5');
  const truncated = await verifyAudit(db);
  assert.equal(truncated.ok, false);
  assert.match(truncated.reason ?? '', /deleted from the end/);
});
