// The `customers` section of the estate config: who owns which customer attribute (survivorship),
// how far each source is trusted for contact points, the matching thresholds and where the PII
// key lives. Strict like the rest of the file; everything has a default, so the section may be
// left out.
import { z } from 'zod';

import { CUSTOMER_ATTRIBUTES } from '../../domains/customers/survivorship.js';

const SYSTEM_ID = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const SystemId = z.string().regex(SYSTEM_ID, "system ids are lower-case words joined by '-'");

const Ownership = z.partialRecord(z.enum(CUSTOMER_ATTRIBUTES), SystemId);

const Probability = z.number().min(0).max(1);

export const CustomersConfigSchema = z.strictObject({
  /**
   * attribute → the system that owns it (its value wins whenever that system holds one).
   * Overrides `fieldOwnership.customer` for the same attribute.
   */
  ownership: Ownership.default({}),
  /**
   * Systems from most to least trusted, for attributes nobody owns (contact points): the most
   * trusted source with a value wins, the most recent value among equally trusted ones.
   * Systems not listed rank below every listed one.
   */
  sourceTrust: z.array(SystemId).default([]),
  /**
   * Systems sent `customer.sync` when they hold an identity. Default: every declared system of
   * a kind that keeps customers (CRM, loyalty, commerce platforms, marketplaces, ERPs).
   */
  syncTo: z.array(SystemId).optional(),
  /** Region of a golden record whose sources name none. */
  defaultRegion: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,31}$/, 'expected a lowercase region code such as eu')
    .default('eu'),
  /** Default country for phone numbers without a country code. */
  defaultCountry: z
    .string()
    .regex(/^[A-Z]{2}$/, 'countries are ISO 3166-1 alpha-2 codes such as DE')
    .optional(),
  /** Matching thresholds on the match probability; the matcher's own defaults otherwise. */
  matching: z
    .strictObject({
      link: Probability.optional(),
      review: Probability.optional(),
      /** Stored records compared per incoming record at most (the best blocks first). */
      maxCandidates: z.int().min(1).max(10_000).default(200),
    })
    .refine((m) => m.link === undefined || m.review === undefined || m.review <= m.link, {
      path: ['review'],
      message: 'review must not be above link',
    })
    .prefault({}),
  pii: z
    .strictObject({
      /**
       * File holding the base64 AES-256 key (32 bytes) when MIDDLEMART_PII_KEY is not set.
       * Default: `pii.key` beside the embedded SQLite database (generated, mode 0600).
       */
      keyFile: z.string().min(1).optional(),
      /**
       * Which engine payloads (messages, deliveries, dead letters) are sealed with the key
       * (ADR 0018): those carrying personal data (customers, consents, orders, returns,
       * shipments, loyalty, and what their handlers write; the default), or all of them.
       */
      enginePayloads: z.enum(['personal-data', 'all']).default('personal-data'),
    })
    .prefault({}),
  /** Customer 360: per-source timeout and how long reference data is cached. */
  customer360: z
    .strictObject({
      timeoutMs: z.int().min(10).max(60_000).default(2_000),
      cacheTtlMs: z.int().min(0).max(86_400_000).default(300_000),
      recentOrders: z.int().min(1).max(100).default(10),
    })
    .prefault({}),
});

export type CustomersConfig = z.output<typeof CustomersConfigSchema>;
