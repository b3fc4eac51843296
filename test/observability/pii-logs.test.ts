// No test customer's personal data reaches the logs: customers sent through the API (valid and
// invalid ones, with every log level on), processed by the customer domain, fanned out and
// failing, leave no email, name or phone in any log line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeEvent } from '../../src/canonical/index.js';
import { sampleCustomer } from '../canonical/fixtures.js';
import { startTestApp } from '../api/app-helpers.js';
import { capturingLogger } from '../api/helpers.js';

const PEOPLE = [
  {
    givenName: 'Hildegard',
    familyName: 'Quarzbrecher',
    email: 'hildegard.quarz@example.org',
    phone: '+4915219876543',
  },
  {
    givenName: 'Octavian',
    familyName: 'Pemberton-Lisle',
    email: 'o.pemberton@example.net',
    phone: '+447700900123',
  },
];

void test('customer emails, names and phones never appear in the logs', async (t) => {
  const log = capturingLogger('trace');
  const api = await startTestApp({ logger: log.logger });
  t.after(() => api.close());
  const key = await api.key(['admin']);
  let n = 0;
  for (const p of PEOPLE) {
    const customer = {
      ...sampleCustomer(),
      id: `cus-${n}`,
      givenName: p.givenName,
      familyName: p.familyName,
      emails: [{ address: p.email, primary: true, verified: true }],
      phones: [{ number: p.phone, kind: 'mobile' as const, primary: true }],
    };
    const ok = await api.call('POST', '/v1/events', {
      key,
      body: makeEvent('customer.updated', customer, { source: '/crm' }),
      headers: { 'idempotency-key': `pii-${n++}` },
    });
    assert.equal(ok.status, 202, ok.text);
    // Invalid: the validation error must name the field, not echo the person.
    const event = makeEvent('customer.updated', customer, { source: '/crm' });
    const bad = await api.call('POST', '/v1/events', {
      key,
      body: { ...event, data: { ...event.data, region: 'NOT A REGION' } },
      headers: { 'idempotency-key': `pii-${n++}` },
    });
    assert.equal(bad.status, 400);
    const malformed = await api.call('POST', '/v1/events', {
      key,
      body: undefined,
      headers: {
        'idempotency-key': `pii-${n++}`,
        'content-type': 'application/json',
      },
    });
    assert.ok(malformed.status >= 400);
  }
  const end = Date.now() + 10_000;
  while (api.app.engine.counters.processed < PEOPLE.length && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 25));
  }
  await api.close();
  assert.ok(log.lines.length > 0, 'something was logged');
  const all = log.lines.join('\n');
  for (const p of PEOPLE) {
    for (const value of [p.email, p.givenName, p.familyName, p.phone]) {
      assert.ok(!all.includes(value), `the logs contain ${value}`);
    }
  }
});
