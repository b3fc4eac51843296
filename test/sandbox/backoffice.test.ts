import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCrm } from '../../src/sandbox/crm/index.js';
import { createLoyalty } from '../../src/sandbox/loyalty/index.js';
import {
  createWms,
  signStandardWebhook,
  verifyStandardWebhook,
} from '../../src/sandbox/wms/index.js';
import { createTaxEngine } from '../../src/sandbox/tax/index.js';
import {
  createNotifications,
  isE164,
  isEmailAddress,
} from '../../src/sandbox/notifications/index.js';
import { mulberry32 } from '../../src/sandbox/kit.js';

function client(base: string, headers: Record<string, string> = {}) {
  return async (
    path: string,
    init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; headers: Headers; body: unknown }> => {
    const res = await fetch(`${base}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        ...headers,
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...init.headers,
      },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
    const text = await res.text();
    return {
      status: res.status,
      headers: res.headers,
      body: text === '' ? undefined : JSON.parse(text),
    };
  };
}

void test('CRM: API key, upsert by external id, search by email, timeline, preferences, segments', async () => {
  const crm = createCrm({ apiKey: 'crm-key' });
  const base = await crm.listen();
  try {
    const anonymous = await client(base)('/segments');
    assert.equal(anonymous.status, 401);
    const call = client(base, { 'x-api-key': 'crm-key' });

    const created = await call('/contacts/by-external-id/cust-1', {
      method: 'PUT',
      body: { email: 'Ada@Example.com', firstName: 'Ada', phone: '+4930123456', country: 'DE' },
    });
    assert.equal(created.status, 201);
    const contact = created.body as { id: string; version: number };
    const updated = await call('/contacts/by-external-id/cust-1', {
      method: 'PUT',
      body: { lastName: 'Lovelace', properties: { loyaltyId: 'LM-000001' } },
    });
    assert.equal(updated.status, 200);
    const after = updated.body as { id: string; version: number; lastName: string; email: string };
    assert.deepEqual(
      [after.id, after.version, after.lastName, after.email],
      [contact.id, 2, 'Lovelace', 'Ada@Example.com'],
    );

    const invalid = await call('/contacts/by-external-id/cust-2', {
      method: 'PUT',
      body: { email: 'not-an-email', phone: '0301234' },
    });
    assert.equal(invalid.status, 400);
    const fields = (invalid.body as { errors: { in: string }[] }).errors.map((e) => e.in).sort();
    assert.deepEqual(fields, ['email', 'phone']);

    const search = await call('/contacts?email=ada%40example.com');
    assert.equal((search.body as { total: number }).total, 1);

    const entry = {
      eventId: 'evt-1',
      type: 'order.placed',
      title: 'Order MM-1 placed',
      occurredAt: new Date().toISOString(),
      data: { total: 4200 },
    };
    const t1 = await call(`/contacts/${contact.id}/timeline`, { method: 'POST', body: entry });
    assert.equal(t1.status, 201);
    const t2 = await call(`/contacts/${contact.id}/timeline`, { method: 'POST', body: entry });
    assert.equal(t2.status, 200, 'the same event id is recorded once');
    const timeline = await call(`/contacts/${contact.id}/timeline`);
    assert.equal((timeline.body as { total: number }).total, 1);
    const badEntry = await call(`/contacts/${contact.id}/timeline`, {
      method: 'POST',
      body: { type: 'order.placed', title: 'x', occurredAt: 'yesterday' },
    });
    assert.equal(badEntry.status, 400);

    const prefs = await call(`/contacts/${contact.id}/preferences`, {
      method: 'PUT',
      body: {
        consents: [{ channel: 'email', purpose: 'marketing', granted: true, source: 'web' }],
      },
    });
    assert.equal(prefs.status, 200);
    const badPrefs = await call(`/contacts/${contact.id}/preferences`, {
      method: 'PUT',
      body: { consents: [{ channel: 'pigeon', purpose: 'marketing', granted: 'yes' }] },
    });
    assert.equal(badPrefs.status, 400);

    const segments = await call('/segments');
    const sizes = Object.fromEntries(
      (segments.body as { results: { id: string; size: number }[] }).results.map((s) => [
        s.id,
        s.size,
      ]),
    );
    assert.deepEqual(sizes, {
      'all-contacts': 1,
      'email-marketing-opt-in': 1,
      'recent-purchasers': 1,
      'loyalty-members': 1,
    });
  } finally {
    await crm.close();
  }
});

void test('loyalty: accruals and reversals are idempotent by Idempotency-Key', async () => {
  const loyalty = createLoyalty({ apiKey: 'loyalty-key' });
  const base = await loyalty.listen();
  try {
    const call = client(base, { 'x-api-key': 'loyalty-key' });
    assert.equal((await client(base)('/members?email=a@b.example')).status, 401);
    const enrolled = await call('/members', {
      method: 'POST',
      body: { email: 'grace@example.com', firstName: 'Grace' },
    });
    assert.equal(enrolled.status, 201);
    const member = enrolled.body as { id: string; tier: string };
    assert.equal(member.tier, 'Bronze');
    const again = await call('/members', { method: 'POST', body: { email: 'grace@example.com' } });
    assert.equal(again.status, 409);

    const accrual = { orderReference: 'MM-1', spend: { amount: 120_050, currency: 'EUR' } };
    const first = await call(`/members/${member.id}/accruals`, {
      method: 'POST',
      body: accrual,
      headers: { 'idempotency-key': 'acc-1' },
    });
    assert.equal(first.status, 201);
    const firstBody = first.body as { activity: { points: number }; member: { balance: number } };
    assert.equal(firstBody.activity.points, 1200);

    const replay = await call(`/members/${member.id}/accruals`, {
      method: 'POST',
      body: { spend: { currency: 'EUR', amount: 120_050 }, orderReference: 'MM-1' },
      headers: { 'idempotency-key': 'acc-1' },
    });
    assert.equal(replay.status, 201);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(replay.body, first.body);

    const conflict = await call(`/members/${member.id}/accruals`, {
      method: 'POST',
      body: { orderReference: 'MM-1', points: 5 },
      headers: { 'idempotency-key': 'acc-1' },
    });
    assert.equal(conflict.status, 409);

    const missingKey = await call(`/members/${member.id}/accruals`, {
      method: 'POST',
      body: { points: 5 },
    });
    assert.equal(missingKey.status, 400);

    const status = await call(`/members/${member.id}`);
    const view = status.body as {
      balance: number;
      lifetimePoints: number;
      tier: string;
      nextTier: { name: string; pointsNeeded: number };
    };
    assert.deepEqual(
      [view.balance, view.tier, view.nextTier],
      [1200, 'Silver', { name: 'Gold', pointsNeeded: 3800 }],
    );

    const reversal = await call(`/members/${member.id}/reversals`, {
      method: 'POST',
      body: { points: 200, reason: 'return', orderReference: 'MM-1' },
      headers: { 'idempotency-key': 'rev-1' },
    });
    assert.equal(reversal.status, 201);
    const reversalReplay = await call(`/members/${member.id}/reversals`, {
      method: 'POST',
      body: { points: 200, reason: 'return', orderReference: 'MM-1' },
      headers: { 'idempotency-key': 'rev-1' },
    });
    assert.equal(reversalReplay.status, 201);
    const tooMuch = await call(`/members/${member.id}/reversals`, {
      method: 'POST',
      body: { points: 5000 },
      headers: { 'idempotency-key': 'rev-2' },
    });
    assert.equal(tooMuch.status, 422);
    const final = (await call(`/members/${member.id}`)).body as { balance: number; tier: string };
    assert.deepEqual([final.balance, final.tier], [1000, 'Silver']);
    const activities = (await call(`/members/${member.id}/activities`)).body as { data: unknown[] };
    assert.equal(activities.data.length, 2);
    assert.equal(loyalty.counters().idempotentReplays, 2);
  } finally {
    await loyalty.close();
  }
});

void test('Standard Webhooks signing matches the specification test vector', () => {
  // Vector from the Standard Webhooks reference libraries' tests.
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const signature = signStandardWebhook(
    secret,
    'msg_p5jXN8AQM9LWM0D4loKWxJek',
    1614265330,
    '{"test": 2432232314}',
  );
  assert.equal(signature, 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  assert.ok(
    verifyStandardWebhook(
      secret,
      { id: 'msg_p5jXN8AQM9LWM0D4loKWxJek', timestamp: '1614265330', signature },
      '{"test": 2432232314}',
      { nowSeconds: 1614265330 },
    ),
  );
  assert.ok(
    !verifyStandardWebhook(
      secret,
      { id: 'msg_p5jXN8AQM9LWM0D4loKWxJek', timestamp: '1614265330', signature },
      '{"test": 2432232315}',
      { nowSeconds: 1614265330 },
    ),
  );
});

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

void test('WMS: fulfilment request leads to a signed shipment webhook, retried after a failure', async () => {
  const secret = `whsec_${Buffer.from('test-secret-for-wms-webhooks').toString('base64')}`;
  const received: Received[] = [];
  let failuresLeft = 1;
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (failuresLeft > 0) {
        failuresLeft -= 1;
        res.statusCode = 503;
      } else res.statusCode = 204;
      res.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const port = (receiver.address() as AddressInfo).port;
  const wms = createWms({
    webhookUrl: `http://127.0.0.1:${port}/hooks/wms`,
    webhookSecret: secret,
    confirmationDelayMs: 0,
    webhookRetryDelayMs: 10,
    random: mulberry32(5),
  });
  const base = await wms.listen();
  try {
    const call = client(base);
    const bad = await call('/fulfilment-requests', {
      method: 'POST',
      body: { orderReference: 'MM-9', shipTo: { name: 'A' }, lines: [{ sku: 'X', quantity: 0 }] },
    });
    assert.equal(bad.status, 400);
    const badFields = (bad.body as { errors: { field: string }[] }).errors.map((e) => e.field);
    assert.ok(badFields.includes('shipTo.country'));
    assert.ok(badFields.includes('lines[0].quantity'));

    const request = {
      orderReference: 'MM-9',
      shipTo: {
        name: 'Ada Lovelace',
        line1: 'Unter den Linden 1',
        city: 'Berlin',
        postalCode: '10117',
        country: 'DE',
      },
      lines: [{ sku: 'MM-00002', quantity: 2 }],
    };
    const accepted = await call('/fulfilment-requests', { method: 'POST', body: request });
    assert.equal(accepted.status, 201);
    const duplicate = await call('/fulfilment-requests', { method: 'POST', body: request });
    assert.equal(duplicate.status, 200);
    assert.equal((duplicate.body as { id: string }).id, (accepted.body as { id: string }).id);

    for (let i = 0; i < 500 && received.length < 2; i += 1) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(received.length, 2, 'one failed attempt, then one delivered');
    const [firstAttempt, delivered] = received as [Received, Received];
    assert.equal(firstAttempt.headers['webhook-id'], delivered.headers['webhook-id']);

    // Verify independently of the simulator's own helper.
    const id = delivered.headers['webhook-id'] as string;
    const timestamp = delivered.headers['webhook-timestamp'] as string;
    const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
    const expected = createHmac('sha256', key)
      .update(`${id}.${timestamp}.${delivered.body}`)
      .digest('base64');
    assert.equal(delivered.headers['webhook-signature'], `v1,${expected}`);
    assert.ok(Math.abs(Number(timestamp) - Date.now() / 1000) < 300);

    const payload = JSON.parse(delivered.body) as {
      type: string;
      data: { orderReference: string; lines: unknown[]; carrier: string; trackingNumber: string };
    };
    assert.equal(payload.type, 'shipment.confirmed');
    assert.equal(payload.data.orderReference, 'MM-9');
    assert.deepEqual(payload.data.lines, [{ sku: 'MM-00002', quantity: 2 }]);
    assert.ok(payload.data.carrier.length > 0 && payload.data.trackingNumber.length > 0);

    for (let i = 0; i < 200 && wms.confirmations()[0]?.status !== 'sent'; i += 1) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const state = (await call('/_sandbox/state')).body as {
      confirmations: { pending: unknown[]; sent: number; failed: unknown[] };
    };
    assert.deepEqual([state.confirmations.pending.length, state.confirmations.sent], [0, 1]);
    const fr = await call(`/fulfilment-requests/${(accepted.body as { id: string }).id}`);
    assert.equal((fr.body as { status: string }).status, 'shipped');
  } finally {
    await wms.close();
    await new Promise((resolve) => receiver.close(resolve));
  }
});

