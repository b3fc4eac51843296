// OpenTelemetry: one trace from the caller's traceparent through the HTTP accept, the handler run
// and the outbound delivery, whose receiver gets the delivery span as its parent; and OTLP/HTTP
// export to the endpoint named by OTEL_EXPORTER_OTLP_ENDPOINT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { createTracing, NO_TRACING } from '../../src/observability/tracing.js';
import { parseTraceparent } from '../../src/observability/trace-context.js';
import { adjustment, startTestApp } from '../api/app-helpers.js';

async function listen(
  onRequest: (path: string, headers: IncomingHttpHeaders, body: Buffer) => void,
) {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      onRequest(req.url ?? '', req.headers, Buffer.concat(chunks));
      res.statusCode = 200;
      res.setHeader('content-type', 'application/json');
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const ESTATE = `version: 1
webhooks:
  allowPrivateNetworks: true
systems:
  - id: erp
    kind: rest-erp
    baseUrl: http://127.0.0.1:9
`;

void test("ingress, handler and delivery are spans of the caller's trace; the receiver is their child", async (t) => {
  const exporter = new InMemorySpanExporter();
  const tracing = createTracing({ exporter, env: {} });
  const api = await startTestApp({ estate: ESTATE, tracing });
  const received: IncomingHttpHeaders[] = [];
  const hook = await listen((_path, headers) => received.push(headers));
  t.after(async () => {
    await api.close();
    await hook.close();
  });
  const admin = await api.key(['admin']);
  const sub = await api.call('POST', '/v1/webhook-subscriptions', {
    key: admin,
    body: { url: `${hook.url}/hooks`, eventTypes: ['inventory.adjusted'] },
  });
  assert.equal(sub.status, 201, sub.text);

  const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const callerSpan = '00f067aa0ba902b7';
  const sent = await api.call('POST', '/v1/events', {
    key: admin,
    body: adjustment('adj-t1', 4),
    headers: { 'idempotency-key': 'adj-t1', traceparent: `00-${callerTrace}-${callerSpan}-01` },
  });
  assert.equal(sent.status, 202, sent.text);

  const end = Date.now() + 10_000;
  while (received.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  assert.equal(received.length, 1, 'the webhook receiver was called');

  // The delivery span ends once the receiver's answer is back: wait for it (bounded).
  for (let i = 0; i < 200; i++) {
    if (exporter.getFinishedSpans().some((s) => s.name.startsWith('deliver webhook.'))) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  const spans = exporter.getFinishedSpans();
  const ingress = spans.find((s) => s.name === 'POST /v1/events');
  const handler = spans.find((s) => s.name === 'process com.middlemart.inventory.adjusted.v1');
  const delivery = spans.find((s) => s.name.startsWith('deliver webhook.'));
  assert.ok(ingress && handler && delivery, spans.map((s) => s.name).join(', '));
  for (const span of [ingress, handler, delivery]) {
    assert.equal(span.spanContext().traceId, callerTrace, span.name);
  }
  assert.equal(ingress.kind, SpanKind.SERVER);
  assert.equal(ingress.parentSpanContext?.spanId, callerSpan);
  assert.equal(handler.kind, SpanKind.CONSUMER);
  assert.equal(delivery.kind, SpanKind.CLIENT);
  // The answer names the ingress span; the receiver's parent is the delivery span.
  assert.equal(
    parseTraceparent(sent.headers.get('traceparent'))?.parentId,
    ingress.spanContext().spanId,
  );
  const outbound = parseTraceparent(String(received[0]!.traceparent));
  assert.equal(outbound?.traceId, callerTrace);
  assert.equal(outbound?.parentId, delivery.spanContext().spanId);
});

void test('spans are exported over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT', async (t) => {
  const posts: Array<{ path: string; type: string; body: string }> = [];
  const collector = await listen((path, headers, body) =>
    posts.push({ path, type: String(headers['content-type']), body: body.toString('utf8') }),
  );
  t.after(() => collector.close());
  const tracing = createTracing({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url } });
  assert.equal(tracing.enabled, true);
  const hop = tracing.start('POST /v1/orders', 'server', undefined);
  hop.end();
  await tracing.flush();
  await tracing.shutdown();
  assert.equal(posts.length >= 1, true, 'the collector was called');
  assert.equal(posts[0]!.path, '/v1/traces');
  const traceId = parseTraceparent(hop.traceparent)!.traceId;
  assert.ok(
    posts.some(
      (p) =>
        p.body.includes(traceId) || p.body.includes(Buffer.from(traceId, 'hex').toString('base64')),
    ),
    `the exported body names trace ${traceId} (${posts[0]!.type})`,
  );
});

void test('without an endpoint nothing is recorded, and hops still derive child traceparents', () => {
  const tracing = createTracing({ env: {} });
  assert.equal(tracing, NO_TRACING);
  const parent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const hop = tracing.start('x', 'internal', parent);
  const child = parseTraceparent(hop.traceparent)!;
  assert.equal(child.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.notEqual(child.parentId, '00f067aa0ba902b7');
});
