// Availability for channels that take a plain JSON feed (marketplaces, store systems): one
// `POST {baseUrl}{path}` per sku@location with the position's version, which the channel uses to
// refuse an older value than it shows (it answers 409, which counts as acknowledged: it already
// shows something newer). `GET {baseUrl}{path}?sku=…` answers `{ items: [{ sku, location,
// available, version }] }` for reconciliation. Settings: `availabilityPath` (default
// `/availability`); `availabilityBatch` (default 1): when above 1, up to that many levels go in
// one `POST {baseUrl}{path}` as `{ items: [ … ] }` (the channel applies the same version rule to
// each item; a 2xx acknowledges them all); credentials: `apiKey` (sent as a bearer token) when
// the channel wants one.
import type { ChannelAvailabilityUpdate } from '../../ports/channel.js';
import { ActionError } from '../../ports/system-actions.js';
import { callJson, joinUrl, skuQueries } from './http.js';
import type { AvailabilityChannel, ShownAvailability } from './shopify.js';

export interface FeedAvailabilityOptions {
  system: string;
  baseUrl: string;
  path?: string;
  apiKey?: string;
  /** Most levels in one call (1: one call per level). */
  batch?: number;
  /** Middlemart location id → the channel's location id (identity when unmapped). */
  locationMap?: Readonly<Record<string, string>>;
}

export function createFeedAvailability(opts: FeedAvailabilityOptions): AvailabilityChannel {
  const url = joinUrl(opts.baseUrl, opts.path ?? '/availability');
  const auth: Record<string, string> = opts.apiKey
    ? { authorization: `Bearer ${opts.apiKey}` }
    : {};
  const toChannel = (location: string) => opts.locationMap?.[location] ?? location;
  const fromChannel = new Map(
    Object.entries(opts.locationMap ?? {}).map(([mm, ch]) => [ch, mm] as const),
  );
  const item = (update: ChannelAvailabilityUpdate) => ({
    sku: update.sku,
    location: toChannel(update.location),
    available: update.available,
    version: update.version,
    sourceTime: update.sourceTime,
  });
  const batch = Math.max(1, Math.floor(opts.batch ?? 1));
  return {
    system: opts.system,
    ...(batch > 1
      ? {
          maxBatch: batch,
          async setAvailabilities(updates: readonly ChannelAvailabilityUpdate[], ctx) {
            await callJson(
              {
                method: 'POST',
                url,
                headers: { ...auth, 'idempotency-key': ctx.idempotencyKey },
                body: { items: updates.map(item) },
                ...(ctx.signal ? { signal: ctx.signal } : {}),
              },
              opts.system,
            );
            return { acknowledgedAt: new Date().toISOString() };
          },
        }
      : {}),
    async setAvailability(update: ChannelAvailabilityUpdate, ctx) {
      try {
        await callJson(
          {
            method: 'POST',
            url,
            headers: { ...auth, 'idempotency-key': ctx.idempotencyKey },
            body: item(update),
            ...(ctx.signal ? { signal: ctx.signal } : {}),
          },
          opts.system,
        );
      } catch (err) {
        // The channel shows a newer version already: nothing older may replace it.
        if (err instanceof ActionError && err.details.status === 409) return {};
        throw err;
      }
      return { acknowledgedAt: new Date().toISOString() };
    },
    async shownAvailability(keys, ctx = {}) {
      // Without keys, one call for everything the channel shows.
      const queries = keys ? skuQueries([...new Set(keys.map((k) => k.sku))]) : [''];
      const out: ShownAvailability[] = [];
      for (const q of queries) {
        const query = q ? `?${q}` : '';
        const answer = (await callJson(
          {
            method: 'GET',
            url: `${url}${query}`,
            headers: auth,
            ...(ctx.signal ? { signal: ctx.signal } : {}),
          },
          opts.system,
        )) as { items?: Array<{ sku?: unknown; location?: unknown; available?: unknown }> };
        for (const item of answer.items ?? []) {
          if (typeof item.sku !== 'string' || typeof item.location !== 'string') continue;
          if (typeof item.available !== 'number') continue;
          out.push({
            sku: item.sku,
            location: fromChannel.get(item.location) ?? item.location,
            available: item.available,
          });
        }
      }
      const wanted = keys ? new Set(keys.map((k) => `${k.sku}@${k.location}`)) : undefined;
      return wanted ? out.filter((s) => wanted.has(`${s.sku}@${s.location}`)) : out;
    },
  };
}
