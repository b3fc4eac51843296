// The pricing domain's pure rules: which targets (system × scope) a price change reaches, which
// price a target shows at an instant when changes overlap (the documented precedence), when that
// answer next changes, and which changes need approval. No I/O here.

export type SalesChannelName = 'web' | 'mobile' | 'store' | 'marketplace';

/** One price change as stored: money in minor units, times in epoch ms. */
export interface PriceChange {
  id: string;
  sku: string;
  channel?: SalesChannelName | undefined;
  storeGroup?: string | undefined;
  currency: string;
  listMinor: number;
  saleMinor?: number | undefined;
  includesTax: boolean;
  effectiveFrom: number;
  effectiveUntil?: number | undefined;
  promotionId?: string | undefined;
  /** When and in which position of its submission it was ingested (later wins ties). */
  ingestedAt: number;
  ingestIndex: number;
}

/** A system that shows prices, with the part of the price calendar it shows. */
export interface PriceTarget {
  /** System id. */
  system: string;
  /** Sales channels it sells through. */
  channels: readonly SalesChannelName[];
  /**
   * Store systems (`scoped`): one scope per store group served (none configured: one scope ''
   * for every store, reached by prices naming the channel only). Web shops and marketplaces:
   * the price zone they follow (at most one), their single scope being ''.
   */
  storeGroups: readonly string[];
  scoped: boolean;
}

/** What a target shows for a SKU. */
export interface ShownPrice {
  currency: string;
  listMinor: number;
  saleMinor?: number | undefined;
  /** The change that won the precedence. */
  changeId: string;
  promotionId?: string | undefined;
}

/** The scopes of `target` a change reaches (empty: none). */
export function scopesOf(
  change: Pick<PriceChange, 'channel' | 'storeGroup'>,
  target: PriceTarget,
): string[] {
  const channelOk = change.channel === undefined || target.channels.includes(change.channel);
  if (!channelOk) return [];
  if (target.scoped && target.storeGroups.length > 0) {
    if (change.storeGroup !== undefined) {
      return target.storeGroups.includes(change.storeGroup) ? [change.storeGroup] : [];
    }
    return change.channel !== undefined ? [...target.storeGroups] : [];
  }
  if (change.storeGroup !== undefined) {
    return target.storeGroups.includes(change.storeGroup) ? [''] : [];
  }
  return change.channel !== undefined ? [''] : [];
}

export function isActive(change: PriceChange, at: number): boolean {
  return (
    change.effectiveFrom <= at &&
    (change.effectiveUntil === undefined || at < change.effectiveUntil)
  );
}

function specificity(c: PriceChange): number {
  return (c.channel !== undefined ? 1 : 0) + (c.storeGroup !== undefined ? 1 : 0);
}

/** The price a customer pays under a change: its sale price, else its list price. */
export function payPrice(c: Pick<PriceChange, 'listMinor' | 'saleMinor'>): number {
  return c.saleMinor ?? c.listMinor;
}

/**
 * Precedence between changes active at the same instant (docs/pricing.md): negative when `a`
 * wins.
 * 1. a promotion (a change with a promotion id) over a regular price;
 * 2. between promotions, the lower price to pay (the customer gets the better offer);
 * 3. the more specific change (channel and store group named) over a less specific one;
 * 4. the later effective start;
 * 5. the later ingested (the newest instruction).
 */
