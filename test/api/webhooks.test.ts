// Outbound webhooks end to end: a subscriber registers for event types over HTTP, an event
// accepted by the API reaches it signed per the Standard Webhooks spec, a failing subscriber is
// retried with the same message id, and a customer's personal data never goes to a subscriber
// outside the customer's allowed regions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { makeEvent } from '../../src/canonical/index.js';
import { webhookMessageId, signedHeaders } from '../../src/wiring/webhooks.js';
import { subscriberUrlProblem } from '../../src/api/v1/webhook-subscriptions.js';
import { sampleCustomer } from '../canonical/fixtures.js';
import { adjustment, startTestApp } from './app-helpers.js';

const ESTATE = `version: 1
webhooks:
  allowPrivateNetworks: true
  baseDelayMs: 10
  maxDelayMs: 50
  maxAttempts: 3
residency:
  allowed: {}
systems:
  - id: erp
    kind: rest-erp
    baseUrl: http://127.0.0.1:9
`;

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

async function receiver(answers: number[] = []) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.statusCode = answers.shift() ?? 204;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function until<T>(what: string, probe: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

void test('a subscribed event arrives signed per Standard Webhooks; a failure is retried with the same id', async (t) => {
  const api = await startTestApp({ estate: ESTATE });
  const hook = await receiver([500]);
  t.after(async () => {
    await api.close();
    await hook.close();
  });
  const channel = await api.key(['channel']);
  const created = await api.call('POST', '/v1/webhook-subscriptions', {
    key: channel,
    body: { url: hook.url, eventTypes: ['inventory.adjusted'], description: 'stock feed' },
  });
  assert.equal(created.status, 201, created.text);
  const sub = created.json() as { id: string; secret: string; eventTypes: string[] };
  assert.match(sub.secret, /^whsec_/);
  assert.deepEqual(sub.eventTypes, ['inventory.adjusted']);

  // The secret is never shown again.
  const read = await api.call('GET', `/v1/webhook-subscriptions/${sub.id}`, { key: channel });
  assert.equal(read.status, 200);
  assert.equal((read.json() as Record<string, unknown>).secret, undefined);

  const sent = await api.call('POST', '/v1/events', {
    key: channel,
    body: adjustment('adj-1', 7),
    headers: { 'idempotency-key': 'adj-1' },
  });
  assert.equal(sent.status, 202, sent.text);

  await until('two attempts', () => (hook.received.length >= 2 ? true : undefined));
  const [first, second] = hook.received as [Received, Received];
  assert.equal(first.headers['webhook-id'], second.headers['webhook-id']);
  const verifier = new Webhook(sub.secret);
  const payload = verifier.verify(second.body, {
    'webhook-id': String(second.headers['webhook-id']),
    'webhook-timestamp': String(second.headers['webhook-timestamp']),
    'webhook-signature': String(second.headers['webhook-signature']),
  }) as { type: string; data: { count: number } };
  assert.equal(payload.type, 'com.middlemart.inventory.adjusted.v1');
  assert.equal(payload.data.count, 7);
  // A tampered body fails verification.
  assert.throws(() =>
    verifier.verify(second.body.replace('"count":7', '"count":8'), {
      'webhook-id': String(second.headers['webhook-id']),
      'webhook-timestamp': String(second.headers['webhook-timestamp']),
      'webhook-signature': String(second.headers['webhook-signature']),
    }),
  );
  assert.match(String(second.headers.traceparent), /^00-[0-9a-f]{32}-/);
});

void test('events of other types, and of deleted subscriptions, are not sent', async (t) => {
  const api = await startTestApp({ estate: ESTATE });
  const hook = await receiver();
  t.after(async () => {
    await api.close();
    await hook.close();
  });
  const channel = await api.key(['channel']);
  const created = await api.call('POST', '/v1/webhook-subscriptions', {
    key: channel,
    body: { url: hook.url, eventTypes: ['price.changed'] },
  });
  const sub = created.json() as { id: string };
  await api.call('POST', '/v1/events', {
    key: channel,
    body: adjustment('adj-2', 3),
    headers: { 'idempotency-key': 'adj-2' },
  });
  const deleted = await api.call('DELETE', `/v1/webhook-subscriptions/${sub.id}`, {
    key: channel,
  });
  assert.equal(deleted.status, 204);
  const again = await api.call('GET', `/v1/webhook-subscriptions/${sub.id}`, { key: channel });
  assert.equal(again.status, 404);
  await until('the adjustment processed', () =>
    api.app.engine.counters.processed >= 1 ? true : undefined,
  );
  assert.equal(hook.received.length, 0);
});

void test('a channel sees only its own subscriptions; bad URLs and event types are 400 problems', async (t) => {
  const api = await startTestApp({ estate: ESTATE });
  t.after(() => api.close());
  const a = await api.key(['channel']);
  const b = await api.key(['channel']);
  const admin = await api.key(['admin']);
  const made = await api.call('POST', '/v1/webhook-subscriptions', {
    key: a,
    body: { url: 'http://127.0.0.1:1/x', eventTypes: ['*'] },
  });
  const id = (made.json() as { id: string }).id;
  assert.equal((await api.call('GET', `/v1/webhook-subscriptions/${id}`, { key: b })).status, 404);
  const listB = (await api.call('GET', '/v1/webhook-subscriptions', { key: b })).json() as {
    items: unknown[];
  };
  assert.equal(listB.items.length, 0);
  const listAdmin = (await api.call('GET', '/v1/webhook-subscriptions', { key: admin })).json() as {
    items: unknown[];
  };
  assert.equal(listAdmin.items.length, 1);

  for (const body of [
    { url: 'ftp://example.com/x', eventTypes: ['*'] },
    { url: 'not a url', eventTypes: ['*'] },
    { url: 'https://user:pw@example.com/x', eventTypes: ['*'] },
    { url: 'https://example.com/x', eventTypes: ['order.creatd'] },
    { url: 'https://example.com/x', eventTypes: [] },
  ]) {
    const res = await api.call('POST', '/v1/webhook-subscriptions', { key: a, body });
    assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
    assert.match(res.headers.get('content-type') ?? '', /application\/problem\+json/);
  }
});

void test('private-network URLs are refused unless allowed', () => {
  assert.match(String(subscriberUrlProblem('http://127.0.0.1/x', false)), /private-network/);
  assert.match(String(subscriberUrlProblem('https://10.1.2.3/x', false)), /private-network/);
  assert.match(String(subscriberUrlProblem('https://[::1]/x', false)), /private-network/);
  assert.match(String(subscriberUrlProblem('http://example.com/x', false)), /https/);
  assert.equal(subscriberUrlProblem('https://hooks.example.com/x', false), undefined);
  assert.equal(subscriberUrlProblem('http://127.0.0.1/x', true), undefined);
});

void test('signatures match the Standard Webhooks construction', () => {
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const at = new Date(1_614_265_330_000);
  const headers = signedHeaders(secret, 'msg_p5jXN8AQM9LWM0D4loKWxJek', '{"test": 2432232314}', at);
  // The spec's published example vector.
  assert.equal(headers['webhook-signature'], 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  assert.equal(headers['webhook-timestamp'], '1614265330');
  assert.equal(webhookMessageId('k'), webhookMessageId('k'));
  assert.notEqual(webhookMessageId('k'), webhookMessageId('k2'));
});

void test("a customer's data is refused to a subscriber outside the customer's region, and dead-lettered with the reason", async (t) => {
  const api = await startTestApp({ estate: ESTATE });
  const hook = await receiver();
  t.after(async () => {
    await api.close();
    await hook.close();
  });
  const admin = await api.key(['admin']);
  const made = await api.call('POST', '/v1/webhook-subscriptions', {
    key: admin,
    body: { url: hook.url, eventTypes: ['customer.updated'], region: 'us' },
  });
  assert.equal(made.status, 201, made.text);
  const event = makeEvent('customer.updated', sampleCustomer(), { source: '/crm' });
  const sent = await api.call('POST', '/v1/events', {
    key: admin,
    body: event,
    headers: { 'idempotency-key': 'cus-1' },
  });
  assert.equal(sent.status, 202, sent.text);
  const dead = await until('the residency dead letter', () => undefined, 0).catch(() => undefined);
  void dead;
  const end = Date.now() + 10_000;
  let reason: string | undefined;
  while (Date.now() < end && reason === undefined) {
    const page = await api.app.engine.deadLetters.list({ kind: 'delivery' });
    reason = page.items.find((d) => d.destination?.startsWith('webhook.'))?.lastError ?? undefined;
    if (reason === undefined) await new Promise((r) => setTimeout(r, 50));
  }
  assert.match(
    String(reason),
    /residency: .* region us, outside the regions allowed for a eu customer/,
  );
  assert.equal(hook.received.length, 0);
});
