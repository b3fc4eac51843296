// The CloudEvents envelope: makeEvent builds complete events; parseEvent validates envelope and
// data and names every failing field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CanonicalValidationError,
  isTraceparent,
  isUriReference,
  makeEvent,
  parseEvent,
  type CanonicalEvent,
  type ValidationIssue,
} from '../../src/canonical/index.js';
import { sampleOrder, samplePrice } from './fixtures.js';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

function issuesOf(input: unknown): readonly ValidationIssue[] {
  const result = parseEvent(input);
  assert.equal(result.ok, false, 'expected the event to be rejected');
  return result.ok ? [] : result.issues;
}

function paths(input: unknown): string[] {
  return issuesOf(input).map((i) => i.path);
}

function orderEvent(): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify(
      makeEvent('order.created', sampleOrder(), {
        source: '/middlemart/api',
        traceparent: TRACEPARENT,
        idempotencyKey: 'shopify-eu:5551234',
        time: new Date('2025-03-01T12:00:05Z'),
      }),
    ),
  ) as Record<string, unknown>;
}

void test('makeEvent builds a complete envelope from the catalogue', () => {
  const e = makeEvent('order.created', sampleOrder(), { source: '/middlemart/api' });
  assert.equal(e.specversion, '1.0');
  assert.equal(e.type, 'com.middlemart.order.created.v1');
  assert.match(e.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.ok(Math.abs(Date.parse(e.time) - Date.now()) < 5000);
  assert.equal(e.datacontenttype, 'application/json');
  assert.equal(e.partitionkey, 'ord-1001');
  assert.equal(e.subject, 'ord-1001');
  assert.equal(e.priority, 'critical');
  assert.equal(
    e.dataschema,
    'https://middlemart.dev/schemas/json/events/order.created.v1.schema.json',
  );
  assert.equal(e.data.lines.length, 2);
  assert.notEqual(e.id, makeEvent('order.created', sampleOrder(), { source: '/x' }).id);

  const price = makeEvent('price.changed', samplePrice(), {
    source: 'urn:middlemart:pricing',
    priority: 'standard',
    includeDataSchema: false,
  });
  assert.equal(price.priority, 'standard');
  assert.equal(price.partitionkey, 'SKU-RED-M');
  assert.equal('dataschema' in price, false);
});

void test('makeEvent refuses invalid data and names the field', () => {
  const order = sampleOrder();
  order.lines[0]!.quantity = 0;
  assert.throws(
    () => makeEvent('order.created', order, { source: '/middlemart/api' }),
    (err: unknown) =>
      err instanceof CanonicalValidationError &&
      err.issues.some((i) => i.path === 'data.lines[0].quantity') &&
      /data\.lines\[0\]\.quantity/.test(err.message),
  );
  assert.throws(
    () => makeEvent('order.created', sampleOrder(), { source: 'not a uri' }),
    (err: unknown) =>
      err instanceof CanonicalValidationError && err.issues.some((i) => i.path === 'source'),
  );
  assert.throws(
    () => makeEvent('order.created', sampleOrder(), { source: '/a', traceparent: 'abc' }),
    (err: unknown) =>
      err instanceof CanonicalValidationError && err.issues.some((i) => i.path === 'traceparent'),
  );
});

void test('parseEvent round-trips a made event, as object and as JSON text', () => {
  const made = orderEvent();
  for (const input of [made, JSON.stringify(made)]) {
    const result = parseEvent(input);
    assert.ok(result.ok, JSON.stringify(!result.ok && result.issues));
    const event: CanonicalEvent = result.value;
    assert.equal(event.type, 'com.middlemart.order.created.v1');
    if (event.type === 'com.middlemart.order.created.v1') {
      // Narrowed by type: data is an Order.
      assert.equal(event.data.totals.grandTotal.amount, 2795);
    }
    assert.equal(event.traceparent, TRACEPARENT);
    assert.equal(event.idempotencykey, 'shopify-eu:5551234');
  }
});

void test('parseEvent fills partition key and priority from the catalogue when absent', () => {
  const e = orderEvent();
  delete e.partitionkey;
  delete e.priority;
  delete e.datacontenttype;
  const result = parseEvent(e);
  assert.ok(result.ok);
  assert.equal(result.value.partitionkey, 'ord-1001');
  assert.equal(result.value.priority, 'critical');
  assert.equal(result.value.datacontenttype, 'application/json');
});

void test('data errors carry the full field path', () => {
  const e = orderEvent();
  (e.data as { lines: Array<{ quantity: number }> }).lines[0]!.quantity = 0;
  const issues = issuesOf(e);
  assert.deepEqual(
    issues.map((i) => i.path),
    ['data.lines[0].quantity'],
  );
  assert.match(issues[0]!.message, />0|greater|small/i);

  const f = orderEvent();
  (f.data as Record<string, unknown>).couponCode = 'X';
  assert.deepEqual(paths(f), ['data.couponCode']);
});

void test('envelope errors name the attribute', () => {
  const cases: Array<[string, (e: Record<string, unknown>) => void, string]> = [
    ['specversion', (e) => (e.specversion = '0.3'), 'specversion'],
    ['missing id', (e) => delete e.id, 'id'],
    ['source with spaces', (e) => (e.source = 'my source'), 'source'],
    ['time with offset', (e) => (e.time = '2025-03-01T13:00:05+01:00'), 'time'],
    ['content type', (e) => (e.datacontenttype = 'text/xml'), 'datacontenttype'],
    ['traceparent', (e) => (e.traceparent = '00-abc-def-01'), 'traceparent'],
    ['priority', (e) => (e.priority = 'urgent'), 'priority'],
    ['partition key', (e) => (e.partitionkey = 'ord-other'), 'partitionkey'],
    ['extension name', (e) => (e['Tenant-Id'] = 'a'), '["Tenant-Id"]'],
    ['extension value', (e) => (e.tenant = { a: 1 }), 'tenant'],
    ['missing data', (e) => delete e.data, 'data'],
    ['relative dataschema', (e) => (e.dataschema = 'order.json'), 'dataschema'],
  ];
  for (const [what, mutate, path] of cases) {
    const e = orderEvent();
    mutate(e);
    assert.deepEqual(paths(e), [path], what);
  }
  const ok = orderEvent();
  ok.tenant = 'acme';
  assert.equal(parseEvent(ok).ok, true, 'a well-formed extension attribute is allowed');
});

void test('unknown types and non-events are rejected', () => {
  const e = orderEvent();
  e.type = 'com.middlemart.order.created.v7';
  const issues = issuesOf(e);
  assert.deepEqual(
    issues.map((i) => [i.path, i.code]),
    [['type', 'unknown_type']],
  );
  assert.deepEqual(paths('{"not json'), ['']);
  assert.deepEqual(paths([]), ['']);
  assert.deepEqual(paths(null), ['']);
  const both = orderEvent();
  both.time = 'yesterday';
  (both.data as { currency: string }).currency = 'EURO';
  assert.deepEqual(paths(both).sort(), ['data.currency', 'time']);
});

void test('W3C traceparent and URI-reference checks', () => {
  assert.equal(isTraceparent(TRACEPARENT), true);
  assert.equal(isTraceparent('00-00000000000000000000000000000000-00f067aa0ba902b7-01'), false);
  assert.equal(isTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01'), false);
  assert.equal(isTraceparent('ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'), false);
  assert.equal(isTraceparent('00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01'), false);
  assert.equal(isTraceparent(`${TRACEPARENT}-extra`), false);
  assert.equal(isTraceparent(`01-${TRACEPARENT.slice(3)}-future`), true);
  assert.equal(isUriReference('/middlemart/api'), true);
  assert.equal(isUriReference('urn:erp:main'), true);
  assert.equal(isUriReference('https://shop.example.com/webhooks'), true);
  assert.equal(isUriReference(''), false);
  assert.equal(isUriReference('a b'), false);
});
