// `middlemart start` as a new user meets it: the real CLI in a child process, the built-in
// estate config with its sandbox, the printed development admin key, an event accepted over
// HTTP, then a clean stop on SIGINT — and the accepted event is still in the store after a
// restart (accepted means durable); the restart prints a new key and revokes the old one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer as createNetServer } from 'node:net';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const MAIN = resolve('src/cli/main.ts');

interface Running {
  child: ChildProcessWithoutNullStreams;
  url: string;
  /** The development admin key printed with the sandbox. */
  key: string;
  output: () => string;
}

/** A base port whose next nine ports are free now (the sandbox listens on base + 1 … + 9). */
async function freePortBlock(): Promise<number> {
  const canListen = (port: number) =>
    new Promise<boolean>((res) => {
      const probe = createNetServer();
      probe.once('error', () => res(false));
      probe.listen(port, '127.0.0.1', () => probe.close(() => res(true)));
    });
  for (let tries = 0; tries < 50; tries++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    let free = true;
    for (let i = 1; i <= 9 && free; i++) free = await canListen(base + i);
    if (free) return base;
  }
  throw new Error('no free block of 10 ports found');
}

async function startCli(args: string[], env: NodeJS.ProcessEnv): Promise<Running> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'start', ...args], {
    env: { ...process.env, ...env },
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const m = /Middlemart (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
    const k = /api key\s+(mm_[0-9a-f]{12}_[A-Za-z0-9_-]{43})/.exec(out);
    if (m?.[1] && k?.[1]) return { child, url: m[1], key: k[1], output: () => out };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`start did not print its URL:\n${out}`);
}

function exited(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  return new Promise((res) => {
    if (child.exitCode !== null) return res(child.exitCode);
    child.once('exit', (code) => res(code));
  });
}

function adjustment(id: string, count: number) {
  return {
    specversion: '1.0',
    id,
    source: '/wms/dc-eu-1',
    type: 'com.middlemart.inventory.adjusted.v1',
    time: '2026-11-28T10:00:00Z',
    data: {
      sku: 'SKU-1',
      location: 'DC-EU-1',
      reason: 'cycle_count',
      count,
      sourceSystem: 'wms',
      sourceSequence: count,
      sourceTimestamp: '2026-11-28T10:00:00Z',
    },
  };
}

async function post(url: string, body: unknown, key: string, apiKey: string | undefined) {
  const res = await fetch(`${url}/v1/events`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'idempotency-key': key,
      ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
    },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test('start runs Middlemart with its sandbox, accepts durably and stops cleanly', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-start-'));
  try {
    // The built-in config, with the sandbox on a port range of its own for this test.
    const basePort = await freePortBlock();
    const builtIn = readFileSync(resolve('middlemart.yaml'), 'utf8')
      .replace(/basePort: 7100/, `basePort: ${basePort}`)
      .replaceAll(/127\.0\.0\.1:71(\d\d)/g, (_m, n: string) => `127.0.0.1:${basePort + Number(n)}`);
    const config = join(dir, 'estate.yaml');
    writeFileSync(config, builtIn);
    const env = { MIDDLEMART_DATABASE_URL: `sqlite:${join(dir, 'mm.db')}` };

    const first = await startCli(['--config', config, '--port', '0', '--log-level', 'warn'], env);
    const health = await fetch(`${first.url}/healthz`);
    assert.equal(health.status, 200);
    const ready = await fetch(`${first.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.match(first.output(), new RegExp(`cloud-erp\\s+http://127\\.0\\.0\\.1:${basePort + 1}`));
    const sandboxState = await fetch(`http://127.0.0.1:${basePort + 1}/_sandbox/state`);
    assert.equal(sandboxState.status, 200);

    const anonymous = await post(first.url, adjustment('adj-1', 12), 'adj-1', undefined);
    assert.equal(anonymous.status, 401);
    const accepted = await post(first.url, adjustment('adj-1', 12), 'adj-1', first.key);
    assert.equal(accepted.status, 202, JSON.stringify(accepted.body));
    const docs = await fetch(`${first.url}/openapi.json`);
    assert.equal(docs.status, 200);
    const metrics = await fetch(`${first.url}/metrics`, {
      headers: { authorization: `Bearer ${first.key}` },
    });
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /^middlemart_messages_accepted_total [1-9]\d*$/m);
    first.child.kill('SIGINT');
    assert.equal(await exited(first.child), 0, first.output());

    // Restart on the same store: the same key and body answer with the original id.
    const second = await startCli(['--config', config, '--port', '0', '--log-level', 'warn'], env);
    try {
      assert.notEqual(second.key, first.key);
      const stale = await post(second.url, adjustment('adj-1', 12), 'adj-1', first.key);
      assert.equal(stale.status, 401, "the previous run's development key is revoked");
      const again = await post(second.url, adjustment('adj-1', 12), 'adj-1', second.key);
      assert.equal(again.status, 202);
      assert.equal(again.body.id, accepted.body.id);
      const conflict = await post(second.url, adjustment('adj-1', 13), 'adj-1', second.key);
      assert.equal(conflict.status, 409);
    } finally {
      second.child.kill('SIGTERM');
      assert.equal(await exited(second.child), 0, second.output());
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('start refuses an invalid config with exit code 2 and the error lines', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mm-start-'));
  try {
    const config = join(dir, 'bad.yaml');
    writeFileSync(config, 'version: 1\nserver:\n  prot: 8080\n');
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'start', '--config', config]);
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    assert.equal(await exited(child), 2);
    assert.match(err, /bad\.yaml:3:3\s+server\.prot\s+unknown key/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
