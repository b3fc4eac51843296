// Each fan-out performer against its simulator, over HTTP, checked against the simulator's own
// `/_sandbox/state`: CRM timeline and customer sync, loyalty accrual / reversal / enrolment,
// WMS fulfilment requests, commerce order status, tax quotes, customer notifications. Every
// action is performed twice with the same idempotency key: the system shows one effect.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';
import { systemsModule } from '../../src/wiring/systems.js';
import type { FeatureModule } from '../../src/wiring/module.js';
import type { SystemAcknowledgement } from '../../src/ports/system-actions.js';
import { startEstate, renderEstateConfig } from '../../src/sandbox/estate.js';
import type { CloudErp } from '../../src/sandbox/cloud-erp/index.js';
import {
  CrmClient,
  crmCustomerSyncPerformer,
  crmTimelinePerformer,
} from '../../src/connectors/crm/performers.js';
import {
  LoyaltyClient,
  loyaltyAccruePerformer,
  loyaltyCustomerSyncPerformer,
  loyaltyReversePerformer,
} from '../../src/connectors/loyalty/performers.js';
import { wmsFulfilmentPerformer } from '../../src/connectors/wms/performers.js';
import { commerceOrderStatusPerformer } from '../../src/connectors/commerce/performers.js';
import { taxQuotePerformer } from '../../src/connectors/tax/performers.js';
import { notifyCustomerPerformer } from '../../src/connectors/notifications/performers.js';
import { ActionError, type SystemAction } from '../../src/ports/system-actions.js';
import { createCrm } from '../../src/sandbox/crm/index.js';
import { createLoyalty } from '../../src/sandbox/loyalty/index.js';
import { createWms } from '../../src/sandbox/wms/index.js';
import { createCommerce } from '../../src/sandbox/commerce/index.js';
import { createTaxEngine } from '../../src/sandbox/tax/index.js';
import { createNotifications } from '../../src/sandbox/notifications/index.js';
import { createPos } from '../../src/sandbox/pos/index.js';
import { pickupTaskPerformer } from '../../src/connectors/pos/pickup.js';
import { sampleOrder } from '../canonical/fixtures.js';

type State = Record<string, unknown> & {
  received: Record<string, Array<Record<string, unknown>>>;
  counters: Record<string, number>;
  receivedTotals: Record<string, number>;
};

async function state(url: string): Promise<State> {
  return (await (await fetch(`${url}/_sandbox/state`)).json()) as State;
}

async function inject(url: string, fault: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${url}/_sandbox/faults`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(fault),
  });
  assert.equal(res.status, 201);
}

function ctx(key: string, attempt = 1) {
  return { signal: new AbortController().signal, idempotencyKey: key, attempt };
}

async function failure(p: Promise<unknown>): Promise<ActionError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ActionError, `expected an ActionError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the action to fail');
}

const correlation = { process: 'order', id: 'ord-1001' };

