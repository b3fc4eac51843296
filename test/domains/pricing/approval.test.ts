// Approval: a change beyond the configured rules is held until approved; a rejected one never
// reaches a channel; decisions are audited. Bad input is answered 400 naming the field or the
// CSV line, with nothing stored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, price, startPricingWorld } from './helpers.js';

void test('held changes wait for a decision; rejected ones never reach a channel', async (t) => {
  const w = await startPricingWorld({
    pricing: { approval: { maxDropPercent: 30, maxPromotionDiscountPercent: 40 } },
  });
  t.after(() => w.stop());
  const ingest = await w.key(['channel']);
  const steward = await w.key(['steward']);
  const auditor = await w.key(['auditor']);
  const now = Date.now();
  const skuA = 'MM-00010';
  const skuB = 'MM-00011';

  // Regular prices (auto-approved: nothing in effect to compare with, no sale price).
  let r = await w.call('POST', '/v1/prices/changes', {
    key: ingest,
    body: {
      changes: [
        price(skuA, 10000, { channel: 'web', from: now - 1000 }),
        price(skuB, 8000, { channel: 'web', from: now - 1000 }),
      ],
    },
  });
  assert.equal(r.status, 202, r.text);
  await eventually(
    'regular prices on the shop',
    async () =>
      (await w.shopPrice(skuA))?.price === 10000 && (await w.shopPrice(skuB))?.price === 8000,
  );

  // A 50% drop for A (held), a 60% promotion for B (held), a 10% drop for B (auto-approved).
  r = await w.call('POST', '/v1/prices/changes', {
    key: ingest,
    body: {
      changes: [
        price(skuA, 5000, { channel: 'web', from: now }),
        price(skuB, 8000, { channel: 'web', sale: 3200, from: now, promotionId: 'DEEP-DEAL' }),
      ],
    },
  });
  assert.equal(r.status, 202, r.text);
  const pending = await eventually('two held changes', async () => {
    const list = await w.call('GET', '/v1/prices/approvals', { key: steward });
    assert.equal(list.status, 200, list.text);
    const items = list.json().items as Array<{
      id: string;
      sku: string;
      reasons: string[];
      status: string;
    }>;
    return items.length === 2 ? items : undefined;
  });
  const held = new Map(pending.map((c) => [c.sku, c]));
  assert.match(held.get(skuA)!.reasons[0]!, /drop of 50\.0%/);
  assert.match(held.get(skuB)!.reasons.join('; '), /sale price 60\.0% below list exceeds 40%/);

  // Held: the shop still shows the regular prices a while later.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.equal((await w.shopPrice(skuA))?.price, 10000, 'a held drop does not reach the shop');
  assert.equal((await w.shopPrice(skuB))?.price, 8000, 'a held promotion does not reach the shop');

  // A channel key may not decide.
  const forbidden = await w.call(
    'POST',
    `/v1/prices/approvals/${encodeURIComponent(held.get(skuA)!.id)}/decision`,
    {
      key: ingest,
      body: { decision: 'approve', reason: 'x' },
    },
  );
  assert.equal(forbidden.status, 403);
  // A decision needs a reason.
  const noReason = await w.call(
    'POST',
    `/v1/prices/approvals/${encodeURIComponent(held.get(skuA)!.id)}/decision`,
    {
      key: steward,
      body: { decision: 'approve' },
    },
  );
  assert.equal(noReason.status, 400);
  assert.match(noReason.text, /reason/);

  // Approve A: it reaches the shop. Reject B: it never does.
  const approve = await w.call(
    'POST',
    `/v1/prices/approvals/${encodeURIComponent(held.get(skuA)!.id)}/decision`,
    {
      key: steward,
      body: { decision: 'approve', reason: 'clearance agreed with category' },
    },
  );
  assert.equal(approve.status, 200, approve.text);
  assert.equal(approve.json().status, 'approved');
  const reject = await w.call(
    'POST',
    `/v1/prices/approvals/${encodeURIComponent(held.get(skuB)!.id)}/decision`,
    {
      key: steward,
      body: { decision: 'reject', reason: 'margin below floor' },
    },
  );
  assert.equal(reject.status, 200, reject.text);
  assert.equal(reject.json().status, 'rejected');
  const again = await w.call(
    'POST',
    `/v1/prices/approvals/${encodeURIComponent(held.get(skuB)!.id)}/decision`,
    {
      key: steward,
      body: { decision: 'approve', reason: 'changed my mind' },
    },
  );
  assert.equal(again.status, 409, 'a decision is made once');
  const missing = await w.call('POST', '/v1/prices/approvals/nope/decision', {
    key: steward,
    body: { decision: 'approve', reason: 'x' },
  });
  assert.equal(missing.status, 404);

  await eventually(
    'the approved drop on the shop',
    async () => (await w.shopPrice(skuA))?.price === 5000,
  );
  await new Promise((resolve) => setTimeout(resolve, 800));
  const b = await w.shopPrice(skuB);
  assert.equal(b?.price, 8000, 'the rejected promotion never reaches the shop');
  assert.equal(b?.compareAt, null);
  const rejected = await w.call('GET', '/v1/prices/approvals?status=rejected', { key: steward });
  assert.equal(rejected.json().items[0].decisionReason, 'margin below floor');

  // Both decisions are in the audit log.
  const audit = await w.call('GET', '/v1/audit', { key: auditor });
  assert.equal(audit.status, 200, audit.text);
  assert.match(audit.text, /price\.approve/);
  assert.match(audit.text, /price\.reject/);
  assert.match(audit.text, /margin below floor/);
});

