// Loading: every issue with its YAML path, line and column; env references; the store override.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  defaultConfigPath,
  formatIssue,
  formatPath,
  loadConfig,
  loadConfigSync,
  parseConfig,
  requireConfig,
  type ConfigIssue,
  type LoadResult,
} from '../../src/config/load.js';

function issues(result: LoadResult): ConfigIssue[] {
  assert.equal(result.ok, false, 'expected the config to be invalid');
  return result.ok ? [] : result.issues;
}

function only(result: LoadResult): ConfigIssue {
  const found = issues(result);
  assert.equal(found.length, 1, JSON.stringify(found));
  return found[0]!;
}

const check = (text: string) => parseConfig(text, 'estate.yaml', {}, { resolveEnv: false });
const resolve = (text: string, env: Record<string, string>) =>
  parseConfig(text, 'estate.yaml', env);

/** Every variable the built-in config refers to, each set to a recognisable value. */
function sandboxEnv(): Record<string, string> {
  const text = readFileSync(defaultConfigPath(), 'utf8');
  const names = new Set([...text.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1]!));
  return Object.fromEntries([...names].map((n) => [n, `value-of-${n}`]));
}

void test('the built-in middlemart.yaml validates without any environment', async () => {
  assert.ok(existsSync(defaultConfigPath()));
  const result = await loadConfig(undefined, {}, { resolveEnv: false });
  assert.ok(result.ok, JSON.stringify(!result.ok && result.issues));
  assert.equal(result.file, defaultConfigPath());
  assert.equal(result.config.systems.length, 9);
  assert.equal(
    result.config.systems[0]!.credentials.clientSecret,
    '${SANDBOX_CLOUD_ERP_CLIENT_SECRET}',
  );
});

void test('the built-in middlemart.yaml resolves once its variables are set', () => {
  const env = sandboxEnv();
  assert.ok(Object.keys(env).length >= 6);
  const result = loadConfigSync(undefined, env);
  assert.ok(result.ok, JSON.stringify(!result.ok && result.issues));
  assert.equal(
    result.config.systems[0]!.credentials.clientSecret,
    'value-of-SANDBOX_CLOUD_ERP_CLIENT_SECRET',
  );
  assert.equal(result.config.systems[0]!.credentials.clientId, 'middlemart');
});

void test('a misspelt key points at the key itself and suggests the right one', () => {
  const issue = only(
    check(['version: 1', 'server:', '  host: 127.0.0.1', '  prot: 8080'].join('\n')),
  );
  assert.deepEqual(issue, {
    path: 'server.prot',
    line: 4,
    column: 3,
    message: "unknown key 'prot' (did you mean 'port'?)",
  });
});

void test('a missing key points at its parent', () => {
  const text = [
    'version: 1',
    'systems:',
    '  - id: erp',
    '    kind: rest-erp',
    '    baseUrl: https://erp.example.com',
    '  - id: crm',
    '    kind: crm',
  ].join('\n');
  assert.deepEqual(only(check(text)), {
    path: 'systems[1].baseUrl',
    line: 6,
    column: 5,
    message: "missing required key 'baseUrl'",
  });
  const routing = [
    'version: 1',
    'systems: [{ id: erp, kind: tryton, baseUrl: "http://127.0.0.1:8000" }]',
    'routing:',
    '  - name: r1',
    '    to: erp',
  ].join('\n');
  assert.deepEqual(only(check(routing)), {
    path: 'routing[0].when',
    line: 4,
    column: 5,
    message: "missing required key 'when'",
  });
  assert.deepEqual(only(check('server: {}\n')), {
    path: 'version',
    line: 1,
    column: 1,
    message: "missing required key 'version'",
  });
});