void test('CRM: customer sync upserts the contact and consents; timeline entries once per delivery', async (t) => {
  const crm = createCrm({ apiKey: 'crm-key' });
  const url = await crm.listen();
  t.after(() => crm.close());
  const client = new CrmClient({ system: 'crm', baseUrl: url, apiKey: 'crm-key' });
  const sync = crmCustomerSyncPerformer(client);
  const synced = (await sync(
    {
      action: 'customer.sync',
      correlation: { process: 'customer', id: 'cus-42' },
      customerId: 'cus-42',
      attributes: { email: 'ada@example.com', firstName: 'Ada', country: 'DE', segment: 'vip' },
      consents: [
        { purpose: 'marketing', channel: 'email', status: 'granted', at: '2026-01-05T09:00:00Z' },
      ],
    },
    ctx('sync-1'),
  )) as { sourceId: string; created: boolean; consentsSynced: number };
  assert.equal(synced.created, true);
  assert.equal(synced.consentsSynced, 1);

  const timeline = crmTimelinePerformer(client);
  const entry: SystemAction = {
    action: 'crm.timeline-entry',
    correlation,
    customerId: 'cus-42',
    kind: 'order',
    summary: 'Order #1001 placed on web',
    orderId: 'ord-1001',
    amountMinor: 2795,
    currency: 'EUR',
    at: '2026-01-05T09:00:00Z',
  };
  const first = (await timeline(entry, ctx('delivery-crm-1'))) as { duplicate: boolean };
  const again = (await timeline(entry, ctx('delivery-crm-1', 2))) as { duplicate: boolean };
  assert.equal(first.duplicate, false);
  assert.equal(again.duplicate, true);

  const s = await state(url);
  assert.equal(s.contacts, 1);
  assert.equal(s.timelineEntries, 1);
  const posted = s.received.timeline![0]!.body as { type: string; data: { orderId: string } };
  assert.equal(posted.type, 'order.placed');
  assert.equal(posted.data.orderId, 'ord-1001');
  const contact = (await (
    await fetch(`${url}/contacts/by-external-id/cus-42`, { headers: { 'x-api-key': 'crm-key' } })
  ).json()) as { id: string; properties: Record<string, unknown> };
  assert.equal(contact.properties.segment, 'vip');
  const prefs = (await (
    await fetch(`${url}/contacts/${contact.id}/preferences`, {
      headers: { 'x-api-key': 'crm-key' },
    })
  ).json()) as { consents: Array<{ channel: string; purpose: string; granted: boolean }> };
  assert.deepEqual(
    prefs.consents.map((c) => [c.channel, c.purpose, c.granted]),
    [['email', 'marketing', true]],
  );

  // A guest with only an email gets a contact created under the golden id.
  await timeline({ ...entry, customerId: 'cus-43', email: 'guest@example.com' }, ctx('d-2'));
  assert.equal((await state(url)).contacts, 2);
  const unknown = await failure(
    timeline({ ...entry, customerId: 'cus-44', email: undefined } as SystemAction, ctx('d-3')),
  );
  assert.equal(unknown.kind, 'permanent');
  const invalid = await failure(
    sync(
      {
        action: 'customer.sync',
        correlation: { process: 'customer', id: 'cus-45' },
        customerId: 'cus-45',
        attributes: { email: 'not-an-email' },
      },
      ctx('sync-2'),
    ),
  );
  assert.equal(invalid.kind, 'permanent');
  assert.match(invalid.message, /email/);
});

void test('loyalty: enrolment, accrual and reversal move points once per delivery', async (t) => {
  const loyalty = createLoyalty({ apiKey: 'loyalty-key' });
  const url = await loyalty.listen();
  t.after(() => loyalty.close());
  const client = new LoyaltyClient({ system: 'loyalty', baseUrl: url, apiKey: 'loyalty-key' });
  const enrol = loyaltyCustomerSyncPerformer(client);
  const syncAction: SystemAction = {
    action: 'customer.sync',
    correlation: { process: 'customer', id: 'cus-42' },
    customerId: 'cus-42',
    attributes: { email: 'ada@example.com', firstName: 'Ada' },
  };
  const member = (await enrol(syncAction, ctx('enrol-1'))) as {
    sourceId: string;
    created: boolean;
  };
  assert.equal(member.created, true);
  const enrolledAgain = (await enrol(syncAction, ctx('enrol-2'))) as { sourceId: string };
  assert.equal(enrolledAgain.sourceId, member.sourceId, 'an enrolled email answers its member');

  const accrue = loyaltyAccruePerformer(client);
  const accrual: SystemAction = {
    action: 'loyalty.accrue',
    correlation,
    memberId: member.sourceId,
    points: 27,
    orderId: 'ord-1001',
    amountMinor: 2795,
    currency: 'EUR',
  };
  const a1 = (await accrue(accrual, ctx('accrue-1'))) as { balance: number; replayed: boolean };
  const a2 = (await accrue(accrual, ctx('accrue-1', 2))) as { balance: number; replayed: boolean };
  assert.deepEqual([a1.balance, a1.replayed], [27, false]);
  assert.deepEqual([a2.balance, a2.replayed], [27, true]);

  const reverse = loyaltyReversePerformer(client);
  const reversal: SystemAction = {
    action: 'loyalty.reverse',
    correlation: { process: 'return', id: 'ret-1' },
    memberId: member.sourceId,
    points: 10,
    orderId: 'ord-1001',
    returnId: 'ret-1',
  };
  const r = (await reverse(reversal, ctx('reverse-1'))) as { balance: number };
  assert.equal(r.balance, 17);
  const tooMany = await failure(reverse({ ...reversal, points: 500 }, ctx('reverse-2')));
  assert.equal(tooMany.kind, 'permanent');
  assert.match(tooMany.message, /insufficient_balance/);
  const noMember = await failure(accrue({ ...accrual, memberId: 'LM-999999' }, ctx('accrue-9')));
  assert.equal(noMember.kind, 'permanent');
  assert.equal(noMember.details.status, 404);

  await inject(url, { kind: 'errorRate', rate: 1, status: 503, durationMs: 60_000 });
  const down = await failure(accrue(accrual, ctx('accrue-3')));
  assert.equal(down.kind, 'transient');

  const s = await state(url);
  assert.equal(s.received.accruals!.filter((e) => e.replayed === false).length, 1);
  assert.equal(s.received.reversals!.filter((e) => e.replayed === false).length, 1);
  assert.equal(s.members, 1);
});

