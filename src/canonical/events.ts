// The event catalogue: every canonical event type Middlemart accepts, queues and publishes, with
// its data schema, default priority class, partition key (what orders it) and version.
import { z } from 'zod';
import { CustomerV1, ConsentChannel, ConsentPurpose, ConsentStatus } from './customer.js';
import { InventoryPositionV1, ReservationV1 } from './inventory.js';
import { LoyaltyActivityV1 } from './loyalty.js';
import { OrderStatus, OrderV1 } from './order.js';
import { PriceV1, PromotionV1 } from './price.js';
import {
  EntityId,
  LocationId,
  PositiveQuantity,
  Quantity,
  Sku,
  SourceRef,
  Timestamp,
  whenValid,
} from './primitives.js';
import { ProductV1 } from './product.js';
import { ReturnV1 } from './returns.js';
import { ShipmentV1 } from './shipment.js';

/** Priority classes, served strictly in this order when work competes. */
export const PRIORITY_CLASSES = ['critical', 'standard', 'deferrable'] as const;
export type PriorityClass = (typeof PRIORITY_CLASSES)[number];

/** Prefix of every canonical CloudEvents `type`. */
export const EVENT_TYPE_PREFIX = 'com.middlemart.';

export interface EventDefinition<Name extends string = string, Data extends z.ZodType = z.ZodType> {
  /** Short name, e.g. `order.created`. */
  readonly name: Name;
  /** Version of the data contract; part of the CloudEvents type. */
  readonly version: number;
  /** CloudEvents `type`, e.g. `com.middlemart.order.created.v1`. */
  readonly type: string;
  readonly description: string;
  /** Schema of the CloudEvent's `data`. */
  readonly data: Data;
  /** Default priority class of the work this event causes. */
  readonly priority: PriorityClass;
  /** Events with the same partition key are processed one at a time, in order. */
  readonly partitionKey: (data: z.output<Data>) => string;
  /** The partition key as documentation, in terms of the data's fields. */
  readonly partitionKeyDoc: string;
  /** CloudEvents `subject`: the entity the event is about. */
  readonly subject: (data: z.output<Data>) => string;
  /** URI of the JSON Schema of the data (`$id`; CloudEvents `dataschema`). */
  readonly dataschema: string;
}

function defineEvent<
  const Name extends string,
  const Version extends number,
  Data extends z.ZodType,
>(def: {
  name: Name;
  version: Version;
  description: string;
  data: Data;
  priority: PriorityClass;
  partitionKey: (data: z.output<Data>) => string;
  partitionKeyDoc: string;
  subject?: (data: z.output<Data>) => string;
}): EventDefinition<Name, Data> & {
  readonly version: Version;
  readonly type: `com.middlemart.${Name}.v${Version}`;
  readonly dataschema: string;
} {
  return Object.freeze({
    ...def,
    type: `${EVENT_TYPE_PREFIX}${def.name}.v${def.version}` as `com.middlemart.${Name}.v${Version}`,
    subject: def.subject ?? def.partitionKey,
    dataschema: eventDataSchemaId(def.name, def.version),
  });
}

/** Base URI of the published JSON Schemas (`$id`s and CloudEvents `dataschema`). */
export const SCHEMA_BASE_URI = 'https://middlemart.dev/schemas/';

/** `$id` of the JSON Schema of a canonical model, e.g. `…/json/order.v1.schema.json`. */
export function modelSchemaId(fileName: string, version: number): string {
  return `${SCHEMA_BASE_URI}json/${fileName}.v${version}.schema.json`;
}

/** `$id` of the JSON Schema of an event's data, e.g. `…/json/events/order.created.v1.schema.json`. */
export function eventDataSchemaId(name: string, version: number): string {
  return `${SCHEMA_BASE_URI}json/events/${name}.v${version}.schema.json`;
}

/** The partition key of a stock position: `sku@location`. */
export function stockKey(sku: string, location: string): string {
  return `${sku}@${location}`;
}

// ---- data schemas of events that carry less (or other) than a whole entity ----------------

export const OrderStatusChangedV1 = z
  .object({
    orderId: EntityId.describe('Order id.'),
    from: OrderStatus.optional().describe('Previous status; absent for the first transition.'),
    to: OrderStatus.describe('New status.'),
    reason: z.string().max(500).optional().describe('Why the status changed.'),
    changedAt: Timestamp.describe('When the status changed.'),
  })
  .strict()
  .refine((e) => e.from !== e.to, { when: whenValid, path: ['to'], message: 'to equals from' })
  .meta({ id: 'OrderStatusChanged.v1', title: 'OrderStatusChanged' });

