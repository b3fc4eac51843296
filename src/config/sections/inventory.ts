// The `inventory` section of the estate config: safety stock, which sales channels are pushed
// availability and what share of stock each may promise, how long reservations hold, how the
// channel push runs, and when inventory is reconciled with the ERP. Strict like the rest of the
// file; everything has a default, so the section may be left out.
import { z } from 'zod';

const quantity = z.number().int().min(0);
const id = z.string().min(1).max(255);

const SafetyStock = z.strictObject({
  /** Units held back from sale at every position without a more specific rule. */
  default: quantity.default(0),
  byLocation: z.record(id, quantity).default({}),
  bySku: z.record(id, quantity).default({}),
  /** Keyed `sku@location`. */
  bySkuLocation: z
    .record(
      z.string().regex(/^[^@]+@[^@]+$/, 'keys look like sku@location, e.g. MM-00001@DC-EU-1'),
      quantity,
    )
    .default({}),
});

const Channel = z.strictObject({
  /** Only these Middlemart locations serve the channel (default: every location). */
  locations: z.array(id).min(1).optional(),
  /** Whole percent (0–100) of each location's available-to-promise the channel may promise. */
  percent: z.number().int().min(0).max(100).optional(),
  /** At most this many units per sku@location. */
  cap: quantity.optional(),
  /**
   * Middlemart location id → the channel's own location (its id or name), for connectors that
   * key stock by their own locations (a commerce platform's location ids).
   */
  locationMap: z.record(id, id).default({}),
  /** False keeps the allocation rule for reservations but pushes nothing to the channel. */
  push: z.boolean().default(true),
});

const Push = z.strictObject({
  /**
   * How often each channel's pusher looks for due availability without being woken (ms): changes
   * committed by another process, claims whose lease ran out. Changes committed in this process
   * wake the pusher at once.
   */
  intervalMs: z.number().int().min(1).max(60_000).default(50),
  /**
   * How long a claimed key is held by its sender (seconds): after a crash, the key is sent again
   * once it runs out. Raised to at least twice the channel's timeout plus 5 s.
   */
  leaseSeconds: z.number().int().min(1).max(86_400).default(60),
});

const Reconciliation = z.strictObject({
  /** The ERP system whose stock snapshot is the reference (default: the first ERP configured). */
  erp: z.string().min(1).optional(),
  /** Run every this many minutes in the worker (0 = only on demand, `middlemart reconcile`). */
  everyMinutes: z
    .number()
    .int()
    .min(0)
    .max(7 * 24 * 60)
    .default(0),
  /** Correct the ledger to the ERP's figures and re-push the channels when drift is found. */
  fix: z.boolean().default(false),
  /** Also compare what each pushed channel was last acknowledged to show. */
  channels: z.boolean().default(true),
});

export const InventoryConfigSchema = z.strictObject({
  safetyStock: SafetyStock.prefault({}),
  /**
   * Sales channels by system id (a commerce platform, marketplace or POS system of the estate):
   * their allocation rules and whether availability is pushed to them.
   */
  channels: z.record(id, Channel).default({}),
  /** How long a reservation holds stock when the order names no expiry (minutes). */
  reservationTtlMinutes: z
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 60)
    .default(30),
  push: Push.prefault({}),
  reconciliation: Reconciliation.prefault({}),
});

export type InventoryConfig = z.output<typeof InventoryConfigSchema>;
export type InventoryChannelConfig = InventoryConfig['channels'][string];
