// Stewardship: an ambiguous pair lands in a task with both records and the per-field comparison;
// a merge decision is applied, audited and can be undone; a "keep apart" is remembered so the
// pair is not proposed again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  activeCustomers,
  deadMessages,
  ESTATE_WITH_HOLDERS,
  startCustomersApp,
} from './support.js';

// Pairs sharing names and town but neither street nor email are put to a steward.
const ESTATE = `${ESTATE_WITH_HOLDERS}  matching:
    review: 0.001
`;

void test('an ambiguous pair lands in stewardship; the merge is applied, audited and can be undone', async (t) => {
  const api = await startCustomersApp({ yaml: ESTATE });
  t.after(() => api.close());
  const channel = await api.key(['channel']);
  const steward = await api.key(['steward']);

  const a = await api.call('POST', '/v1/customers', {
    key: channel,
    body: {
      system: 'crm',
      sourceId: 'C-1',
      givenName: 'Maria',
      familyName: 'Garcia',
      email: 'maria.garcia@example.com',
      address: { lines: ['5 Calle Mayor'], city: 'Madrid', postalCode: '28001', country: 'ES' },
    },
  });
  assert.equal(a.status, 202, a.text);
  await api.settle();
  const b = await api.call('POST', '/v1/customers', {
    key: channel,
    body: {
      system: 'commerce',
      sourceId: 'S-1',
      givenName: 'María',
      familyName: 'Garcia',
      email: 'm.garcia@work.example',
      address: { lines: ['Gran Via'], city: 'Madrid', country: 'ES' },
    },
  });
  assert.equal(b.status, 202, b.text);
  await api.settle();
  assert.deepEqual(await deadMessages(api.app), []);
  const [idA, idB] = await activeCustomers(api.app);
  assert.ok(idA && idB, 'the ambiguous record got its own identity');

  assert.equal((await api.call('GET', '/v1/stewardship/tasks', { key: channel })).status, 403);
  const list = await api.call('GET', '/v1/stewardship/tasks', { key: steward });
  assert.equal(list.status, 200, list.text);
  const scrape = await api.call('GET', '/metrics', { key: await api.key(['operator']) });
  assert.match(scrape.text, /middlemart_stewardship_backlog\{measure="open"\} 1\b/);
  assert.match(scrape.text, /middlemart_customer_match_decisions\{decision="review"\} [1-9]/);
  const tasks = list.json().items as Array<{
    id: string;
    customerA: string;
    customerB: string;
    status: string;
    probability: number;
  }>;
  assert.equal(tasks.length, 1);
  const task = tasks[0]!;
  assert.deepEqual([task.customerA, task.customerB].sort(), [idA, idB].sort());

  const detail = await api.call('GET', `/v1/stewardship/tasks/${task.id}`, { key: steward });
  assert.equal(detail.status, 200, detail.text);
  const d = detail.json();
  assert.deepEqual([d.recordA.sourceId, d.recordB.sourceId].sort(), ['C-1', 'S-1']);
  const given = d.comparison.find((c: { field: string }) => c.field === 'givenName');
  assert.ok(given && typeof given.weight === 'number' && given.level !== 'null', detail.text);
  assert.deepEqual([given.a, given.b].sort(), ['Maria', 'María']);
  const email = d.comparison.find((c: { field: string }) => c.field === 'email');
  assert.ok(email.weight < 0, 'different emails weigh against the match');
  assert.equal(
    (await api.call('GET', '/v1/stewardship/tasks/task_nope', { key: steward })).status,
    404,
  );

  const bad = await api.call('POST', `/v1/stewardship/tasks/${task.id}/decision`, {
    key: steward,
    body: { decision: 'merge' },
  });
  assert.equal(bad.status, 400);
  assert.ok(bad.json().errors.some((e: { path: string }) => e.path === 'reason'));

  const decided = await api.call('POST', `/v1/stewardship/tasks/${task.id}/decision`, {
    key: steward,
    body: { decision: 'merge', reason: 'same shopper, confirmed on the phone' },
  });
  assert.equal(decided.status, 202, decided.text);
  await api.settle();
  assert.deepEqual(await deadMessages(api.app), []);

  const after = (
    await api.call('GET', `/v1/stewardship/tasks/${task.id}`, { key: steward })
  ).json();
  assert.equal(after.status, 'merged');
  assert.equal(after.decision, 'merge');
  assert.equal(after.reason, 'same shopper, confirmed on the phone');
  assert.ok(after.mergeId);
  const active = await activeCustomers(api.app);
  assert.equal(active.length, 1);
  const merged = (
    await api.call('GET', `/v1/customers/${task.customerB}`, { key: steward })
  ).json();
  assert.equal(merged.id, task.customerA, 'the merged id resolves to the survivor');
  assert.deepEqual(
    merged.profile.sourceIds
      .map((s: { system: string; id: string }) => `${s.system}/${s.id}`)
      .sort(),
    ['commerce/S-1', 'crm/C-1'],
  );
  assert.ok(merged.history.some((h: { kind: string }) => h.kind === 'merged'));
  // Every system holding the survivor hears of the merge.
  const mergeSyncs = api.sent.filter((s) => s.action.mergedFrom?.includes(task.customerB));
  assert.deepEqual(mergeSyncs.map((s) => s.destination).sort(), ['commerce', 'crm']);

  const audit = await api.app.store.query<{ action: string; target: string; detail: string }>(
    'SELECT action, target, detail FROM api_audit_log ORDER BY seq',
  );
  const entry = audit.find((e) => e.action === 'stewardship.merge');
  assert.equal(entry?.target, task.id);
  assert.match(entry!.detail, /confirmed on the phone/);

  const again = await api.call('POST', `/v1/stewardship/tasks/${task.id}/decision`, {
    key: steward,
    body: { decision: 'keep-apart', reason: 'changed my mind' },
  });
  assert.equal(again.status, 409);

  // Undo: the merged identity comes back with the record it brought.
  const undo = await api.call('POST', `/v1/stewardship/merges/${after.mergeId}/undo`, {
    key: steward,
    body: { reason: 'two different women' },
  });
  assert.equal(undo.status, 202, undo.text);
  await api.settle();
  assert.equal((await activeCustomers(api.app)).length, 2);
  const restored = (
    await api.call('GET', `/v1/customers/${task.customerB}`, { key: steward })
  ).json();
  assert.equal(restored.id, task.customerB);
  assert.deepEqual(
    restored.profile.sourceIds.map((s: { system: string; id: string }) => `${s.system}/${s.id}`),
    ['commerce/S-1'],
  );
  assert.ok(audit.length > 0);
  const audited = await api.app.store.query<{ action: string }>(
    "SELECT action FROM api_audit_log WHERE action = 'stewardship.unmerge'",
  );
  assert.equal(audited.length, 1);
});

