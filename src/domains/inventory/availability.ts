// Available-to-promise: on hand − reserved − safety stock per location, and what each sales
// channel may see of it under its allocation rule. Plain options today; the estate config
// schema will produce the same shape.

/** Safety stock held back from sale; the most specific rule wins (sku@location, sku, location). */
export interface SafetyStockRules {
  default?: number;
  byLocation?: Readonly<Record<string, number>>;
  bySku?: Readonly<Record<string, number>>;
  /** Keyed `sku@location`. */
  bySkuLocation?: Readonly<Record<string, number>>;
}

/** What share of a location's ATP a channel may promise. */
export interface ChannelAllocation {
  /** Only these locations serve the channel (default: every location). */
  locations?: readonly string[];
  /** Whole percent (0–100) of the location's ATP the channel sees (default 100). */
  percent?: number;
  /** At most this many units per sku@location (default: no cap). */
  cap?: number;
}

export interface AvailabilityRules {
  safetyStock?: SafetyStockRules;
  /** Keyed by channel id; a channel without a rule sees the whole ATP of every location. */
  channels?: Readonly<Record<string, ChannelAllocation>>;
}

export function safetyStockFor(
  rules: SafetyStockRules | undefined,
  sku: string,
  location: string,
): number {
  if (!rules) return 0;
  return (
    rules.bySkuLocation?.[`${sku}@${location}`] ??
    rules.bySku?.[sku] ??
    rules.byLocation?.[location] ??
    rules.default ??
    0
  );
}

/** ATP of a location: never below zero. */
export function availableToPromise(p: {
  onHand: number;
  reserved: number;
  safetyStock: number;
}): number {
  return Math.max(0, p.onHand - p.reserved - p.safetyStock);
}

/** True when the channel may sell from the location at all. */
export function channelServesLocation(
  allocation: ChannelAllocation | undefined,
  location: string,
): boolean {
  return !allocation?.locations || allocation.locations.includes(location);
}

/** What a channel may promise of a location's ATP. */
export function channelAvailable(
  locationAtp: number,
  location: string,
  allocation: ChannelAllocation | undefined,
): number {
  if (!allocation) return Math.max(0, locationAtp);
  if (!channelServesLocation(allocation, location)) return 0;
  let seen = Math.max(0, locationAtp);
  if (allocation.percent !== undefined) seen = Math.floor((seen * allocation.percent) / 100);
  if (allocation.cap !== undefined) seen = Math.min(seen, allocation.cap);
  return seen;
}

/** Throws on rules that cannot be enforced (non-integer percent, negative numbers). */
export function assertAvailabilityRules(rules: AvailabilityRules): void {
  const quantities: [string, number | undefined][] = [
    ['safetyStock.default', rules.safetyStock?.default],
  ];
  for (const [group, map] of [
    ['byLocation', rules.safetyStock?.byLocation],
    ['bySku', rules.safetyStock?.bySku],
    ['bySkuLocation', rules.safetyStock?.bySkuLocation],
  ] as const) {
    for (const [k, v] of Object.entries(map ?? {}))
      quantities.push([`safetyStock.${group}.${k}`, v]);
  }
  for (const [channel, a] of Object.entries(rules.channels ?? {})) {
    quantities.push([`channels.${channel}.cap`, a.cap]);
    if (
      a.percent !== undefined &&
      (!Number.isInteger(a.percent) || a.percent < 0 || a.percent > 100)
    ) {
      throw new RangeError(`channels.${channel}.percent must be a whole number 0..100`);
    }
  }
  for (const [path, v] of quantities) {
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) {
      throw new RangeError(`${path} must be a non-negative integer`);
    }
  }
}