void test('wrong types point at the value and say what was expected', () => {
  const text = [
    'version: 1',
    'server:',
    '  port: "eighty"',
    'engine:',
    '  roles: api',
    'sandbox:',
    '  enabled: yes please',
  ].join('\n');
  assert.deepEqual(issues(check(text)), [
    {
      path: 'server.port',
      line: 3,
      column: 9,
      message: "expected a number, got the string 'eighty'",
    },
    { path: 'engine.roles', line: 5, column: 10, message: "expected a list, got the string 'api'" },
    {
      path: 'sandbox.enabled',
      line: 7,
      column: 12,
      message: "expected true or false, got the string 'yes please'",
    },
  ]);
});

void test('a wrongly typed credential is reported without echoing its value', () => {
  const text = [
    'version: 1',
    'systems:',
    '  - id: crm',
    '    kind: crm',
    '    baseUrl: https://crm.example.com',
    '    credentials:',
    '      apiKey: 918273645',
  ].join('\n');
  const issue = only(check(text));
  assert.equal(issue.path, 'systems[0].credentials.apiKey');
  assert.equal(issue.line, 7);
  assert.doesNotMatch(issue.message, /918273645/);
});

void test('duplicate system ids and routing to an undeclared system name the exact place', () => {
  const text = [
    'version: 1',
    'systems:',
    '  - id: erp',
    '    kind: rest-erp',
    '    baseUrl: https://erp.example.com',
    '  - id: erp',
    '    kind: soap-erp',
    '    baseUrl: https://legacy.example.com',
    'routing:',
    '  - name: orders',
    '    when: { event: order.created }',
    '    to: legacy-erp',
    'fieldOwnership:',
    '  customer:',
    '    email: commerce',
  ].join('\n');
  assert.deepEqual(issues(check(text)), [
    {
      path: 'systems[1].id',
      line: 6,
      column: 9,
      message: "duplicate system id 'erp' (first declared at systems[0])",
    },
    {
      path: 'routing[0].to',
      line: 12,
      column: 9,
      message: "routes to undeclared system 'legacy-erp' (declared: erp)",
    },
    {
      path: 'fieldOwnership.customer.email',
      line: 15,
      column: 12,
      message: "owner 'commerce' is not a declared system (declared: erp)",
    },
  ]);
});

void test('invalid record keys point at the key; odd keys are quoted in the path', () => {
  const text = [
    'version: 1',
    'priorities:',
    '  price.changed: deferrable',
    '  Order-Created: critical',
  ].join('\n');
  const issue = only(check(text));
  assert.equal(issue.path, 'priorities["Order-Created"]');
  assert.equal(issue.line, 4);
  assert.equal(issue.column, 3);
  assert.match(
    issue.message,
    /invalid key 'Order-Created': event names look like domain\.event_name/,
  );
});

void test('an unknown event in priorities points at the key', () => {
  const issue = only(check(['version: 1', 'priorities:', '  price.chnged: deferrable'].join('\n')));
  assert.deepEqual(issue, {
    path: 'priorities["price.chnged"]',
    line: 3,
    column: 3,
    message:
      "unknown event 'price.chnged': not in the event catalogue (did you mean 'price.changed'?)",
  });
});

void test('enum values get a suggestion', () => {
  const text = [
    'version: 1',
    'systems:',
    '  - { id: s, kind: shopfy, baseUrl: "https://s.example" }',
  ].join('\n');
  const issue = only(check(text));
  assert.equal(issue.path, 'systems[0].kind');
  assert.equal(issue.line, 3);
  assert.match(issue.message, /not one of: rest-erp, .*\(did you mean 'shopify'\?\)$/);
});

void test('YAML syntax errors are reported with their line', () => {
  const bad = [
    'version: 1',
    'systems:',
    '  - id: erp',
    '    kind: [rest-erp',
    'server:',
    '  port: 1',
  ].join('\n');
  const found = issues(check(bad));
  assert.ok(found.length >= 1);
  assert.equal(found[0]!.path, '');
  assert.ok(found[0]!.line >= 4, JSON.stringify(found));
  assert.match(found[0]!.message, /^YAML: /);

  const dup = only(check(['version: 1', 'server:', '  port: 1', '  port: 2'].join('\n')));
  assert.equal(dup.line, 4);
  assert.match(dup.message, /^YAML: .*unique/i);

  const tab = issues(check('version: 1\nserver:\n\tport: 1\n'));
  assert.equal(tab[0]!.line, 3);
});

