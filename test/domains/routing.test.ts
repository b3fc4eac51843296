// ERP routing: first match wins, defaults, unreachable / overlapping rules, coexistence of the
// legacy ERP and Tryton, and rule changes taking effect without a restart (audited).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import type { EstateConfig } from '../../src/config/schema.js';
import {
  NoRouteError,
  RoutingRulesError,
  RuleBasedErpRouter,
  analyseRouting,
  orderRoutingFacts,
  type RouteRule,
} from '../../src/domains/routing/index.js';
import type { OrderV1 } from '../../src/canonical/index.js';
import {
  RoutingReloader,
  erpSystemsOf,
  routerFor,
  routingModule,
} from '../../src/wiring/routing.js';
import type { ModuleContext, Services } from '../../src/wiring/module.js';
import { LegacyErpClient } from '../../src/connectors/legacy-erp/client.js';
import { TrytonErp } from '../../src/connectors/tryton/index.js';
import type { ErpPort } from '../../src/ports/erp.js';
import { createLegacyErp } from '../../src/sandbox/legacy-erp/index.js';
import { buildCatalogue } from '../../src/sandbox/cloud-erp/catalogue.js';

const ERPS = { erpSystems: ['legacy-erp', 'tryton', 'cloud-erp'] };

function estate(routing: string): string {
  return [
    'version: 1',
    'systems:',
    '  - id: legacy-erp',
    '    kind: soap-erp',
    '    baseUrl: http://127.0.0.1:7102',
    '    credentials:',
    '      username: middlemart',
    '      password: ${LEGACY_PASSWORD}',
    '  - id: tryton',
    '    kind: tryton',
    '    baseUrl: http://127.0.0.1:8000/tryton/',
    '    credentials:',
    '      username: admin',
    '      password: ${TRYTON_PASSWORD}',
    '    settings: { statusPollIntervalMs: 0 }',
    '  - id: wms',
    '    kind: wms',
    '    baseUrl: http://127.0.0.1:7107',
    'routing:',
    routing,
  ].join('\n');
}

function config(routing: string): EstateConfig {
  const result = parseConfig(estate(routing), 'estate.yaml', {}, { resolveEnv: false });
  assert.ok(result.ok, JSON.stringify(!result.ok && result.issues));
  return result.config;
}

const TWO_UNITS = `
  - name: fashion-to-tryton
    when: { process: [order, return], businessUnit: fashion }
    to: tryton
  - name: inventory-from-legacy
    when: { process: inventory }
    to: legacy-erp
  - name: everything-else-to-legacy
    when: {}
    to: legacy-erp`;

void test('first match wins; the catch-all rule is the default', () => {
  const router = routerFor(config(TWO_UNITS));
  assert.deepEqual(router.route({ process: 'order', businessUnit: 'fashion', country: 'DE' }), {
    system: 'tryton',
    rule: 'fashion-to-tryton',
    reason: "rule 'fashion-to-tryton' (routing[0]) matched: process=order, businessUnit=fashion",
  });
  assert.equal(router.route({ process: 'return', businessUnit: 'fashion' }).system, 'tryton');
  // Inventory of fashion still comes from the legacy ERP: the first rule names only orders and returns.
  assert.deepEqual(router.route({ process: 'inventory', businessUnit: 'fashion' }), {
    system: 'legacy-erp',
    rule: 'inventory-from-legacy',
    reason: "rule 'inventory-from-legacy' (routing[1]) matched: process=inventory",
  });
  const fallback = router.route({ process: 'order', businessUnit: 'home' });
  assert.equal(fallback.system, 'legacy-erp');
  assert.equal(fallback.rule, 'everything-else-to-legacy');
  assert.match(fallback.reason, /no conditions \(default\)/);
});

