// Bad input and abuse: thousands of malformed and hostile requests to every route that takes a
// body (and hostile path parameters to every route), on the real app. Each must get a 4xx
// problem+json naming its problem (never a 5xx); the process must stay up; and nothing partial
// may be stored: the engine accepts exactly as many messages as there were 2xx answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { registeredRoutes } from '../../src/api/server.js';
import { startTestApp } from './app-helpers.js';

/** A deterministic PRNG so a failure reproduces. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOSTILE_STRINGS = [
  "'; DROP TABLE messages; --",
  '" OR 1=1 --',
  "1' UNION SELECT secret_sha256 FROM api_keys --",
  '\u0000',
  '\ud800',
  '\u202e\u202d override',
  'zero\u200bwidth',
  '🛒'.repeat(500),
  'x'.repeat(5_000),
  '../../../../etc/passwd',
  '${jndi:ldap://127.0.0.1/a}',
  '<script>alert(1)</script>',
  '%00%2e%2e%2f',
  '__proto__',
];

const WRONG_VALUES: unknown[] = [
  null,
  true,
  -1,
  1e308,
  -0,
  Number.MAX_SAFE_INTEGER + 2,
  [],
  {},
  [null],
  { $ne: null },
  ...HOSTILE_STRINGS,
];

function deep(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

const BILLION_LAUGHS = `<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><lolz>&lol3;</lolz>`;
const XXE = `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>`;

interface Attempt {
  what: string;
  body: string;
  contentType: string;
}

/** Raw bodies that are never acceptable anywhere. */
function rawAttacks(): Attempt[] {
  const json = 'application/json';
  return [
    { what: 'empty body', body: '', contentType: json },
    { what: 'truncated', body: '{"a":', contentType: json },
    { what: 'bare word', body: 'nul', contentType: json },
    { what: 'trailing comma', body: '{"a":1,}', contentType: json },
    { what: 'NaN', body: '{"a":NaN}', contentType: json },
    { what: 'single quotes', body: "{'a':1}", contentType: json },
    { what: 'deep nesting', body: deep(20_000), contentType: json },
    {
      what: 'deep objects',
      body: '{"a":'.repeat(5_000) + '1' + '}'.repeat(5_000),
      contentType: json,
    },
    { what: '__proto__ key', body: '{"__proto__":{"admin":true}}', contentType: json },
    {
      what: 'escaped __proto__',
      body: '{"\\u005f\\u005fproto__":{"admin":true}}',
      contentType: json,
    },
    {
      what: 'constructor.prototype',
      body: '{"constructor":{"prototype":{"admin":true}}}',
      contentType: json,
    },
    { what: 'xml bomb', body: BILLION_LAUGHS, contentType: 'application/xml' },
    { what: 'xxe', body: XXE, contentType: 'text/xml' },
    { what: 'soap xxe', body: XXE, contentType: 'application/soap+xml' },
    { what: 'form', body: 'a=1&b=2', contentType: 'application/x-www-form-urlencoded' },
    { what: 'long string', body: JSON.stringify({ id: 'x'.repeat(100_000) }), contentType: json },
    { what: 'huge body', body: JSON.stringify({ pad: 'x'.repeat(1_200_000) }), contentType: json },
    {
      what: 'invalid utf-8',
      body: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]).toString('latin1'),
      contentType: json,
    },
  ];
}

/** Well-formed JSON of the wrong shape for a route, built from its body schema. */
function shapedAttacks(
  schema: Record<string, unknown> | undefined,
  random: () => number,
): Attempt[] {
  const out: Attempt[] = [];
  const json = 'application/json';
  for (const v of [null, 42, 'text', [], true]) {
    out.push({
      what: `top-level ${JSON.stringify(v)}`,
      body: JSON.stringify(v),
      contentType: json,
    });
  }
  const body = (schema?.body ?? undefined) as
    { properties?: Record<string, unknown>; required?: string[] } | undefined;
  const props = Object.keys(body?.properties ?? {});
  const required = body?.required ?? props;
  // Every required field with each wrong value; and random mixes.
  for (const field of required.slice(0, 8)) {
    for (const value of WRONG_VALUES) {
      const doc: Record<string, unknown> = {};
      for (const p of required)
        doc[p] =
          p === field ? value : HOSTILE_STRINGS[Math.floor(random() * HOSTILE_STRINGS.length)];
      out.push({
        what: `${field}=${JSON.stringify(value)?.slice(0, 40)}`,
        body: JSON.stringify(doc),
        contentType: json,
      });
    }
  }
  for (let i = 0; i < 40; i++) {
    const doc: Record<string, unknown> = {};
    for (const p of props) {
      if (random() < 0.7) doc[p] = WRONG_VALUES[Math.floor(random() * WRONG_VALUES.length)];
    }
    doc[HOSTILE_STRINGS[i % HOSTILE_STRINGS.length]!.slice(0, 60)] = 'extra';
    out.push({ what: `random mix ${i}`, body: JSON.stringify(doc), contentType: json });
  }
  return out;
}

