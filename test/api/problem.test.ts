import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildServer } from '../../src/api/server.js';
import {
  buildProblem,
  formatFieldPath,
  MAX_FIELD_ERRORS,
  pointerToSegments,
  ProblemError,
} from '../../src/api/problem.js';
import { isValidIdempotencyKey } from '../../src/api/idempotency.js';
import { capturingLogger, fakeDeps } from './helpers.js';

void test('field paths read like JavaScript', () => {
  assert.equal(formatFieldPath(['data', 'lines', 0, 'quantity']), 'data.lines[0].quantity');
  assert.equal(
    formatFieldPath(pointerToSegments('/data/lines/12/quantity')),
    'data.lines[12].quantity',
  );
  assert.equal(formatFieldPath(['headers', 'idempotency-key']), 'headers["idempotency-key"]');
  assert.deepEqual(pointerToSegments('/a~1b/c~0d'), ['a/b', 'c~d']);
  assert.deepEqual(pointerToSegments(''), []);
});

void test('a problem carries type, title, status, detail, instance and bounded errors', () => {
  const many = Array.from({ length: MAX_FIELD_ERRORS + 5 }, (_, i) => ({
    path: `x[${i}]`,
    message: 'bad',
  }));
  const p = buildProblem(400, 'validation-error', { detail: 'd', instance: 'urn:x', errors: many });
  assert.equal(p.type, 'https://middlemart.dev/problems/validation-error');
  assert.equal(p.title, 'Request validation failed');
  assert.equal(p.status, 400);
  assert.equal(p.detail, 'd');
  assert.equal(p.instance, 'urn:x');
  assert.equal(p.errors?.length, MAX_FIELD_ERRORS);
  assert.equal(p.errorsOmitted, 5);
  // Extensions cannot overwrite the standard members.
  const e = new ProblemError(429, 'backpressure', {
    extensions: { status: 200, type: 'x', hint: 'h' },
  });
  const q = e.toProblem('urn:y');
  assert.equal(q.status, 429);
  assert.equal(q.type, 'https://middlemart.dev/problems/backpressure');
  assert.equal(q.hint, 'h');
});

void test('schema validation errors are 400 problems with the failing field paths', async (t) => {
  const server = await buildServer(fakeDeps(), { logger: capturingLogger().logger });
  server.post(
    '/orders-test',
    {
      config: { access: ['admin'] },
      schema: {
        querystring: {
          type: 'object',
          properties: { limit: { type: 'integer', maximum: 100 } },
        },
        body: {
          type: 'object',
          required: ['data'],
          properties: {
            data: {
              type: 'object',
              required: ['lines'],
              properties: {
                lines: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['quantity'],
                    properties: { quantity: { type: 'integer', minimum: 1 } },
                  },
                },
              },
            },
          },
        },
      },
    },
    async () => ({ ok: true }),
  );
  t.after(() => server.close());

  const bad = await server.inject({
    method: 'POST',
    url: '/orders-test',
    payload: { data: { lines: [{ quantity: 0 }] } },
  });
  assert.equal(bad.statusCode, 400);
  assert.match(String(bad.headers['content-type']), /^application\/problem\+json/);
  const body = bad.json() as { type: string; errors: Array<{ path: string; message: string }> };
  assert.equal(body.type, 'https://middlemart.dev/problems/validation-error');
  assert.equal(body.errors[0]?.path, 'data.lines[0].quantity');
  assert.match(body.errors[0]?.message ?? '', />= 1/);

  const missing = await server.inject({
    method: 'POST',
    url: '/orders-test',
    payload: { data: { lines: [{}] } },
  });
  assert.deepEqual((missing.json() as { errors: unknown }).errors, [
    { path: 'data.lines[0].quantity', message: 'is required' },
  ]);

  const query = await server.inject({
    method: 'POST',
    url: '/orders-test?limit=500',
    payload: { data: { lines: [] } },
  });
  assert.equal(query.statusCode, 400);
  assert.equal(
    (query.json() as { errors: Array<{ path: string }> }).errors[0]?.path,
    'querystring.limit',
  );

  const good = await server.inject({
    method: 'POST',
    url: '/orders-test?limit=5',
    payload: { data: { lines: [{ quantity: 2 }] } },
  });
  assert.equal(good.statusCode, 200);
});

void test('idempotency keys are 1-255 printable ASCII characters', () => {
  assert.equal(isValidIdempotencyKey('a'), true);
  assert.equal(isValidIdempotencyKey('order 1001 / try #2 ~'), true);
  assert.equal(isValidIdempotencyKey('k'.repeat(255)), true);
  assert.equal(isValidIdempotencyKey(''), false);
  assert.equal(isValidIdempotencyKey('k'.repeat(256)), false);
  assert.equal(isValidIdempotencyKey('new\nline'), false);
  assert.equal(isValidIdempotencyKey('\u00e9'), false);
});
