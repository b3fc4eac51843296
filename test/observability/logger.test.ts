import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createLogger,
  PII_FIELD_NAMES,
  PII_REDACT_DEPTH,
  PII_REDACT_PATHS,
  REDACTED,
  redactPersonalData,
} from '../../src/observability/logger.js';

function capture(level = 'info') {
  const lines: string[] = [];
  const logger = createLogger({
    level,
    name: 'test',
    destination: { write: (s) => lines.push(s) },
  });
  return {
    logger,
    lines,
    parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const order = {
  id: 'ord-1001',
  idempotencyKey: 'key-abc',
  customer: {
    id: 'cus-7',
    firstName: 'Ada',
    lastName: 'Lovelace',
    name: 'Ada Lovelace',
    email: 'ada@example.com',
    phone: '+442071234567',
    dateOfBirth: '1815-12-10',
  },
  shippingAddress: { line1: '12 St James Square', city: 'London', country: 'GB' },
  lines: [{ sku: 'SKU-1', name: 'Blue mug', quantity: 2 }],
};

void test('a logged order prints [redacted] instead of the customer email, phone and names', () => {
  const { logger, lines, parsed } = capture();
  logger.info({ order }, 'order received');
  const raw = lines.join('');
  for (const secret of [
    'ada@example.com',
    '+442071234567',
    'Ada',
    'Lovelace',
    '1815-12-10',
    'St James',
  ]) {
    assert.ok(!raw.includes(secret), `log line leaks ${secret}: ${raw}`);
  }
  const [line] = parsed();
  const logged = line?.order as typeof order;
  assert.equal(logged.customer.email, REDACTED);
  assert.equal(logged.customer.phone, REDACTED);
  assert.equal(logged.customer.firstName, REDACTED);
  assert.equal(logged.customer.lastName, REDACTED);
  assert.equal(logged.customer.name, REDACTED);
  assert.equal(logged.customer.dateOfBirth, REDACTED);
  assert.equal(logged.shippingAddress as unknown, REDACTED);
  // Not personal data: ids, keys, products stay readable.
  assert.equal(logged.id, 'ord-1001');
  assert.equal(logged.idempotencyKey, 'key-abc');
  assert.equal(logged.customer.id, 'cus-7');
  assert.equal(logged.lines[0]?.name, 'Blue mug');
  // The logged object itself is not changed.
  assert.equal(order.customer.email, 'ada@example.com');
});

void test('PII nested deep in a CloudEvent payload and inside arrays is redacted', () => {
  const { logger, lines } = capture();
  logger.info(
    {
      event: {
        data: {
          order: {
            customers: [{ email: 'deep@example.com', billing_address: { address1: 'x' } }],
          },
        },
      },
    },
    'nested',
  );
  const raw = lines.join('');
  assert.ok(!raw.includes('deep@example.com'), raw);
  assert.ok(raw.includes(REDACTED));
});

void test('top-level PII fields and credential headers are redacted; idempotency-key is not', () => {
  const { logger, parsed } = capture();
  logger.info(
    {
      email: 'top@example.com',
      req: {
        headers: {
          authorization: 'Bearer s3cret',
          cookie: 'sid=1',
          'x-shopify-hmac-sha256': 'hmac==',
          'idempotency-key': 'idem-1',
        },
      },
    },
    'request',
  );
  const [line] = parsed();
  assert.equal(line?.email, REDACTED);
  const headers = (line?.req as { headers: Record<string, string> }).headers;
  assert.equal(headers.authorization, REDACTED);
  assert.equal(headers.cookie, REDACTED);
  assert.equal(headers['x-shopify-hmac-sha256'], REDACTED);
  assert.equal(headers['idempotency-key'], 'idem-1');
});

void test('output is JSON with level label, time and name; level filters', () => {
  const { logger, parsed } = capture('warn');
  logger.info('dropped');
  logger.warn({ requestId: 'r1' }, 'kept');
  const out = parsed();
  assert.equal(out.length, 1);
  assert.equal(out[0]?.level, 'warn');
  assert.equal(out[0]?.name, 'test');
  assert.equal(out[0]?.msg, 'kept');
  assert.equal(out[0]?.requestId, 'r1');
  assert.match(String(out[0]?.time), /^\d{4}-\d{2}-\d{2}T/);
});

void test('the redaction lists name the PII fields and credential headers, not idempotency keys', () => {
  for (const key of ['email', 'phone', 'firstName', 'lastName', 'address', 'dateOfBirth']) {
    assert.ok((PII_FIELD_NAMES as readonly string[]).includes(key), `missing ${key}`);
  }
  for (const p of [
    'req.headers.authorization',
    'req.headers.cookie',
    'req.headers["x-shopify-hmac-sha256"]',
  ]) {
    assert.ok(PII_REDACT_PATHS.includes(p), `missing ${p}`);
  }
  const all = [...PII_FIELD_NAMES, ...PII_REDACT_PATHS].map((p) => p.toLowerCase());
  assert.ok(!all.some((p) => p.includes('idempotency')));
});

void test('redactPersonalData copies only what it censors and stops at class instances', () => {
  const shared = { sku: 'SKU-1', quantity: 1 };
  const input = {
    lines: [shared],
    customer: { email: 'e@x.io', name: 'N' },
    product: { name: 'Mug' },
  };
  const out = redactPersonalData(input) as typeof input;
  assert.equal(out.lines, input.lines, 'untouched branches are shared');
  assert.equal(out.customer.email, REDACTED);
  assert.equal(out.customer.name, REDACTED);
  assert.equal(out.product.name, 'Mug');
  assert.equal(input.customer.email, 'e@x.io');
  const err = Object.assign(new Error('x'), { email: 'kept-for-serializer' });
  assert.equal((redactPersonalData({ err }) as { err: unknown }).err, err);
  let deep: Record<string, unknown> = { email: 'deep@x.io' };
  for (let i = 0; i < PII_REDACT_DEPTH - 1; i++) deep = { next: deep };
  assert.ok(!JSON.stringify(redactPersonalData(deep)).includes('deep@x.io'));
  const cyclic: Record<string, unknown> = { email: 'c@x.io' };
  cyclic.self = cyclic;
  assert.equal((redactPersonalData(cyclic) as Record<string, unknown>).email, REDACTED);
});

void test('pino redact paths censor credential headers even on objects the walk does not enter', () => {
  class RawRequest {
    headers = { authorization: 'Bearer s3cret', 'x-request-id': 'r-1' };
  }
  const { logger, lines } = capture();
  logger.info({ req: new RawRequest() }, 'raw');
  const raw = lines.join('');
  assert.ok(!raw.includes('s3cret'), raw);
  assert.ok(raw.includes('r-1'));
});