void test('an empty file or a top-level list is reported', () => {
  assert.match(only(check('')).message, /expected a mapping at the top of the file/);
  assert.match(only(check('- a\n- b\n')).message, /expected a mapping at the top of the file/);
});

void test('every error is reported, not just the first, in file order', () => {
  const text = [
    'version: 1',
    'server:',
    '  port: -1',
    'engine:',
    '  leaseSecs: 30',
    'systems:',
    '  - id: Bad_Id',
    '    kind: pos',
    '    baseUrl: http://',
    '    credentials:',
    '      apiKey: plain-text',
  ].join('\n');
  const found = issues(check(text));
  assert.deepEqual(
    found.map((i) => [i.path, i.line]),
    [
      ['server.port', 3],
      ['engine.leaseSecs', 5],
      ['systems[0].id', 7],
      ['systems[0].baseUrl', 9],
      ['systems[0].credentials.apiKey', 11],
    ],
  );
});

const withRefs = [
  'version: 1',
  'store:',
  '  url: postgres://mm:${PG_PASSWORD}@127.0.0.1:5432/mm',
  'systems:',
  '  - id: erp',
  '    kind: rest-erp',
  '    baseUrl: ${ERP_URL}',
  '    credentials:',
  '      clientId: middlemart',
  '      clientSecret: ${ERP_SECRET}',
].join('\n');

void test('environment references are resolved', () => {
  const result = resolve(withRefs, {
    PG_PASSWORD: 'pw',
    ERP_URL: 'https://erp.example.com',
    ERP_SECRET: 's3cret',
  });
  assert.ok(result.ok, JSON.stringify(!result.ok && result.issues));
  assert.equal(result.config.store.url, 'postgres://mm:pw@127.0.0.1:5432/mm');
  assert.equal(result.config.systems[0]!.baseUrl, 'https://erp.example.com');
  assert.deepEqual(result.config.systems[0]!.credentials, {
    clientId: 'middlemart',
    clientSecret: 's3cret',
  });
});

void test('a missing variable names the path and the variable; checking alone needs none', () => {
  assert.deepEqual(issues(resolve(withRefs, { ERP_URL: 'https://erp.example.com' })), [
    {
      path: 'store.url',
      line: 3,
      column: 8,
      message: 'environment variable PG_PASSWORD is not set (referenced as ${PG_PASSWORD})',
    },
    {
      path: 'systems[0].credentials.clientSecret',
      line: 10,
      column: 21,
      message: 'environment variable ERP_SECRET is not set (referenced as ${ERP_SECRET})',
    },
  ]);
  const checked = check(withRefs);
  assert.ok(checked.ok);
  assert.equal(checked.config.systems[0]!.credentials.clientSecret, '${ERP_SECRET}');
});

void test('a resolved baseUrl must still be an http(s) URL', () => {
  const issue = only(
    resolve(withRefs, { PG_PASSWORD: 'pw', ERP_URL: 'erp.example.com', ERP_SECRET: 'x' }),
  );
  assert.equal(issue.path, 'systems[0].baseUrl');
  assert.equal(issue.line, 7);
  assert.match(issue.message, /not a valid http\(s\) URL/);
});