void test('rules test business unit, country, region, channel, store, process and event', () => {
  const rules: RouteRule[] = [
    { name: 'eu-web', when: { region: 'eu', channel: ['web', 'mobile'] }, to: 'tryton' },
    { name: 'store-7', when: { store: 'STORE-7' }, to: 'cloud-erp' },
    { name: 'de-returns', when: { process: 'return', country: 'DE' }, to: 'tryton' },
    { name: 'updates', when: { event: 'order.updated' }, to: 'cloud-erp' },
    { name: 'rest', when: {}, to: 'legacy-erp' },
  ];
  const router = new RuleBasedErpRouter(rules, ERPS);
  const to = (facts: Parameters<typeof router.route>[0]) => router.route(facts).rule;
  assert.equal(to({ process: 'order', region: 'eu', channel: 'mobile' }), 'eu-web');
  assert.equal(
    to({ process: 'order', region: 'eu', channel: 'store', store: 'STORE-7' }),
    'store-7',
  );
  assert.equal(to({ process: 'return', country: 'DE', channel: 'store' }), 'de-returns');
  assert.equal(
    to({ process: 'order', event: 'order.created', country: 'DE', channel: 'store' }),
    'rest',
  );
  assert.equal(to({ process: 'order', event: 'order.updated' }), 'updates');
  // A caller that names no event is matched by the process of the rule's events.
  assert.equal(to({ process: 'order' }), 'updates');
  assert.equal(to({ process: 'price' }), 'rest');

  const explained = router.explain({
    process: 'order',
    event: 'order.created',
    region: 'us',
    channel: 'web',
  });
  assert.deepEqual(
    explained.evaluated.map((e) => [e.rule, e.matched]),
    [
      ['eu-web', false],
      ['store-7', false],
      ['de-returns', false],
      ['updates', false],
      ['rest', true],
    ],
  );
  assert.deepEqual(
    RuleBasedErpRouter.describeMismatch(explained.evaluated[0]!),
    'region is us, wants eu',
  );
});

void test('the only ERP is the default; with several and no match there is no route', () => {
  const single = new RuleBasedErpRouter([], { erpSystems: ['legacy-erp'] });
  assert.deepEqual(single.route({ process: 'order' }), {
    system: 'legacy-erp',
    rule: 'default',
    reason: "no rule matched; legacy-erp is the estate's only ERP",
  });
  const rules: RouteRule[] = [{ name: 'orders', when: { process: 'order' }, to: 'tryton' }];
  const several = new RuleBasedErpRouter(rules, ERPS);
  assert.throws(
    () => several.route({ process: 'inventory', businessUnit: 'home' }),
    (err: unknown) =>
      err instanceof NoRouteError && /no routing rule matches process=inventory/.test(err.message),
  );
  // Rules to other systems (a WMS) take no part in ERP routing.
  const mixed = new RuleBasedErpRouter(
    [
      { name: 'ship-eu', when: { region: 'eu' }, to: 'wms' },
      { name: 'all', when: {}, to: 'tryton' },
    ],
    ERPS,
  );
  assert.equal(mixed.route({ process: 'order', region: 'eu' }).system, 'tryton');
});

