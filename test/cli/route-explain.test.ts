// `middlemart route explain <order.json>` and the routing checks of `middlemart config validate`.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runBin, runInProcess } from './helpers.js';

function estate(routing: string): string {
  return [
    'version: 1',
    'systems:',
    '  - id: legacy-erp',
    '    kind: soap-erp',
    '    baseUrl: http://127.0.0.1:7102',
    '  - id: tryton',
    '    kind: tryton',
    '    baseUrl: http://127.0.0.1:8000/tryton/',
    'routing:',
    routing,
  ].join('\n');
}

const RULES = `  - name: us-orders-to-legacy
    when: { process: order, region: us }
    to: legacy-erp
  - name: fashion-eu-to-tryton
    when: { businessUnit: fashion, region: eu }
    to: tryton
  - name: default
    when: {}
    to: legacy-erp`;

const ORDER = {
  id: 'ord-7',
  channel: 'web',
  externalIds: [],
  customer: { email: 'a@example.com' },
  currency: 'EUR',
  pricesIncludeTax: true,
  lines: [],
  fulfilment: { method: 'ship' },
  shippingAddress: { lines: ['Hauptstr. 1'], city: 'Berlin', country: 'DE' },
  placedAt: '2026-11-28T08:00:00Z',
  region: 'eu',
};

function setup(t: { after: (fn: () => void) => void }) {
  const dir = mkdtempSync(join(tmpdir(), 'middlemart-route-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  return { file };
}

void test('route explain names the rule, the ERP and why earlier rules did not match', async (t) => {
  const { file } = setup(t);
  const config = file('estate.yaml', estate(RULES));
  const order = file('order.json', JSON.stringify({ businessUnit: 'fashion', order: ORDER }));
  const result = await runInProcess(['route', 'explain', order, '--config', config]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(
    result.stdout,
    [
      'order ord-7: process=order, event=order.created, channel=web, region=eu, businessUnit=fashion, country=DE',
      '  routing[0] us-orders-to-legacy (process=order, region=us) → legacy-erp: no (region is eu, wants us)',
      '  routing[1] fashion-eu-to-tryton (businessUnit=fashion, region=eu) → tryton: MATCH',
      "→ tryton by rule fashion-eu-to-tryton: rule 'fashion-eu-to-tryton' (routing[1]) matched: businessUnit=fashion, region=eu",
      '',
    ].join('\n'),
  );

  // The same order of another business unit (given on the command line) falls to the default.
  const plain = file('plain.json', JSON.stringify(ORDER));
  const home = await runInProcess([
    'route',
    'explain',
    plain,
    '--config',
    config,
    '--business-unit',
    'home',
    '--json',
  ]);
  assert.equal(home.code, 0, home.stderr);
  const parsed = JSON.parse(home.stdout) as {
    decision: { system: string; rule: string };
    evaluated: Array<{ rule: string; matched: boolean }>;
  };
  assert.deepEqual(parsed.decision.system, 'legacy-erp');
  assert.deepEqual(parsed.decision.rule, 'default');
  assert.deepEqual(
    parsed.evaluated.map((e) => [e.rule, e.matched]),
    [
      ['us-orders-to-legacy', false],
      ['fashion-eu-to-tryton', false],
      ['default', true],
    ],
  );
});

void test('route explain: no route is exit 1, a bad file exit 2; runs as the bin', async (t) => {
  const { file } = setup(t);
  const noDefault = file(
    'estate.yaml',
    estate(`  - name: orders
    when: { process: order }
    to: tryton`),
  );
  const facts = file('facts.json', JSON.stringify({ process: 'inventory', businessUnit: 'home' }));
  const none = await runInProcess(['route', 'explain', facts, '--config', noDefault]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no routing rule matches process=inventory, businessUnit=home/);

  const bad = file('bad.json', JSON.stringify({ hello: 'world' }));
  const refused = await runInProcess(['route', 'explain', bad, '--config', noDefault]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /neither an order/);

  const config = file('rules.yaml', estate(RULES));
  const order = file('order.json', JSON.stringify({ ...ORDER, region: 'us' }));
  const bin = await runBin(['route', 'explain', order, '--config', config]);
  assert.equal(bin.code, 0, bin.stderr);
  assert.match(bin.stdout, /→ legacy-erp by rule us-orders-to-legacy/);
});

void test('config validate reports unreachable, overlapping and default-less rules', async (t) => {
  const { file } = setup(t);
  const shadowed = file(
    'shadowed.yaml',
    estate(`  - name: all-orders
    when: { process: order }
    to: legacy-erp
  - name: de-orders
    when: { process: order, country: DE }
    to: tryton
  - name: fr-returns
    when: { process: return, country: FR }
    to: tryton
  - name: web
    when: { channel: web }
    to: tryton`),
  );
  const result = await runInProcess(['config', 'validate', shadowed]);
  assert.equal(result.code, 2);
  assert.equal(
    result.stderr,
    [
      `${shadowed}:13:5  routing[1]  unreachable: rule 'all-orders' (routing[0], process=order) comes first and takes everything 'de-orders' matches`,
      `${shadowed}:16:5  routing[2]  no default behind rule 'fr-returns': add a later rule for the same process/event without businessUnit, country, region, channel or store conditions (or a rule with 'when: {}' routing everything else)`,
      `${shadowed}:19:5  routing[3]  warning: overlaps rule 'all-orders' (routing[0], process=order → legacy-erp): a transaction matching both goes to legacy-erp, not tryton, because 'all-orders' comes first`,
      `${shadowed}:19:5  routing[3]  no default behind rule 'web': add a later rule for the same process/event without businessUnit, country, region, channel or store conditions (or a rule with 'when: {}' routing everything else)`,
      `${shadowed}: invalid (3 errors)`,
      '',
    ].join('\n'),
  );

  const fine = file('fine.yaml', estate(RULES));
  const ok = await runInProcess(['config', 'validate', fine]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stderr, '');
  assert.match(ok.stdout, /OK \(2 systems, 3 routing rules, 0 owned fields\)/);
});
