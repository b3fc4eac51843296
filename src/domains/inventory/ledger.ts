// The availability ledger: on-hand per sku@location from `inventory.adjusted`, decided by
// ledger-rules.ts and kept in the inventory tables, with every adjustment's outcome logged so a
// position can be explained line by line. Runs inside the caller's transaction (a handler's tx
// or a Store transaction).
import { availableToPromise, safetyStockFor, type AvailabilityRules } from './availability.js';
import {
  decideAdjustment,
  isCount,
  type AdjustmentDecision,
  type AdjustmentOutcome,
  type LedgerState,
  type RecordedDelta,
  type StockAdjustment,
} from './ledger-rules.js';
import { num, numOrNull, type InventorySql } from './sql.js';

/** A stock position as the ledger holds it. */
export interface StockPosition {
  sku: string;
  location: string;
  onHand: number;
  reserved: number;
  safetyStock: number;
  /** onHand − reserved − safetyStock, never below zero. */
  available: number;
  /** Rises with every change of the position (ledger and reservations). */
  version: number;
  /** Source time of the newest applied adjustment (epoch ms), null before any. */
  sourceTimestamp: number | null;
  updatedAt: number;
}

export interface AdjustmentLogEntry {
  id: number;
  messageId: string | null;
  sourceSystem: string;
  sourceSequence: number;
  sourceTimestamp: number;
  reason: string;
  delta: number | null;
  count: number | null;
  outcome: AdjustmentOutcome;
  onHandBefore: number;
  onHandAfter: number;
  /** For a superseded adjustment folded into a later count: that count's log id. */
  supersededBy: number | null;
  recordedAt: number;
}

export interface AppliedAdjustment {
  outcome: AdjustmentOutcome;
  logId: number;
  before: StockPosition;
  after: StockPosition;
  decision: AdjustmentDecision;
}

export interface AvailabilityLedgerOptions {
  rules?: AvailabilityRules;
  now?: () => number;
}

const POSITION_COLUMNS =
  'sku, location, on_hand, reserved, safety_stock, version, count_epoch, count_source, count_sequence, count_timestamp, source_timestamp, updated_at';

export function toPosition(r: Record<string, unknown>): StockPosition {
  const onHand = num(r.on_hand);
  const reserved = num(r.reserved);
  const safetyStock = num(r.safety_stock);
  return {
    sku: String(r.sku),
    location: String(r.location),
    onHand,
    reserved,
    safetyStock,
    available: availableToPromise({ onHand, reserved, safetyStock }),
    version: num(r.version),
    sourceTimestamp: numOrNull(r.source_timestamp),
    updatedAt: num(r.updated_at),
  };
}

/** Reads a position (no lock). */
export async function readPosition(
  db: InventorySql,
  sku: string,
  location: string,
): Promise<StockPosition | undefined> {
  const rows = await db.query(
    `SELECT ${POSITION_COLUMNS} FROM inventory_positions WHERE sku = ? AND location = ?`,
    [sku, location],
  );
  return rows[0] ? toPosition(rows[0]) : undefined;
}

/** Every position of a SKU, by location. */
export async function readPositionsOfSku(db: InventorySql, sku: string): Promise<StockPosition[]> {
  const rows = await db.query(
    `SELECT ${POSITION_COLUMNS} FROM inventory_positions WHERE sku = ? ORDER BY location`,
    [sku],
  );
  return rows.map(toPosition);
}

/** Creates the position row when missing (zero stock, safety stock from the rules). */
export async function ensurePosition(
  db: InventorySql,
  sku: string,
  location: string,
  safetyStock: number,
  now: number,
): Promise<void> {
  await db.execute(
    `INSERT INTO inventory_positions (sku, location, safety_stock, updated_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (sku, location) DO NOTHING`,
    [sku, location, safetyStock, now],
  );
}

/** Sets the safety stock of a position (creating it when missing); returns the position. */
export async function setSafetyStock(
  db: InventorySql,
  sku: string,
  location: string,
  safetyStock: number,
  now = Date.now(),
): Promise<StockPosition> {
  await ensurePosition(db, sku, location, safetyStock, now);
  await db.execute(
    `UPDATE inventory_positions SET safety_stock = ?, version = version + 1, updated_at = ?
     WHERE sku = ? AND location = ? AND safety_stock <> ?`,
    [safetyStock, now, sku, location, safetyStock],
  );
  return (await readPosition(db, sku, location))!;
}

function toLogEntry(r: Record<string, unknown>): AdjustmentLogEntry {
  return {
    id: num(r.id),
    messageId: r.message_id === null || r.message_id === undefined ? null : String(r.message_id),
    sourceSystem: String(r.source_system),
    sourceSequence: num(r.source_sequence),
    sourceTimestamp: num(r.source_timestamp),
    reason: String(r.reason),
    delta: numOrNull(r.delta),
    count: numOrNull(r.count),
    outcome: String(r.outcome) as AdjustmentOutcome,
    onHandBefore: num(r.on_hand_before),
    onHandAfter: num(r.on_hand_after),
    supersededBy: numOrNull(r.superseded_by),
    recordedAt: num(r.recorded_at),
  };
}

const FOLD_CHUNK = 500;

export class AvailabilityLedger {
  private readonly rules: AvailabilityRules;
  private readonly now: () => number;

  constructor(opts: AvailabilityLedgerOptions = {}) {
    this.rules = opts.rules ?? {};
    this.now = opts.now ?? Date.now;
  }