void test('unreachable, overlapping and default-less rules are reported', () => {
  const rules: RouteRule[] = [
    { name: 'de-orders', when: { process: 'order', country: 'DE' }, to: 'tryton' },
    { name: 'web-orders', when: { process: 'order', channel: 'web' }, to: 'cloud-erp' },
    {
      name: 'de-web-orders',
      when: { process: 'order', country: 'DE', channel: 'web' },
      to: 'cloud-erp',
    },
    { name: 'fr-returns', when: { process: 'return', country: 'FR' }, to: 'tryton' },
    { name: 'orders', when: { event: 'order.created' }, to: 'legacy-erp' },
    { name: 'created-again', when: { event: ['order.created'], region: 'eu' }, to: 'tryton' },
    { name: 'web-orders-default', when: { process: 'order' }, to: 'legacy-erp' },
  ];
  const findings = analyseRouting(rules, { erpSystems: new Set(ERPS.erpSystems) });
  assert.deepEqual(
    findings.map((f) => [f.rule, f.severity, f.kind]),
    [
      ['web-orders', 'warning', 'overlap'],
      ['de-web-orders', 'error', 'unreachable'],
      ['fr-returns', 'error', 'no-default'],
      // An order.created from DE or from the web matches both: the earlier rule wins.
      ['orders', 'warning', 'overlap'],
      ['orders', 'warning', 'overlap'],
      ['created-again', 'error', 'unreachable'],
    ],
  );
  assert.match(
    findings[0]!.message,
    /overlaps rule 'de-orders' \(routing\[0\], process=order, country=DE → tryton\)/,
  );
  assert.match(findings[1]!.message, /rule 'de-orders' \(routing\[0\].*comes first/);
  assert.throws(
    () => new RuleBasedErpRouter(rules, ERPS),
    (err: unknown) =>
      err instanceof RoutingRulesError && /de-web-orders: unreachable/.test(err.message),
  );

  // Specific before general to the same or another ERP is the intended shape: no finding.
  assert.deepEqual(
    analyseRouting(
      [
        { name: 'us', when: { event: 'order.created', region: 'us' }, to: 'legacy-erp' },
        { name: 'other', when: { event: 'order.created' }, to: 'cloud-erp' },
      ],
      { erpSystems: new Set(ERPS.erpSystems) },
    ),
    [],
  );
  // Several ERPs and no rule at all: no default.
  const none = analyseRouting([], { erpSystems: new Set(['a', 'b']) });
  assert.deepEqual(
    none.map((f) => f.kind),
    ['no-default'],
  );
});

const ORDER = {
  id: 'ord-1001',
  channel: 'web',
  region: 'eu',
  fulfilment: { method: 'pickup', pickupLocation: 'STORE-7' },
  shippingAddress: { lines: ['1 Rue'], city: 'Paris', country: 'FR' },
} as unknown as OrderV1;

void test('an order gives its routing facts', () => {
  assert.deepEqual(orderRoutingFacts(ORDER, { businessUnit: 'home' }), {
    process: 'order',
    event: 'order.created',
    channel: 'web',
    region: 'eu',
    businessUnit: 'home',
    country: 'FR',
    store: 'STORE-7',
  });
});

function fakeContext(
  cfg: EstateConfig,
  audits: unknown[],
): {
  ctx: ModuleContext;
  actions: string[];
  services: Services;
} {
  const actions: string[] = [];
  const services: Services = { erps: new Map() };
  const ctx = {
    config: cfg,
    services,
    logger: pino({ level: 'silent' }),
    registerAction: (destination: string, action: string) =>
      actions.push(`${destination} ${action}`),
    onAcknowledged: () => undefined,
    audit: async (entry: unknown) => void audits.push(entry),
    now: () => Date.now(),
  } as unknown as ModuleContext;
  return { ctx, actions, services };
}

void test('coexistence: two business units each reach their ERP; a config change moves one without a restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'middlemart-routing-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'estate.yaml');
  const homeOnLegacy = `
  - name: fashion-to-tryton
    when: { businessUnit: fashion, process: [order, return] }
    to: tryton
  - name: home-to-legacy
    when: { businessUnit: home }
    to: legacy-erp
  - name: default
    when: {}
    to: legacy-erp`;
  writeFileSync(file, estate(homeOnLegacy));
  const cfg = config(homeOnLegacy);
  assert.deepEqual(erpSystemsOf(cfg), ['legacy-erp', 'tryton']);

  const audits: Array<{ action: string; detail?: Record<string, unknown> }> = [];
  const { ctx, actions, services } = fakeContext(cfg, audits);
  process.env.MIDDLEMART_CONFIG_FILE = file;
  t.after(() => delete process.env.MIDDLEMART_CONFIG_FILE);
  const instance = await routingModule.start(ctx);
  t.after(() => instance.stop?.());
  assert.deepEqual(actions, ['tryton erp.post-sales-order', 'tryton erp.post-credit']);
  assert.equal(services.erps.get('tryton')?.system, 'tryton');
  const router = services.erpRouter!;
  const facts = (businessUnit: string) => orderRoutingFacts(ORDER, { businessUnit });
  assert.equal(router.route(facts('fashion')).system, 'tryton');
  assert.equal(router.route(facts('home')).system, 'legacy-erp');

  // Move home to Tryton by editing the file: the watcher reloads the rules.
  instance.startBackground?.();
  const homeOnTryton = homeOnLegacy.replace(
    'when: { businessUnit: home }\n    to: legacy-erp',
    'when: { businessUnit: home }\n    to: tryton',
  );
  writeFileSync(file, estate(homeOnTryton));
  for (let i = 0; i < 200 && router.route(facts('home')).system !== 'tryton'; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(router.route(facts('home')).system, 'tryton', JSON.stringify(audits));
  assert.equal(router.route(facts('fashion')).system, 'tryton');
  const applied = audits.find((a) => a.action === 'routing.rules-changed');
  assert.ok(applied, JSON.stringify(audits));
  assert.deepEqual(applied.detail?.changed, ['home-to-legacy']);
});

void test('a faulty rule change is refused and audited; the rules in force stay', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'middlemart-routing-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'estate.yaml');
  const cfg = config(TWO_UNITS);
  const router = routerFor(cfg);
  const audits: Array<{ action: string; detail?: Record<string, unknown> }> = [];
  const reloader = new RoutingReloader(router, cfg, {
    audit: async (e) => void audits.push(e),
    logger: pino({ level: 'silent' }),
  });

  writeFileSync(file, estate(TWO_UNITS));
  assert.deepEqual(await reloader.reload(file), { outcome: 'unchanged' });

  // A catch-all first shadows every later rule.
  const shadowed = `
  - name: everything-to-tryton
    when: {}
    to: tryton
${TWO_UNITS}`;
  writeFileSync(file, estate(shadowed));
  const refused = await reloader.reload(file);
  assert.equal(refused.outcome, 'refused');
  assert.match(
    (refused as { reason: string }).reason,
    /fashion-to-tryton: unreachable: rule 'everything-to-tryton'/,
  );
  assert.equal(router.route({ process: 'order', businessUnit: 'home' }).system, 'legacy-erp');

  writeFileSync(file, 'version: 1\nrouting: [ { name: x } ]\n');
  assert.equal((await reloader.reload(file)).outcome, 'refused');
  assert.deepEqual(
    audits.map((a) => a.action),
    ['routing.rules-refused', 'routing.rules-refused'],
  );

  const moved = TWO_UNITS.replace('businessUnit: fashion', 'businessUnit: [fashion, home]');
  writeFileSync(file, estate(moved));
  const applied = await reloader.reload(file);
  assert.equal(applied.outcome, 'applied');
  assert.equal(router.route({ process: 'order', businessUnit: 'home' }).system, 'tryton');
  assert.equal(audits.at(-1)?.action, 'routing.rules-changed');
});

