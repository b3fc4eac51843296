// The published contracts: schemas/ is what `npm run schemas` generates (byte for byte), the
// JSON Schemas agree with the Zod schemas on real samples, the AsyncAPI document covers the
// catalogue, and the current v1 schemas stay compatible with the published v1 baseline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { createRequire } from 'node:module';
import {
  catalogue,
  checkCompatibility,
  contractFiles,
  eventByName,
  makeEvent,
} from '../../src/canonical/index.js';
import { sampleCustomer, sampleOrder, samplePrice, sampleProduct } from './fixtures.js';

const SCHEMAS = resolve('schemas');
const PUBLISHED = join(SCHEMAS, 'published');

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path) : [path];
  });
}

function generatedIn(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const file of listFiles(dir)) {
    const rel = relative(dir, file).split('\\').join('/');
    if (!rel.startsWith('published/')) out.set(rel, readFileSync(file, 'utf8'));
  }
  return out;
}

const readJson = (path: string): Record<string, unknown> =>
  JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

void test('schemas/ is exactly what `npm run schemas` generates', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'middlemart-schemas-'));
  try {
    const run = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'scripts/generate-schemas.ts', '--out', tmp],
      { encoding: 'utf8' },
    );
    assert.equal(run.status, 0, run.stderr);
    const fresh = generatedIn(tmp);
    const committed = generatedIn(SCHEMAS);
    const hint = 'the canonical schemas changed: run `npm run schemas` and commit schemas/';
    assert.deepEqual([...committed.keys()].sort(), [...fresh.keys()].sort(), hint);
    for (const [path, text] of fresh) {
      assert.ok(committed.get(path) === text, `${path} is out of date; ${hint}`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

void test('generation is deterministic and well-formed', () => {
  const a = contractFiles();
  const b = contractFiles();
  assert.deepEqual([...a.entries()], [...b.entries()]);
  for (const [path, text] of a) {
    assert.ok(text.endsWith('}\n'), `${path} ends with a newline`);
    const doc = JSON.parse(text) as Record<string, unknown>;
    if (path.startsWith('json/')) {
      assert.equal(doc.$schema, 'https://json-schema.org/draft/2020-12/schema', path);
      assert.match(
        String(doc.$id),
        /^https:\/\/middlemart\.dev\/schemas\/json\/.+\.v\d+\.schema\.json$/,
      );
      assert.ok(
        String(doc.$id).endsWith(path.slice('json'.length)),
        `${path} $id matches its path`,
      );
      assert.equal(typeof doc.title, 'string', path);
    }
  }
  assert.ok(a.has('json/order.v1.schema.json'));
  assert.ok(a.has('json/events/inventory.adjusted.v1.schema.json'));
  assert.ok(a.has('asyncapi.json'));
});

void test('generated JSON Schemas describe their fields', () => {
  const order = readJson(join(SCHEMAS, 'json/order.v1.schema.json'));
  const defs = order.$defs as Record<string, Record<string, unknown>>;
  assert.match(String(defs.Money?.description), /minor units/);
  const line = defs.OrderLine?.properties as Record<string, Record<string, unknown>>;
  assert.match(String(line.quantity?.description), /greater than zero/);
  assert.equal(line.quantity?.type, 'integer');
  assert.ok((defs.CurrencyCode?.enum as string[]).includes('EUR'));
  assert.ok(!(defs.CountryCode?.enum as string[]).includes('UK'));
});

// Ajv arrives with Fastify; it is used here only to check the published documents.
const require = createRequire(import.meta.url);
type AjvValidate = ((data: unknown) => boolean) & { errors?: Array<{ instancePath: string }> };
interface AjvInstance {
  compile(schema: object): AjvValidate;
}
function ajv(): AjvInstance {
  const Ajv2020 = (require('ajv/dist/2020') as { default: new (o: object) => AjvInstance }).default;
  const addFormats = (require('ajv-formats') as { default: (a: AjvInstance) => void }).default;
  const instance = new Ajv2020({ strict: false, allErrors: true });
  addFormats(instance);
  return instance;
}

void test('the JSON Schemas accept the valid samples and reject what Zod rejects', () => {
  const compile = (path: string) => ajv().compile(readJson(join(SCHEMAS, path)));
  const order = compile('json/order.v1.schema.json');
  assert.ok(order(sampleOrder()), JSON.stringify(order.errors));
  assert.ok(compile('json/customer.v1.schema.json')(sampleCustomer()));
  assert.ok(compile('json/price.v1.schema.json')(samplePrice()));
  assert.ok(compile('json/product.v1.schema.json')(sampleProduct()));

  const bad: Array<[string, (o: ReturnType<typeof sampleOrder>) => void, string]> = [
    ['zero quantity', (o) => (o.lines[0]!.quantity = 0), '/lines/0/quantity'],
    [
      'unknown currency',
      (o) => (o.lines[0]!.unitPrice.currency = 'XXX'),
      '/lines/0/unitPrice/currency',
    ],
    ['UK is not ISO 3166', (o) => (o.shippingAddress!.country = 'UK'), '/shippingAddress/country'],
    ['offset time', (o) => (o.placedAt = '2025-03-01T13:00:00+01:00'), '/placedAt'],
    ['phone', (o) => (o.shippingAddress!.phone = '0301234'), '/shippingAddress/phone'],
    ['extra field', (o) => Object.assign(o, { extra: 1 }), ''],
  ];
  for (const [what, mutate, path] of bad) {
    const value = sampleOrder();
    mutate(value);
    assert.equal(eventByName('order.created').data.safeParse(value).success, false, what);
    assert.equal(order(value), false, what);
    assert.ok(
      order.errors?.some((e) => e.instancePath === path),
      `${what}: ${JSON.stringify(order.errors?.map((e) => e.instancePath))}`,
    );
  }
});

void test('cross-field rules that JSON Schema can state are in the JSON Schemas', () => {
  const compile = (path: string) => ajv().compile(readJson(join(SCHEMAS, path)));
  const price = compile('json/price.v1.schema.json');
  const unscoped: Record<string, unknown> = { ...samplePrice() };
  delete unscoped.channel;
  delete unscoped.storeGroup;
  assert.equal(price(unscoped), false);
  assert.equal(price({ ...unscoped, storeGroup: 'de-urban' }), true);

  const adjusted = compile('json/events/inventory.adjusted.v1.schema.json');
  const base = {
    sku: 'SKU-RED-M',
    location: 'store-berlin-01',
    reason: 'cycle_count',
    sourceSystem: 'wms',
    sourceSequence: 1,
    sourceTimestamp: '2025-03-01T12:00:00Z',
  };
  assert.equal(adjusted({ ...base, count: 4 }), true);
  assert.equal(adjusted({ ...base, delta: -1 }), true);
  assert.equal(adjusted({ ...base, delta: -1, count: 4 }), false);
  assert.equal(adjusted(base), false);
});

function resolvePointer(doc: unknown, ref: string): unknown {
  let node = doc;
  for (const raw of ref.replace(/^#\//, '').split('/')) {
    node = (node as Record<string, unknown> | undefined)?.[
      raw.replace(/~1/g, '/').replace(/~0/g, '~')
    ];
  }
  return node;
}

function refsIn(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((v) => refsIn(v, out));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else refsIn(v, out);
    }
  }
  return out;
}

void test('the AsyncAPI document covers the catalogue and its references resolve', () => {
  const doc = readJson(join(SCHEMAS, 'asyncapi.json'));
  assert.equal(doc.asyncapi, '3.0.0');
  const channels = doc.channels as Record<string, Record<string, unknown>>;
  const messages = (doc.components as Record<string, Record<string, Record<string, unknown>>>)
    .messages!;
  assert.equal(Object.keys(channels).length, catalogue.length);
  for (const e of catalogue) {
    const key = `${e.name}.v${e.version}`;
    assert.equal(channels[key]?.address, e.type);
    assert.equal(messages[key]?.['x-middlemart-priority-class'], e.priority);
    assert.equal(messages[key]?.['x-middlemart-partition-key'], e.partitionKeyDoc);
    assert.match(String(channels[key]?.description), new RegExp(e.priority));
  }
  const refs = refsIn(doc);
  assert.ok(refs.length > catalogue.length * 3);
  for (const ref of new Set(refs)) {
    assert.ok(ref.startsWith('#/'), ref);
    assert.notEqual(resolvePointer(doc, ref), undefined, `unresolved ${ref}`);
  }
  const payload = ajv().compile({
    ...(messages['order.created.v1']!.payload as object),
    components: doc.components,
  });
  const event = JSON.parse(
    JSON.stringify(makeEvent('order.created', sampleOrder(), { source: '/middlemart/api' })),
  ) as { data: ReturnType<typeof sampleOrder> };
  assert.ok(payload(event), JSON.stringify(payload.errors));
  event.data.lines[0]!.quantity = 0;
  assert.equal(payload(event), false);
});

/** `order.v1.schema.json` → `order.v<n>.schema.json` for n above the given version. */
function hasNewerVersion(relPath: string): boolean {
  const m = /^(.*)\.v(\d+)\.schema\.json$/.exec(relPath);
  if (!m) return false;
  const current = new Set(generatedIn(SCHEMAS).keys());
  return [...current].some((p) => {
    const n = new RegExp(
      `^json/${m[1]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.v(\\d+)\\.schema\\.json$`,
    ).exec(p);
    return n !== null && Number(n[1]) > Number(m[2]);
  });
}

void test('current schemas stay compatible with the published v1 contracts', () => {
  const published = listFiles(PUBLISHED);
  assert.ok(published.length > 0, 'schemas/published/ holds the published baseline');
  const failures: string[] = [];
  for (const file of published) {
    const rel = relative(PUBLISHED, file).split('\\').join('/'); // v1/order.v1.schema.json
    const inner = rel.split('/').slice(1).join('/'); // order.v1.schema.json
    const current = join(SCHEMAS, 'json', inner);
    if (!existsSync(current)) {
      if (!hasNewerVersion(inner)) {
        failures.push(`${inner}: published schema disappeared without a newer version`);
      }
      continue;
    }
    for (const b of checkCompatibility(readJson(file), readJson(current))) {
      failures.push(`${inner} at ${b.path}: ${b.kind}: ${b.message}`);
    }
  }
  assert.deepEqual(
    failures,
    [],
    'a published contract was broken; make the change additive or publish a new version ' +
      '(bump the model/event version so a new .v<n> schema is generated)',
  );
});

void test('the checker catches breaks in the real published order schema', () => {
  const published = readJson(join(PUBLISHED, 'v1/order.v1.schema.json'));
  const defsOf = (s: Record<string, unknown>) => s.$defs as Record<string, Record<string, unknown>>;

  const noNotes = structuredClone(published);
  delete (noNotes.properties as Record<string, unknown>).notes;
  assert.deepEqual(
    checkCompatibility(published, noNotes).map((b) => [b.kind, b.path]),
    [['field-removed', 'notes']],
  );

  const noMarketplace = structuredClone(published);
  defsOf(noMarketplace).SalesChannel!.enum = ['web', 'mobile', 'store'];
  assert.deepEqual(
    checkCompatibility(published, noMarketplace).map((b) => [b.kind, b.path]),
    [['enum-narrowed', 'channel']],
  );

  const statusRequired = structuredClone(published);
  (statusRequired.required as string[]).push('status');
  assert.deepEqual(
    checkCompatibility(published, statusRequired).map((b) => b.kind),
    ['field-became-required'],
  );

  const additive = structuredClone(published);
  (additive.properties as Record<string, unknown>).giftMessage = { type: 'string' };
  assert.deepEqual(checkCompatibility(published, additive), []);
});

void test('every generated schema has been published', () => {
  const unpublished = [...generatedIn(SCHEMAS).keys()]
    .filter((p) => p.startsWith('json/'))
    .filter((p) => {
      const version = /\.v(\d+)\.schema\.json$/.exec(p)?.[1];
      return !existsSync(join(PUBLISHED, `v${version}`, p.slice('json/'.length)));
    });
  assert.deepEqual(unpublished, [], 'run `npm run schemas -- --publish` to publish new schemas');
});