void test('bad input is a 400 naming the field or the CSV line; nothing is stored', async (t) => {
  const w = await startPricingWorld();
  t.after(() => w.stop());
  const ingest = await w.key(['channel']);
  const steward = await w.key(['steward']);
  const now = Date.now();

  const r = await w.call('POST', '/v1/prices/changes', {
    key: ingest,
    body: {
      changes: [
        price('MM-00001', 1000, { channel: 'web', from: now }),
        {
          ...price('MM-00002', 1000, { channel: 'web', from: now }),
          listPrice: { amount: -5, currency: 'EUR' },
        },
      ],
    },
  });
  assert.equal(r.status, 400);
  assert.equal(r.json().errors[0].path, 'changes[1].listPrice.amount');

  const csv = [
    'sku,channel,store_group,currency,list_price,sale_price,effective_from,effective_until,promotion_id',
    'MM-00001,web,,EUR,10.00,,2026-01-01T00:00:00Z,,',
    'MM-00002,fax,,EUR,10.00,,2026-01-01T00:00:00Z,,',
    'MM-00003,web,,EUR,ten,,2026-01-01T00:00:00Z,,',
    'MM-00004,,eu-stores,EUR,10.00,12.00,2026-01-01T00:00:00Z,,',
    'MM-00005,web,,EUR,10.00,,yesterday,,',
  ].join('\r\n');
  const bad = await w.call('POST', '/v1/prices/files', {
    key: ingest,
    raw: csv,
    headers: { 'content-type': 'text/csv' },
  });
  assert.equal(bad.status, 400, bad.text);
  const paths = (bad.json().errors as Array<{ path: string }>).map((e) => e.path);
  assert.deepEqual(paths, [
    'line 3: channel',
    'line 4: list_price',
    'line 5: sale_price',
    'line 6: effective_from',
  ]);

  const good = await w.call('POST', '/v1/prices/files', {
    key: ingest,
    raw: csv.split('\r\n').slice(0, 2).join('\r\n') + '\r\n',
    headers: { 'content-type': 'text/csv' },
  });
  assert.equal(good.status, 202, good.text);
  assert.equal(good.json().changes, 1);
  // Only the good file's change was recorded.
  const recorded = await eventually('the recorded change', async () => {
    const list = await w.call('GET', '/v1/prices/approvals?status=approved', { key: steward });
    const items = list.json().items as Array<{ sku: string; listPrice: { amount: number } }>;
    return items.length > 0 ? items : undefined;
  });
  assert.deepEqual(
    recorded.map((c) => [c.sku, c.listPrice.amount]),
    [['MM-00001', 1000]],
  );
});
