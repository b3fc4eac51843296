// The event catalogue: complete, unique, and every entry able to key and classify its events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EVENT_TYPE_PREFIX,
  PRIORITY_CLASSES,
  catalogue,
  eventByName,
  eventByType,
  partitionKeyOf,
} from '../../src/canonical/index.js';
import {
  sampleAccrual,
  sampleCustomer,
  sampleOrder,
  samplePosition,
  samplePrice,
  sampleProduct,
  samplePromotion,
  sampleReservation,
  sampleReturn,
  sampleShipment,
} from './fixtures.js';

/** A valid data sample for every event in the catalogue. */
const samples: Record<string, unknown> = {
  'order.created': sampleOrder(),
  'order.updated': sampleOrder(),
  'order.status_changed': {
    orderId: 'ord-1001',
    from: 'accepted',
    to: 'posted',
    changedAt: '2025-03-01T12:01:00Z',
  },
  'order.cancelled': {
    orderId: 'ord-1001',
    reason: 'customer_request',
    cancelledAt: '2025-03-01T13:00:00Z',
  },
  'order.fulfilled': {
    orderId: 'ord-1001',
    shipmentIds: ['shp-1'],
    fulfilledAt: '2025-03-02T08:00:00Z',
  },
  'order.posted': {
    orderId: 'ord-1001',
    erp: { system: 'erp-main', id: 'SO-778' },
    postedAt: '2025-03-01T12:01:00Z',
  },
  'inventory.adjusted': {
    sku: 'SKU-RED-M',
    location: 'store-berlin-01',
    reason: 'sale',
    delta: -2,
    sourceSystem: 'pos',
    sourceSequence: 4412,
    sourceTimestamp: '2025-03-01T12:02:00Z',
  },
  'inventory.availability_changed': samplePosition(),
  'reservation.created': sampleReservation(),
  'reservation.released': {
    reservationId: 'res-1',
    sku: 'SKU-RED-M',
    location: 'store-berlin-01',
    quantity: 2,
    reason: 'committed',
    releasedAt: '2025-03-02T08:00:00Z',
  },
  'product.changed': sampleProduct(),
  'price.changed': samplePrice(),
  'promotion.changed': samplePromotion(),
  'customer.created': sampleCustomer(),
  'customer.updated': sampleCustomer(),
  'customer.merged': {
    survivorId: 'cus-42',
    mergedIds: ['cus-77'],
    mergedAt: '2025-03-03T10:00:00Z',
  },
  'consent.changed': {
    customerId: 'cus-42',
    purpose: 'marketing',
    channel: 'sms',
    status: 'withdrawn',
    previousStatus: 'granted',
    changedAt: '2025-02-01T09:00:00Z',
    source: 'crm',
  },
  'return.requested': { ...sampleReturn(), status: 'requested' },
  'return.completed': sampleReturn(),
  'shipment.confirmed': sampleShipment(),
  'loyalty.accrued': sampleAccrual(),
  'loyalty.reversed': { ...sampleAccrual(), id: 'loy-2', kind: 'reverse', returnId: 'rma-9' },
  'loyalty.redeemed': { ...sampleAccrual(), id: 'loy-3', kind: 'redeem', orderId: undefined },
};

const REQUIRED = [
  'order.created',
  'order.updated',
  'order.status_changed',
  'order.cancelled',
  'order.fulfilled',
  'order.posted',
  'inventory.adjusted',
  'inventory.availability_changed',
  'reservation.created',
  'reservation.released',
  'price.changed',
  'promotion.changed',
  'customer.created',
  'customer.updated',
  'customer.merged',
  'consent.changed',
  'return.requested',
  'return.completed',
  'shipment.confirmed',
  'loyalty.accrued',
  'loyalty.reversed',
];

void test('the catalogue holds every required event type', () => {
  const names = catalogue.map((e) => e.name as string);
  for (const name of REQUIRED) assert.ok(names.includes(name), `missing ${name}`);
});

void test('names and CloudEvents types are unique and well-formed', () => {
  const names = catalogue.map((e) => e.name);
  const types = catalogue.map((e) => e.type);
  assert.equal(new Set(names).size, names.length);
  assert.equal(new Set(types).size, types.length);
  for (const e of catalogue) {
    assert.match(e.name, /^[a-z]+\.[a-z_]+$/);
    assert.equal(e.type, `${EVENT_TYPE_PREFIX}${e.name}.v${e.version}`);
    assert.ok(Number.isInteger(e.version) && e.version >= 1);
    assert.match(
      e.dataschema,
      new RegExp(`/json/events/${e.name}\\.v${e.version}\\.schema\\.json$`),
    );
  }
});