export function comparePrecedence(a: PriceChange, b: PriceChange): number {
  const promoA = a.promotionId !== undefined ? 1 : 0;
  const promoB = b.promotionId !== undefined ? 1 : 0;
  if (promoA !== promoB) return promoB - promoA;
  if (promoA === 1 && payPrice(a) !== payPrice(b)) return payPrice(a) - payPrice(b);
  if (specificity(a) !== specificity(b)) return specificity(b) - specificity(a);
  if (a.effectiveFrom !== b.effectiveFrom) return b.effectiveFrom - a.effectiveFrom;
  if (a.ingestedAt !== b.ingestedAt) return b.ingestedAt - a.ingestedAt;
  if (a.ingestIndex !== b.ingestIndex) return b.ingestIndex - a.ingestIndex;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/** The price shown at `at` among `changes` (all of them reaching the same target scope). */
export function resolvePrice(changes: readonly PriceChange[], at: number): ShownPrice | undefined {
  let winner: PriceChange | undefined;
  for (const c of changes) {
    if (!isActive(c, at)) continue;
    if (winner === undefined || comparePrecedence(c, winner) < 0) winner = c;
  }
  if (!winner) return undefined;
  return {
    currency: winner.currency,
    listMinor: winner.listMinor,
    ...(winner.saleMinor !== undefined && winner.saleMinor < winner.listMinor
      ? { saleMinor: winner.saleMinor }
      : {}),
    changeId: winner.id,
    ...(winner.promotionId !== undefined ? { promotionId: winner.promotionId } : {}),
  };
}

/** The first instant after `at` at which the resolved price may change (a start or an end). */
export function nextBoundary(changes: readonly PriceChange[], at: number): number | undefined {
  let next: number | undefined;
  for (const c of changes) {
    for (const t of [c.effectiveFrom, c.effectiveUntil]) {
      if (t !== undefined && t > at && (next === undefined || t < next)) next = t;
    }
  }
  return next;
}

export function samePrice(
  a: ShownPrice | undefined,
  b: Omit<ShownPrice, 'changeId'> | undefined,
): boolean {
  if (!a || !b) return a === b;
  return (
    a.currency === b.currency &&
    a.listMinor === b.listMinor &&
    (a.saleMinor ?? null) === (b.saleMinor ?? null)
  );
}

/** Approval rules (from the estate config); an absent rule never holds a change. */
export interface ApprovalRules {
  /** A change lowering the price to pay by more than this percent needs approval. */
  maxDropPercent?: number | undefined;
  /** A sale price more than this percent below its list price needs approval. */
  maxPromotionDiscountPercent?: number | undefined;
}

/**
 * Why a change needs approval (empty: it is approved automatically). `current` is the price in
 * effect for the same SKU and addressing when the change would start.
 */
export function approvalReasons(
  change: Pick<PriceChange, 'listMinor' | 'saleMinor' | 'currency'>,
  current: Pick<ShownPrice, 'listMinor' | 'saleMinor' | 'currency'> | undefined,
  rules: ApprovalRules,
): string[] {
  const reasons: string[] = [];
  if (
    rules.maxDropPercent !== undefined &&
    current !== undefined &&
    current.currency === change.currency &&
    payPrice(current) > 0
  ) {
    const drop = ((payPrice(current) - payPrice(change)) / payPrice(current)) * 100;
    if (drop > rules.maxDropPercent) {
      reasons.push(
        `price drop of ${drop.toFixed(1)}% (${payPrice(current)} → ${payPrice(change)}) exceeds ${rules.maxDropPercent}%`,
      );
    }
  }
  if (
    rules.maxPromotionDiscountPercent !== undefined &&
    change.saleMinor !== undefined &&
    change.listMinor > 0
  ) {
    const discount = ((change.listMinor - change.saleMinor) / change.listMinor) * 100;
    if (discount > rules.maxPromotionDiscountPercent) {
      reasons.push(
        `sale price ${discount.toFixed(1)}% below list exceeds ${rules.maxPromotionDiscountPercent}%`,
      );
    }
  }
  return reasons;
}

/** The sync key of one target scope and SKU; also the correlation id of its pushes. */
export function syncKeyOf(system: string, scope: string, sku: string): string {
  return JSON.stringify([system, scope, sku]);
}

export function parseSyncKey(
  key: string,
): { system: string; scope: string; sku: string } | undefined {
  try {
    const v = JSON.parse(key) as unknown;
    if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'string')) {
      return { system: v[0] as string, scope: v[1] as string, sku: v[2] as string };
    }
  } catch {
    return undefined;
  }
  return undefined;
}
