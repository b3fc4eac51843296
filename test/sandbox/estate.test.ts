// The estate launcher: every simulator on its own ephemeral port in middlemart.yaml's order,
// fresh credentials per start, a rendered config that names every system, and the sandbox
// command's start/write/stop cycle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { EstateConfigSchema } from '../../src/config/schema.js';
import { ESTATE_LAYOUT, renderEstateConfig, startEstate } from '../../src/sandbox/estate.js';
import { serveSandbox } from '../../src/cli/commands/sandbox.js';
import { eventsTransport, runTraffic } from '../../src/sandbox/scenarios/index.js';

interface YamlSystem {
  id: string;
  kind: string;
  baseUrl: string;
  credentials?: Record<string, string>;
}

const builtIn = readFileSync('middlemart.yaml', 'utf8');
const builtInSystems = (parse(builtIn) as { systems: YamlSystem[] }).systems;

void test('the estate layout is middlemart.yaml: ids, kinds, order, ports and credential names', () => {
  assert.deepEqual(
    ESTATE_LAYOUT.map((e) => [e.id, e.kind, 7100 + e.offset]),
    builtInSystems.map((s) => [s.id, s.kind, Number(new URL(s.baseUrl).port)]),
  );
  for (const s of builtInSystems) {
    const entry = ESTATE_LAYOUT.find((e) => e.id === s.id);
    const refs = Object.fromEntries(
      Object.entries(s.credentials ?? {})
        .filter(([, v]) => v.startsWith('${'))
        .map(([k, v]) => [k, v.slice(2, -1)]),
    );
    assert.deepEqual(entry?.secrets, refs, `${s.id} credential references`);
  }
});

void test('the estate starts every simulator on ephemeral ports and each answers /_sandbox/state', async () => {
  const estate = await startEstate({ basePort: 0, seed: 3 });
  let second: Awaited<ReturnType<typeof startEstate>> | undefined;
  try {
    assert.deepEqual(
      estate.systems.map((s) => s.id),
      builtInSystems.map((s) => s.id),
    );
    assert.equal(new Set(estate.systems.map((s) => s.url)).size, 9, 'nine distinct URLs');
    for (const system of estate.systems) {
      assert.match(system.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const res = await fetch(`${system.url}/_sandbox/state`);
      assert.equal(res.status, 200, `${system.id} answers`);
      const state = (await res.json()) as { name: string; counters: unknown };
      assert.equal(typeof state.counters, 'object', `${system.id} reports counters`);
    }
    const wanted = builtInSystems
      .flatMap((s) => Object.values(s.credentials ?? {}))
      .filter((v) => v.startsWith('${'))
      .map((v) => v.slice(2, -1))
      .sort();
    assert.deepEqual(Object.keys(estate.env).sort(), wanted);
    for (const value of Object.values(estate.env)) assert.ok(value.length >= 32);

    // The credentials are what the simulators expect.
    const commerce = estate.systems.find((s) => s.id === 'commerce');
    const ok = await fetch(`${commerce?.url}/admin/api/2024-04/locations.json`, {
      headers: { 'x-shopify-access-token': estate.env.SANDBOX_COMMERCE_ACCESS_TOKEN ?? '' },
    });
    assert.equal(ok.status, 200);
    const refused = await fetch(`${commerce?.url}/admin/api/2024-04/locations.json`, {
      headers: { 'x-shopify-access-token': 'shpat_wrong' },
    });
    assert.equal(refused.status, 401);

    // The runner reads every system's state and the ERPs' limit counters.
    const summary = await runTraffic({
      target: 'http://127.0.0.1:9',
      transport: eventsTransport(),
      items: [],
      rate: 0,
      maxDurationMs: 10_000,
      systems: estate.systems,
    });
    assert.deepEqual(
      summary.systems.map((s) => [s.id, s.error]),
      estate.systems.map((s) => [s.id, undefined]),
    );
    assert.equal(summary.limitViolations['cloud-erp.rateLimitViolations'], 0);
    assert.equal(summary.limitViolations['cloud-erp.concurrencyViolations'], 0);

    second = await startEstate({ basePort: 0, seed: 3 });
    assert.notEqual(
      second.env.SANDBOX_CRM_API_KEY,
      estate.env.SANDBOX_CRM_API_KEY,
      'fresh credentials per start',
    );
  } finally {
    await second?.stop();
    await estate.stop();
  }
  const down = await fetch(`${estate.systems[0]?.url}/_sandbox/state`).then(
    () => 'up',
    () => 'down',
  );
  assert.equal(down, 'down', 'stop() closes every system');
});

void test('the rendered config names every system with its URL and stays valid', () => {
  const estate = {
    basePort: 0,
    systems: ESTATE_LAYOUT.map((e, i) => ({
      id: e.id,
      kind: e.kind,
      url: `http://127.0.0.1:${40000 + i}`,
    })),
  };
  for (const rendered of [
    renderEstateConfig(estate, { template: builtIn }),
    renderEstateConfig(estate),
  ]) {
    const doc = parse(rendered) as { systems: YamlSystem[]; sandbox: { enabled: boolean } };
    assert.equal(doc.sandbox.enabled, false);
    for (const s of estate.systems) {
      const found = doc.systems.find((x) => x.id === s.id);
      assert.ok(found, `${s.id} is in the config`);
      assert.equal(found.baseUrl, s.url);
      assert.equal(found.kind, s.kind);
    }
    assert.match(rendered, /\$\{SANDBOX_COMMERCE_WEBHOOK_SECRET\}/);
    assert.doesNotMatch(rendered, /shpat_/);
    const parsed = EstateConfigSchema.safeParse(doc);
    assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
  }
  // The template's comments and other sections survive.
  const fromTemplate = renderEstateConfig(estate, { template: builtIn });
  assert.match(fromTemplate, /# Content-based routing/);
  assert.match(fromTemplate, /fieldOwnership:/);
});

void test('middlemart sandbox writes the config and env file, then stops on the signal', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-sandbox-'));
  const lines: string[] = [];
  const io = { out: (l: string) => void lines.push(l), err: (l: string) => void lines.push(l) };
  const controller = new AbortController();
  let urls: string[] = [];
  try {
    await serveSandbox(
      {
        basePort: 0,
        seed: 2,
        writeConfig: join(dir, 'nested', 'sandbox.yaml'),
        envFile: join(dir, 'sandbox.env'),
        transport: 'events',
      },
      io,
      controller.signal,
      (estate) => {
        urls = estate.systems.map((s) => s.url);
        controller.abort();
      },
    );
    assert.equal(urls.length, 9);
    for (const url of urls)
      assert.ok(
        lines.some((l) => l.includes(url)),
        `${url} is printed`,
      );
    const config = parse(readFileSync(join(dir, 'nested', 'sandbox.yaml'), 'utf8')) as {
      systems: YamlSystem[];
    };
    assert.deepEqual(
      config.systems.map((s) => s.baseUrl),
      urls,
    );
    const env = readFileSync(join(dir, 'sandbox.env'), 'utf8');
    assert.match(env, /^SANDBOX_CLOUD_ERP_CLIENT_SECRET=[0-9a-f]{48}$/m);
    assert.match(env, /^SANDBOX_COMMERCE_ACCESS_TOKEN=shpat_[0-9a-f]{48}$/m);
    assert.ok(lines.includes('sandbox estate stopped'));
    const down = await fetch(`${urls[0]}/_sandbox/state`).then(
      () => 'up',
      () => 'down',
    );
    assert.equal(down, 'down');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(existsSync(dir), false);
});