void test('a pair kept apart is not proposed again', async (t) => {
  const api = await startCustomersApp({ yaml: ESTATE });
  t.after(() => api.close());
  const channel = await api.key(['channel']);
  const steward = await api.key(['steward']);
  const post = async (body: Record<string, unknown>) => {
    const res = await api.call('POST', '/v1/customers', { key: channel, body });
    assert.equal(res.status, 202, res.text);
    await api.settle();
  };
  await post({
    system: 'crm',
    sourceId: 'C-2',
    givenName: 'Luis',
    familyName: 'Fernandez',
    email: 'luis.fernandez@example.com',
    address: { lines: ['1 Calle Sierpes'], city: 'Sevilla', postalCode: '41004', country: 'ES' },
  });
  await post({
    system: 'commerce',
    sourceId: 'S-2',
    givenName: 'Luis',
    familyName: 'Fernandez',
    email: 'lf@shop.example',
    emailVerified: true,
    address: { lines: ['Avenida de la Constitucion'], city: 'Sevilla', country: 'ES' },
  });
  const open = (await api.call('GET', '/v1/stewardship/tasks', { key: steward })).json().items;
  assert.equal(open.length, 1, 'the pair is proposed once');
  const res = await api.call('POST', `/v1/stewardship/tasks/${open[0].id}/decision`, {
    key: steward,
    body: { decision: 'keep-apart', reason: 'father and son' },
  });
  assert.equal(res.status, 202, res.text);
  await api.settle();
  const decided = (
    await api.call('GET', `/v1/stewardship/tasks?status=kept-apart`, { key: steward })
  ).json().items;
  assert.equal(decided.length, 1);
  assert.equal(decided[0].reason, 'father and son');

  // The son signs up for loyalty with his verified shop email: he links to his own identity,
  // and the resemblance to his father's is not put to a steward again.
  await post({
    system: 'loyalty',
    sourceId: 'LM-2',
    givenName: 'Luis',
    familyName: 'Fernandez',
    email: 'lf@shop.example',
    emailVerified: true,
    address: { lines: ['Avenida de la Constitucion'], city: 'Sevilla', country: 'ES' },
  });
  assert.deepEqual(await deadMessages(api.app), []);
  assert.equal((await activeCustomers(api.app)).length, 2);
  const still = (await api.call('GET', '/v1/stewardship/tasks', { key: steward })).json().items;
  assert.deepEqual(still, [], 'no new task for a pair kept apart');
  const audited = await api.app.store.query<{ target: string }>(
    "SELECT target FROM api_audit_log WHERE action = 'stewardship.keep-apart'",
  );
  assert.deepEqual(
    audited.map((a) => a.target),
    [open[0].id],
  );
});
