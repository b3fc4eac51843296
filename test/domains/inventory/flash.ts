// The flash-sale load shared by the in-process test and its child processes: reservation
// attempts of one unit each, a bounded number in flight, each in its own transaction.
import { reserveStock, type InventoryStore } from '../../../src/domains/inventory/index.js';

export const FLASH_SKU = 'SKU-FLASH';
export const FLASH_LOCATION = 'DC-1';

export interface FlashTally {
  reserved: number;
  refused: number;
  retried: number;
}

/** Attempts reservations `from`..`to - 1` with at most `inFlight` at once. */
export async function attemptReservations(
  store: InventoryStore,
  prefix: string,
  from: number,
  to: number,
  inFlight: number,
): Promise<FlashTally> {
  const tally: FlashTally = { reserved: 0, refused: 0, retried: 0 };
  let next = from;
  const worker = async () => {
    while (next < to) {
      const i = next++;
      for (let attempt = 1; ; attempt++) {
        try {
          const r = await store.transaction((tx) =>
            reserveStock(tx, {
              reservationId: `${prefix}-${i}`,
              sku: FLASH_SKU,
              location: FLASH_LOCATION,
              quantity: 1,
              orderId: `order-${prefix}-${i}`,
              channel: i % 3 === 0 ? 'marketplace' : 'web',
              expiresAt: Date.now() + 15 * 60_000,
            }),
          );
          if (r.outcome === 'reserved') tally.reserved++;
          else if (r.outcome === 'refused') tally.refused++;
          else throw new Error(`unexpected ${r.outcome}`);
          break;
        } catch (err) {
          // A busy database (another process holding the write lock) is retried: the
          // reservation id makes the retry safe.
          if (attempt >= 20) throw err;
          tally.retried++;
          await new Promise((r) => setTimeout(r, attempt * 5));
        }
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return tally;
}
