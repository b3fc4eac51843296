// Inventory benchmark (`npm run bench:inventory`): on the real composition root (inventory
// module, SQLite by default; PostgreSQL with BENCH_INVENTORY_PG_URL), with one pushed channel
// that answers at once (a local HTTP server speaking the availability feed, taking up to
// BENCH_CHANNEL_BATCH levels per call, default 100; 1 = one call per level):
//
//   1. adjustments/s the ledger sustains: BENCH_ADJUSTMENTS (20,000) inventory.adjusted over
//      BENCH_SKUS (2,000) SKU-locations accepted at once; from the first accept to the last
//      applied (and its channel push planned).
//   2. sync lag to the 0-ms channel (source time of the change → the channel's acknowledgement),
//      p50/p99, with adjustments offered at 50% of (1) for BENCH_LAG_SECONDS (10), and again at
//      the target rate BENCH_TARGET_RATE (2,000/s); beside it the ledger's share (accept →
//      handler committed, p50/p99).
//   3. reservations/s in the flash-sale case: BENCH_FLASH_ATTEMPTS (10,000) one-unit
//      reservations over HTTP, 128 in flight, for a SKU with 500 units.
//
// The load runs in this process beside the app (one event loop): figures are conservative. The
// last line printed is one JSON object with every figure.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Pool } from 'undici';
import { startApp, type App } from '../src/app.js';
import { createApiKey } from '../src/api/auth/api-keys.js';
import { eventByName, makeEvent } from '../src/canonical/index.js';
import { parseConfig } from '../src/config/load.js';
import { channelSyncLag, quantile } from '../src/domains/inventory/index.js';
import { createLogger } from '../src/observability/logger.js';
import { inventoryModule } from '../src/wiring/inventory.js';