export const OrderCancelledV1 = z
  .object({
    orderId: EntityId.describe('Order id.'),
    reason: z
      .enum(['customer_request', 'fraud', 'out_of_stock', 'payment_failed', 'other'])
      .describe('Why the order was cancelled.'),
    lineIds: z
      .array(z.string().min(1).max(64))
      .optional()
      .describe('Cancelled lines; absent: the whole order.'),
    cancelledAt: Timestamp.describe('When it was cancelled.'),
  })
  .strict()
  .meta({ id: 'OrderCancelled.v1', title: 'OrderCancelled' });

export const OrderFulfilledV1 = z
  .object({
    orderId: EntityId.describe('Order id.'),
    shipmentIds: z.array(EntityId).describe('Shipments that fulfilled it (empty for pickup).'),
    fulfilledAt: Timestamp.describe('When the last line was fulfilled.'),
  })
  .strict()
  .meta({ id: 'OrderFulfilled.v1', title: 'OrderFulfilled' });

export const OrderPostedV1 = z
  .object({
    orderId: EntityId.describe('Order id.'),
    erp: SourceRef.describe('ERP instance and the sales document id it booked.'),
    postedAt: Timestamp.describe('When the ERP confirmed the booking.'),
  })
  .strict()
  .meta({ id: 'OrderPosted.v1', title: 'OrderPosted' });

export const InventoryAdjustmentReason = z
  .enum([
    'receipt',
    'sale',
    'return',
    'cycle_count',
    'damage',
    'shrinkage',
    'transfer_in',
    'transfer_out',
    'correction',
  ])
  .meta({ id: 'InventoryAdjustmentReason', description: 'Why stock moved.' });

export const InventoryAdjustedV1 = z
  .object({
    sku: Sku,
    location: LocationId,
    reason: InventoryAdjustmentReason,
    delta: Quantity.optional().describe('Change of on-hand stock (+ in, − out); or count.'),
    count: z
      .int()
      .nonnegative()
      .optional()
      .describe('Absolute on-hand count (stock take); or delta.'),
    sourceSystem: z.string().min(1).max(64).describe('System that reported the movement.'),
    sourceSequence: z
      .int()
      .nonnegative()
      .describe('Monotonic sequence of the source for this sku@location.'),
    sourceTimestamp: Timestamp.describe('When the movement happened at the source.'),
  })
  .strict()
  .superRefine(
    (e, ctx) => {
      if ((e.delta === undefined) === (e.count === undefined)) {
        ctx.addIssue({
          code: 'custom',
          path: ['delta'],
          message: 'an adjustment carries exactly one of delta or count',
        });
      }
      if (e.delta === 0) {
        ctx.addIssue({ code: 'custom', path: ['delta'], message: 'delta must not be zero' });
      }
    },
    { when: whenValid },
  )
  .meta({
    id: 'InventoryAdjusted.v1',
    title: 'InventoryAdjusted',
    // The delta-or-count rule, for readers of the JSON Schema.
    oneOf: [{ required: ['delta'] }, { required: ['count'] }],
  });

export const ReservationReleasedV1 = z
  .object({
    reservationId: EntityId.describe('Reservation id.'),
    sku: Sku,
    location: LocationId,
    quantity: PositiveQuantity,
    reason: z
      .enum(['committed', 'cancelled', 'expired', 'reallocated'])
      .describe('Why the stock is no longer held.'),
    releasedAt: Timestamp.describe('When it was released.'),
  })
  .strict()
  .meta({ id: 'ReservationReleased.v1', title: 'ReservationReleased' });

export const CustomerMergedV1 = z
  .object({
    survivorId: EntityId.describe('Customer id that remains.'),
    mergedIds: z.array(EntityId).min(1).describe('Customer ids folded into the survivor.'),
    mergedAt: Timestamp.describe('When the merge happened.'),
  })
  .strict()
  .refine((e) => !e.mergedIds.includes(e.survivorId), {
    when: whenValid,
    path: ['mergedIds'],
    message: 'the survivor is not merged into itself',
  })
  .meta({ id: 'CustomerMerged.v1', title: 'CustomerMerged' });

export const ConsentChangedV1 = z
  .object({
    customerId: EntityId.describe('Customer id.'),
    purpose: ConsentPurpose,
    channel: ConsentChannel,
    status: ConsentStatus,
    previousStatus: ConsentStatus.optional().describe('Status before; absent if none.'),
    changedAt: Timestamp.describe('When the customer changed it.'),
    source: z.string().min(1).max(64).describe('System where the change was captured.'),
  })
  .strict()
  .meta({ id: 'ConsentChanged.v1', title: 'ConsentChanged' });