const TRYTON_URL = process.env.TRYTON_URL;

void test(
  'coexistence with real ERPs: the sandbox legacy ERP and Tryton each book their business unit; a config change moves one',
  { skip: TRYTON_URL ? false : 'TRYTON_URL is not set (start ../shared/tryton/start-tryton.sh)' },
  async (t) => {
    const legacy = createLegacyErp({ password: 'coexist-pw' });
    const legacyUrl = await legacy.listen();
    t.after(() => legacy.close());
    const erps = new Map<string, ErpPort>([
      [
        'legacy-erp',
        new LegacyErpClient({
          system: 'legacy-erp',
          baseUrl: legacyUrl,
          username: 'middlemart',
          password: 'coexist-pw',
        }),
      ],
      [
        'tryton',
        new TrytonErp({ system: 'tryton', url: TRYTON_URL!, username: 'admin', password: 'admin' }),
      ],
    ]);
    // Each ERP's own item for the same product (what the item cross-reference resolves).
    const legacySku = buildCatalogue({ seed: 1 }).items[0]!.itemId;
    const itemFor = (system: string) => (system === 'tryton' ? 'SKU-1001' : legacySku);

    const dir = mkdtempSync(join(tmpdir(), 'middlemart-coexist-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'estate.yaml');
    const rules = (homeTo: string) => `
  - name: fashion-to-tryton
    when: { businessUnit: fashion, process: [order, return] }
    to: tryton
  - name: home
    when: { businessUnit: home }
    to: ${homeTo}
  - name: default
    when: {}
    to: legacy-erp`;
    writeFileSync(file, estate(rules('legacy-erp')));
    const cfg = config(rules('legacy-erp'));
    const router = routerFor(cfg);
    const reloader = new RoutingReloader(router, cfg, {
      audit: async () => undefined,
      logger: pino({ level: 'silent' }),
    });

    const run = Date.now().toString(36);
    // The channel's side: the same call for every order, whatever ERP is behind it.
    const book = async (id: string, businessUnit: string) => {
      const decision = router.route(orderRoutingFacts(ORDER, { businessUnit }));
      const booking = await erps.get(decision.system)!.postSalesOrder({
        externalReference: id,
        currency: 'USD',
        // Today: Tryton checks the forecast stock at the sale date (seeded today or before).
        orderDate: new Date().toISOString(),
        party: { customerId: `cust-${id}`, name: 'Coexistence Test', email: `${id}@example.com` },
        shipTo: { line1: '1 Main Street', city: 'Springfield', postalCode: '12345' },
        lines: [{ sku: itemFor(decision.system), quantity: 1, unitPriceMinor: 1999 }],
      });
      return { decision, booking };
    };

    const fashion = await book(`fa-${run}`, 'fashion');
    const home1 = await book(`h1-${run}`, 'home');
    assert.equal(fashion.decision.system, 'tryton');
    assert.equal(home1.decision.system, 'legacy-erp');
    assert.ok(await erps.get('tryton')!.findSalesOrder(`fa-${run}`));
    assert.equal(await erps.get('tryton')!.findSalesOrder(`h1-${run}`), undefined);
    assert.deepEqual(
      legacy.orders().map((o) => o.externalReference),
      [`h1-${run}`],
    );

    // Home moves to Tryton by a config change; its next order goes there, earlier ones stay.
    writeFileSync(file, estate(rules('tryton')));
    assert.equal((await reloader.reload(file)).outcome, 'applied');
    const home2 = await book(`h2-${run}`, 'home');
    assert.equal(home2.decision.system, 'tryton');
    const inTryton = await erps.get('tryton')!.findSalesOrder(`h2-${run}`);
    assert.ok(inTryton && ['confirmed', 'processing'].includes(inTryton.state));
    assert.deepEqual(
      legacy.orders().map((o) => o.externalReference),
      [`h1-${run}`],
    );
  },
);
