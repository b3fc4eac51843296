// The ERP's price file drop: a good file is imported and moved to processed/; a file with bad
// lines is rejected whole, moved to rejected/, and errors/<file>.errors.csv names each line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { eventually, startPricingWorld } from './helpers.js';

void test('price files dropped by the ERP are imported whole or rejected with line numbers', async (t) => {
  const drop = mkdtempSync(join(tmpdir(), 'mm-price-drop-'));
  const w = await startPricingWorld({ pricing: { fileDrop: { dir: drop, pollIntervalMs: 100 } } });
  t.after(async () => {
    await w.stop();
    rmSync(drop, { recursive: true, force: true });
  });
  const steward = await w.key(['steward']);
  const header =
    'sku,channel,store_group,currency,list_price,sale_price,effective_from,effective_until,promotion_id,prices_include_tax';
  const from = new Date(Date.now() - 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  // Written under another name and renamed in, as a producer should.
  const put = (name: string, lines: string[]) => {
    mkdirSync(join(drop, 'tmp'), { recursive: true });
    writeFileSync(join(drop, 'tmp', name), lines.join('\r\n') + '\r\n');
    renameSync(join(drop, 'tmp', name), join(drop, name));
  };
  put('prices-20260301-bad.csv', [
    header,
    `MM-00020,web,,EUR,19.99,,${from},,,true`,
    `MM-00021,web,,EUR,19.99,24.99,${from},,,true`,
    `MM-00022,web,,EUR,19.99,,${from},,,maybe`,
  ]);
  put('prices-20260301-good.csv', [header, `MM-00023,web,,EUR,21.50,,${from},,,true`]);

  await eventually(
    'both files handled',
    async () =>
      existsSync(join(drop, 'rejected', 'prices-20260301-bad.csv')) &&
      existsSync(join(drop, 'processed', 'prices-20260301-good.csv')),
  );
  const errors = readFileSync(join(drop, 'errors', 'prices-20260301-bad.csv.errors.csv'), 'utf8');
  assert.equal(
    errors,
    'line,field,error\r\n3,sale_price,must not exceed list_price\r\n4,prices_include_tax,true or false\r\n',
  );
  await eventually(
    'the good file on the shop',
    async () => (await w.shopPrice('MM-00023'))?.price === 2150,
  );
  const list = await w.call('GET', '/v1/prices/approvals?status=approved', { key: steward });
  const skus = (list.json().items as Array<{ sku: string; source: string }>).map((c) => [
    c.sku,
    c.source,
  ]);
  assert.deepEqual(skus, [['MM-00023', 'price-file']], 'nothing of the rejected file is stored');
  assert.notEqual((await w.shopPrice('MM-00020'))?.price, 1999);
});
