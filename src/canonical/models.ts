// The canonical models and their versions: the registry the JSON Schema contracts are made from,
// plus unversioned aliases that always name the current version.
import type { z } from 'zod';
import { CustomerV1 } from './customer.js';
import { InventoryPositionV1, ReservationV1 } from './inventory.js';
import { LoyaltyActivityV1 } from './loyalty.js';
import { OrderV1 } from './order.js';
import { PriceV1, PromotionV1 } from './price.js';
import { Money } from './primitives.js';
import { ProductV1 } from './product.js';
import { ReturnV1 } from './returns.js';
import { ShipmentV1 } from './shipment.js';

export interface CanonicalModel {
  /** File name stem of its JSON Schema: `order` → `order.v1.schema.json`. */
  readonly name: string;
  readonly title: string;
  readonly version: number;
  readonly schema: z.ZodType;
}

export const canonicalModels: readonly CanonicalModel[] = Object.freeze([
  { name: 'money', title: 'Money', version: 1, schema: Money },
  { name: 'product', title: 'Product', version: 1, schema: ProductV1 },
  {
    name: 'inventory-position',
    title: 'InventoryPosition',
    version: 1,
    schema: InventoryPositionV1,
  },
  { name: 'reservation', title: 'Reservation', version: 1, schema: ReservationV1 },
  { name: 'price', title: 'Price', version: 1, schema: PriceV1 },
  { name: 'promotion', title: 'Promotion', version: 1, schema: PromotionV1 },
  { name: 'order', title: 'Order', version: 1, schema: OrderV1 },
  { name: 'customer', title: 'Customer', version: 1, schema: CustomerV1 },
  { name: 'return', title: 'Return', version: 1, schema: ReturnV1 },
  { name: 'shipment', title: 'Shipment', version: 1, schema: ShipmentV1 },
  { name: 'loyalty-activity', title: 'LoyaltyActivity', version: 1, schema: LoyaltyActivityV1 },
]);

// Current versions under their plain names.
export const Product = ProductV1;
export type Product = ProductV1;
export const InventoryPosition = InventoryPositionV1;
export type InventoryPosition = InventoryPositionV1;
export const Reservation = ReservationV1;
export type Reservation = ReservationV1;
export const Price = PriceV1;
export type Price = PriceV1;
export const Promotion = PromotionV1;
export type Promotion = PromotionV1;
export const Order = OrderV1;
export type Order = OrderV1;
export const Customer = CustomerV1;
export type Customer = CustomerV1;
export const Return = ReturnV1;
export type Return = ReturnV1;
export const Shipment = ShipmentV1;
export type Shipment = ShipmentV1;
export const LoyaltyActivity = LoyaltyActivityV1;
export type LoyaltyActivity = LoyaltyActivityV1;