void test('WMS: a confirmation that never gets through ends as failed after its attempts', async () => {
  const receiver = createServer((_req, res) => {
    res.statusCode = 500;
    res.end();
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const port = (receiver.address() as AddressInfo).port;
  const wms = createWms({
    webhookUrl: `http://127.0.0.1:${port}/`,
    confirmationDelayMs: 0,
    webhookRetryDelayMs: 5,
    webhookMaxAttempts: 3,
  });
  const base = await wms.listen();
  try {
    await client(base)('/fulfilment-requests', {
      method: 'POST',
      body: {
        orderReference: 'MM-10',
        shipTo: { name: 'B', line1: 'x', city: 'Paris', postalCode: '75001', country: 'FR' },
        lines: [{ sku: 'MM-00003', quantity: 1 }],
      },
    });
    for (let i = 0; i < 500 && wms.confirmations()[0]?.status !== 'failed'; i += 1) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const [confirmation] = wms.confirmations();
    assert.equal(confirmation?.status, 'failed');
    assert.equal(confirmation?.attempts, 3);
  } finally {
    await wms.close();
    await new Promise((resolve) => receiver.close(resolve));
  }
});

void test('tax: quotes per line by country and state; unknown country is a 422 field error', async () => {
  const tax = createTaxEngine();
  const base = await tax.listen();
  try {
    const call = client(base);
    const de = await call('/quotes', {
      method: 'POST',
      body: {
        currency: 'EUR',
        shipTo: { country: 'DE' },
        lines: [
          { sku: 'A', quantity: 3, unitPrice: 1999 },
          { sku: 'B', quantity: 1, unitPrice: 1000, taxCode: 'REDUCED' },
          { sku: 'C', quantity: 1, unitPrice: 500, taxCode: 'EXEMPT' },
        ],
      },
    });
    assert.equal(de.status, 200);
    const quote = de.body as {
      lines: { taxAmount: number; rateBasisPoints: number }[];
      totalNet: number;
      totalTax: number;
      totalGross: number;
    };
    // 5997 * 19% = 1139.43 -> 1139; 1000 * 7% = 70; exempt 0.
    assert.deepEqual(
      quote.lines.map((l) => [l.rateBasisPoints, l.taxAmount]),
      [
        [1900, 1139],
        [700, 70],
        [0, 0],
      ],
    );
    assert.deepEqual([quote.totalNet, quote.totalTax, quote.totalGross], [7497, 1209, 8706]);

    const us = await call('/quotes', {
      method: 'POST',
      body: {
        currency: 'USD',
        shipTo: { country: 'US', region: 'CA' },
        lines: [{ sku: 'A', quantity: 2, unitPrice: 1000 }],
      },
    });
    assert.equal((us.body as { totalTax: number }).totalTax, 145);

    const unknown = await call('/quotes', {
      method: 'POST',
      body: {
        currency: 'EUR',
        shipTo: { country: 'ZZ' },
        lines: [{ sku: 'A', quantity: 1, unitPrice: 1 }],
      },
    });
    assert.equal(unknown.status, 422);
    assert.deepEqual(
      (unknown.body as { errors: { field: string }[] }).errors.map((e) => e.field),
      ['shipTo.country'],
    );
    const unconfigured = await call('/quotes', {
      method: 'POST',
      body: {
        currency: 'BRL',
        shipTo: { country: 'BR' },
        lines: [{ sku: 'A', quantity: 1, unitPrice: 1 }],
      },
    });
    assert.equal(unconfigured.status, 422);
    const noState = await call('/quotes', {
      method: 'POST',
      body: {
        currency: 'USD',
        shipTo: { country: 'US' },
        lines: [{ sku: 'A', quantity: -1, unitPrice: 1.5 }],
      },
    });
    assert.deepEqual(
      (noState.body as { errors: { field: string }[] }).errors.map((e) => e.field).sort(),
      ['lines[0].quantity', 'lines[0].unitPrice', 'shipTo.region'],
    );
  } finally {
    await tax.close();
  }
});

void test('notifications: validates addresses and numbers, records and lists messages', async () => {
  assert.ok(isEmailAddress('ada.lovelace+news@mail.example.co.uk'));
  for (const bad of ['ada', 'ada@', '@x.com', 'a..b@x.com', 'a b@x.com', 'a@x', 'a@-x.com']) {
    assert.ok(!isEmailAddress(bad), bad);
  }
  assert.ok(isE164('+4915112345678'));
  for (const bad of ['015112345678', '+0151123', '+49 151 123', '+1234567890123456']) {
    assert.ok(!isE164(bad), bad);
  }
  const notifications = createNotifications();
  const base = await notifications.listen();
  try {
    const call = client(base);
    const email = await call('/messages', {
      method: 'POST',
      body: {
        channel: 'email',
        to: 'ada@example.com',
        subject: 'Your order shipped',
        body: 'Hi Ada',
        reference: 'MM-1',
      },
      headers: { 'idempotency-key': 'n-1' },
    });
    assert.equal(email.status, 202);
    const replay = await call('/messages', {
      method: 'POST',
      body: {
        channel: 'email',
        to: 'ada@example.com',
        subject: 'Your order shipped',
        body: 'Hi Ada',
        reference: 'MM-1',
      },
      headers: { 'idempotency-key': 'n-1' },
    });
    assert.equal((replay.body as { id: string }).id, (email.body as { id: string }).id);
    const sms = await call('/messages', {
      method: 'POST',
      body: { channel: 'sms', to: '+4915112345678', body: 'Shipped!' },
    });
    assert.equal(sms.status, 202);
    const badSms = await call('/messages', {
      method: 'POST',
      body: { channel: 'sms', to: '0151 123', body: 'x', subject: 'no' },
    });
    assert.equal(badSms.status, 422);
    assert.deepEqual(
      (badSms.body as { errors: { field: string }[] }).errors.map((e) => e.field).sort(),
      ['subject', 'to'],
    );
    const badEmail = await call('/messages', {
      method: 'POST',
      body: { channel: 'email', to: 'ada@@example.com', body: '' },
    });
    assert.deepEqual(
      (badEmail.body as { errors: { field: string }[] }).errors.map((e) => e.field).sort(),
      ['body', 'subject', 'to'],
    );
    const listed = await call('/messages');
    assert.equal((listed.body as { total: number }).total, 2);
    const byTo = await call('/messages?channel=sms');
    assert.deepEqual(
      (byTo.body as { data: { to: string }[] }).data.map((m) => m.to),
      ['+4915112345678'],
    );
  } finally {
    await notifications.close();
  }
});