void test('WMS: a fulfilment request per order, the same request on a repeat', async (t) => {
  const wms = createWms({ confirmationDelayMs: 60_000 });
  const url = await wms.listen();
  t.after(() => wms.close());
  const perform = wmsFulfilmentPerformer({ system: 'wms', baseUrl: url });
  const order = sampleOrder();
  order.lines.push({ ...order.lines[0]!, lineId: '3', quantity: 1 });
  const action: SystemAction = {
    action: 'wms.fulfilment-request',
    correlation: { process: 'order', id: order.id },
    order,
    location: 'DC-EU-1',
  };
  const first = (await perform(action, ctx('wms-1'))) as { duplicate: boolean; status: string };
  const again = (await perform(action, ctx('wms-1', 2))) as {
    duplicate: boolean;
    fulfilmentRequestId: string;
  };
  assert.deepEqual([first.duplicate, first.status], [false, 'accepted']);
  assert.equal(again.duplicate, true);
  const s = await state(url);
  const requests = s.received.fulfilmentRequests!;
  assert.equal(requests.filter((r) => r.duplicate === false).length, 1);
  const body = requests[0]!.body as {
    orderReference: string;
    warehouse: string;
    shipTo: { line1: string; country: string };
    lines: Array<{ sku: string; quantity: number }>;
  };
  assert.equal(body.orderReference, 'ord-1001');
  assert.equal(body.warehouse, 'DC-EU-1');
  assert.equal(body.shipTo.line1, 'Unter den Linden 1');
  assert.deepEqual(body.lines, [
    { sku: 'SKU-RED-M', quantity: 3 },
    { sku: 'SKU-BLUE-L', quantity: 1 },
  ]);

  const bad = await failure(
    perform({ ...action, order: { ...order, id: 'ord-1002' }, location: 'DC-XX-9' }, ctx('wms-2')),
  );
  assert.equal(bad.kind, 'permanent');
  assert.match(bad.message, /warehouse/);
});

void test('POS: a store pickup task per order and store, the same task on a repeat', async (t) => {
  const pos = createPos({ port: 0 });
  const url = await pos.listen();
  t.after(() => pos.close());
  const perform = pickupTaskPerformer({ system: 'pos', baseUrl: url });
  const action: SystemAction = {
    action: 'store.pickup-task',
    correlation,
    orderId: 'ord-1001',
    store: 'STORE-BER-01',
    lines: [{ sku: 'SKU-RED-M', quantity: 2 }],
  };
  const first = (await perform(action, ctx('pos-1'))) as { taskId: string; duplicate: boolean };
  const again = (await perform(action, ctx('pos-1', 2))) as { taskId: string; duplicate: boolean };
  assert.equal(first.duplicate, false);
  assert.equal(again.duplicate, true);
  assert.equal(again.taskId, first.taskId);
  const s = await state(url);
  assert.equal(s.received.pickupTasks!.filter((r) => r.duplicate === false).length, 1);
  const bad = await failure(perform({ ...action, lines: [] }, ctx('pos-2')));
  assert.equal(bad.kind, 'permanent');
  assert.match(bad.message, /lines/);
});

