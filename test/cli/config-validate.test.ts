// `middlemart config validate` and `config show`, through the real bin and through run().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { defaultConfigPath } from '../../src/config/load.js';
import { runBin, runInProcess } from './helpers.js';

const THREE_ERRORS = 'test/cli/fixtures/three-errors.yaml';
const MINIMAL = 'test/cli/fixtures/valid-minimal.yaml';

const EXPECTED_THREE = [
  `${THREE_ERRORS}:9:21  systems[0].credentials.clientSecret  literal secret: use an environment reference such as \${CLOUD_ERP_CLIENT_SECRET}`,
  `${THREE_ERRORS}:12:14  systems[1].baseUrl  'htps//crm.example.com' is not a valid http(s) URL, e.g. https://erp.example.com`,
  `${THREE_ERRORS}:14:7  systems[1].limits.ratePerSecnd  unknown key 'ratePerSecnd' (did you mean 'ratePerSecond'?)`,
  `${THREE_ERRORS}: invalid (3 errors)`,
];

/** An environment without any of the variables the configs refer to. */
function bareEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of ['PATH', 'HOME', 'NODE_OPTIONS', 'TMPDIR']) {
    if (process.env[key] !== undefined) env[key] = process.env[key];
  }
  return env;
}

void test('the bin prints all three errors with path, line and column and exits 2', async () => {
  const result = await runBin(['config', 'validate', THREE_ERRORS], bareEnv());
  assert.equal(result.code, 2, result.stderr);
  assert.equal(result.stdout, '');
  assert.deepEqual(result.stderr.trimEnd().split('\n'), EXPECTED_THREE);
  // The literal secret itself is never printed.
  assert.doesNotMatch(result.stderr, /s3cr3t-value/);
});

void test('run() gives the same report and status', async () => {
  const result = await runInProcess(['config', 'validate', THREE_ERRORS]);
  assert.equal(result.code, 2);
  assert.equal(result.stdout, '');
  assert.deepEqual(result.stderr.trimEnd().split('\n'), EXPECTED_THREE);
});

void test('the built-in middlemart.yaml validates with no environment set (bin)', async () => {
  const result = await runBin(['config', 'validate'], bareEnv());
  assert.equal(result.code, 0, result.stderr);
  assert.equal(
    result.stdout,
    `${defaultConfigPath()}: OK (9 systems, 2 routing rules, 7 owned fields)\n`,
  );
  assert.equal(result.stderr, '');
});

void test('--env also resolves references, and names each missing variable', async () => {
  const missing = await runBin(['config', 'validate', '--env', MINIMAL], bareEnv());
  assert.equal(missing.code, 2);
  assert.equal(
    missing.stderr.split('\n')[0],
    `${MINIMAL}:8:17  systems[0].credentials.password  environment variable ERP_PASSWORD is not set (referenced as \${ERP_PASSWORD})`,
  );
  const ok = await runBin(['config', 'validate', '--env', MINIMAL], {
    ...bareEnv(),
    ERP_PASSWORD: 'pw',
  });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /OK \(1 system, 0 routing rules, 0 owned fields, environment resolved\)/);

  const plain = await runInProcess(['config', 'validate', MINIMAL]);
  assert.equal(plain.code, 0, plain.stderr);
});

void test('a YAML syntax error and a missing file are reported with exit 2', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'middlemart-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const broken = join(dir, 'broken.yaml');
  writeFileSync(broken, 'version: 1\nserver:\n  port: [8080\n');
  const syntax = await runInProcess(['config', 'validate', broken]);
  assert.equal(syntax.code, 2);
  assert.match(
    syntax.stderr,
    new RegExp(`^${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+  YAML: `),
  );

  const absent = await runInProcess(['config', 'validate', join(dir, 'absent.yaml')]);
  assert.equal(absent.code, 2);
  assert.match(absent.stderr, /absent\.yaml {2}no such file/);
});

void test('config show prints the file with its defaults filled in, references unresolved', async () => {
  const result = await runInProcess(['config', 'show', MINIMAL]);
  assert.equal(result.code, 0, result.stderr);
  const shown = parse(result.stdout) as {
    server: { port: number };
    systems: Array<{ credentials: Record<string, string>; limits: { concurrency: number } }>;
  };
  assert.equal(shown.server.port, 8080);
  assert.equal(shown.systems[0]!.limits.concurrency, 4);
  assert.equal(shown.systems[0]!.credentials.password, '${ERP_PASSWORD}');

  const invalid = await runInProcess(['config', 'show', THREE_ERRORS]);
  assert.equal(invalid.code, 2);
  assert.equal(invalid.stdout, '');
});
