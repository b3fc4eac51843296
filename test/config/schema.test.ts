// The estate config schema on its own: defaults, strictness, secrets and cross-references.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  EstateConfigSchema,
  KNOWN_EVENTS,
  malformedEnvRef,
  parseStoreUrl,
  suggestedEnvName,
} from '../../src/config/schema.js';

function issuesOf(input: unknown): Array<{ path: string; message: string; code: string }> {
  const result = EstateConfigSchema.safeParse(input);
  if (result.success) return [];
  return result.error.issues.map((i) => ({
    path: i.path.map(String).join('.'),
    message: i.message,
    code: i.code,
  }));
}

const erp = { id: 'erp', kind: 'rest-erp', baseUrl: 'https://erp.example.com' };

void test('a minimal file gets a default for everything optional', () => {
  const config = EstateConfigSchema.parse({ version: 1, systems: [erp] });
  assert.deepEqual(config.server, {
    host: '127.0.0.1',
    port: 8080,
    bodyLimitBytes: 1_048_576,
    rateTiers: { standard: { requestsPerSecond: 50 }, premium: { requestsPerSecond: 500 } },
  });
  assert.equal(config.store.url, 'sqlite:.middlemart/middlemart.db');
  assert.deepEqual(config.store.retention, {
    completedMessagesDays: 7,
    idempotencyKeysDays: 7,
    deadLettersDays: 30,
  });
  assert.deepEqual(config.engine, {
    roles: ['api', 'worker'],
    workers: 4,
    leaseSeconds: 30,
    backpressure: { deferrableBacklogLimit: 50_000 },
  });
  assert.deepEqual(config.sandbox, { enabled: false, basePort: 7100 });
  assert.deepEqual(config.priorities, {});
  assert.deepEqual(config.routing, []);
  assert.deepEqual(config.fieldOwnership, {});
  const system = config.systems[0]!;
  assert.deepEqual(system.credentials, {});
  assert.equal(system.region, undefined);
  assert.deepEqual(system.limits, {
    ratePerSecond: 10,
    burst: 10,
    concurrency: 4,
    adaptiveConcurrency: false,
    timeoutMs: 10_000,
  });
  assert.deepEqual(system.retry, { maxAttempts: 8, baseDelayMs: 250, maxDelayMs: 60_000 });
  assert.deepEqual(system.circuitBreaker, { consecutiveFailures: 5, halfOpenAfterMs: 15_000 });
});

void test('version must be 1', () => {
  assert.deepEqual(
    issuesOf({ version: 2 }).map((i) => i.path),
    ['version'],
  );
  assert.deepEqual(
    issuesOf({}).map((i) => i.path),
    ['version'],
  );
});

void test('unknown keys are errors at every level', () => {
  const issues = issuesOf({
    version: 1,
    sever: {},
    engine: { wrokers: 2 },
    systems: [{ ...erp, limits: { concurency: 2 } }],
    routing: [{ name: 'r', when: { event: 'order.created', chanel: 'web' }, to: 'erp' }],
  });
  assert.deepEqual(
    issuesOf({ version: 1, sever: {} }).map((i) => i.code),
    ['unrecognized_keys'],
  );
  assert.deepEqual(issues.map((i) => i.path).sort(), [
    '',
    'engine',
    'routing.0.when',
    'systems.0.limits',
  ]);
});

void test('system kind comes from the fixed list and baseUrl must be http(s)', () => {
  const issues = issuesOf({
    version: 1,
    systems: [
      { id: 'a', kind: 'sap', baseUrl: 'https://a.example' },
      { id: 'b', kind: 'pos', baseUrl: 'ftp://b.example' },
      { id: 'c', kind: 'pos', baseUrl: 'not a url' },
      { id: 'd', kind: 'marketplace', baseUrl: 'http://127.0.0.1:9000/api' },
    ],
  });
  assert.deepEqual(
    issues.map((i) => i.path),
    ['systems.0.kind', 'systems.1.baseUrl', 'systems.2.baseUrl'],
  );
});

