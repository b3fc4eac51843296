// Availability connectors against real HTTP: the Shopify-compatible one against the sandbox
// commerce platform with more products than one page holds, the JSON feed one item at a time and
// in batches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createFeedAvailability,
  createShopifyAvailability,
} from '../../src/connectors/availability/index.js';
import { createCommerce } from '../../src/sandbox/commerce/index.js';

const TOKEN = 'shpat_availability_test';

void test('Shopify availability: a SKU beyond the first 250 products is found and set', async () => {
  const skus = Array.from({ length: 600 }, (_, i) => `PG-${String(i + 1).padStart(4, '0')}`);
  const commerce = createCommerce({
    accessToken: TOKEN,
    bucket: { capacity: 1000, leakPerSecond: 1000 },
    shop: { skus, locations: ['Online warehouse'], initialStock: 1 },
  });
  const url = await commerce.listen();
  try {
    const channel = createShopifyAvailability({
      system: 'commerce',
      baseUrl: url,
      accessToken: TOKEN,
      locationMap: { 'DC-EU-1': 'Online warehouse' },
    });
    await channel.setAvailability(
      {
        channel: 'commerce',
        sku: 'PG-0600',
        location: 'DC-EU-1',
        available: 42,
        version: 3,
        sourceTime: new Date().toISOString(),
      },
      { idempotencyKey: 'k1' },
    );
    const location = commerce.shop.locations[0]!.id;
    const item = commerce.shop.variantBySku('PG-0600')!.inventoryItemId;
    assert.equal(commerce.shop.level(item, location)?.available, 42);
    const shown = await channel.shownAvailability();
    assert.equal(shown.length, 600);
    assert.equal(shown.find((s) => s.sku === 'PG-0600')?.available, 42);
  } finally {
    await commerce.close();
  }
});

async function feedServer(answer: (body: unknown) => number) {
  const received: Array<{ body: unknown; key: string | undefined; auth: string | undefined }> = [];
  const server = createServer((req: IncomingMessage, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const body = text ? (JSON.parse(text) as unknown) : undefined;
      received.push({
        body,
        key: req.headers['idempotency-key'] as string | undefined,
        auth: req.headers.authorization,
      });
      const status = answer(body);
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const update = (sku: string, available: number, version: number) => ({
  channel: 'market',
  sku,
  location: 'DC-EU-1',
  available,
  version,
  sourceTime: '2026-11-28T10:00:00.000Z',
});

void test('feed availability: one level per call, a batch in one call, 409 counts as shown', async () => {
  const server = await feedServer((body) => ((body as { sku?: string }).sku === 'OLD' ? 409 : 200));
  try {
    const single = createFeedAvailability({
      system: 'market',
      baseUrl: server.url,
      apiKey: 'secret',
      locationMap: { 'DC-EU-1': 'EU' },
    });
    assert.equal(single.maxBatch, undefined);
    assert.equal(single.setAvailabilities, undefined);
    await single.setAvailability(update('A', 5, 2), { idempotencyKey: 'market/A@DC-EU-1/v2' });
    // The channel shows something newer already: acknowledged, nothing to send again.
    await single.setAvailability(update('OLD', 1, 1), { idempotencyKey: 'market/OLD@DC-EU-1/v1' });
    assert.deepEqual(server.received[0], {
      body: {
        sku: 'A',
        location: 'EU',
        available: 5,
        version: 2,
        sourceTime: update('A', 5, 2).sourceTime,
      },
      key: 'market/A@DC-EU-1/v2',
      auth: 'Bearer secret',
    });

    const batched = createFeedAvailability({
      system: 'market',
      baseUrl: server.url,
      batch: 50,
      locationMap: { 'DC-EU-1': 'EU' },
    });
    assert.equal(batched.maxBatch, 50);
    await batched.setAvailabilities!([update('B', 1, 7), update('C', 0, 9)], {
      idempotencyKey: 'market/batch/x',
    });
    const last = server.received.at(-1)!;
    assert.equal(last.key, 'market/batch/x');
    assert.deepEqual(
      (last.body as { items: Array<{ sku: string; location: string; version: number }> }).items.map(
        (i) => [i.sku, i.location, i.version],
      ),
      [
        ['B', 'EU', 7],
        ['C', 'EU', 9],
      ],
    );
  } finally {
    await server.close();
  }
});

void test('feed availability: a refused batch rejects as the channel answered', async () => {
  const server = await feedServer(() => 503);
  try {
    const batched = createFeedAvailability({ system: 'market', baseUrl: server.url, batch: 10 });
    await assert.rejects(
      batched.setAvailabilities!([update('B', 1, 7)], { idempotencyKey: 'k' }),
      (err: Error & { kind?: string }) => err.kind === 'transient' && /503/.test(err.message),
    );
  } finally {
    await server.close();
  }
});
