// The `orders` section of the estate config: the order process manager, returns and loyalty.
// Strict like the rest of the file; everything has a default, so the section may be left out.
import { z } from 'zod';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.number().int().min(min).max(max);
const SystemRef = z
  .string()
  .regex(/^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/, "system ids are lower-case words joined by '-'");
const Location = z.string().min(1).max(64);

/**
 * Which system receives each kind of fan-out. Absent: the first configured system of the kind
 * (crm, loyalty, wms, shopify, notification, tax); `none` switches that fan-out off.
 */
const FanOutSystems = z.strictObject({
  crm: SystemRef.or(z.literal('none')).optional(),
  loyalty: SystemRef.or(z.literal('none')).optional(),
  wms: SystemRef.or(z.literal('none')).optional(),
  /** The commerce platform whose orders get status and tag updates. */
  commerce: SystemRef.or(z.literal('none')).optional(),
  /** Stores' pickup tasks (default: the first POS system). */
  stores: SystemRef.or(z.literal('none')).optional(),
  notifications: SystemRef.or(z.literal('none')).optional(),
});

export const OrdersConfigSchema = z.strictObject({
  /** The tax engine asked for quotes (default: the first system of kind `tax`; `none`: off). */
  taxSystem: SystemRef.or(z.literal('none')).optional(),
  /**
   * When an order is quoted: `missing-tax` (only orders that arrive without tax lines),
   * `always`, or `never`.
   */
  taxQuote: z.enum(['missing-tax', 'always', 'never']).default('missing-tax'),
  fanOut: FanOutSystems.prefault({}),
  /** The distribution centre that ships orders, by region; `default` for any other region. */
  shipFrom: z.record(z.string().min(1), Location).default({ default: 'DC-EU-1', us: 'DC-US-1' }),
  /**
   * The business unit of an order, for ERP routing rules (`routing[].when.businessUnit`): by the
   * store that fulfils it, else by the channel system it came from, else by its sales channel.
   */
  businessUnits: z
    .strictObject({
      byStore: z.record(z.string().min(1), z.string().min(1)).default({}),
      bySystem: z.record(z.string().min(1), z.string().min(1)).default({}),
      byChannel: z.record(z.string().min(1), z.string().min(1)).default({}),
      default: z.string().min(1).optional(),
    })
    .optional(),
  /** How often backordered orders retry allocation. */
  backorderRetryIntervalMs: int(100).default(30_000),
  /** Days until a backordered order is expected, told to the commerce platform and customer. */
  backorderExpectedDays: int(0, 365).default(7),
  /** How often SKUs the item cross-reference does not know yet are looked up in the ERP. */
  itemLookupIntervalMs: int(10).default(500),
  /** How often known item cross-references are re-read from the ERP. */
  itemRefreshIntervalMs: int(1000).default(3_600_000),
  loyalty: z
    .strictObject({
      /** Points per whole currency unit of the order's value after discounts. */
      pointsPerCurrencyUnit: z.number().min(0).max(1000).default(1),
    })
    .prefault({}),
  returns: z
    .strictObject({
      /** Days after the order was placed within which a return is refunded. */
      windowDays: int(0, 3650).default(30),
      /** SKUs sold as final sale: never refunded. */
      finalSaleSkus: z.array(z.string().min(1).max(64)).default([]),
      /** Conditions in which returned goods are not refunded. */
      refusedConditions: z
        .array(z.enum(['new', 'opened', 'used', 'damaged', 'defective']))
        .default(['used']),
      /** Conditions in which refunded goods are written off instead of restocked. */
      writeOffConditions: z
        .array(z.enum(['new', 'opened', 'used', 'damaged', 'defective']))
        .default(['damaged', 'defective']),
    })
    .prefault({}),
});

export type OrdersConfig = z.output<typeof OrdersConfigSchema>;