void test('commerce: order status sets tags and note, fulfils once, cancels', async (t) => {
  const commerce = createCommerce({ seed: 3, accessToken: 'shpat_test' });
  const url = await commerce.listen();
  t.after(() => commerce.close());
  const o1 = await commerce.createOrder();
  const o2 = await commerce.createOrder();
  const perform = commerceOrderStatusPerformer({
    system: 'commerce',
    baseUrl: url,
    accessToken: 'shpat_test',
  });
  const backorder: SystemAction = {
    action: 'commerce.order-status',
    correlation,
    channelOrderId: o1.id.toString(),
    status: 'backordered',
    tags: ['backorder'],
    expectedDate: '2026-02-01',
    note: 'Waiting for stock',
  };
  const r1 = (await perform(backorder, ctx('c-1'))) as { tags: string[] };
  assert.ok(r1.tags.includes('middlemart:backordered'));
  assert.ok(r1.tags.includes('backorder'));
  const shipped = (await perform(
    {
      ...backorder,
      status: 'fulfilled',
      tags: [],
      note: undefined,
      expectedDate: undefined,
    } as SystemAction,
    ctx('c-2'),
  )) as { tags: string[]; fulfilmentCreated: boolean };
  assert.equal(shipped.fulfilmentCreated, true);
  assert.ok(shipped.tags.includes('middlemart:fulfilled'));
  assert.ok(!shipped.tags.includes('middlemart:backordered'), 'the old status tag is replaced');
  const repeat = (await perform(
    { ...backorder, status: 'fulfilled', tags: [] } as SystemAction,
    ctx('c-2', 2),
  )) as { fulfilmentCreated: boolean };
  assert.equal(repeat.fulfilmentCreated, false, 'nothing left to fulfil: done already');

  await perform(
    {
      action: 'commerce.order-status',
      correlation,
      channelOrderId: o2.id.toString(),
      status: 'cancelled',
    },
    ctx('c-3'),
  );
  const s = await state(url);
  assert.equal(s.received.fulfillments!.length, 1);
  const updates = s.received.orderUpdates!;
  assert.ok(updates.some((u) => u.action === 'cancel' && u.orderId === o2.id.toString()));
  const tagged = updates.filter((u) => u.orderId === o1.id.toString() && Array.isArray(u.tags));
  assert.equal((tagged[0]!.note as string).includes('Expected: 2026-02-01'), true);

  const missing = await failure(perform({ ...backorder, channelOrderId: '999999999' }, ctx('c-4')));
  assert.equal(missing.kind, 'permanent');
  assert.equal(missing.details.status, 404);
  const notAnId = await failure(perform({ ...backorder, channelOrderId: '12.5' }, ctx('c-5')));
  assert.equal(notAnId.kind, 'permanent');
});

void test('tax: a quote in minor units per line; an unknown jurisdiction is permanent', async (t) => {
  const tax = createTaxEngine();
  const url = await tax.listen();
  t.after(() => tax.close());
  const perform = taxQuotePerformer({ system: 'tax', baseUrl: url });
  const action: SystemAction = {
    action: 'tax.quote',
    correlation,
    orderId: 'ord-1001',
    currency: 'EUR',
    shipTo: { country: 'DE', postalCode: '10117' },
    lines: [
      { sku: 'SKU-RED-M', quantity: 2, unitPriceMinor: 1000 },
      { sku: 'SKU-BLUE-L', quantity: 1, unitPriceMinor: 505 },
    ],
  };
  const quote = (await perform(action, ctx('tax-1'))) as {
    taxMinor: number;
    currency: string;
    lines: Array<{ sku: string; taxMinor: number; rateBasisPoints: number }>;
  };
  assert.equal(quote.currency, 'EUR');
  assert.deepEqual(
    quote.lines.map((l) => [l.sku, l.taxMinor, l.rateBasisPoints]),
    [
      ['SKU-RED-M', 380, 1900],
      ['SKU-BLUE-L', 96, 1900], // 95.95 rounded half-up
    ],
  );
  assert.equal(quote.taxMinor, 476);
  assert.equal((await state(url)).receivedTotals.quotes, 1);

  const us = await failure(perform({ ...action, shipTo: { country: 'US' } }, ctx('tax-2')));
  assert.equal(us.kind, 'permanent');
  assert.match(us.message, /shipTo.region/);
  const noAddress = await failure(
    perform({ ...action, shipTo: undefined } as SystemAction, ctx('tax-3')),
  );
  assert.equal(noAddress.kind, 'permanent');
});

