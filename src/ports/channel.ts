// What Middlemart asks of a sales channel (commerce platform, marketplace, store system) about
// stock: show this availability for a sku@location. Connectors implement it per platform.

/** One availability to show on a channel; `version` rises with every change of the position. */
export interface ChannelAvailabilityUpdate {
  channel: string;
  sku: string;
  location: string;
  /** Units the channel may promise (already after its allocation rule). */
  available: number;
  /**
   * Version of the position this value comes from. A channel that can store it should refuse
   * an update older than the one it shows.
   */
  version: number;
  /** When the newest movement behind this value happened at its source (RFC 3339 UTC). */
  sourceTime: string;
}

export interface ChannelAvailabilityPort {
  /**
   * Sets the availability on the channel. Resolves when the channel acknowledged it; rejects
   * when it did not (the update stays pending and is sent again, newest value only).
   */
  setAvailability(
    update: ChannelAvailabilityUpdate,
    ctx: { idempotencyKey: string; signal?: AbortSignal },
  ): Promise<{ acknowledgedAt?: string }>;

  /**
   * Most updates one call of `setAvailabilities` takes, for channels whose API sets many levels
   * in one call; 1 (or absent) when the channel takes one at a time.
   */
  readonly maxBatch?: number;

  /**
   * Sets many availabilities in one call (only when `maxBatch` > 1). Resolves when the channel
   * acknowledged every one of them; rejects when it did not (all are sent again, newest values
   * only). `idempotencyKey` names the whole batch.
   */
  setAvailabilities?(
    updates: readonly ChannelAvailabilityUpdate[],
    ctx: { idempotencyKey: string; signal?: AbortSignal },
  ): Promise<{ acknowledgedAt?: string }>;
}
