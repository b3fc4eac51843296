// The channel pusher against a channel port that records every call: batches, the channel's
// rate, transient failures (sent again), permanent refusals (parked with the error until a newer
// value), two pushers sharing one channel without ever sending a stale value after a fresh one,
// and a claim left by a dead process taken over after its lease. On SQLite and PostgreSQL.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ChannelPusher,
  acknowledgedAvailability,
  channelSyncLag,
  parkedChannelKeys,
  planChannelPushes,
  recordAvailabilityChange,
  type ChannelPusherOptions,
} from '../../../src/domains/inventory/index.js';
import type {
  ChannelAvailabilityPort,
  ChannelAvailabilityUpdate,
} from '../../../src/ports/channel.js';
import { ActionError } from '../../../src/ports/system-actions.js';
import type { Store } from '../../../src/store/port.js';
import { BACKENDS, openInventoryStore } from './support.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually(check: () => Promise<boolean>, what: string, ms = 15_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await sleep(20);
  }
  assert.fail(`not reached within ${ms} ms: ${what}`);
}

interface Call {
  updates: ChannelAvailabilityUpdate[];
  idempotencyKey: string;
  at: number;
}

/** A channel port that records calls; `answer` decides each call's fate. */
function recordingPort(
  opts: {
    maxBatch?: number;
    answer?: (updates: ChannelAvailabilityUpdate[], n: number) => Promise<void> | void;
  } = {},
): ChannelAvailabilityPort & { calls: Call[]; shown: Map<string, ChannelAvailabilityUpdate> } {
  const calls: Call[] = [];
  const shown = new Map<string, ChannelAvailabilityUpdate>();
  const handle = async (updates: ChannelAvailabilityUpdate[], idempotencyKey: string) => {
    calls.push({ updates, idempotencyKey, at: Date.now() });
    await opts.answer?.(updates, calls.length);
    for (const u of updates) shown.set(`${u.sku}@${u.location}`, u);
    return {};
  };
  return {
    calls,
    shown,
    setAvailability: (u, ctx) => handle([u], ctx.idempotencyKey),
    ...(opts.maxBatch
      ? {
          maxBatch: opts.maxBatch,
          setAvailabilities: (us, ctx) => handle([...us], ctx.idempotencyKey),
        }
      : {}),
  };
}

function pusherFor(
  store: Store,
  port: ChannelAvailabilityPort,
  o: Partial<ChannelPusherOptions> = {},
): ChannelPusher {
  return new ChannelPusher({
    store,
    channel: 'web',
    port,
    limits: { ratePerSecond: 1000, burst: 1000, concurrency: 4, timeoutMs: 2_000 },
    retry: { baseDelayMs: 10, maxDelayMs: 50 },
    breaker: { consecutiveFailures: 5, halfOpenAfterMs: 100 },
    leaseMs: 30_000,
    pollMs: 20,
    ...o,
  });
}

const change = (store: Store, sku: string, version: number, available: number, at = Date.now()) =>
  recordAvailabilityChange(
    store,
    'web',
    { sku, location: 'L', version, available, sourceTime: at },
    at,
  );

async function allAcked(store: Store): Promise<boolean> {
  const rows = await store.query(
    "SELECT COUNT(*) AS n FROM inventory_channel_sync WHERE channel = 'web' AND acked_version < latest_version",
  );
  return Number(rows[0]!.n) === 0;
}