const N = Number(process.env.BENCH_ADJUSTMENTS ?? 20_000);
const SKUS = Number(process.env.BENCH_SKUS ?? 2_000);
const LAG_SECONDS = Number(process.env.BENCH_LAG_SECONDS ?? 10);
const TARGET_RATE = Number(process.env.BENCH_TARGET_RATE ?? 2_000);
const FLASH_ATTEMPTS = Number(process.env.BENCH_FLASH_ATTEMPTS ?? 10_000);
const PG_URL = process.env.BENCH_INVENTORY_PG_URL;
const BATCH = Number(process.env.BENCH_CHANNEL_BATCH ?? 100);
const ADJUSTED = eventByName('inventory.adjusted');
const LOC = 'DC-EU-1';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function zeroMsChannel(): Promise<{
  url: string;
  calls: () => number;
  close: () => Promise<void>;
}> {
  let calls = 0;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      calls++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    calls: () => calls,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

let sequence = 0;
function adjustment(
  app: App,
  sku: string,
  at: number,
  change: { delta: number } | { count: number } = { delta: 1 },
) {
  const data = {
    sku,
    location: LOC,
    reason: 'count' in change ? ('cycle_count' as const) : ('receipt' as const),
    ...change,
    sourceSystem: 'bench-wms',
    sourceSequence: ++sequence,
    sourceTimestamp: new Date(at).toISOString(),
  };
  const event = makeEvent('inventory.adjusted', data, { source: '/bench/wms', time: new Date(at) });
  return app.engine.accept({
    source: 'bench-wms',
    idempotencyKey: `bench/${sequence}`,
    requestHash: `bench/${sequence}`,
    type: ADJUSTED.type,
    partitionKey: ADJUSTED.partitionKey(data),
    priority: ADJUSTED.priority,
    payload: event,
  });
}

async function unfinished(app: App): Promise<number> {
  const rows = await app.store.query(
    "SELECT COUNT(*) AS n FROM messages WHERE status NOT IN ('done', 'dead')",
  );
  return Number(rows[0]!.n);
}

async function drained(app: App, limitMs: number): Promise<boolean> {
  const until = Date.now() + limitMs;
  while (Date.now() < until) {
    if ((await unfinished(app)) === 0) return true;
    await sleep(20);
  }
  return false;
}

async function pushesSettled(app: App, limitMs: number): Promise<boolean> {
  const until = Date.now() + limitMs;
  while (Date.now() < until) {
    const rows = await app.store.query(
      'SELECT COUNT(*) AS n FROM inventory_channel_sync WHERE acked_version < latest_version',
    );
    if (Number(rows[0]!.n) === 0 && (await unfinished(app)) === 0) return true;
    await sleep(20);
  }
  return false;
}

async function lagAt(app: App, rate: number, prefix: string) {
  const start = Date.now();
  // Accept → handler committed, per adjustment: the ledger's share of the sync lag.
  const applied: number[] = [];
  const onProcessed = (e: { type: string; latencyMs: number }) => {
    if (e.type === ADJUSTED.type) applied.push(e.latencyMs);
  };
  app.engine.events.on('processed', onProcessed);
  const tickMs = 10;
  let sent = 0;
  const pending: Array<Promise<unknown>> = [];
  for (let t = 0; Date.now() - start < LAG_SECONDS * 1000 && t < LAG_SECONDS * 1000;) {
    const due = Math.floor(((Date.now() - start) / 1000) * rate);
    while (sent < due) {
      const sku = `${prefix}-${sent % SKUS}`;
      pending.push(adjustment(app, sku, Date.now()));
      sent++;
    }
    await sleep(tickMs);
    t += tickMs;
  }
  await Promise.all(pending);
  const settled = await pushesSettled(app, 120_000);
  app.engine.events.off('processed', onProcessed);
  const rows = await app.store.query(
    'SELECT lag_ms FROM inventory_channel_lag WHERE channel = ? AND acked_at >= ? AND sku LIKE ?',
    ['market', start, `${prefix}-%`],
  );
  const lags = rows.map((r) => Number(r.lag_ms));
  return {
    offeredPerSecond: rate,
    sent,
    settled,
    pushes: lags.length,
    p50Ms: quantile(lags, 0.5),
    p99Ms: quantile(lags, 0.99),
    maxMs: lags.length ? Math.max(...lags) : 0,
    appliedP50Ms: quantile(applied, 0.5),
    appliedP99Ms: quantile(applied, 0.99),
  };
}

/** A fresh PostgreSQL schema for this run (dropped at the end), as a store URL. */
async function freshSchema(url: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const schema = `mm_bench_inv_${randomBytes(4).toString('hex')}`;
  const run = async (sql: string) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await run(`CREATE SCHEMA "${schema}"`);
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return { url: u.toString(), drop: () => run(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`) };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'mm-bench-inv-'));
  const pgSchema = PG_URL ? await freshSchema(PG_URL) : undefined;
  const channel = await zeroMsChannel();
  const parsed = parseConfig(
    `version: 1
systems:
  - id: erp
    kind: rest-erp
    baseUrl: http://127.0.0.1:9
  - id: market
    kind: marketplace
    baseUrl: ${channel.url}
    limits:
      ratePerSecond: 1000000
      burst: 1000000
      concurrency: 64
    settings:
      availabilityBatch: ${BATCH}
inventory:
  channels:
    market: {}
`,
    'bench.yaml',
    {},
  );
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  const app = await startApp({
    config: parsed.config,
    port: 0,
    storeUrl: pgSchema?.url ?? `sqlite:${join(dir, 'bench.db')}`,
    logger: createLogger({ level: 'silent' }),
    modules: [inventoryModule],
    rateTiers: { standard: { requestsPerSecond: 1e9 }, premium: { requestsPerSecond: 1e9 } },
  });
  const figures: Record<string, unknown> = {
    store: app.store.dialect,
    channelBatch: BATCH,
    adjustments: N,
    skuLocations: SKUS,
  };
  try {
    // 1. Throughput.
    const t0 = performance.now();
    const accepts: Array<Promise<unknown>> = [];
    for (let i = 0; i < N; i++) accepts.push(adjustment(app, `T-${i % SKUS}`, Date.now()));
    await Promise.all(accepts);
    const ok = await drained(app, 600_000);
    const seconds = (performance.now() - t0) / 1000;
    const perSecond = Math.round(N / seconds);
    console.log(
      `ledger: ${N} adjustments in ${seconds.toFixed(1)} s = ${perSecond}/s (drained: ${ok})`,
    );
    figures.ledgerAdjustmentsPerSecond = perSecond;
    await pushesSettled(app, 120_000);

    // 2. Sync lag at 50% of it, and at the target rate.
    const half = await lagAt(app, Math.max(1, Math.round(perSecond / 2)), 'H');
    console.log(
      `sync lag at ${half.offeredPerSecond}/s: p50 ${half.p50Ms} ms, p99 ${half.p99Ms} ms (accept → applied p50 ${half.appliedP50Ms} ms, p99 ${half.appliedP99Ms} ms)`,
    );
    figures.syncLagAtHalf = half;
    const target = await lagAt(app, TARGET_RATE, 'G');
    console.log(
      `sync lag at ${TARGET_RATE}/s: p50 ${target.p50Ms} ms, p99 ${target.p99Ms} ms (accept → applied p50 ${target.appliedP50Ms} ms, p99 ${target.appliedP99Ms} ms)`,
    );
    figures.syncLagAtTarget = target;
    figures.channelCalls = channel.calls();
    figures.channelLagAllTime = await channelSyncLag(app.store, 'market');

    // 3. Flash sale over HTTP.
    const key = (await createApiKey(app.store, { name: 'bench', roles: ['channel'] })).key;
    await adjustment(app, 'FLASH', Date.now(), { count: 500 });
    await drained(app, 60_000);
    const pool = new Pool(app.url!, { connections: 128 });
    let next = 0;
    let reserved = 0;
    let refused = 0;
    const f0 = performance.now();
    await Promise.all(
      Array.from({ length: 128 }, async () => {
        for (;;) {
          const i = next++;
          if (i >= FLASH_ATTEMPTS) return;
          const res = await pool.request({
            method: 'POST',
            path: '/v1/reservations',
            headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
            body: JSON.stringify({
              orderId: `flash-${i}`,
              location: LOC,
              lines: [{ sku: 'FLASH', quantity: 1 }],
            }),
          });
          await res.body.text();
          if (res.statusCode === 201) reserved++;
          else if (res.statusCode === 409) refused++;
        }
      }),
    );
    const flashSeconds = (performance.now() - f0) / 1000;
    await pool.close();
    figures.flashSale = {
      attempts: FLASH_ATTEMPTS,
      reserved,
      refused,
      seconds: Number(flashSeconds.toFixed(2)),
      reservationsPerSecond: Math.round(FLASH_ATTEMPTS / flashSeconds),
    };
    console.log(
      `flash sale: ${FLASH_ATTEMPTS} attempts in ${flashSeconds.toFixed(1)} s = ${Math.round(FLASH_ATTEMPTS / flashSeconds)}/s (${reserved} reserved)`,
    );
  } finally {
    await app.stop();
    await channel.close();
    await pgSchema?.drop();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(JSON.stringify(figures));
}

await main();
