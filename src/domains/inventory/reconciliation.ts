// Reconciliation: compare an ERP stock snapshot with the ledger, and what a channel shows with
// what it should show, and report drift per sku@location. Pure comparison plus a SQL reader;
// the CLI, its schedule and the re-push come with the wiring.
import { channelAvailable, type ChannelAllocation } from './availability.js';
import type { StockAdjustment } from './ledger-rules.js';
import { toPosition, type StockPosition } from './ledger.js';
import type { InventorySql } from './sql.js';

/** One line of an ERP stock snapshot. */
export interface ErpStockLine {
  sku: string;
  location: string;
  onHand: number;
}

export interface LedgerDrift {
  sku: string;
  location: string;
  erpOnHand: number;
  ledgerOnHand: number;
  /** ledger − ERP. */
  difference: number;
}

export interface ChannelDrift {
  channel: string;
  sku: string;
  location: string;
  expected: number;
  shown: number;
  difference: number;
}

export interface LedgerReconciliation {
  checked: number;
  drifts: LedgerDrift[];
  /** Positions that moved after the snapshot was taken: not comparable, not reported as drift. */
  moving: Array<{ sku: string; location: string }>;
}

const key = (sku: string, location: string) => `${sku}@${location}`;

/**
 * Compares a snapshot taken at `snapshotAt` (epoch ms) with ledger positions. A position missing
 * from the ledger counts as zero; with `complete`, a ledger position missing from the snapshot
 * counts as zero at the ERP.
 */
export function compareWithErp(
  snapshot: readonly ErpStockLine[],
  positions: readonly StockPosition[],
  opts: { snapshotAt: number; complete?: boolean },
): LedgerReconciliation {
  const ledger = new Map(positions.map((p) => [key(p.sku, p.location), p]));
  const erp = new Map(snapshot.map((l) => [key(l.sku, l.location), l]));
  const keys = new Set(erp.keys());
  if (opts.complete) for (const k of ledger.keys()) keys.add(k);
  const drifts: LedgerDrift[] = [];
  const moving: Array<{ sku: string; location: string }> = [];
  for (const k of [...keys].sort()) {
    const line = erp.get(k);
    const p = ledger.get(k);
    const sku = line?.sku ?? p!.sku;
    const location = line?.location ?? p!.location;
    if (p && (p.sourceTimestamp ?? 0) > opts.snapshotAt) {
      moving.push({ sku, location });
      continue;
    }
    const erpOnHand = line?.onHand ?? 0;
    const ledgerOnHand = p?.onHand ?? 0;
    if (erpOnHand !== ledgerOnHand) {
      drifts.push({ sku, location, erpOnHand, ledgerOnHand, difference: ledgerOnHand - erpOnHand });
    }
  }
  return { checked: keys.size, drifts, moving };
}

/** Compares what a channel shows with what its allocation rule gives of the ledger's ATP. */
export function compareWithChannel(
  channel: string,
  shown: ReadonlyArray<{ sku: string; location: string; available: number }>,
  positions: readonly StockPosition[],
  allocation?: ChannelAllocation,
): ChannelDrift[] {
  const ledger = new Map(positions.map((p) => [key(p.sku, p.location), p]));
  const drifts: ChannelDrift[] = [];
  for (const s of shown) {
    const p = ledger.get(key(s.sku, s.location));
    const expected = channelAvailable(p?.available ?? 0, s.location, allocation);
    if (expected !== s.available) {
      drifts.push({
        channel,
        sku: s.sku,
        location: s.location,
        expected,
        shown: s.available,
        difference: s.available - expected,
      });
    }
  }
  return drifts;
}

/** Reads the ledger positions of the snapshot's SKUs (all positions with `all`). */
export async function positionsForReconciliation(
  db: InventorySql,
  skus: readonly string[] | 'all',
): Promise<StockPosition[]> {
  if (skus === 'all') {
    return (await db.query('SELECT * FROM inventory_positions ORDER BY sku, location')).map(
      toPosition,
    );
  }
  const out: StockPosition[] = [];
  const unique = [...new Set(skus)];
  for (let i = 0; i < unique.length; i += 500) {
    const chunk = unique.slice(i, i + 500);
    const rows = await db.query(
      `SELECT * FROM inventory_positions WHERE sku IN (${chunk.map(() => '?').join(', ')})`,
      chunk,
    );
    out.push(...rows.map(toPosition));
  }
  return out;
}

/**
 * The count that corrects a ledger drift to the ERP's figure, as an adjustment of the ERP source
 * at the snapshot time (its sequence supplied by the caller, e.g. the snapshot's number).
 */
export function correctionFor(
  drift: LedgerDrift,
  source: { sourceSystem: string; sourceSequence: number; snapshotAt: number },
): StockAdjustment {
  return {
    sku: drift.sku,
    location: drift.location,
    reason: 'correction',
    count: Math.max(0, drift.erpOnHand),
    sourceSystem: source.sourceSystem,
    sourceSequence: source.sourceSequence,
    sourceTimestamp: source.snapshotAt,
  };
}