for (const backend of BACKENDS) {
  describe(`channel pusher: ${backend.name}`, { skip: backend.skip }, () => {
    test('sends nothing before what the flows wrote is on disk (durable)', async () => {
      const { store, close } = await openInventoryStore(backend);
      const port = recordingPort();
      let flush!: () => void;
      const disk = new Promise<void>((r) => (flush = r));
      let asked = 0;
      const pusher = pusherFor(store, port, {
        durable: async () => {
          asked++;
          await disk;
        },
      });
      try {
        await change(store, 'S1', 1, 5);
        pusher.start();
        await eventually(async () => asked > 0, 'the pusher waits for the disk');
        await sleep(100);
        assert.equal(port.calls.length, 0, 'sent before the disk had it');
        flush();
        await eventually(() => allAcked(store), 'the key acknowledged');
        assert.equal(port.calls.length, 1);
      } finally {
        flush();
        await pusher.stop();
        await close();
      }
    });

    test('sends due keys in batches of the channel size and records every acknowledgement', async () => {
      const { store, close } = await openInventoryStore(backend);
      const port = recordingPort({ maxBatch: 100 });
      const pusher = pusherFor(store, port);
      try {
        for (let i = 0; i < 250; i++) await change(store, `S${i}`, 1, i);
        pusher.start();
        await eventually(() => allAcked(store), 'every key acknowledged');
        assert.equal(port.calls.length, 3, `${port.calls.length} calls`);
        assert.deepEqual(
          port.calls.map((c) => c.updates.length).sort((a, b) => a - b),
          [50, 100, 100],
        );
        // A batch names exactly its keys and versions; single sends name the key's version.
        assert.equal(new Set(port.calls.map((c) => c.idempotencyKey)).size, 3);
        for (let i = 0; i < 250; i++) {
          const acked = await acknowledgedAvailability(store, 'web', `S${i}`, 'L');
          assert.equal(acked?.available, i);
        }
        const lag = await channelSyncLag(store, 'web');
        assert.equal(lag.samples, 250);
      } finally {
        await pusher.stop();
        await close();
      }
    });

    test('keeps within the channel rate: calls never exceed burst + rate × elapsed', async () => {
      const { store, close } = await openInventoryStore(backend);
      const port = recordingPort();
      const pusher = pusherFor(store, port, {
        limits: { ratePerSecond: 10, burst: 2, concurrency: 4, timeoutMs: 2_000 },
      });
      try {
        for (let i = 0; i < 12; i++) await change(store, `R${i}`, 1, 1);
        const started = Date.now();
        pusher.start();
        await eventually(() => allAcked(store), 'every key acknowledged');
        assert.equal(port.calls.length, 12);
        for (const [i, call] of port.calls.entries()) {
          const allowed = 2 + ((call.at - started) / 1000) * 10 + 1;
          assert.ok(i + 1 <= allowed, `call ${i + 1} at +${call.at - started} ms`);
        }
      } finally {
        await pusher.stop();
        await close();
      }
    });

    test('a transient failure is sent again; a permanent refusal parks the key until a newer value', async () => {
      const { store, close } = await openInventoryStore(backend);
      let refuseBad = true;
      const port = recordingPort({
        answer: (updates, n) => {
          if (n <= 2) throw new ActionError('web: answered 503', 'transient', { status: 503 });
          if (refuseBad && updates.some((u) => u.sku === 'BAD')) {
            throw new ActionError('web: unknown SKU BAD', 'permanent', { status: 422 });
          }
        },
      });
      const failures: string[] = [];
      const pusher = pusherFor(store, port, { onFailure: (kind) => failures.push(kind) });
      try {
        await change(store, 'GOOD', 1, 5);
        await change(store, 'BAD', 1, 7);
        pusher.start();
        await eventually(
          async () => (await parkedChannelKeys(store, 'web')).length === 1,
          'BAD parked',
        );
        await eventually(
          async () => (await acknowledgedAvailability(store, 'web', 'GOOD', 'L'))?.available === 5,
          'GOOD acknowledged',
        );
        const [parked] = await parkedChannelKeys(store, 'web');
        assert.equal(parked?.sku, 'BAD');
        assert.match(parked!.error, /unknown SKU BAD/);
        assert.deepEqual(failures.slice(0, 2), ['transient', 'transient']);
        assert.ok(failures.includes('permanent'));
        // Parked: not sent again while nothing changes.
        const calls = port.calls.length;
        await sleep(200);
        assert.equal(port.calls.length, calls);
        // A newer value is sent (the channel now lists the SKU) and clears the error.
        refuseBad = false;
        await change(store, 'BAD', 2, 6);
        pusher.wake();
        await eventually(
          async () => (await acknowledgedAvailability(store, 'web', 'BAD', 'L'))?.available === 6,
          'BAD acknowledged at its newer value',
        );
        assert.deepEqual(await parkedChannelKeys(store, 'web'), []);
      } finally {
        await pusher.stop();
        await close();
      }
    });

    test('two pushers on one channel: never a stale value after a fresh one, the final value shown', async () => {
      const { store, close } = await openInventoryStore(backend);
      const port = recordingPort({
        maxBatch: 3,
        answer: async () => {
          await sleep(Math.floor(Math.random() * 15));
        },
      });
      const a = pusherFor(store, port);
      const b = pusherFor(store, port);
      try {
        a.start();
        b.start();
        const final = new Map<string, number>();
        for (let v = 1; v <= 40; v++) {
          for (const sku of ['A', 'B', 'C', 'D', 'E']) {
            await change(store, sku, v, v * 10);
            final.set(sku, v);
          }
          a.wake();
          b.wake();
          if (v % 5 === 0) await sleep(10);
        }
        await eventually(() => allAcked(store), 'every key acknowledged');
        const seen = new Map<string, number>();
        for (const call of port.calls) {
          for (const u of call.updates) {
            const last = seen.get(u.sku) ?? 0;
            assert.ok(u.version > last, `${u.sku}: v${u.version} sent after v${last}`);
            seen.set(u.sku, u.version);
          }
        }
        for (const [sku, v] of final) assert.equal(port.shown.get(`${sku}@L`)?.version, v);
      } finally {
        await Promise.all([a.stop(), b.stop()]);
        await close();
      }
    });

    test('a claim left by a dead process is sent again once its lease runs out', async () => {
      const { store, close } = await openInventoryStore(backend);
      const port = recordingPort();
      try {
        await change(store, 'K', 1, 3);
        // Another process claimed the key for 300 ms and died before sending.
        const now = Date.now();
        const [claimed] = await planChannelPushes(store, 'web', { now, calls: 1, leaseMs: 300 });
        assert.equal(claimed?.update.version, 1);
        const pusher = pusherFor(store, port);
        try {
          pusher.start();
          await sleep(100);
          assert.equal(port.calls.length, 0, 'the live claim is respected');
          await eventually(async () => port.calls.length === 1, 'sent after the lease');
          await eventually(() => allAcked(store), 'acknowledged');
          assert.equal(port.calls[0]!.idempotencyKey, claimed!.idempotencyKey);
        } finally {
          await pusher.stop();
        }
      } finally {
        await close();
      }
    });
  });
}