void test('MIDDLEMART_DATABASE_URL overrides store.url and is checked without echoing it', () => {
  const text = 'version: 1\nstore:\n  url: sqlite:.middlemart/a.db\n';
  const over = resolve(text, { MIDDLEMART_DATABASE_URL: 'postgres://mm@127.0.0.1:5432/mm' });
  assert.ok(over.ok);
  assert.equal(over.config.store.url, 'postgres://mm@127.0.0.1:5432/mm');

  const plain = resolve(text, {});
  assert.ok(plain.ok);
  assert.equal(plain.config.store.url, 'sqlite:.middlemart/a.db');

  const bad = only(resolve(text, { MIDDLEMART_DATABASE_URL: 'mysql://root:topsecret@h/db' }));
  assert.equal(bad.path, 'store.url');
  assert.equal(bad.line, 3);
  assert.match(bad.message, /from MIDDLEMART_DATABASE_URL/);
  assert.doesNotMatch(bad.message, /topsecret/);

  // The override makes the file's own references irrelevant.
  const refs = resolve(withRefs, {
    MIDDLEMART_DATABASE_URL: 'sqlite::memory:',
    ERP_URL: 'https://erp.example.com',
    ERP_SECRET: 'x',
  });
  assert.ok(refs.ok, JSON.stringify(!refs.ok && refs.issues));
  assert.equal(refs.config.store.url, 'sqlite::memory:');

  // Validation-only mode ignores the environment entirely.
  const checked = parseConfig(
    text,
    'x.yaml',
    { MIDDLEMART_DATABASE_URL: 'mysql://h/db' },
    {
      resolveEnv: false,
    },
  );
  assert.ok(checked.ok);
});

void test('files: async and sync loading, unreadable files, requireConfig', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'middlemart-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const good = join(dir, 'good.yaml');
  const bad = join(dir, 'bad.yaml');
  writeFileSync(
    good,
    'version: 1\nsystems:\n  - { id: pos, kind: pos, baseUrl: "http://127.0.0.1:1" }\n',
  );
  writeFileSync(bad, 'version: 1\nsystems:\n  - { id: pos, kind: pos, baseUrl: "nope" }\n');

  const a = await loadConfig(good, {});
  const s = loadConfigSync(good, {});
  assert.ok(a.ok && s.ok);
  assert.deepEqual(a.config, s.config);

  const missing = only(await loadConfig(join(dir, 'absent.yaml'), {}));
  assert.deepEqual(missing, { path: '', line: 0, column: 0, message: 'no such file' });
  assert.equal(formatIssue('absent.yaml', missing), 'absent.yaml  no such file');
  assert.match(only(loadConfigSync(dir, {})).message, /directory/);

  assert.equal((await requireConfig(good, {})).systems[0]!.id, 'pos');
  await assert.rejects(requireConfig(bad, {}), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.issues.length, 1);
    assert.match(err.message, /bad\.yaml:3:\d+ {2}systems\[0\]\.baseUrl {2}'nope' is not a valid/);
    return true;
  });
});

void test('paths and issues are formatted for people', () => {
  assert.equal(formatPath(['systems', 1, 'baseUrl']), 'systems[1].baseUrl');
  assert.equal(formatPath(['priorities', 'price.changed']), 'priorities["price.changed"]');
  assert.equal(formatPath([]), '');
  assert.equal(
    formatIssue('m.yaml', { path: 'server.port', line: 3, column: 9, message: 'bad' }),
    'm.yaml:3:9  server.port  bad',
  );
});

void test('settings may carry references; references anywhere else are errors', () => {
  const text = [
    'version: 1',
    'server:',
    '  host: ${HOST}',
    'systems:',
    '  - id: erp',
    '    kind: tryton',
    '    baseUrl: https://erp.example.com',
    '    region: ${REGION}',
    '    settings:',
    '      database: ${TRYTON_DB}',
    '      pageSize: 100',
  ].join('\n');
  assert.deepEqual(
    issues(check(text)).map((i) => [i.path, i.line, i.column]),
    [
      ['server.host', 3, 9],
      ['systems[0].region', 8, 13],
    ],
  );
  assert.match(
    issues(check(text))[0]!.message,
    /resolved only in store\.url, systems\[\]\.baseUrl/,
  );

  const fine = text
    .replace('  host: ${HOST}', '  host: 0.0.0.0')
    .replace('    region: ${REGION}\n', '');
  const result = resolve(fine, { TRYTON_DB: 'retail' });
  assert.ok(result.ok, JSON.stringify(!result.ok && result.issues));
  assert.deepEqual(result.config.systems[0]!.settings, { database: 'retail', pageSize: 100 });
});