void test('credentials: secrets must be environment references, identifiers may be literal', () => {
  const issues = issuesOf({
    version: 1,
    systems: [
      {
        id: 'cloud-erp',
        kind: 'rest-erp',
        baseUrl: 'https://erp.example.com',
        credentials: {
          clientId: 'middlemart',
          username: 'svc',
          clientSecret: 'hunter2',
          apiKey: '${CLOUD_ERP_API_KEY}',
          token: 'prefix-${CLOUD_ERP_TOKEN}',
          password: '',
        },
      },
    ],
  });
  assert.deepEqual(
    issues.map((i) => [i.path, i.message]),
    [
      [
        'systems.0.credentials.clientSecret',
        'literal secret: use an environment reference such as ${CLOUD_ERP_CLIENT_SECRET}',
      ],
      [
        'systems.0.credentials.token',
        'literal secret: use an environment reference such as ${CLOUD_ERP_TOKEN}',
      ],
      [
        'systems.0.credentials.password',
        'literal secret: use an environment reference such as ${CLOUD_ERP_PASSWORD}',
      ],
    ],
  );
});

void test('a literal secret is reported even when its system has other errors', () => {
  const issues = issuesOf({
    version: 1,
    systems: [{ id: 'crm', kind: 'crm', basUrl: 'x', credentials: { apiKey: 'abc' } }],
  });
  const paths = issues.map((i) => i.path);
  assert.ok(paths.includes('systems.0.credentials.apiKey'), paths.join(', '));
  assert.ok(paths.includes('systems.0.baseUrl'), paths.join(', '));
});

void test('malformed environment references are errors', () => {
  assert.equal(malformedEnvRef('${GOOD_NAME}'), undefined);
  assert.equal(malformedEnvRef('a ${A} and ${B_2}'), undefined);
  assert.equal(malformedEnvRef('${lower}'), '${lower}');
  assert.equal(malformedEnvRef('${UNCLOSED'), '${UNCLOSED');
  assert.equal(malformedEnvRef('${}'), '${}');
  assert.equal(malformedEnvRef('${A-B}'), '${A-B}');
  const issues = issuesOf({
    version: 1,
    store: { url: 'postgres://mm:${PG PASS}@db.internal/mm' },
    systems: [{ ...erp, credentials: { apiKey: '${api_key}' } }],
  });
  assert.deepEqual(
    issues.map((i) => i.path),
    ['store.url', 'systems.0.credentials.apiKey'],
  );
  assert.match(issues[1]!.message, /malformed environment reference '\$\{api_key\}'/);
});

void test('system ids are unique', () => {
  const issues = issuesOf({
    version: 1,
    systems: [erp, { id: 'crm', kind: 'crm', baseUrl: 'https://crm.example' }, erp],
  });
  assert.deepEqual(
    issues.map((i) => [i.path, i.message]),
    [['systems.2.id', "duplicate system id 'erp' (first declared at systems[0])"]],
  );
});

void test('routing rules and field ownership must name declared systems', () => {
  const issues = issuesOf({
    version: 1,
    systems: [erp],
    routing: [
      { name: 'eu-orders', when: { event: 'order.created', region: 'eu' }, to: 'erp' },
      { name: 'us-orders', when: { event: 'order.created', country: 'US' }, to: 'legacy-erp' },
      { name: 'eu-orders', when: { event: 'return.requested' }, to: 'erp' },
    ],
    fieldOwnership: { customer: { email: 'erp', phone: 'commerce' } },
  });
  assert.deepEqual(
    issues.map((i) => [i.path, i.message]),
    [
      ['routing.1.to', "routes to undeclared system 'legacy-erp' (declared: erp)"],
      ['routing.2.name', "duplicate routing rule name 'eu-orders' (first used at routing[0])"],
      [
        'fieldOwnership.customer.phone',
        "owner 'commerce' is not a declared system (declared: erp)",
      ],
    ],
  );
});

void test('cross-references are checked even when other parts are invalid', () => {
  const issues = issuesOf({
    version: 1,
    server: { port: 'eighty' },
    systems: [erp],
    routing: [{ name: 'r', when: { event: 'order.created' }, to: 'nowhere' }],
  });
  assert.deepEqual(issues.map((i) => i.path).sort(), ['routing.0.to', 'server.port']);
});

void test('priorities map event names to a class', () => {
  assert.deepEqual(
    EstateConfigSchema.parse({
      version: 1,
      priorities: { 'price.changed': 'deferrable', 'inventory.availability_changed': 'critical' },
    }).priorities,
    { 'price.changed': 'deferrable', 'inventory.availability_changed': 'critical' },
  );
  const issues = issuesOf({
    version: 1,
    priorities: { orderCreated: 'critical', 'order.created': 'urgent' },
  });
  assert.deepEqual(
    issues.map((i) => [i.path, i.code]),
    [
      ['priorities.orderCreated', 'invalid_key'],
      ['priorities.order.created', 'invalid_value'],
    ],
  );
});

