// The pure rules under the order process: loyalty points, the allowed moves of the state
// machine, the canonical status each state reads as, provisional customer ids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pointsFor } from '../../../src/domains/loyalty/index.js';
import {
  ORDER_STATES,
  canonicalStatus,
  isFinal,
  mayMove,
  provisionalCustomerId,
} from '../../../src/domains/orders/index.js';

test('points per whole currency unit, in the currency’s own minor units', () => {
  const rule = { pointsPerCurrencyUnit: 1 };
  assert.equal(pointsFor(2599, 'EUR', rule), 25);
  assert.equal(pointsFor(2599, 'JPY', rule), 2599);
  assert.equal(pointsFor(25999, 'BHD', rule), 25);
  assert.equal(pointsFor(0, 'EUR', rule), 0);
  assert.equal(pointsFor(-500, 'EUR', rule), 0);
  assert.equal(pointsFor(1000, 'EUR', { pointsPerCurrencyUnit: 2.5 }), 25);
  assert.equal(pointsFor(1000, 'EUR', { pointsPerCurrencyUnit: 0 }), 0);
});

test('the state machine: forward moves only, final states stay final', () => {
  assert.ok(mayMove('received', 'validated'));
  assert.ok(mayMove('validated', 'backordered'));
  assert.ok(mayMove('backordered', 'reserved'));
  assert.ok(mayMove('parked', 'validated'));
  assert.ok(mayMove('reserved', 'posted'));
  assert.ok(mayMove('posted', 'partially_fulfilled'));
  assert.ok(mayMove('fulfilled', 'closed'));
  assert.ok(!mayMove('posted', 'reserved'));
  assert.ok(!mayMove('posted', 'backordered'));
  assert.ok(!mayMove('fulfilled', 'cancelled'), 'a fulfilled order is returned, not cancelled');
  for (const final of ['closed', 'rejected', 'cancelled'] as const) {
    assert.ok(isFinal(final));
    for (const to of ORDER_STATES) assert.ok(!mayMove(final, to), `${final} → ${to}`);
  }
  assert.equal(canonicalStatus('reserved'), 'accepted');
  assert.equal(canonicalStatus('backordered'), 'on_hold');
  assert.equal(canonicalStatus('parked'), 'on_hold');
  assert.equal(canonicalStatus('rejected'), 'cancelled');
});

test('a provisional customer id is the same for the same reference, whatever the email’s case', () => {
  const a = provisionalCustomerId({ email: 'Ada@Example.com ' });
  assert.equal(a, provisionalCustomerId({ email: 'ada@example.com' }));
  assert.notEqual(a, provisionalCustomerId({ email: 'grace@example.com' }));
  assert.notEqual(
    provisionalCustomerId({ sourceRef: { system: 'commerce', id: '1' } }),
    provisionalCustomerId({ sourceRef: { system: 'pos', id: '1' } }),
  );
  assert.match(a, /^cust-prov-[0-9a-f]{20}$/);
});
