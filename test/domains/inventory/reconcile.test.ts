// Reconciliation against the sandbox estate: the ledger is stocked from the cloud ERP's snapshot
// and pushed to the sandbox commerce platform; a run then reports nothing. The ERP's stock is
// altered behind Middlemart's back and the shop's levels too: a run finds exactly those drifts
// (JSON report, CSV from the CLI), `--fix` corrects the ledger and re-pushes the channel, and the
// next run reports nothing again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCloudErp } from '../../../src/sandbox/cloud-erp/index.js';
import { createCommerce } from '../../../src/sandbox/commerce/index.js';
import { createCloudErpStockReader } from '../../../src/connectors/availability/index.js';
import { run } from '../../../src/cli/main.js';
import { register as registerReconcile } from '../../../src/cli/commands/reconcile.js';
import { runInventoryReconciliation } from '../../../src/wiring/inventory.js';
import { adjustmentData, estateConfig, eventually, sqliteDb, startInventoryApp } from './app.js';

const SECRET = 'erp-secret-for-reconciliation';
const TOKEN = 'shpat_reconciliation';

test('reconciliation finds every injected drift, fixes it, and reports nothing when there is none', async () => {
  const erp = createCloudErp({ clientSecret: SECRET });
  const erpUrl = await erp.listen();
  const reader = createCloudErpStockReader({
    system: 'cloud-erp',
    baseUrl: erpUrl,
    clientId: 'middlemart',
    clientSecret: SECRET,
  });
  const first = await reader.snapshot();
  assert.ok(first.levels.length > 20, 'the sandbox ERP has stock');
  const shopSkus = [
    ...new Set(first.levels.filter((l) => l.location === 'DC-EU-1').map((l) => l.sku)),
  ].slice(0, 12);
  const commerce = createCommerce({
    accessToken: TOKEN,
    bucket: { capacity: 200, leakPerSecond: 100 },
    shop: { skus: shopSkus, locations: ['Online warehouse'], initialStock: 0 },
  });
  const shopUrl = await commerce.listen();
  const yaml = `version: 1
systems:
  - id: cloud-erp
    kind: rest-erp
    baseUrl: ${erpUrl}
    credentials:
      clientId: middlemart
      clientSecret: \${RECON_ERP_SECRET}
  - id: commerce
    kind: shopify
    baseUrl: ${shopUrl}
    credentials:
      accessToken: \${RECON_SHOP_TOKEN}
    limits:
      ratePerSecond: 100
      burst: 100
inventory:
  channels:
    commerce:
      locationMap:
        DC-EU-1: Online warehouse
`;
  const env = { RECON_ERP_SECRET: SECRET, RECON_SHOP_TOKEN: TOKEN };
  const config = estateConfig(yaml, env);
  const db = sqliteDb();
  const app = await startInventoryApp({ config, db });
  const dir = mkdtempSync(join(tmpdir(), 'mm-recon-'));
  try {
    const key = await app.key(['channel']);
    // Stock the ledger from the ERP, as of a minute ago.
    const at = Date.now() - 60_000;
    const seed = first.levels.map((l) =>
      adjustmentData(l.sku, l.location, 1, { count: l.onHand }, { source: 'cloud-erp', at }),
    );
    for (let i = 0; i < seed.length; i += 1000) {
      const res = await app.call('POST', '/v1/inventory/adjustments', {
        key,
        body: { adjustments: seed.slice(i, i + 1000) },
      });
      assert.equal(res.status, 202, res.text);
    }
    const settled = async () => {
      const open = await app.app.store.query(
        `SELECT (SELECT COUNT(*) FROM messages WHERE status NOT IN ('done', 'dead')) AS m,
                (SELECT COUNT(*) FROM inventory_channel_sync WHERE acked_version < latest_version) AS c`,
      );
      return Number(open[0]!.m) === 0 && Number(open[0]!.c) === 0;
    };
    await eventually(settled, 'ledger stocked and channel pushed', 60_000);

    const clean = await runInventoryReconciliation({ config, store: app.app.store });
    assert.equal(clean.checked, first.levels.length);
    assert.deepEqual(clean.ledger, []);
    assert.deepEqual(clean.moving, []);
    assert.equal(clean.channels.length, 1);
    assert.ok(clean.channels[0]!.checked >= shopSkus.length);
    assert.deepEqual(clean.channels[0]!.drifts, []);

    // Behind Middlemart's back: the ERP's counts of three positions, and two shop levels.
    const erpDrift = first.levels.filter((_, i) => i % 17 === 5).slice(0, 3);
    const itemIdOf = new Map(erp.catalogue.items.map((i) => [i.itemId, i.id]));
    for (const l of erpDrift) {
      erp.catalogue.stock.get(l.location)!.get(itemIdOf.get(l.sku)!)!.quantityOnHand = l.onHand + 7;
    }
    const location = commerce.shop.locations[0]!.id;
    const shopDrift = shopSkus.slice(0, 2);
    for (const sku of shopDrift) {
      commerce.shop.setLevel(
        commerce.shop.variantBySku(sku)!.inventoryItemId,
        location,
        999,
        Date.now(),
      );
    }
    const found = await runInventoryReconciliation({ config, store: app.app.store });
    const key2 = (d: { sku: string; location: string }) => `${d.sku}@${d.location}`;
    assert.deepEqual(found.ledger.map(key2).sort(), erpDrift.map(key2).sort());
    for (const d of found.ledger) assert.equal(d.difference, -7);
    assert.deepEqual(found.channels[0]!.drifts.map((d) => d.sku).sort(), [...shopDrift].sort());
    assert.deepEqual(found.summary, { ledgerDrifts: 3, channelDrifts: 2 });

    // The CLI reports the same drift as CSV.
    const file = join(dir, 'estate.yaml');
    writeFileSync(file, yaml);
    Object.assign(process.env, env);
    const out: string[] = [];
    const io = {
      writeOut: (s: string) => void out.push(s),
      writeErr: (s: string) => void out.push(s),
    };
    const code = await run(
      ['reconcile', 'inventory', '--config', file, '--database-url', db.url, '--format', 'csv'],
      io,
      [registerReconcile],
    );
    assert.equal(code, 0, out.join(''));
    const csv = out.join('').trim().split('\n');
    assert.equal(csv[0], 'kind,channel,sku,location,expected,actual,difference');
    assert.equal(csv.filter((l) => l.startsWith('ledger,')).length, 3);
    assert.equal(csv.filter((l) => l.startsWith('channel,commerce,')).length, 2);

    // --fix: the ledger takes the ERP's figures, the channel is pushed again.
    const fixed = await runInventoryReconciliation({ config, store: app.app.store, fix: true });
    assert.deepEqual(fixed.fixed, { ledger: 3, channelKeys: 2 });
    await eventually(settled, 'fixes pushed', 60_000);
    await eventually(
      async () => {
        const again = await runInventoryReconciliation({ config, store: app.app.store });
        return again.summary.ledgerDrifts === 0 && again.summary.channelDrifts === 0;
      },
      'no drift after the fix',
      30_000,
      250,
    );
    const after = await runInventoryReconciliation({ config, store: app.app.store });
    assert.deepEqual(after.ledger, []);
    assert.deepEqual(after.channels[0]!.drifts, []);
    for (const l of erpDrift) {
      const rows = await app.app.store.query(
        'SELECT on_hand FROM inventory_positions WHERE sku = ? AND location = ?',
        [l.sku, l.location],
      );
      assert.equal(Number(rows[0]!.on_hand), l.onHand + 7);
    }
  } finally {
    await app.close();
    await db.drop();
    await commerce.close();
    await erp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
