// Coalescing for channel push, on virtual time: 50,000 availability changes for 500 SKUs
// against a channel that takes 2 calls/s. Only the newest value per key is sent, a stale value
// never follows a fresh one, every key ends with its final availability on the channel, and the
// sync lag is recorded per send.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  abandonChannelPush,
  acknowledgeChannelPush,
  acknowledgedAvailability,
  channelSyncLag,
  planChannelPushes,
  quantile,
  recordAvailabilityChange,
  takeCalls,
} from '../../../src/domains/inventory/index.js';
import { BACKENDS, openInventoryStore, seededRandom } from './support.js';

describe('propagation rules', () => {
  test('takeCalls: a token bucket of whole calls', () => {
    let budget = { tokens: 0, at: 0 };
    let r = takeCalls(budget, 400, 2, 2, 5);
    assert.equal(r.granted, 0);
    r = takeCalls(r.budget, 500, 2, 2, 5);
    assert.equal(r.granted, 1);
    r = takeCalls(r.budget, 10_000, 2, 2, 5);
    assert.equal(r.granted, 2);
    budget = r.budget;
    assert.equal(budget.tokens, 0);
  });

  test('quantile by nearest rank', () => {
    assert.equal(quantile([], 0.5), 0);
    assert.equal(quantile([5, 1, 3, 2, 4], 0.5), 3);
    assert.equal(quantile([5, 1, 3, 2, 4], 0.99), 5);
  });
});

const SKUS = 500;
const CHANGES = 50_000;
const CHANGES_PER_TICK = 500;
const TICK_MS = 100;
const CALLS_PER_SECOND = 2;

for (const backend of BACKENDS) {
  describe(`propagation: ${backend.name}`, { skip: backend.skip }, () => {
    test('50,000 changes for 500 SKUs to a 2 calls/s channel: newest only, never stale', async () => {
      const { store, close } = await openInventoryStore(backend);
      try {
        const random = seededRandom(11);
        const latest = new Map<string, { version: number; available: number }>();
        const shown = new Map<string, { version: number; available: number }>();
        let stale = 0;
        let sends = 0;
        let recorded = 0;
        let now = 1_000_000;
        let budget = { tokens: 0, at: now };
        const versions = new Map<string, number>();
        // Bounded: the arrivals take CHANGES / CHANGES_PER_TICK ticks; the drain at 2 calls/s
        // needs about SKUS / 2 seconds more (plus re-sends of failed calls).
        const maxTicks = CHANGES / CHANGES_PER_TICK + (SKUS / CALLS_PER_SECOND) * 20;
        let tick = 0;
        for (; tick < maxTicks; tick++) {
          now += TICK_MS;
          if (recorded < CHANGES) {
            await store.transaction(async (tx) => {
              for (let i = 0; i < CHANGES_PER_TICK; i++, recorded++) {
                const sku = `SKU-${Math.floor(random() * SKUS)}`;
                const version = (versions.get(sku) ?? 0) + 1;
                versions.set(sku, version);
                const available = Math.floor(random() * 100);
                latest.set(sku, { version, available });
                await recordAvailabilityChange(
                  tx,
                  'web',
                  { sku, location: 'DC-1', version, available, sourceTime: now - 5 },
                  now,
                );
                // Now and then a late, older change arrives after the newer one: ignored.
                if (version > 2 && random() < 0.05) {
                  await recordAvailabilityChange(
                    tx,
                    'web',
                    {
                      sku,
                      location: 'DC-1',
                      version: version - 2,
                      available: -1,
                      sourceTime: now - 50,
                    },
                    now,
                  );
                }
              }
            });
          }
          const taken = takeCalls(budget, now, CALLS_PER_SECOND, CALLS_PER_SECOND, 10);
          budget = taken.budget;
          if (taken.granted > 0) {
            const pushes = await store.transaction((tx) =>
              planChannelPushes(tx, 'web', { now, calls: taken.granted, leaseMs: 5_000 }),
            );
            for (const p of pushes) {
              sends++;
              const u = p.update;
              assert.ok(u.available >= 0, 'an ignored late value was never sent');
              if (random() < 0.05) {
                await store.transaction((tx) => abandonChannelPush(tx, u, now));
                continue;
              }
              const before = shown.get(u.sku);
              if (before && before.version > u.version) stale++;
              shown.set(u.sku, { version: u.version, available: u.available });
              await store.transaction((tx) => acknowledgeChannelPush(tx, u, now + 20));
            }
          }
          if (recorded >= CHANGES) {
            const left = await store.query(
              "SELECT COUNT(*) AS n FROM inventory_channel_sync WHERE channel = 'web' AND latest_version > acked_version",
            );
            if (Number(left[0]!.n) === 0) break;
          }
        }
        assert.ok(tick < maxTicks, 'the channel caught up');
        assert.equal(stale, 0, 'no stale value after a fresh one');
        assert.equal(shown.size, latest.size);
        for (const [sku, want] of latest) {
          assert.deepEqual(shown.get(sku), want, sku);
          const acked = await acknowledgedAvailability(store, 'web', sku, 'DC-1');
          assert.equal(acked?.version, want.version);
          assert.equal(acked?.available, want.available);
        }
        // Coalescing: far fewer calls than changes.
        assert.ok(sends < CHANGES / 10, `${sends} sends for ${CHANGES} changes`);
        const lag = await channelSyncLag(store, 'web');
        assert.ok(lag.samples >= latest.size);
        assert.ok(lag.p50Ms > 0 && lag.p50Ms <= lag.p99Ms && lag.p99Ms <= lag.maxMs);
      } finally {
        await close();
      }
    });

    test('a send whose lease passed is not acknowledged over the newer one', async () => {
      const { store, close } = await openInventoryStore(backend);
      try {
        const change = (version: number, available: number) =>
          recordAvailabilityChange(
            store,
            'web',
            { sku: 'S', location: 'L', version, available, sourceTime: 0 },
            0,
          );
        await change(1, 10);
        const [first] = await planChannelPushes(store, 'web', { now: 0, calls: 1, leaseMs: 100 });
        assert.equal(first?.update.version, 1);
        await change(2, 8);
        // Lease still live: nothing due.
        assert.equal((await planChannelPushes(store, 'web', { now: 50, calls: 1 })).length, 0);
        // Lease passed: the newest value is claimed.
        const [second] = await planChannelPushes(store, 'web', {
          now: 200,
          calls: 1,
          leaseMs: 100,
        });
        assert.equal(second?.update.version, 2);
        assert.equal(second?.update.sourceTime, new Date(0).toISOString());
        assert.equal(await acknowledgeChannelPush(store, first!.update, 250), undefined);
        assert.equal(await acknowledgeChannelPush(store, second!.update, 260), 260);
        assert.deepEqual(await acknowledgedAvailability(store, 'web', 'S', 'L'), {
          version: 2,
          available: 8,
          ackedAt: 260,
        });
      } finally {
        await close();
      }
    });
  });
}
