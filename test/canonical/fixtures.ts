// Valid samples of every canonical model. Each call returns a fresh copy a test may mutate.
import type {
  Customer,
  InventoryPosition,
  LoyaltyActivity,
  Order,
  Price,
  Product,
  Promotion,
  Reservation,
  Return,
  Shipment,
} from '../../src/canonical/index.js';

const eur = (amount: number) => ({ amount, currency: 'EUR' });

export function sampleOrder(): Order {
  // EU pricing (tax included): grand total = 2500 − 200 + 495 = 2795; tax 228 + 80 + 79 = 387.
  return {
    id: 'ord-1001',
    channel: 'web',
    externalIds: [
      { system: 'shopify-eu', id: '5551234' },
      { system: 'erp-main', id: 'SO-778' },
    ],
    customer: { customerId: 'cus-42', email: 'ada@example.com' },
    currency: 'EUR',
    pricesIncludeTax: true,
    lines: [
      {
        lineId: '1',
        sku: 'SKU-RED-M',
        quantity: 2,
        unitOfMeasure: 'EA',
        unitPrice: eur(1000),
        discounts: [{ amount: eur(200), promotionId: 'promo-spring', code: 'SPRING' }],
        taxes: [{ amount: eur(228), rateBasisPoints: 1900, jurisdiction: 'DE', kind: 'vat' }],
      },
      {
        lineId: '2',
        sku: 'SKU-BLUE-L',
        quantity: 1,
        unitPrice: eur(500),
        discounts: [],
        taxes: [{ amount: eur(80), rateBasisPoints: 1900 }],
      },
    ],
    fulfilment: { method: 'ship', serviceLevel: 'standard' },
    shipping: { amount: eur(495), taxes: [{ amount: eur(79), rateBasisPoints: 1900 }] },
    billingAddress: {
      name: 'Ada Lovelace',
      lines: ['Unter den Linden 1'],
      city: 'Berlin',
      postalCode: '10117',
      country: 'DE',
    },
    shippingAddress: {
      name: 'Ada Lovelace',
      lines: ['Unter den Linden 1'],
      city: 'Berlin',
      postalCode: '10117',
      country: 'DE',
      phone: '+4930123456',
    },
    totals: {
      subtotal: eur(2500),
      discountTotal: eur(200),
      shippingTotal: eur(495),
      taxTotal: eur(387),
      grandTotal: eur(2795),
    },
    placedAt: '2025-03-01T12:00:00Z',
    region: 'eu',
  };
}

export function sampleCustomer(): Customer {
  return {
    id: 'cus-42',
    sourceIds: [
      { system: 'shopify-eu', id: '9001' },
      { system: 'crm', id: 'C-17' },
    ],
    givenName: 'Ada',
    familyName: 'Lovelace',
    emails: [{ address: 'ada@example.com', primary: true, verified: true }],
    phones: [{ number: '+4915112345678', kind: 'mobile', primary: true }],
    addresses: [
      {
        kind: 'shipping',
        default: true,
        address: { lines: ['Unter den Linden 1'], city: 'Berlin', country: 'DE' },
      },
    ],
    dateOfBirth: '1990-12-10',
    consents: [
      { purpose: 'marketing', channel: 'email', status: 'granted', at: '2025-01-01T09:00:00Z' },
      { purpose: 'marketing', channel: 'sms', status: 'withdrawn', at: '2025-02-01T09:00:00Z' },
    ],
    region: 'eu',
    loyaltyId: 'LOY-778',
    createdAt: '2024-06-01T08:00:00Z',
  };
}

export function sampleProduct(): Product {
  return {
    sku: 'SKU-RED-M',
    erpItemId: 'ITEM-000123',
    title: 'T-shirt red, M',
    unitOfMeasure: 'EA',
    barcodes: [{ type: 'gtin13', value: '4006381333931' }],
    attributes: { colour: 'red', size: 'M', organic: true, weight_grams: 180 },
    status: 'active',
  };
}

export function samplePosition(): InventoryPosition {
  return {
    sku: 'SKU-RED-M',
    location: 'store-berlin-01',
    onHand: 12,
    reserved: 3,
    safetyStock: 2,
    available: 7,
    sourceSequence: 4411,
    asOf: '2025-03-01T12:00:00Z',
  };
}

export function sampleReservation(): Reservation {
  return {
    id: 'res-1',
    sku: 'SKU-RED-M',
    location: 'store-berlin-01',
    quantity: 2,
    order: { orderId: 'ord-1001', lineId: '1' },
    channel: 'web',
    createdAt: '2025-03-01T12:00:01Z',
    expiresAt: '2025-03-01T12:30:01Z',
    status: 'active',
  };
}

export function samplePrice(): Price {
  return {
    sku: 'SKU-RED-M',
    channel: 'web',
    storeGroup: 'de-urban',
    currency: 'EUR',
    listPrice: eur(1299),
    salePrice: eur(999),
    pricesIncludeTax: true,
    effectiveFrom: '2025-03-01T00:00:00Z',
    effectiveUntil: '2025-03-15T00:00:00Z',
    promotionId: 'promo-spring',
  };
}

export function samplePromotion(): Promotion {
  return {
    id: 'promo-spring',
    name: 'Spring sale',
    kind: 'percent_off',
    status: 'active',
    percentOff: 20,
    skus: ['SKU-RED-M'],
    channels: [],
    storeGroups: [],
    effectiveFrom: '2025-03-01T00:00:00Z',
  };
}

export function sampleReturn(): Return {
  return {
    id: 'rma-9',
    orderId: 'ord-1001',
    status: 'completed',
    lines: [
      {
        orderLineId: '1',
        sku: 'SKU-RED-M',
        quantity: 1,
        reason: 'size_or_fit',
        condition: 'new',
        refundAmount: eur(900),
      },
    ],
    refundMethod: 'original_payment',
    currency: 'EUR',
    refundTotal: eur(900),
    returnLocation: { kind: 'store', location: 'store-berlin-01' },
    requestedAt: '2025-03-05T10:00:00Z',
    completedAt: '2025-03-06T15:30:00Z',
  };
}

export function sampleShipment(): Shipment {
  return {
    id: 'shp-1',
    orderId: 'ord-1001',
    fromLocation: 'dc-north',
    carrier: 'dhl',
    trackingNumber: 'JJD000390007',
    trackingUrl: 'https://track.example.com/JJD000390007',
    lines: [{ orderLineId: '1', sku: 'SKU-RED-M', quantity: 2 }],
    shippedAt: '2025-03-02T08:00:00Z',
  };
}

export function sampleAccrual(): LoyaltyActivity {
  return {
    id: 'loy-1',
    kind: 'accrue',
    memberId: 'LOY-778',
    points: 27,
    orderId: 'ord-1001',
    occurredAt: '2025-03-02T08:00:00Z',
  };
}