void test('every ingest route answers thousands of hostile requests with 4xx problems, stores nothing partial, and stays up', async (t) => {
  const api = await startTestApp({ workers: false });
  t.after(() => api.close());
  const admin = await api.key(['admin']);
  const random = mulberry32(20261128);
  const routes = registeredRoutes(api.app.server!).filter(
    (r) => ['POST', 'PUT', 'PATCH'].includes(r.method) && !r.config.noBody,
  );
  assert.ok(routes.length >= 3, `only ${routes.length} ingest routes`);

  const before = api.app.engine.counters.accepted;
  let sent = 0;
  let succeeded = 0;
  const failures: string[] = [];
  const accepted: string[] = [];
  for (const route of routes) {
    const path = route.url.replace(/:[A-Za-z_]+/g, 'FUZZ-1');
    const attempts = [...rawAttacks(), ...shapedAttacks(route.schema, random)];
    for (const a of attempts) {
      const headers: Record<string, string> = {
        authorization: `Bearer ${admin}`,
        'content-type': a.contentType,
        'idempotency-key': `fuzz-${sent}`,
        'x-shopify-hmac-sha256': 'AAAA',
        'x-shopify-topic': 'orders/create',
      };
      let res: Response;
      try {
        res = await fetch(`${api.url}${path}`, { method: route.method, headers, body: a.body });
      } catch (err) {
        failures.push(`${route.method} ${route.url} [${a.what}]: transport error ${String(err)}`);
        continue;
      }
      sent += 1;
      const text = await res.text();
      if (res.status >= 500) {
        failures.push(
          `${route.method} ${route.url} [${a.what}]: ${res.status} ${text.slice(0, 200)}`,
        );
      } else if (res.status >= 400) {
        const type = res.headers.get('content-type') ?? '';
        if (!type.startsWith('application/problem+json')) {
          failures.push(
            `${route.method} ${route.url} [${a.what}]: ${res.status} without problem+json`,
          );
        } else {
          const problem = JSON.parse(text) as { title?: string; detail?: string; status?: number };
          if (!problem.title || problem.status !== res.status) {
            failures.push(`${route.method} ${route.url} [${a.what}]: problem without title/status`);
          }
        }
      } else {
        succeeded += 1;
        accepted.push(`${route.method} ${route.url} [${a.what}] ${res.status}`);
      }
    }
  }
  t.diagnostic(
    `${sent} hostile requests to ${routes.length} routes, ${succeeded} accepted as valid: ${accepted.join('; ')}`,
  );
  assert.deepEqual(failures.slice(0, 20), [], `${failures.length} bad answers`);
  assert.ok(sent >= 1000, `only ${sent} requests sent`);

  // Hostile path parameters on every route with parameters.
  for (const route of registeredRoutes(api.app.server!).filter((r) => r.url.includes(':'))) {
    for (const value of [
      "' OR 1=1 --",
      '..%2F..%2Fetc%2Fpasswd',
      '%00',
      'x'.repeat(3000),
      '%F0%9F%9B%92',
    ]) {
      const path = route.url.replace(/:[A-Za-z_]+/g, value);
      const res = await fetch(`${api.url}${path}`, {
        method: route.method,
        headers: {
          authorization: `Bearer ${admin}`,
          ...(['POST', 'PUT', 'PATCH'].includes(route.method)
            ? { 'content-type': 'application/json' }
            : {}),
        },
        ...(['POST', 'PUT', 'PATCH'].includes(route.method) && !route.config.noBody
          ? { body: '{}' }
          : {}),
      });
      await res.text();
      assert.ok(res.status < 500, `${route.method} ${path.slice(0, 80)}: ${res.status}`);
    }
  }

  const health = await fetch(`${api.url}/healthz`);
  assert.equal(health.status, 200);
  // Nothing partial: only the requests answered 2xx were accepted into the engine.
  assert.equal(api.app.engine.counters.accepted - before, succeeded);
});
