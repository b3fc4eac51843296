import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  childTraceparent,
  formatTraceparent,
  isValidTraceparent,
  newTraceparent,
  parseTraceparent,
  traceIdOf,
} from '../../src/observability/trace-context.js';

const VALID = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

void test('parses a valid version-00 traceparent', () => {
  assert.deepEqual(parseTraceparent(VALID), {
    version: '00',
    traceId: '0af7651916cd43dd8448eb211c80319c',
    parentId: 'b7ad6b7169203331',
    flags: '01',
  });
  assert.equal(formatTraceparent(parseTraceparent(VALID)!), VALID);
  assert.equal(traceIdOf(VALID), '0af7651916cd43dd8448eb211c80319c');
});

void test('rejects invalid traceparents', () => {
  const invalid = [
    undefined,
    null,
    '',
    'garbage',
    '00-00000000000000000000000000000000-b7ad6b7169203331-01', // zero trace id
    '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01', // zero parent id
    '00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01', // uppercase
    '00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01', // short trace id
    '00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01', // short parent id
    '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1', // short flags
    'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', // forbidden version
    '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra', // v00 has no more fields
    '0x-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  ];
  for (const value of invalid) {
    assert.equal(parseTraceparent(value), undefined, String(value));
    assert.equal(isValidTraceparent(value), false, String(value));
  }
});

void test('a future version is read by its first four fields', () => {
  const ctx = parseTraceparent('01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-ever');
  assert.equal(ctx?.version, '01');
  assert.equal(ctx?.traceId, '0af7651916cd43dd8448eb211c80319c');
});

void test('newTraceparent makes valid, distinct, sampled version-00 headers', () => {
  const a = newTraceparent();
  const b = newTraceparent();
  assert.ok(isValidTraceparent(a), a);
  assert.notEqual(a, b);
  assert.match(a, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  assert.match(newTraceparent(false), /-00$/);
});

void test('childTraceparent keeps the trace id and sampled flag with a new span id', () => {
  const child = childTraceparent(VALID);
  const parsed = parseTraceparent(child);
  assert.ok(parsed);
  assert.equal(parsed.traceId, '0af7651916cd43dd8448eb211c80319c');
  assert.notEqual(parsed.parentId, 'b7ad6b7169203331');
  assert.equal(parsed.flags, '01');
  const unsampled = parseTraceparent(
    childTraceparent('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00'),
  );
  assert.equal(unsampled?.flags, '00');
  // A future version's child is written as version 00.
  assert.match(
    childTraceparent('01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03-x'),
    /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/,
  );
});

void test('childTraceparent of an invalid parent starts a new trace', () => {
  const child = childTraceparent('00-00000000000000000000000000000000-b7ad6b7169203331-01');
  assert.ok(isValidTraceparent(child));
  assert.notEqual(traceIdOf(child), '00000000000000000000000000000000');
  assert.ok(isValidTraceparent(childTraceparent(undefined)));
});
