// Shipment confirmations flowing back: the WMS simulator ships a fulfilment request and posts the
// signed Standard Webhook to the real app's POST /v1/webhooks/wms/{systemId}; the route verifies
// it and accepts the canonical shipment.confirmed durably, once per shipment, partitioned by the
// order id. Bad signatures, stale timestamps, unknown systems and invalid payloads are refused
// with a problem and store nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp, type App } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observability/logger.js';
import { wmsFulfilmentPerformer } from '../../src/connectors/wms/performers.js';
import { webhookSignatureProblem } from '../../src/connectors/wms/webhooks.js';
import { createWms, signStandardWebhook } from '../../src/sandbox/wms/index.js';
import { sampleOrder } from '../canonical/fixtures.js';

const SECRET = `whsec_${Buffer.from('wms-webhook-test-secret-0123456789').toString('base64')}`;

const ESTATE = `version: 1
systems:
  - id: wms-eu
    kind: wms
    baseUrl: http://127.0.0.1:9
    credentials:
      webhookSecret: \${WMS_EU_WEBHOOK_SECRET}
`;

async function startTestApp(): Promise<{ app: App; url: string; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'mm-wms-'));
  const parsed = parseConfig(ESTATE, 'test.yaml', { WMS_EU_WEBHOOK_SECRET: SECRET });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  const app = await startApp({
    config: { ...parsed.config, engine: { ...parsed.config.engine, roles: ['api'] } },
    port: 0,
    storeUrl: `sqlite:${join(dir, 'mm.db')}`,
    logger: createLogger({ level: 'silent' }),
  });
  return {
    app,
    url: app.url!,
    close: async () => {
      await app.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Row extends Record<string, unknown> {
  type: string;
  source: string;
  idempotency_key: string;
  partition_key: string;
  payload: string;
}

async function shipmentMessages(app: App): Promise<Row[]> {
  return app.store.query<Row>(
    "SELECT type, source, idempotency_key, partition_key, payload FROM messages WHERE type LIKE '%shipment.confirmed%' ORDER BY seq",
  );
}

function signed(body: string, opts: { id?: string; at?: number; secret?: string } = {}) {
  const id = opts.id ?? 'msg_test_1';
  const at = opts.at ?? Math.floor(Date.now() / 1000);
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(at),
    'webhook-signature': signStandardWebhook(opts.secret ?? SECRET, id, at, body),
  };
}

function confirmation(overrides: Record<string, unknown> = {}) {
  return JSON.stringify({
    type: 'shipment.confirmed',
    timestamp: '2026-01-05T10:00:00.000Z',
    data: {
      shipmentId: 'SHP-000042',
      fulfilmentRequestId: 'FR-000042',
      orderReference: 'ord-2001',
      warehouse: 'DC-EU-1',
      carrier: 'DHL',
      service: 'Paket',
      trackingNumber: '00340434161234567890',
      trackingUrl: 'https://www.dhl.com/track?tracking-id=00340434161234567890',
      shippedAt: '2026-01-05T10:00:00.000Z',
      lines: [{ sku: 'MM-00001', quantity: 2 }],
      ...overrides,
    },
  });
}

void test('the WMS posts a signed shipment confirmation: accepted once as canonical shipment.confirmed', async (t) => {
  const api = await startTestApp();
  t.after(() => api.close());
  const wms = createWms({
    webhookUrl: `${api.url}/v1/webhooks/wms/wms-eu`,
    webhookSecret: SECRET,
    confirmationDelayMs: 0,
    webhookRetryDelayMs: 50,
  });
  const wmsUrl = await wms.listen();
  t.after(() => wms.close());

  const perform = wmsFulfilmentPerformer({ system: 'wms-eu', baseUrl: wmsUrl });
  await perform(
    {
      action: 'wms.fulfilment-request',
      correlation: { process: 'order', id: 'ord-1001' },
      order: sampleOrder(),
      location: 'DC-EU-1',
    },
    { signal: new AbortController().signal, idempotencyKey: 'd-1', attempt: 1 },
  );
  // Bounded wait for the WMS to ship and deliver its webhook.
  for (let i = 0; i < 100 && wms.confirmations().some((c) => c.status !== 'sent'); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const [sent] = wms.confirmations();
  assert.equal(sent?.status, 'sent', `confirmation ${sent?.status}: ${sent?.lastError ?? ''}`);

  const rows = await shipmentMessages(api.app);
  assert.equal(rows.length, 1);
  const row = rows[0]!;
  assert.equal(row.type, 'com.middlemart.shipment.confirmed.v1');
  assert.equal(row.partition_key, 'ord-1001');
  assert.equal(row.source, 'wms:wms-eu');
  const event = api.app.engine.readPayload(row.payload) as {
    subject: string;
    data: {
      id: string;
      orderId: string;
      fromLocation: string;
      lines: Array<{ sku: string; orderLineId: string; quantity: number }>;
    };
  };
  assert.equal(event.data.orderId, 'ord-1001');
  assert.equal(event.data.fromLocation, 'DC-EU-1');
  assert.equal(event.data.id, sent!.shipmentId);
  assert.deepEqual(
    event.data.lines.map((l) => [l.sku, l.orderLineId, l.quantity]),
    [
      ['SKU-RED-M', 'SKU-RED-M', 2],
      ['SKU-BLUE-L', 'SKU-BLUE-L', 1],
    ],
  );

  // The same shipment delivered again (a new webhook attempt): answered the same, stored once.
  const body = JSON.stringify(sent!.payload);
  const again = await fetch(`${api.url}/v1/webhooks/wms/wms-eu`, {
    method: 'POST',
    headers: signed(body, { id: sent!.webhookId }),
    body,
  });
  assert.equal(again.status, 202);
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  assert.equal((await shipmentMessages(api.app)).length, 1);
});

void test('refusals: bad or missing signature 401, stale timestamp 401, unknown system 404, invalid payload 422', async (t) => {
  const api = await startTestApp();
  t.after(() => api.close());
  const post = (path: string, body: string, headers: Record<string, string>) =>
    fetch(`${api.url}${path}`, { method: 'POST', headers, body });
  const body = confirmation();

  const wrongKey = await post(
    '/v1/webhooks/wms/wms-eu',
    body,
    signed(body, {
      secret: `whsec_${Buffer.from('another-secret').toString('base64')}`,
    }),
  );
  assert.equal(wrongKey.status, 401);
  assert.equal(wrongKey.headers.get('content-type')?.startsWith('application/problem+json'), true);
  const problem = (await wrongKey.json()) as { type: string; detail: string };
  assert.equal(problem.type, 'https://middlemart.dev/problems/unauthorized');
  assert.match(problem.detail, /signature does not match/);

  const unsigned = await post('/v1/webhooks/wms/wms-eu', body, {
    'content-type': 'application/json',
  });
  assert.equal(unsigned.status, 401);

  const tampered = await post(
    '/v1/webhooks/wms/wms-eu',
    confirmation({ carrier: 'UPS' }),
    signed(body),
  );
  assert.equal(tampered.status, 401);

  const stale = await post(
    '/v1/webhooks/wms/wms-eu',
    body,
    signed(body, { at: Math.floor(Date.now() / 1000) - 3600 }),
  );
  assert.equal(stale.status, 401);

  const unknown = await post('/v1/webhooks/wms/nope', body, signed(body));
  assert.equal(unknown.status, 404);

  const invalidBody = confirmation({ carrier: undefined, lines: [{ sku: 'MM-1', quantity: 0 }] });
  const invalid = await post('/v1/webhooks/wms/wms-eu', invalidBody, signed(invalidBody));
  assert.equal(invalid.status, 422);
  const details = (await invalid.json()) as { errors: Array<{ path: string }> };
  assert.deepEqual(details.errors.map((e) => e.path).sort(), [
    'data.carrier',
    'data.lines[0].quantity',
  ]);

  const otherType = JSON.stringify({ type: 'shipment.cancelled', data: {} });
  const other = await post('/v1/webhooks/wms/wms-eu', otherType, signed(otherType));
  assert.equal(other.status, 422);

  assert.equal((await shipmentMessages(api.app)).length, 0, 'nothing was stored');

  // Documented in the OpenAPI reference as a public (signature-authenticated) route.
  const doc = (await (await fetch(`${api.url}/openapi.json`)).json()) as {
    paths: Record<
      string,
      Record<string, { security?: unknown[]; responses: Record<string, unknown> }>
    >;
  };
  const operation = doc.paths['/v1/webhooks/wms/{systemId}']?.post;
  assert.ok(operation, 'the route is in the OpenAPI document');
  assert.deepEqual(operation.security, []);
  assert.ok(['202', '401', '404', '422'].every((s) => s in operation.responses));

  const ok = await post('/v1/webhooks/wms/wms-eu', body, signed(body));
  assert.equal(ok.status, 202);
  const accepted = (await ok.json()) as { id: string; event: string };
  assert.equal(accepted.event, 'com.middlemart.shipment.confirmed.v1');
  assert.equal((await shipmentMessages(api.app)).length, 1);
});

void test('signature verification follows Standard Webhooks (several signatures, constant-time)', () => {
  const body = '{"a":1}';
  const at = 1_700_000_000;
  const good = signStandardWebhook(SECRET, 'msg_1', at, body);
  const headers = (signature: string) => ({ id: 'msg_1', timestamp: String(at), signature });
  assert.equal(webhookSignatureProblem(SECRET, headers(good), body, at), undefined);
  assert.equal(
    webhookSignatureProblem(SECRET, headers(`v1,bm90LWl0 ${good}`), Buffer.from(body), at),
    undefined,
  );
  assert.match(webhookSignatureProblem(SECRET, headers('v1,bm90LWl0'), body, at) ?? '', /match/);
  assert.match(webhookSignatureProblem(SECRET, headers(good), body, at + 301) ?? '', /timestamp/);
  assert.match(webhookSignatureProblem('', headers(good), body, at) ?? '', /secret/);
});