void test('every event has a data schema, a priority class, a partition key and a description', () => {
  for (const e of catalogue) {
    assert.ok(PRIORITY_CLASSES.includes(e.priority), e.name);
    assert.ok(e.description.length > 10, e.name);
    assert.ok(e.partitionKeyDoc.startsWith('data.'), e.name);
    const sample = samples[e.name];
    assert.ok(sample !== undefined, `no sample for ${e.name}`);
    const parsed = e.data.safeParse(sample);
    assert.ok(parsed.success, `${e.name}: ${JSON.stringify(parsed.error?.issues)}`);
    const key = (e.partitionKey as (d: unknown) => string)(parsed.data);
    assert.equal(typeof key, 'string');
    assert.ok(key.length > 0, e.name);
    assert.ok((e.subject as (d: unknown) => string)(parsed.data).length > 0, e.name);
  }
});

void test('default priority classes follow the retail rules', () => {
  const classOf = (name: string) => catalogue.find((e) => e.name === name)?.priority;
  for (const e of catalogue) {
    const area = e.name.split('.')[0];
    if (area === 'order' || area === 'return' || area === 'shipment') {
      assert.equal(e.priority, 'critical', e.name);
    }
  }
  assert.equal(classOf('inventory.adjusted'), 'standard');
  assert.equal(classOf('price.changed'), 'deferrable');
  assert.equal(classOf('customer.updated'), 'standard');
});

void test('lookups by type and name', () => {
  assert.equal(eventByType('com.middlemart.order.created.v1')?.name, 'order.created');
  assert.equal(eventByType('com.middlemart.order.created.v9'), undefined);
  assert.equal(eventByName('price.changed').type, 'com.middlemart.price.changed.v1');
  assert.equal(eventByName('nope.nothing'), undefined);
});

void test('partition keys order what must be ordered', () => {
  assert.equal(
    partitionKeyOf({ type: 'com.middlemart.order.created.v1', data: sampleOrder() }),
    'ord-1001',
  );
  assert.equal(
    partitionKeyOf({
      type: 'com.middlemart.inventory.adjusted.v1',
      data: samples['inventory.adjusted'],
    }),
    'SKU-RED-M@store-berlin-01',
  );
  // A reservation is keyed like the stock it holds, so it queues behind that stock's movements.
  assert.equal(
    partitionKeyOf({ type: 'com.middlemart.reservation.created.v1', data: sampleReservation() }),
    partitionKeyOf({
      type: 'com.middlemart.inventory.availability_changed.v1',
      data: samplePosition(),
    }),
  );
  // A return is keyed by its original order.
  assert.equal(
    partitionKeyOf({
      type: 'com.middlemart.return.requested.v1',
      data: samples['return.requested'],
    }),
    'ord-1001',
  );
  assert.equal(
    partitionKeyOf({ type: 'com.middlemart.customer.updated.v1', data: sampleCustomer() }),
    'cus-42',
  );
  assert.throws(() => partitionKeyOf({ type: 'com.middlemart.nope.v1', data: {} }), /unknown/);
  assert.throws(() => partitionKeyOf({ type: 'com.middlemart.order.created.v1', data: {} }));
});

void test('event-specific rules on top of the entity schema', () => {
  const adjusted = eventByName('inventory.adjusted');
  const both = { ...(samples['inventory.adjusted'] as object), count: 5 };
  assert.equal(adjusted.data.safeParse(both).success, false);
  const neither = { ...(samples['inventory.adjusted'] as object), delta: undefined };
  assert.equal(adjusted.data.safeParse(neither).success, false);
  const counted = { ...(samples['inventory.adjusted'] as object), delta: undefined, count: 9 };
  assert.equal(adjusted.data.safeParse(counted).success, true);

  const completed = eventByName('return.completed');
  assert.equal(completed.data.safeParse(samples['return.requested']).success, false);
  const accrued = eventByName('loyalty.accrued');
  assert.equal(accrued.data.safeParse(samples['loyalty.reversed']).success, false);
  const merged = eventByName('customer.merged');
  assert.equal(
    merged.data.safeParse({ survivorId: 'a', mergedIds: ['a'], mergedAt: '2025-03-03T10:00:00Z' })
      .success,
    false,
  );
});
