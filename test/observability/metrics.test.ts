// /metrics against the real engine: counters, queue gauges, the end-to-end latency histogram from
// delivered events, circuit state per destination and HTTP request duration by route and status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createMetrics, flowOf } from '../../src/observability/metrics.js';
import { adjustment, startTestApp } from '../api/app-helpers.js';

const TYPE = 'test.price-push.v1';

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

void test('flows are named by the event family', () => {
  assert.equal(flowOf('com.middlemart.order.created.v1'), 'order');
  assert.equal(flowOf('com.middlemart.inventory.availability_changed.v1'), 'inventory');
  assert.equal(flowOf('test.price-push.v1'), 'other');
});

void test('/metrics exports the engine, the queues, the circuits and HTTP durations', async (t) => {
  const api = await startTestApp();
  t.after(() => api.close());
  api.app.engine.registerHandler(TYPE, async (message, tx) => {
    await tx.deliver({ destination: 'erp', payload: message.payload });
  });
  api.app.engine.registerSender('erp', async () => ({ status: 200 }));

  for (let i = 0; i < 3; i++) {
    await api.app.engine.accept({
      source: 'test',
      idempotencyKey: `p-${i}`,
      requestHash: `h-${i}`,
      type: TYPE,
      partitionKey: `SKU-${i}`,
      priority: 'critical',
      payload: { sku: `SKU-${i}` },
    });
  }
  const deadline = Date.now() + 10_000;
  while (api.app.engine.counters.delivered < 3 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
  }
  const channel = await api.key(['channel']);
  assert.equal(
    (await api.call('POST', '/v1/events', { key: channel, body: adjustment('m-1', 1) })).status,
    202,
  );

  assert.equal((await api.call('GET', '/metrics')).status, 401);
  assert.equal((await api.call('GET', '/metrics', { key: channel })).status, 403);
  const res = await api.call('GET', '/metrics', { key: await api.key(['operator']) });
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = res.text;

  assert.equal(value(text, 'middlemart_messages_accepted_total'), 4);
  assert.equal(value(text, 'middlemart_deliveries_delivered_total'), 3);
  assert.ok((value(text, 'middlemart_messages_processed_total') ?? 0) >= 3);
  for (const name of ['duplicate', 'backpressured']) {
    assert.equal(value(text, `middlemart_messages_${name}_total`), 0, name);
  }
  for (const name of ['idempotency_conflicts', 'retries', 'dead_lettered', 'replayed']) {
    assert.equal(value(text, `middlemart_${name}_total`), 0, name);
  }
  assert.equal(
    value(text, 'middlemart_delivery_end_to_end_seconds_count{destination="erp",class="critical"}'),
    3,
  );
  assert.equal(value(text, 'middlemart_circuit_state{destination="erp",state="closed"}'), 1);
  assert.equal(value(text, 'middlemart_circuit_state{destination="erp",state="open"}'), 0);
  assert.match(
    text,
    /^middlemart_queue_depth\{queue="messages",class="critical",destination=""\} \d+$/m,
  );
  assert.match(
    text,
    /^middlemart_queue_oldest_age_seconds\{queue="messages",class="standard",destination=""\} [\d.e-]+$/m,
  );
  assert.equal(value(text, 'middlemart_dead_letters'), 0);
  assert.equal(
    value(
      text,
      'middlemart_http_request_duration_seconds_count{method="POST",route="/v1/events",status="202"}',
    ),
    1,
  );
  assert.equal(
    value(
      text,
      'middlemart_http_request_duration_seconds_count{method="GET",route="/metrics",status="401"}',
    ),
    1,
  );
  assert.equal(
    value(text, 'middlemart_transactions_total{flow="inventory",outcome="accepted"}'),
    1,
  );
  assert.equal(value(text, 'middlemart_transactions_total{flow="other",outcome="accepted"}'), 3);
  assert.equal(value(text, 'middlemart_transactions_total{flow="other",outcome="processed"}'), 3);
  assert.equal(
    value(text, 'middlemart_flow_processing_seconds_count{flow="other",class="critical"}'),
    3,
  );
  assert.match(text, /^# TYPE middlemart_messages_accepted_total counter$/m);
  assert.match(text, /^middlemart_process_cpu_user_seconds_total /m);
});

void test('a scrape while the store cannot answer still serves the counters', async () => {
  const engine = {
    events: new EventEmitter(),
    counters: {
      accepted: 7,
      duplicates: 0,
      conflicts: 0,
      backpressured: 0,
      processed: 0,
      handlerFailures: 0,
      delivered: 0,
      retried: 0,
      circuitOpenSkips: 0,
      deadLettered: 0,
      replayed: 0,
      purged: 0,
    },
    stats: () => Promise.reject(new Error('database is locked')),
  } as unknown as Parameters<typeof createMetrics>[0]['engine'];
  const metrics = createMetrics({ engine, processMetrics: false });
  const { body } = await metrics.render();
  assert.equal(value(body, 'middlemart_messages_accepted_total'), 7);
  assert.doesNotMatch(body, /^middlemart_queue_depth\{/m);
  metrics.close();
});