const LoyaltyAccrualV1 = LoyaltyActivityV1.refine((a) => a.kind === 'accrue', {
  when: whenValid,
  path: ['kind'],
  message: 'loyalty.accrued carries kind accrue',
});
const LoyaltyReversalV1 = LoyaltyActivityV1.refine((a) => a.kind === 'reverse', {
  when: whenValid,
  path: ['kind'],
  message: 'loyalty.reversed carries kind reverse',
});
const LoyaltyRedemptionV1 = LoyaltyActivityV1.refine((a) => a.kind === 'redeem', {
  when: whenValid,
  path: ['kind'],
  message: 'loyalty.redeemed carries kind redeem',
});

// ---- the catalogue ----------------------------------------------------------------------

const byOrder = 'data.orderId';

export const catalogue = [
  defineEvent({
    name: 'order.created',
    version: 1,
    description: 'A channel placed an order; Middlemart accepted it.',
    data: OrderV1,
    priority: 'critical',
    partitionKey: (o) => o.id,
    partitionKeyDoc: 'data.id (order id)',
  }),
  defineEvent({
    name: 'order.updated',
    version: 1,
    description: 'An accepted order changed (address, lines before fulfilment …).',
    data: OrderV1,
    priority: 'critical',
    partitionKey: (o) => o.id,
    partitionKeyDoc: 'data.id (order id)',
  }),
  defineEvent({
    name: 'order.status_changed',
    version: 1,
    description: "The order's lifecycle status moved.",
    data: OrderStatusChangedV1,
    priority: 'critical',
    partitionKey: (e) => e.orderId,
    partitionKeyDoc: byOrder,
  }),
  defineEvent({
    name: 'order.cancelled',
    version: 1,
    description: 'The order, or some of its lines, was cancelled.',
    data: OrderCancelledV1,
    priority: 'critical',
    partitionKey: (e) => e.orderId,
    partitionKeyDoc: byOrder,
  }),
  defineEvent({
    name: 'order.fulfilled',
    version: 1,
    description: 'Every line of the order was shipped, picked up or sold.',
    data: OrderFulfilledV1,
    priority: 'critical',
    partitionKey: (e) => e.orderId,
    partitionKeyDoc: byOrder,
  }),
  defineEvent({
    name: 'order.posted',
    version: 1,
    description: 'The ERP booked the order as a sales document.',
    data: OrderPostedV1,
    priority: 'critical',
    partitionKey: (e) => e.orderId,
    partitionKeyDoc: byOrder,
  }),
  defineEvent({
    name: 'inventory.adjusted',
    version: 1,
    description: 'Stock at a location moved (by delta) or was counted (absolute).',
    data: InventoryAdjustedV1,
    priority: 'standard',
    partitionKey: (e) => stockKey(e.sku, e.location),
    partitionKeyDoc: 'data.sku + "@" + data.location',
  }),
  defineEvent({
    name: 'inventory.availability_changed',
    version: 1,
    description: 'The sellable availability of a SKU at a location changed.',
    data: InventoryPositionV1,
    priority: 'standard',
    partitionKey: (p) => stockKey(p.sku, p.location),
    partitionKeyDoc: 'data.sku + "@" + data.location',
  }),
  defineEvent({
    name: 'reservation.created',
    version: 1,
    description: 'Stock was reserved for an order line.',
    data: ReservationV1,
    priority: 'standard',
    partitionKey: (r) => stockKey(r.sku, r.location),
    partitionKeyDoc: 'data.sku + "@" + data.location',
    subject: (r) => r.id,
  }),
  defineEvent({
    name: 'reservation.released',
    version: 1,
    description: 'A reservation stopped holding stock.',
    data: ReservationReleasedV1,
    priority: 'standard',
    partitionKey: (r) => stockKey(r.sku, r.location),
    partitionKeyDoc: 'data.sku + "@" + data.location',
    subject: (r) => r.reservationId,
  }),
  defineEvent({
    name: 'product.changed',
    version: 1,
    description: 'Item master data of a SKU was created or changed.',
    data: ProductV1,
    priority: 'deferrable',
    partitionKey: (p) => p.sku,
    partitionKeyDoc: 'data.sku',
  }),
  defineEvent({
    name: 'price.changed',
    version: 1,
    description: 'A price of a SKU for a channel and/or store group was set or changed.',
    data: PriceV1,
    priority: 'deferrable',
    partitionKey: (p) => p.sku,
    partitionKeyDoc: 'data.sku',
  }),
  defineEvent({
    name: 'promotion.changed',
    version: 1,
    description: 'A promotion was created, changed, started, ended or withdrawn.',
    data: PromotionV1,
    priority: 'deferrable',
    partitionKey: (p) => p.id,
    partitionKeyDoc: 'data.id (promotion id)',
  }),
  defineEvent({
    name: 'customer.created',
    version: 1,
    description: 'A customer became known to the estate.',
    data: CustomerV1,
    priority: 'standard',
    partitionKey: (c) => c.id,
    partitionKeyDoc: 'data.id (customer id)',
  }),
  defineEvent({
    name: 'customer.updated',
    version: 1,
    description: "A customer's profile changed.",
    data: CustomerV1,
    priority: 'standard',
    partitionKey: (c) => c.id,
    partitionKeyDoc: 'data.id (customer id)',
  }),
  defineEvent({
    name: 'customer.merged',
    version: 1,
    description: 'Duplicate customer profiles were merged into a survivor.',
    data: CustomerMergedV1,
    priority: 'standard',
    partitionKey: (e) => e.survivorId,
    partitionKeyDoc: 'data.survivorId',
  }),
  defineEvent({
    name: 'consent.changed',
    version: 1,
    description: 'A customer granted, denied or withdrew consent for a purpose and channel.',
    data: ConsentChangedV1,
    priority: 'standard',
    partitionKey: (e) => e.customerId,
    partitionKeyDoc: 'data.customerId',
  }),
  defineEvent({
    name: 'return.requested',
    version: 1,
    description: 'A customer asked to return goods of an order.',
    data: ReturnV1,
    priority: 'critical',
    partitionKey: (r) => r.orderId,
    partitionKeyDoc: 'data.orderId (original order: returns queue behind the order)',
    subject: (r) => r.id,
  }),
  defineEvent({
    name: 'return.completed',
    version: 1,
    description: 'Returned goods were received and the refund issued.',
    data: ReturnV1.refine((r) => r.status === 'completed', {
      when: whenValid,
      path: ['status'],
      message: 'return.completed carries status completed',
    }),
    priority: 'critical',
    partitionKey: (r) => r.orderId,
    partitionKeyDoc: 'data.orderId (original order)',
    subject: (r) => r.id,
  }),
  defineEvent({
    name: 'shipment.confirmed',
    version: 1,
    description: 'Goods of an order left a location with a carrier.',
    data: ShipmentV1,
    priority: 'critical',
    partitionKey: (s) => s.orderId,
    partitionKeyDoc: 'data.orderId',
    subject: (s) => s.id,
  }),
  defineEvent({
    name: 'loyalty.accrued',
    version: 1,
    description: 'A member earned points for an order.',
    data: LoyaltyAccrualV1,
    priority: 'standard',
    partitionKey: (a) => a.memberId,
    partitionKeyDoc: 'data.memberId',
    subject: (a) => a.id,
  }),
  defineEvent({
    name: 'loyalty.reversed',
    version: 1,
    description: 'Earned points were taken back (return, cancellation).',
    data: LoyaltyReversalV1,
    priority: 'standard',
    partitionKey: (a) => a.memberId,
    partitionKeyDoc: 'data.memberId',
    subject: (a) => a.id,
  }),
  defineEvent({
    name: 'loyalty.redeemed',
    version: 1,
    description: 'A member spent points.',
    data: LoyaltyRedemptionV1,
    priority: 'standard',
    partitionKey: (a) => a.memberId,
    partitionKeyDoc: 'data.memberId',
    subject: (a) => a.id,
  }),
] as const;

