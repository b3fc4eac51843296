// Stock: the availability position of a SKU at a location, and reservations held against it.
import { z } from 'zod';
import {
  EntityId,
  LocationId,
  PositiveQuantity,
  SalesChannel,
  Sku,
  Timestamp,
  whenValid,
} from './primitives.js';

export const InventoryPositionV1 = z
  .object({
    sku: Sku,
    location: LocationId,
    onHand: z
      .int()
      .describe('Physical stock on hand; may be negative where the ERP allows overselling.'),
    reserved: z.int().nonnegative().describe('Quantity held by open reservations.'),
    safetyStock: z
      .int()
      .nonnegative()
      .optional()
      .describe('Quantity held back from sale at this location.'),
    available: z
      .int()
      .nonnegative()
      .describe(
        'Quantity that may be promised to channels: at most onHand − reserved − safetyStock.',
      ),
    sourceSequence: z
      .int()
      .nonnegative()
      .describe(
        'Monotonic sequence of the source system for this sku@location; older ones are stale.',
      ),
    asOf: Timestamp.describe('When the source computed this position (RFC 3339 UTC).'),
  })
  .strict()
  .superRefine(
    (p, ctx) => {
      const ceiling = Math.max(0, p.onHand - p.reserved - (p.safetyStock ?? 0));
      if (p.available > ceiling) {
        ctx.addIssue({
          code: 'custom',
          path: ['available'],
          message: `available ${p.available} exceeds onHand − reserved − safetyStock (${ceiling})`,
        });
      }
    },
    { when: whenValid },
  )
  .meta({
    id: 'InventoryPosition.v1',
    title: 'InventoryPosition',
    description: 'Stock position of one SKU at one location.',
  });
export type InventoryPositionV1 = z.infer<typeof InventoryPositionV1>;

export const ReservationStatus = z
  .enum(['active', 'committed', 'released', 'expired'])
  .describe(
    'active: holding stock; committed: consumed by fulfilment; released / expired: no longer held.',
  );
export type ReservationStatus = z.infer<typeof ReservationStatus>;

export const OrderReference = z
  .object({
    orderId: EntityId.describe('Middlemart order id.'),
    lineId: z.string().min(1).max(64).optional().describe('Order line id, when line-specific.'),
  })
  .strict()
  .meta({ id: 'OrderReference', description: 'Reference to an order (and optionally a line).' });
export type OrderReference = z.infer<typeof OrderReference>;

export const ReservationV1 = z
  .object({
    id: EntityId.describe('Reservation id.'),
    sku: Sku,
    location: LocationId,
    quantity: PositiveQuantity,
    order: OrderReference,
    channel: SalesChannel,
    createdAt: Timestamp.describe('When the reservation was taken.'),
    expiresAt: Timestamp.describe('When an uncommitted reservation lapses.'),
    status: ReservationStatus,
  })
  .strict()
  .superRefine(
    (r, ctx) => {
      if (Date.parse(r.expiresAt) <= Date.parse(r.createdAt)) {
        ctx.addIssue({
          code: 'custom',
          path: ['expiresAt'],
          message: 'expiresAt must be after createdAt',
        });
      }
    },
    { when: whenValid },
  )
  .meta({
    id: 'Reservation.v1',
    title: 'Reservation',
    description: 'Stock held at a location for an order line until committed or released.',
  });
export type ReservationV1 = z.infer<typeof ReservationV1>;
