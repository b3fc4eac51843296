// Good and bad samples of every canonical model: the good ones pass, each bad one fails with
// the path of the field at fault.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { z } from 'zod';
import {
  CountryCode,
  CurrencyCode,
  Customer,
  EmailAddress,
  ISO_3166_ALPHA2,
  ISO_4217_CODES,
  InventoryPosition,
  LoyaltyActivity,
  Money,
  Order,
  PhoneNumber,
  Price,
  Product,
  Promotion,
  Reservation,
  Return,
  Shipment,
  Timestamp,
  canonicalModels,
  hasValidGtinCheckDigit,
  minorUnitsOf,
  validate,
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

/** Paths of the issues `schema` reports for `value` (fails the test if it is valid). */
function pathsOf(schema: z.ZodType, value: unknown): string[] {
  const result = validate(schema, value);
  assert.equal(result.ok, false, `expected ${JSON.stringify(value)} to be rejected`);
  return result.ok ? [] : result.issues.map((i) => i.path);
}

function assertValid(schema: z.ZodType, value: unknown): void {
  const result = validate(schema, value);
  assert.deepEqual(result.ok ? [] : result.issues, []);
}

/** `mutate` a fresh sample, then expect exactly one rejected path: `path`. */
function rejects<T>(schema: z.ZodType, sample: () => T, mutate: (v: T) => void, path: string) {
  const value = sample();
  mutate(value);
  assert.deepEqual(pathsOf(schema, value), [path]);
}

const eur = (amount: number) => ({ amount, currency: 'EUR' });

void describe('primitives', () => {
  void test('Money is integer minor units in an ISO 4217 currency, nothing else', () => {
    assertValid(Money, { amount: 1234, currency: 'EUR' });
    assertValid(Money, { amount: -50, currency: 'JPY' });
    assert.deepEqual(pathsOf(Money, { amount: 12.34, currency: 'EUR' }), ['amount']);
    assert.deepEqual(pathsOf(Money, { amount: 1, currency: 'eur' }), ['currency']);
    assert.deepEqual(pathsOf(Money, { amount: 1, currency: 'ABC' }), ['currency']);
    assert.deepEqual(pathsOf(Money, { amount: 1, currency: 'XXX' }), ['currency']);
    assert.deepEqual(pathsOf(Money, { amount: 1, currency: 'EUR', cents: 3 }), ['cents']);
    assert.deepEqual(pathsOf(Money, { amount: '1', currency: 'EUR' }), ['amount']);
  });

  void test('the embedded ISO 4217 list agrees with the runtime ICU list', () => {
    const icu = new Set(Intl.supportedValuesOf('currency'));
    // Codes ISO lists that ICU's display data does not carry: fund codes and the Bolívar digital.
    const isoOnly = new Set(['BOV', 'CHE', 'CHW', 'CLF', 'COU', 'MXV', 'USN', 'UYI', 'UYW', 'VED']);
    const unknownToIcu = ISO_4217_CODES.filter((c) => !icu.has(c) && !isoOnly.has(c));
    assert.deepEqual(unknownToIcu, []);
    for (const c of ['EUR', 'USD', 'GBP', 'JPY', 'CHF', 'SEK', 'CNY']) assert.ok(isCurrency(c), c);
    assert.equal(minorUnitsOf('EUR'), 2);
    assert.equal(minorUnitsOf('JPY'), 0);
    assert.equal(minorUnitsOf('KWD'), 3);
    assert.equal(minorUnitsOf('XXX'), undefined);
  });

  void test('countries are assigned ISO 3166-1 alpha-2 codes', () => {
    assert.equal(ISO_3166_ALPHA2.length, 249);
    const names = new Intl.DisplayNames(['en'], { type: 'region' });
    assert.deepEqual(
      ISO_3166_ALPHA2.filter((c) => names.of(c) === c),
      [],
    );
    assertValid(CountryCode, 'DE');
    assertValid(CountryCode, 'GB');
    for (const bad of ['UK', 'de', 'DEU', 'XK', 'ZZ']) {
      assert.deepEqual(pathsOf(CountryCode, bad), [''], bad);
    }
  });

  void test('times are RFC 3339 in UTC ending with Z', () => {
    assertValid(Timestamp, '2025-03-01T12:00:00Z');
    assertValid(Timestamp, '2025-03-01T12:00:00.123Z');
    for (const bad of [
      '2025-03-01T12:00:00+01:00',
      '2025-03-01T12:00:00',
      '2025-03-01',
      '2025-02-30T00:00:00Z',
      '1 March 2025',
    ]) {
      assert.equal(Timestamp.safeParse(bad).success, false, bad);
    }
  });

  void test('phones are E.164 and emails are addresses', () => {
    assertValid(PhoneNumber, '+4930123456');
    for (const bad of ['030123456', '+0123456', '+49 30 123456', '+1234567890123456', '+1']) {
      assert.equal(PhoneNumber.safeParse(bad).success, false, bad);
    }
    assertValid(EmailAddress, 'ada@example.com');
    for (const bad of ['ada', 'ada@', '@example.com', 'ada@example']) {
      assert.equal(EmailAddress.safeParse(bad).success, false, bad);
    }
  });

  void test('GTIN check digits are verified', () => {
    assert.equal(hasValidGtinCheckDigit('4006381333931'), true); // EAN-13
    assert.equal(hasValidGtinCheckDigit('036000291452'), true); // UPC-A
    assert.equal(hasValidGtinCheckDigit('96385074'), true); // EAN-8
    assert.equal(hasValidGtinCheckDigit('4006381333932'), false);
    assert.equal(hasValidGtinCheckDigit('40063813339x1'), false);
  });
});

function isCurrency(code: string): boolean {
  return CurrencyCode.safeParse(code).success;
}

void describe('Order', () => {
  void test('a consistent order is valid (tax-inclusive and tax-exclusive)', () => {
    assertValid(Order, sampleOrder());
    const exclusive = sampleOrder();
    exclusive.pricesIncludeTax = false;
    exclusive.totals.grandTotal = eur(2795 + 387);
    assertValid(Order, exclusive);
  });

  void test('a line quantity must be a whole number above zero', () => {
    rejects(Order, sampleOrder, (o) => (o.lines[0]!.quantity = 0), 'lines[0].quantity');
    rejects(Order, sampleOrder, (o) => (o.lines[1]!.quantity = 1.5), 'lines[1].quantity');
  });

  void test('totals must add up from the lines', () => {
    rejects(
      Order,
      sampleOrder,
      (o) => (o.totals.grandTotal.amount = 2794),
      'totals.grandTotal.amount',
    );
    rejects(Order, sampleOrder, (o) => (o.totals.taxTotal.amount = 308), 'totals.taxTotal.amount');
    const value = sampleOrder();
    value.lines[0]!.quantity = 3; // subtotal and grand total both move
    assert.deepEqual(pathsOf(Order, value), ['totals.subtotal.amount', 'totals.grandTotal.amount']);
  });

  void test('every amount is in the order currency', () => {
    rejects(
      Order,
      sampleOrder,
      (o) => (o.lines[1]!.unitPrice = { amount: 500, currency: 'USD' }),
      'lines[1].unitPrice.currency',
    );
  });

  void test('fulfilment rules: pickup needs a store, shipping needs an address', () => {
    rejects(
      Order,
      sampleOrder,
      (o) => (o.fulfilment = { method: 'pickup' }),
      'fulfilment.pickupLocation',
    );
    rejects(Order, sampleOrder, (o) => delete o.shippingAddress, 'shippingAddress');
    const pickup = sampleOrder();
    pickup.fulfilment = { method: 'pickup', pickupLocation: 'store-berlin-01' };
    delete pickup.shippingAddress;
    assertValid(Order, pickup);
  });

  void test('structure: unique line ids, at least one line, no unknown fields, known channel', () => {
    rejects(Order, sampleOrder, (o) => (o.lines[1]!.lineId = '1'), 'lines[1]');
    rejects(
      Order,
      sampleOrder,
      (o) => Object.assign(o.lines[0]!, { giftWrap: true }),
      'lines[0].giftWrap',
    );
    rejects(Order, sampleOrder, (o) => Object.assign(o, { channel: 'fax' }), 'channel');
    rejects(Order, sampleOrder, (o) => (o.customer = {}), 'customer');
    rejects(Order, sampleOrder, (o) => (o.placedAt = '2025-03-01T13:00:00+01:00'), 'placedAt');
    rejects(
      Order,
      sampleOrder,
      (o) => o.externalIds.push({ system: 'shopify-eu', id: 'other' }),
      'externalIds[2]',
    );
    const empty = sampleOrder();
    empty.lines = [];
    assert.ok(pathsOf(Order, empty).includes('lines'));
  });

  void test('discounts cannot exceed the line value', () => {
    const value = sampleOrder();
    value.lines[1]!.discounts = [{ amount: eur(600) }];
    assert.ok(pathsOf(Order, value).includes('lines[1].discounts'));
  });
});

void describe('Customer', () => {
  void test('a full profile is valid', () => assertValid(Customer, sampleCustomer()));

  void test('contact points and consents are checked with paths', () => {
    rejects(
      Customer,
      sampleCustomer,
      (c) => (c.phones[0]!.number = '0151 12345'),
      'phones[0].number',
    );
    rejects(Customer, sampleCustomer, (c) => (c.emails[0]!.address = 'nope'), 'emails[0].address');
    rejects(
      Customer,
      sampleCustomer,
      (c) => (c.addresses[0]!.address.country = 'UK'),
      'addresses[0].address.country',
    );
    rejects(Customer, sampleCustomer, (c) => (c.consents[1]!.channel = 'email'), 'consents[1]');
    rejects(
      Customer,
      sampleCustomer,
      (c) => (c.consents[0]!.at = '2025-01-01 09:00'),
      'consents[0].at',
    );
    rejects(Customer, sampleCustomer, (c) => (c.sourceIds = []), 'sourceIds');
    rejects(Customer, sampleCustomer, (c) => (c.dateOfBirth = '1990-13-01'), 'dateOfBirth');
  });
});

void describe('Price and Promotion', () => {
  void test('valid samples pass', () => {
    assertValid(Price, samplePrice());
    assertValid(Promotion, samplePromotion());
  });

  void test('effectiveUntil must be after effectiveFrom', () => {
    rejects(
      Price,
      samplePrice,
      (p) => (p.effectiveUntil = '2025-02-01T00:00:00Z'),
      'effectiveUntil',
    );
    rejects(Price, samplePrice, (p) => (p.effectiveUntil = p.effectiveFrom), 'effectiveUntil');
    rejects(
      Promotion,
      samplePromotion,
      (p) => (p.effectiveUntil = '2025-01-01T00:00:00Z'),
      'effectiveUntil',
    );
  });

  void test('price sanity: scope, sale ≤ list, one currency, not negative', () => {
    rejects(
      Price,
      samplePrice,
      (p) => {
        delete p.channel;
        delete p.storeGroup;
      },
      'channel',
    );
    rejects(Price, samplePrice, (p) => (p.salePrice = eur(1500)), 'salePrice.amount');
    rejects(
      Price,
      samplePrice,
      (p) => (p.listPrice = { amount: 1299, currency: 'GBP' }),
      'listPrice.currency',
    );
    rejects(Price, samplePrice, (p) => (p.listPrice = eur(-1)), 'listPrice.amount');
    rejects(Promotion, samplePromotion, (p) => delete p.percentOff, 'percentOff');
  });
});

void describe('stock', () => {
  void test('valid samples pass', () => {
    assertValid(InventoryPosition, samplePosition());
    assertValid(Reservation, sampleReservation());
  });

  void test('availability cannot exceed what is free to promise', () => {
    rejects(InventoryPosition, samplePosition, (p) => (p.available = 8), 'available');
    rejects(InventoryPosition, samplePosition, (p) => (p.reserved = -1), 'reserved');
    rejects(InventoryPosition, samplePosition, (p) => (p.sourceSequence = 1.5), 'sourceSequence');
    const oversold = samplePosition();
    Object.assign(oversold, { onHand: -2, reserved: 0, safetyStock: 0, available: 0 });
    assertValid(InventoryPosition, oversold);
  });

  void test('reservations hold a positive quantity until a later expiry', () => {
    rejects(Reservation, sampleReservation, (r) => (r.quantity = 0), 'quantity');
    rejects(
      Reservation,
      sampleReservation,
      (r) => (r.expiresAt = '2025-03-01T12:00:00Z'),
      'expiresAt',
    );
  });
});

void describe('Product, Return, Shipment, LoyaltyActivity', () => {
  void test('valid samples pass', () => {
    assertValid(Product, sampleProduct());
    assertValid(Return, sampleReturn());
    assertValid(Shipment, sampleShipment());
    assertValid(LoyaltyActivity, sampleAccrual());
  });

  void test('bad samples name the field', () => {
    rejects(
      Product,
      sampleProduct,
      (p) => (p.barcodes[0]!.value = '4006381333932'),
      'barcodes[0].value',
    );
    rejects(
      Product,
      sampleProduct,
      (p) => (p.barcodes[0]!.value = '400638133393'),
      'barcodes[0].value',
    );
    rejects(Product, sampleProduct, (p) => (p.unitOfMeasure = 'each piece'), 'unitOfMeasure');
    rejects(Return, sampleReturn, (r) => delete r.completedAt, 'completedAt');
    rejects(Return, sampleReturn, (r) => (r.refundTotal = eur(800)), 'refundTotal.amount');
    rejects(Return, sampleReturn, (r) => (r.lines[0]!.reason = 'meh' as never), 'lines[0].reason');
    rejects(Shipment, sampleShipment, (s) => (s.trackingUrl = 'ftp://x.example/1'), 'trackingUrl');
    rejects(Shipment, sampleShipment, (s) => (s.lines[0]!.quantity = -1), 'lines[0].quantity');
    rejects(LoyaltyActivity, sampleAccrual, (a) => delete a.orderId, 'orderId');
    rejects(LoyaltyActivity, sampleAccrual, (a) => (a.points = 0), 'points');
  });
});

void test('every canonical model is registered once with a version', () => {
  const names = canonicalModels.map((m) => `${m.name}.v${m.version}`);
  assert.equal(new Set(names).size, names.length);
  for (const required of [
    'product',
    'inventory-position',
    'reservation',
    'price',
    'order',
    'customer',
    'return',
    'shipment',
    'loyalty-activity',
    'money',
  ]) {
    assert.ok(names.includes(`${required}.v1`), required);
  }
});