void test('notifications: one message per delivery, by email or SMS', async (t) => {
  const notifications = createNotifications();
  const url = await notifications.listen();
  t.after(() => notifications.close());
  const perform = notifyCustomerPerformer({ system: 'notifications', baseUrl: url });
  const action: SystemAction = {
    action: 'notify.customer',
    correlation,
    template: 'order-backordered',
    email: 'ada@example.com',
    data: { orderNumber: '#1001', expectedDate: '2026-02-01', name: 'Ada' },
  };
  const first = (await perform(action, ctx('n-1'))) as { messageId: string; channel: string };
  const again = (await perform(action, ctx('n-1', 2))) as { messageId: string };
  assert.equal(first.channel, 'email');
  assert.equal(again.messageId, first.messageId);
  await perform(
    {
      ...action,
      email: undefined,
      phone: '+4930123456',
      template: 'order-shipped',
    } as SystemAction,
    ctx('n-2'),
  );
  const s = await state(url);
  assert.equal(s.messages, 2);
  const email = s.received.messages![0]! as { subject: string; body: string; reference: string };
  assert.match(email.subject, /#1001 is on backorder/);
  assert.match(email.body, /2026-02-01/);
  assert.equal(email.reference, 'order:ord-1001');
  assert.equal(s.received.messages![1]!.channel, 'sms');

  const bad = await failure(perform({ ...action, email: 'nope' }, ctx('n-3')));
  assert.equal(bad.kind, 'permanent');
  assert.match(bad.message, /to/);
  const nowhere = await failure(
    perform({ ...action, email: undefined } as SystemAction, ctx('n-4')),
  );
  assert.equal(nowhere.kind, 'permanent');
});

void test('through the engine: the systems module performs every action of the estate and acknowledges it', async (t) => {
  const estate = await startEstate({ basePort: 0, seed: 1 });
  const dir = mkdtempSync(join(tmpdir(), 'mm-systems-'));
  t.after(async () => {
    await estate.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const parsed = parseConfig(renderEstateConfig(estate), 'estate.yaml', estate.env);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  const acks: SystemAcknowledgement[] = [];
  const probe: FeatureModule = {
    name: 'probe',
    start(ctx) {
      ctx.engine.registerHandler('test.actions.v1', async (message, tx) => {
        const { deliveries } = message.payload as {
          deliveries: Array<{ destination: string; action: SystemAction }>;
        };
        for (const d of deliveries)
          await tx.deliver({ destination: d.destination, payload: d.action });
      });
      ctx.onAcknowledged('order', async (ack) => {
        acks.push(ack);
      });
      return {};
    },
  };
  const app = await startApp({
    config: parsed.config,
    port: 0,
    storeUrl: `sqlite:${join(dir, 'mm.db')}`,
    logger: createLogger({ level: 'silent' }),
    modules: [systemsModule, probe],
  });
  t.after(() => app.stop());
  assert.deepEqual([...app.services.erps.keys()].sort(), ['cloud-erp', 'legacy-erp']);

  const cloud = estate.simulators['cloud-erp'] as CloudErp;
  const [item] = cloud.catalogue.items;
  const shopOrder = await estate.commerce.createOrder();
  const order = sampleOrder();
  const erpOrder = (ref: string, currency: string, location: string) => ({
    externalReference: ref,
    currency,
    orderDate: '2026-01-05T09:00:00Z',
    location,
    lines: [{ sku: item!.itemId, quantity: 1, unitPriceMinor: 1999 }],
  });
  const deliveries: Array<{ destination: string; action: SystemAction }> = [
    {
      destination: 'cloud-erp',
      action: {
        action: 'erp.post-sales-order',
        correlation,
        order: erpOrder('ord-1001', 'EUR', 'DC-EU-1'),
      },
    },
    {
      destination: 'legacy-erp',
      action: {
        action: 'erp.post-sales-order',
        correlation,
        order: erpOrder('ord-1001', 'USD', 'DC-US-1'),
      },
    },
    {
      destination: 'tax',
      action: {
        action: 'tax.quote',
        correlation,
        orderId: 'ord-1001',
        currency: 'EUR',
        shipTo: { country: 'FR' },
        lines: [{ sku: item!.itemId, quantity: 1, unitPriceMinor: 1000 }],
      },
    },
    {
      destination: 'crm',
      action: {
        action: 'crm.timeline-entry',
        correlation,
        customerId: 'cus-42',
        email: 'ada@example.com',
        kind: 'order',
        summary: 'Order placed',
        orderId: 'ord-1001',
        at: '2026-01-05T09:00:00Z',
      },
    },
    {
      destination: 'loyalty',
      action: {
        action: 'customer.sync',
        correlation,
        customerId: 'cus-42',
        attributes: { email: 'ada@example.com' },
      },
    },
    {
      destination: 'wms',
      action: { action: 'wms.fulfilment-request', correlation, order, location: 'DC-EU-1' },
    },
    {
      destination: 'commerce',
      action: {
        action: 'commerce.order-status',
        correlation,
        channelOrderId: shopOrder.id.toString(),
        status: 'processing',
      },
    },
    {
      destination: 'notifications',
      action: {
        action: 'notify.customer',
        correlation,
        template: 'order-confirmation',
        email: 'ada@example.com',
        data: { orderNumber: '#1001' },
      },
    },
  ];
  deliveries.push({
    destination: 'pos',
    action: {
      action: 'store.pickup-task',
      correlation,
      orderId: 'ord-1001',
      store: 'STORE-BER-01',
      lines: [{ sku: item!.itemId, quantity: 1 }],
    },
  });
  const accepted = await app.engine.accept({
    source: 'test',
    idempotencyKey: 'actions-1',
    requestHash: 'actions-1',
    type: 'test.actions.v1',
    partitionKey: 'ord-1001',
    priority: 'critical',
    payload: { deliveries },
  });
  assert.equal(accepted.outcome, 'accepted');
  for (let i = 0; i < 300 && acks.length < deliveries.length; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.deepEqual(
    acks.map((a) => `${a.destination} ${a.action}`).sort(),
    deliveries.map((d) => `${d.destination} ${d.action.action}`).sort(),
  );
  assert.match(
    (acks.find((a) => a.destination === 'pos')!.result as { taskId: string }).taskId,
    /^PT-/,
  );
  const result = (destination: string) => acks.find((a) => a.destination === destination)!.result;
  assert.equal((result('cloud-erp') as { duplicate: boolean }).duplicate, false);
  assert.match((result('legacy-erp') as { erpOrderId: string }).erpOrderId, /^LSO-/);
  assert.equal((result('tax') as { taxMinor: number }).taxMinor, 200);
  assert.equal((result('loyalty') as { created: boolean }).created, true);

  const totals = async (id: string) =>
    (
      (await state(estate.systems.find((s) => s.id === id)!.url)) as State & {
        receivedTotals: Record<string, number>;
      }
    ).receivedTotals;
  assert.equal((await totals('cloud-erp')).salesOrders, 1);
  assert.equal((await totals('legacy-erp')).salesOrders, 1);
  assert.equal((await totals('crm')).timeline, 1);
  assert.equal((await totals('wms')).fulfilmentRequests, 1);
  assert.equal((await totals('commerce')).orderUpdates, 1);
  assert.equal((await totals('notifications')).messages, 1);
  assert.equal((await totals('tax')).quotes, 1);
});
