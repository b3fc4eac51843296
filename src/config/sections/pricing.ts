// The `pricing` section of the estate config. Strict like the rest of the file; everything has a
// default, so the section may be left out. See docs/pricing.md.
import { z } from 'zod';

const SYSTEM_ID = /^[a-z][a-z0-9-]{0,62}$/;
const SALES_CHANNELS = ['web', 'mobile', 'store', 'marketplace'] as const;

/** Where a price reaches customers: one system and what of the price calendar it shows. */
const PriceTarget = z.strictObject({
  /** The system id (a `shopify`, `pos` or `marketplace` system). */
  system: z.string().regex(SYSTEM_ID, 'system ids are lower-case words joined by -'),
  /** The sales channels this system sells through; a price naming another channel skips it. */
  channels: z.array(z.enum(SALES_CHANNELS)).min(1).optional(),
  /**
   * Store groups (price zones). For a store system: the groups whose stores it serves, with
   * the store ids of each (`{ eu-stores: [store-001, store-002] }`); a price is pushed per group
   * to each of its stores. For a web shop or marketplace: the one price zone it follows, so a
   * price naming only that store group also reaches it.
   */
  storeGroups: z
    .record(z.string().min(1).max(64), z.array(z.string().min(1)).default([]))
    .optional(),
});

export const PricingConfigSchema = z.strictObject({
  /** Priority class of price ingest and distribution (orders and stock go first). */
  priority: z.enum(['critical', 'standard', 'deferrable']).default('deferrable'),
  /** Push this long before a price takes effect (0: at the effective time, never before). */
  leadTimeMs: z.int().min(0).max(3_600_000).default(0),
  /** How often due price boundaries and pending pushes are looked for. */
  tickIntervalMs: z.int().min(20).max(60_000).default(200),
  approval: z
    .strictObject({
      /** A change lowering the price in effect by more than this percent needs approval. */
      maxDropPercent: z.number().min(0).max(100).optional(),
      /** A sale price more than this percent below its list price needs approval. */
      maxPromotionDiscountPercent: z.number().min(0).max(100).optional(),
    })
    .prefault({}),
  /** Which systems show prices; default every `shopify`, `pos` and `marketplace` system. */
  targets: z.array(PriceTarget).optional(),
  verification: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Read back a pushed price this long after the channel acknowledged it. */
      delayMs: z.int().min(0).max(3_600_000).default(1_000),
      intervalMs: z.int().min(100).max(3_600_000).default(1_000),
    })
    .prefault({}),
  /** The ERP's price file drop: `prices-*.csv` files polled from `dir` (off without it). */
  fileDrop: z
    .strictObject({
      dir: z.string().min(1).optional(),
      pollIntervalMs: z.int().min(100).max(3_600_000).default(1_000),
    })
    .prefault({}),
});

export type PricingConfig = z.output<typeof PricingConfigSchema>;
