// The marketplace price feed: one POST per price with the version and idempotency key, 409
// (the channel shows a newer version) counted as acknowledged, a refusal classified, and the
// read-back of what the channel shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { feedPriceChannel } from '../../src/connectors/price-channels/index.js';
import type { SystemAction } from '../../src/ports/system-actions.js';

const action = (sku: string, version: number, list: number, sale?: number): SystemAction => ({
  action: 'channel.price',
  correlation: { process: 'price', id: `market||${sku}` },
  sku,
  currency: 'EUR',
  listPriceMinor: list,
  ...(sale === undefined ? {} : { salePriceMinor: sale }),
  version,
});

void test('marketplace price feed: push, stale refusal, failure kinds and read-back', async () => {
  const shown = new Map<
    string,
    { sku: string; listPriceMinor: number; salePriceMinor?: number; version: number }
  >();
  const keys: string[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      if (req.headers.authorization !== 'Bearer mk') return res.writeHead(401).end();
      const url = new URL(req.url!, 'http://x');
      if (req.method === 'GET') {
        const items = url.searchParams
          .getAll('sku')
          .flatMap((s) => (shown.has(s) ? [shown.get(s)] : []));
        return res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ items }));
      }
      const body = JSON.parse(text) as {
        sku: string;
        listPriceMinor: number;
        salePriceMinor?: number;
        version: number;
      };
      keys.push(String(req.headers['idempotency-key']));
      if (body.sku === 'BROKEN') return res.writeHead(503, { 'retry-after': '7' }).end('down');
      if (body.sku === 'UNKNOWN') return res.writeHead(422).end('no such listing');
      const seen = shown.get(body.sku);
      if (seen && seen.version > body.version) return res.writeHead(409).end();
      shown.set(body.sku, body);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const feed = feedPriceChannel({ system: 'market', baseUrl, apiKey: 'mk', path: '/v2/prices' });
    const r1 = await feed.perform(action('A', 5, 1999, 1499), { idempotencyKey: 'k5' } as never);
    assert.deepEqual(r1, {
      version: 5,
      listed: true,
      currency: 'EUR',
      listPriceMinor: 1999,
      salePriceMinor: 1499,
    });
    // Older than what the channel shows: acknowledged, the channel keeps the newer one.
    await feed.perform(action('A', 4, 2999), { idempotencyKey: 'k4' } as never);
    assert.equal(shown.get('A')?.listPriceMinor, 1999);
    assert.deepEqual(keys, ['k5', 'k4']);
    await assert.rejects(
      feed.perform(action('BROKEN', 1, 100), { idempotencyKey: 'b' } as never),
      (e: Error & { kind?: string; details?: { retryAfterSeconds?: number } }) =>
        e.kind === 'transient' && e.details?.retryAfterSeconds === 7,
    );
    await assert.rejects(
      feed.perform(action('UNKNOWN', 1, 100), { idempotencyKey: 'u' } as never),
      (e: Error & { kind?: string }) => e.kind === 'permanent' && /no such listing/.test(e.message),
    );
    const read = await feed.readPrices(['A', 'MISSING']);
    assert.deepEqual([...read.entries()], [['A', { listMinor: 1999, saleMinor: 1499 }]]);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});
