// Flash sale: a SKU with 500 units and 10,000 concurrent one-unit reservation attempts (a
// bounded number in flight, each in its own transaction) → exactly 500 succeed; reserved never
// exceeds on-hand and available-to-promise never falls below zero while they run. In one process
// on SQLite and PostgreSQL, then in two processes against the same database.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { AvailabilityLedger, type InventorySql } from '../../../src/domains/inventory/index.js';
import { BACKENDS, openInventoryStore } from './support.js';
import { FLASH_LOCATION, FLASH_SKU, attemptReservations, type FlashTally } from './flash.js';
import type { TestDatabase } from '../../store/backends.js';

const UNITS = 500;
const ATTEMPTS = 10_000;
const CHILD = resolve('test/domains/inventory/fixtures/flash-sale-child.ts');

async function stock(db: {
  transaction<T>(fn: (tx: InventorySql) => Promise<T>): Promise<T>;
}): Promise<void> {
  const ledger = new AvailabilityLedger();
  await db.transaction((tx) =>
    ledger.applyAdjustment(tx, {
      sku: FLASH_SKU,
      location: FLASH_LOCATION,
      reason: 'cycle_count',
      count: UNITS,
      sourceSystem: 'erp',
      sourceSequence: 1,
      sourceTimestamp: Date.now(),
    }),
  );
}

/** Samples the position until `done` resolves (bounded): the lowest ATP and highest reserved. */
function watchPosition(db: InventorySql, done: Promise<unknown>) {
  let finished = false;
  void done.finally(() => (finished = true));
  return (async () => {
    let minRawAtp = Number.POSITIVE_INFINITY;
    let maxReserved = 0;
    let samples = 0;
    for (let i = 0; i < 100_000 && !finished; i++) {
      const rows = await db.query(
        'SELECT on_hand, reserved, safety_stock FROM inventory_positions WHERE sku = ? AND location = ?',
        [FLASH_SKU, FLASH_LOCATION],
      );
      const r = rows[0]!;
      const onHand = Number(r.on_hand);
      const reserved = Number(r.reserved);
      minRawAtp = Math.min(minRawAtp, onHand - reserved - Number(r.safety_stock));
      maxReserved = Math.max(maxReserved, reserved);
      samples++;
      await new Promise((r) => setTimeout(r, 2));
    }
    return { minRawAtp, maxReserved, samples };
  })();
}

async function assertFinal(db: InventorySql, tallies: FlashTally[]): Promise<void> {
  const reserved = tallies.reduce((s, t) => s + t.reserved, 0);
  const refused = tallies.reduce((s, t) => s + t.refused, 0);
  assert.equal(reserved, UNITS);
  assert.equal(refused, ATTEMPTS - UNITS);
  const active = await db.query(
    "SELECT COUNT(*) AS n, SUM(quantity) AS q FROM inventory_reservations WHERE status = 'active'",
  );
  assert.equal(Number(active[0]!.n), UNITS);
  assert.equal(Number(active[0]!.q), UNITS);
  const all = await db.query('SELECT COUNT(*) AS n FROM inventory_reservations');
  assert.equal(Number(all[0]!.n), ATTEMPTS);
  const p = await db.query(
    'SELECT on_hand, reserved FROM inventory_positions WHERE sku = ? AND location = ?',
    [FLASH_SKU, FLASH_LOCATION],
  );
  assert.equal(Number(p[0]!.on_hand), UNITS);
  assert.equal(Number(p[0]!.reserved), UNITS);
}

function runChild(db: TestDatabase, prefix: string, from: number, to: number): Promise<FlashTally> {
  return new Promise((resolvePromise, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', CHILD], {
      env: {
        ...process.env,
        FLASH_DB_URL: db.url,
        ...(db.schema ? { FLASH_SCHEMA: db.schema } : {}),
        FLASH_PREFIX: prefix,
        FLASH_FROM: String(from),
        FLASH_TO: String(to),
        FLASH_IN_FLIGHT: '64',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    proc.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    proc.on('error', reject);
    proc.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`child exited ${code}: ${err.slice(-2000)}`));
      try {
        resolvePromise(JSON.parse(out.trim().split('\n').pop()!) as FlashTally);
      } catch (e) {
        reject(e as Error);
      }
    });
  });
}

for (const backend of BACKENDS) {
  describe(`flash sale: ${backend.name}`, { skip: backend.skip }, () => {
    test('10,000 attempts, 128 in flight, one process: exactly 500 reserved', async () => {
      const { store, close } = await openInventoryStore(backend, { poolSize: 40 });
      try {
        await stock(store);
        const run = attemptReservations(store, 'one', 0, ATTEMPTS, 128);
        const watched = await watchPosition(store, run);
        const tally = await run;
        assert.ok(watched.minRawAtp >= 0, `ATP fell to ${watched.minRawAtp}`);
        assert.ok(watched.maxReserved <= UNITS);
        await assertFinal(store, [tally]);
      } finally {
        await close();
      }
    });

    test('10,000 attempts from two processes against one database: exactly 500 reserved', async () => {
      const { db, store, close } = await openInventoryStore(backend, { poolSize: 4 });
      try {
        await stock(store);
        const run = Promise.all([
          runChild(db, 'a', 0, ATTEMPTS / 2),
          runChild(db, 'b', ATTEMPTS / 2, ATTEMPTS),
        ]);
        const watched = await watchPosition(store, run);
        const tallies = await run;
        assert.ok(watched.minRawAtp >= 0, `ATP fell to ${watched.minRawAtp}`);
        assert.ok(watched.maxReserved <= UNITS);
        await assertFinal(store, tallies);
      } finally {
        await close();
      }
    });
  });
}
