// One reconciliation run: the ERP's stock snapshot against the ledger, and what each pushed
// channel shows against what its allocation rule gives of the ledger. Drift is reported per
// sku@location; with `fix`, the ledger is corrected to the ERP's figure (a count under the
// `reconciliation:<erp>` source at the snapshot time, so later movements stay on top of it) and
// every drifted channel key is made due again, so the push sends the ledger's value.
import type { ErpStockLevel } from '../../ports/erp.js';
import type { AvailabilityRules } from './availability.js';
import { channelAvailable } from './availability.js';
import { AvailabilityLedger, readPosition } from './ledger.js';
import { recordAvailabilityChange } from './propagation.js';
import {
  compareWithChannel,
  compareWithErp,
  correctionFor,
  positionsForReconciliation,
  type ChannelDrift,
  type LedgerDrift,
} from './reconciliation.js';
import type { InventoryStore } from './sql.js';

/** What a channel shows, read for reconciliation. */
export interface ChannelShownReader {
  shownAvailability(
    keys: ReadonlyArray<{ sku: string; location: string }>,
  ): Promise<Array<{ sku: string; location: string; available: number }>>;
}

export interface ReconciliationInput {
  store: InventoryStore;
  erp: string;
  /** The ERP snapshot: on-hand per sku@location and when it was taken (epoch ms). */
  snapshot: () => Promise<{ asOf: number; levels: readonly ErpStockLevel[] }>;
  /** Pushed channels by system id. */
  channels?: ReadonlyMap<string, ChannelShownReader>;
  /** Locations each channel lists (absent: every location). */
  channelLocations?: Readonly<Record<string, readonly string[] | undefined>>;
  rules?: AvailabilityRules;
  fix?: boolean;
  now?: () => number;
}

export interface ReconciliationReport {
  at: string;
  erp: string;
  snapshotAt: string;
  checked: number;
  ledger: LedgerDrift[];
  /** Positions that moved after the snapshot: not comparable this time. */
  moving: Array<{ sku: string; location: string }>;
  channels: Array<{ channel: string; checked: number; drifts: ChannelDrift[]; inFlight: number }>;
  fixed: { ledger: number; channelKeys: number };
  summary: { ledgerDrifts: number; channelDrifts: number };
}

/** Runs one reconciliation. */
export async function reconcileInventory(
  input: ReconciliationInput,
): Promise<ReconciliationReport> {
  const now = input.now ?? Date.now;
  const rules = input.rules ?? {};
  const { asOf, levels } = await input.snapshot();
  const skus = [...new Set(levels.map((l) => l.sku))];
  let positions = await positionsForReconciliation(input.store, skus);
  const erpResult = compareWithErp(levels, positions, { snapshotAt: asOf });
  let fixedLedger = 0;
  if (input.fix && erpResult.drifts.length > 0) {
    const ledger = new AvailabilityLedger({ rules, now });
    const channels = [...(input.channels?.keys() ?? [])];
    for (const drift of erpResult.drifts) {
      await input.store.transaction(async (tx) => {
        const applied = await ledger.applyAdjustment(
          tx,
          correctionFor(drift, {
            sourceSystem: `reconciliation:${input.erp}`,
            sourceSequence: asOf,
            snapshotAt: asOf,
          }),
        );
        if (applied.outcome !== 'applied') return;
        fixedLedger++;
        for (const channel of channels) {
          await recordAvailabilityChange(
            tx,
            channel,
            {
              sku: drift.sku,
              location: drift.location,
              version: applied.after.version,
              available: channelAvailable(
                applied.after.available,
                drift.location,
                rules.channels?.[channel],
              ),
              sourceTime: now(),
            },
            now(),
          );
        }
      });
    }
    positions = await positionsForReconciliation(input.store, skus);
  }
  const report: ReconciliationReport = {
    at: new Date(now()).toISOString(),
    erp: input.erp,
    snapshotAt: new Date(asOf).toISOString(),
    checked: erpResult.checked,
    ledger: erpResult.drifts,
    moving: erpResult.moving,
    channels: [],
    fixed: { ledger: fixedLedger, channelKeys: 0 },
    summary: { ledgerDrifts: erpResult.drifts.length, channelDrifts: 0 },
  };
  for (const [channel, reader] of input.channels ?? []) {
    const served = input.channelLocations?.[channel];
    const candidates = positions.filter((p) => !served || served.includes(p.location));
    // Keys with a push not yet acknowledged are in motion: the channel may rightly lag.
    const inFlight = new Set<string>();
    const rows = await input.store.query(
      `SELECT sku, location FROM inventory_channel_sync WHERE channel = ? AND latest_version > acked_version`,
      [channel],
    );
    for (const r of rows) inFlight.add(`${String(r.sku)}@${String(r.location)}`);
    const settled = candidates.filter((p) => !inFlight.has(`${p.sku}@${p.location}`));
    const shown = await reader.shownAvailability(
      settled.map((p) => ({ sku: p.sku, location: p.location })),
    );
    const drifts = compareWithChannel(channel, shown, settled, rules.channels?.[channel]);
    report.channels.push({
      channel,
      checked: shown.length,
      drifts,
      inFlight: candidates.length - settled.length,
    });
    report.summary.channelDrifts += drifts.length;
    if (input.fix && drifts.length > 0) {
      report.fixed.channelKeys += await repushChannelKeys(
        input.store,
        channel,
        drifts,
        rules,
        now(),
      );
    }
  }
  return report;
}

/** Makes drifted channel keys due again with the ledger's current value. */
export async function repushChannelKeys(
  store: InventoryStore,
  channel: string,
  keys: ReadonlyArray<{ sku: string; location: string }>,
  rules: AvailabilityRules,
  now: number,
): Promise<number> {
  let n = 0;
  for (const k of keys) {
    await store.transaction(async (tx) => {
      const p = await readPosition(tx, k.sku, k.location);
      const version = p?.version ?? 0;
      const available = channelAvailable(p?.available ?? 0, k.location, rules.channels?.[channel]);
      const r = await tx.execute(
        `UPDATE inventory_channel_sync SET acked_version = 0, latest_version = ?, latest_available = ?,
           pending_source_time = COALESCE(pending_source_time, ?), pending_since = COALESCE(pending_since, ?)
         WHERE channel = ? AND sku = ? AND location = ? AND sending_version IS NULL`,
        [Math.max(version, 1), available, now, now, channel, k.sku, k.location],
      );
      if (r.changes === 0) {
        const exists = await tx.query(
          'SELECT latest_version FROM inventory_channel_sync WHERE channel = ? AND sku = ? AND location = ?',
          [channel, k.sku, k.location],
        );
        if (exists.length === 0) {
          await recordAvailabilityChange(
            tx,
            channel,
            {
              sku: k.sku,
              location: k.location,
              version: Math.max(version, 1),
              available,
              sourceTime: now,
            },
            now,
          );
        } else {
          return; // a send is in flight: it carries the ledger's newest value at its claim
        }
      }
      n++;
    });
  }
  return n;
}

/** The report as CSV: one line per drift. */
export function reconciliationCsv(report: ReconciliationReport): string {
  const lines = ['kind,channel,sku,location,expected,actual,difference'];
  const q = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  for (const d of report.ledger) {
    lines.push(
      ['ledger', '', q(d.sku), q(d.location), d.erpOnHand, d.ledgerOnHand, d.difference].join(','),
    );
  }
  for (const c of report.channels) {
    for (const d of c.drifts) {
      lines.push(
        ['channel', q(c.channel), q(d.sku), q(d.location), d.expected, d.shown, d.difference].join(
          ',',
        ),
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
