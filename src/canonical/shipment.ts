// Shipments: goods that left a location for an order.
import { z } from 'zod';
import { EntityId, LocationId, PositiveQuantity, Sku, Timestamp } from './primitives.js';

export const ShipmentV1 = z
  .object({
    id: EntityId.describe('Shipment id.'),
    orderId: EntityId.describe('Order the shipment fulfils.'),
    fromLocation: LocationId.describe('Location the goods left.'),
    carrier: z.string().min(1).max(64).describe('Carrier (dhl, ups, own_fleet …).'),
    service: z.string().max(64).optional().describe('Carrier service level.'),
    trackingNumber: z.string().max(128).optional().describe('Carrier tracking number.'),
    trackingUrl: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe('Tracking page.'),
    lines: z
      .array(
        z
          .object({
            orderLineId: z.string().min(1).max(64).describe('Line id on the order.'),
            sku: Sku,
            quantity: PositiveQuantity,
          })
          .strict(),
      )
      .min(1)
      .describe('What was shipped; at least one line.'),
    shippedAt: Timestamp.describe('When the goods left (RFC 3339 UTC).'),
  })
  .strict()
  .meta({ id: 'Shipment.v1', title: 'Shipment', description: 'Goods shipped for an order.' });
export type ShipmentV1 = z.infer<typeof ShipmentV1>;