  /**
   * Applies one adjustment to its sku@location inside `db`'s transaction and logs the outcome.
   * Duplicates and superseded adjustments are logged and change nothing.
   */
  async applyAdjustment(
    db: InventorySql,
    adj: StockAdjustment,
    messageId?: string,
  ): Promise<AppliedAdjustment> {
    if ((adj.delta === undefined) === (adj.count === undefined)) {
      throw new TypeError('an adjustment carries exactly one of delta or count');
    }
    const now = this.now();
    const { sku, location } = adj;
    await ensurePosition(
      db,
      sku,
      location,
      safetyStockFor(this.rules.safetyStock, sku, location),
      now,
    );
    const lock = db.dialect === 'postgres' ? ' FOR UPDATE' : '';
    const rows = await db.query(
      `SELECT ${POSITION_COLUMNS} FROM inventory_positions WHERE sku = ? AND location = ?${lock}`,
      [sku, location],
    );
    const row = rows[0]!;
    const before = toPosition(row);
    const state: LedgerState = {
      onHand: before.onHand,
      countEpoch: num(row.count_epoch),
      lastCount:
        row.count_source === null || row.count_source === undefined
          ? null
          : {
              sourceSystem: String(row.count_source),
              sourceSequence: num(row.count_sequence),
              sourceTimestamp: num(row.count_timestamp),
            },
    };
    const recorded = await db.query(
      `SELECT id FROM inventory_adjustments
       WHERE sku = ? AND location = ? AND source_system = ? AND source_sequence = ? AND outcome <> 'duplicate'`,
      [sku, location, adj.sourceSystem, adj.sourceSequence],
    );
    let epochDeltas: RecordedDelta[] = [];
    if (recorded.length === 0 && isCount(adj)) {
      const rs = await db.query(
        `SELECT id, source_system, source_sequence, source_timestamp, delta FROM inventory_adjustments
         WHERE sku = ? AND location = ? AND count_epoch = ? AND outcome = 'applied' AND delta IS NOT NULL`,
        [sku, location, state.countEpoch],
      );
      epochDeltas = rs.map((r) => ({
        logId: num(r.id),
        sourceSystem: String(r.source_system),
        sourceSequence: num(r.source_sequence),
        sourceTimestamp: num(r.source_timestamp),
        delta: num(r.delta),
      }));
    }
    const decision = decideAdjustment(state, adj, recorded.length > 0, epochDeltas);
    const countEpoch =
      decision.outcome === 'applied' && decision.kind === 'count'
        ? decision.countEpoch
        : state.countEpoch;
    const inserted = await db.query(
      `INSERT INTO inventory_adjustments (message_id, sku, location, source_system, source_sequence,
         source_timestamp, reason, delta, count, outcome, count_epoch, on_hand_before, on_hand_after, recorded_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
      [
        messageId ?? null,
        sku,
        location,
        adj.sourceSystem,
        adj.sourceSequence,
        adj.sourceTimestamp,
        adj.reason,
        adj.delta ?? null,
        adj.count ?? null,
        decision.outcome,
        countEpoch,
        before.onHand,
        decision.onHand,
        now,
      ],
    );
    const logId = num(inserted[0]?.id);
    if (decision.outcome !== 'applied') {
      return { outcome: decision.outcome, logId, before, after: before, decision };
    }
    const sourceTimestamp = Math.max(before.sourceTimestamp ?? 0, adj.sourceTimestamp);
    // Safety stock follows the rules when the ledger has some; else it stays as set.
    const safetyStock =
      this.rules.safetyStock === undefined
        ? before.safetyStock
        : safetyStockFor(this.rules.safetyStock, sku, location);
    if (decision.kind === 'delta') {
      await db.execute(
        `UPDATE inventory_positions SET on_hand = ?, safety_stock = ?, version = version + 1,
           source_timestamp = ?, updated_at = ? WHERE sku = ? AND location = ?`,
        [decision.onHand, safetyStock, sourceTimestamp, now, sku, location],
      );
    } else {
      for (let i = 0; i < decision.folded.length; i += FOLD_CHUNK) {
        const ids = decision.folded.slice(i, i + FOLD_CHUNK).map((d) => d.logId);
        await db.execute(
          `UPDATE inventory_adjustments SET outcome = 'superseded', superseded_by = ?
           WHERE id IN (${ids.map(() => '?').join(', ')})`,
          [logId, ...ids],
        );
      }
      await db.execute(
        `UPDATE inventory_adjustments SET count_epoch = ?
         WHERE sku = ? AND location = ? AND count_epoch = ? AND outcome = 'applied' AND delta IS NOT NULL`,
        [decision.countEpoch, sku, location, state.countEpoch],
      );
      await db.execute(
        `UPDATE inventory_positions SET on_hand = ?, safety_stock = ?, version = version + 1,
           count_epoch = ?, count_source = ?, count_sequence = ?, count_timestamp = ?,
           source_timestamp = ?, updated_at = ? WHERE sku = ? AND location = ?`,
        [
          decision.onHand,
          safetyStock,
          decision.countEpoch,
          adj.sourceSystem,
          adj.sourceSequence,
          adj.sourceTimestamp,
          sourceTimestamp,
          now,
          sku,
          location,
        ],
      );
    }
    const after = (await readPosition(db, sku, location))!;
    return { outcome: 'applied', logId, before, after, decision };
  }

  /** The position of a sku@location, if the ledger knows it. */
  position(db: InventorySql, sku: string, location: string): Promise<StockPosition | undefined> {
    return readPosition(db, sku, location);
  }

  /** Every adjustment of a sku@location with its outcome, oldest first. */
  async adjustmentLog(
    db: InventorySql,
    sku: string,
    location: string,
    limit = 1000,
  ): Promise<AdjustmentLogEntry[]> {
    const rows = await db.query(
      `SELECT * FROM inventory_adjustments WHERE sku = ? AND location = ? ORDER BY id LIMIT ?`,
      [sku, location, limit],
    );
    return rows.map(toLogEntry);
  }
}
