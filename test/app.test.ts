// The composition root's translations: estate config → delivery policies, and the catalogue plus
// configured priority overrides → what the ingest route is told of an event.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { destinationPolicies, eventDescriber } from '../src/app.js';
import { parseConfig } from '../src/config/load.js';

const estate = `
version: 1
systems:
  - id: cloud-erp
    kind: rest-erp
    baseUrl: https://erp.example.com
    limits: { ratePerSecond: 5, burst: 7, concurrency: 3, adaptiveConcurrency: true, timeoutMs: 4000 }
    retry: { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 9000 }
    circuitBreaker: { consecutiveFailures: 4, halfOpenAfterMs: 2000 }
  - id: crm
    kind: crm
    baseUrl: https://crm.example.com
`;

test('each configured system becomes a delivery policy with its own limits', () => {
  const loaded = parseConfig(estate, 'estate.yaml', {}, { resolveEnv: false });
  assert.ok(loaded.ok, JSON.stringify(!loaded.ok && loaded.issues));
  const [erp, crm] = destinationPolicies(loaded.config.systems);
  assert.deepEqual(erp, {
    id: 'cloud-erp',
    timeoutMs: 4000,
    retry: { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 9000 },
    circuitBreaker: { consecutiveFailures: 4, halfOpenAfterMs: 2000 },
    concurrency: { max: 3, adaptive: true },
    rate: { perSecond: 5, burst: 7 },
  });
  // Defaults from the config schema.
  assert.equal(crm?.concurrency.max, 4);
  assert.equal(crm?.retry.maxAttempts, 8);
});

const adjustment = {
  specversion: '1.0',
  id: 'adj-1',
  source: '/wms/dc-eu-1',
  type: 'com.middlemart.inventory.adjusted.v1',
  time: '2026-11-28T10:00:00Z',
  data: {
    sku: 'SKU-1',
    location: 'DC-EU-1',
    reason: 'cycle_count',
    count: 12,
    sourceSystem: 'wms',
    sourceSequence: 1,
    sourceTimestamp: '2026-11-28T10:00:00Z',
  },
};

test('an event gets its partition key and class from the catalogue, overridable by config', () => {
  const plain = eventDescriber({})(adjustment);
  assert.deepEqual(plain, {
    ok: true,
    type: 'com.middlemart.inventory.adjusted.v1',
    partitionKey: 'SKU-1@DC-EU-1',
    priority: 'standard',
    source: '/wms/dc-eu-1',
  });
  const overridden = eventDescriber({ 'inventory.adjusted': 'critical' })(adjustment);
  assert.equal(overridden.ok && overridden.priority, 'critical');
  // A caller cannot lift its own event above the configured class.
  const lifted = eventDescriber({})({ ...adjustment, priority: 'critical' });
  assert.equal(lifted.ok && lifted.priority, 'standard');
});

test('an invalid event is described by every error with its field path', () => {
  const result = eventDescriber({})({ ...adjustment, data: { ...adjustment.data, sku: '' } });
  assert.equal(result.ok, false);
  assert.ok(!result.ok && result.errors.some((e) => e.path === 'data.sku'));
});