void test('wrong types and out-of-range numbers are errors', () => {
  const issues = issuesOf({
    version: 1,
    server: { port: 70000 },
    engine: { roles: ['api', 'scheduler'], workers: 1.5 },
    systems: [{ ...erp, limits: { concurrency: 0, adaptiveConcurrency: 'yes' } }],
  });
  assert.deepEqual(issues.map((i) => i.path).sort(), [
    'engine.roles.1',
    'engine.workers',
    'server.port',
    'systems.0.limits.adaptiveConcurrency',
    'systems.0.limits.concurrency',
  ]);
});

void test('engine and retry consistency', () => {
  assert.deepEqual(
    issuesOf({ version: 1, engine: { roles: ['worker', 'worker'], workers: 0 } }).map(
      (i) => i.path,
    ),
    ['engine.roles.1', 'engine.workers'],
  );
  assert.deepEqual(
    issuesOf({
      version: 1,
      systems: [{ ...erp, retry: { baseDelayMs: 5000, maxDelayMs: 1000 } }],
    }).map((i) => i.path),
    ['systems.0.retry.maxDelayMs'],
  );
  // An api-only process needs no workers.
  assert.equal(issuesOf({ version: 1, engine: { roles: ['api'], workers: 0 } }).length, 0);
});

void test('store urls: sqlite paths and postgres urls', () => {
  assert.deepEqual(parseStoreUrl('sqlite:.middlemart/x.db'), {
    kind: 'sqlite',
    path: '.middlemart/x.db',
  });
  assert.deepEqual(parseStoreUrl('sqlite::memory:'), { kind: 'sqlite', path: ':memory:' });
  assert.deepEqual(parseStoreUrl('postgres://mm@127.0.0.1:5432/mm'), {
    kind: 'postgres',
    url: 'postgres://mm@127.0.0.1:5432/mm',
  });
  assert.ok('error' in parseStoreUrl('sqlite:'));
  // SQLite options are checked as the store reads them, so a bad one is reported before start.
  assert.deepEqual(parseStoreUrl('sqlite:x.db?writer=thread'), { kind: 'sqlite', path: 'x.db' });
  assert.deepEqual(parseStoreUrl('sqlite:x.db?sync=background'), { kind: 'sqlite', path: 'x.db' });
  assert.match(
    (parseStoreUrl('sqlite:x.db?writer=bogus') as { error: string }).error,
    /unsupported sqlite URL option writer=bogus/,
  );
  assert.match(
    (parseStoreUrl('sqlite:x.db?writer=thread&sync=background') as { error: string }).error,
    /sync=background applies to writer=main only/,
  );
  assert.ok('error' in parseStoreUrl('mysql://x/y'));
  assert.ok('error' in parseStoreUrl('postgres://'));
  assert.deepEqual(
    issuesOf({ version: 1, store: { url: 'redis://x' } }).map((i) => i.path),
    ['store.url'],
  );
});

void test('suggested environment names follow the system and key', () => {
  assert.equal(suggestedEnvName('cloud-erp', 'clientSecret'), 'CLOUD_ERP_CLIENT_SECRET');
  assert.equal(suggestedEnvName('crm', 'apiKey'), 'CRM_API_KEY');
  assert.equal(suggestedEnvName('pos2', 'webhookSecret'), 'POS2_WEBHOOK_SECRET');
});

void test('priorities and routing rules name events of the canonical catalogue', () => {
  assert.ok(KNOWN_EVENTS.includes('order.created'));
  const issues = issuesOf({
    version: 1,
    priorities: { 'order.creatd': 'critical', 'price.changed': 'deferrable' },
    systems: [erp],
    routing: [
      { name: 'a', when: { event: 'order.created' }, to: 'erp' },
      { name: 'b', when: { event: 'parcel.teleported' }, to: 'erp' },
    ],
  });
  assert.deepEqual(
    issues.map((i) => [i.path, i.message]),
    [
      [
        'priorities.order.creatd',
        "unknown event 'order.creatd': not in the event catalogue (did you mean 'order.created'?)",
      ],
      ['routing.1.when.event', "unknown event 'parcel.teleported': not in the event catalogue"],
    ],
  );
});