export type CatalogueEntry = (typeof catalogue)[number];
export type EventName = CatalogueEntry['name'];
export type EventType = CatalogueEntry['type'];
export type EventEntry<N extends EventName> = Extract<CatalogueEntry, { name: N }>;
/** The data of the event called `N`, e.g. `EventData<'order.created'>` is an Order. */
export type EventData<N extends EventName> = z.output<EventEntry<N>['data']>;

const byName = new Map<string, CatalogueEntry>(catalogue.map((e) => [e.name, e]));
const byType = new Map<string, CatalogueEntry>(catalogue.map((e) => [e.type, e]));

/** The catalogue entry of a CloudEvents type such as `com.middlemart.order.created.v1`. */
export function eventByType(type: string): CatalogueEntry | undefined {
  return byType.get(type);
}

/** The catalogue entry of a short name such as `order.created`. */
export function eventByName<N extends EventName>(name: N): EventEntry<N>;
export function eventByName(name: string): CatalogueEntry | undefined;
export function eventByName(name: string): CatalogueEntry | undefined {
  return byName.get(name);
}

/**
 * The partition key of an event, from its type and data as the catalogue defines it.
 * Throws when the type is unknown or the data does not fit the type's schema.
 */
export function partitionKeyOf(event: { type: string; data: unknown }): string {
  const entry = eventByType(event.type);
  if (!entry) throw new Error(`unknown event type ${event.type}`);
  const data = entry.data.parse(event.data);
  return (entry.partitionKey as (d: unknown) => string)(data);
}
