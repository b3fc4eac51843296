// `middlemart migrate` and `middlemart dlq list|show|replay` against a real SQLite store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Command } from 'commander';
import { register as registerMigrate } from '../../src/cli/commands/migrate.js';
import { register as registerDlq } from '../../src/cli/commands/dlq.js';
import { createEngine } from '../../src/runtime/engine.js';
import { createPayloadSealer } from '../../src/runtime/sealing.js';
import { PermanentError } from '../../src/runtime/types.js';
import { sqliteDatabase } from '../store/backends.js';
import { waitFor } from './support.js';

async function cli(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  let out = '';
  let err = '';
  const program = new Command('middlemart')
    .configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (err += s) })
    .exitOverride();
  registerMigrate(program);
  registerDlq(program);
  try {
    await program.parseAsync(args, { from: 'user' });
    return { out, err, code: 0 };
  } catch (e) {
    const code = (e as { exitCode?: number }).exitCode ?? 1;
    return { out, err: err + String((e as Error).message), code };
  }
}

test('migrate, then dlq list, show and replay', async () => {
  const db = sqliteDatabase();
  try {
    const m = await cli('migrate', '--database-url', db.url, '--json');
    assert.equal(m.code, 0, m.err);
    // The engine's own migrations (domains and the API add theirs from 1000 up).
    const applied = (JSON.parse(m.out) as { applied: number[] }).applied;
    assert.deepEqual(
      applied.filter((v) => v < 1000),
      [1, 2, 3, 4, 5],
    );
    const again = await cli('migrate', '--database-url', db.url);
    assert.match(again.out, /up to date/);

    const store = await db.open();
    const engine = createEngine({ store, pollMs: { min: 2, max: 20 } });
    let fixed = false;
    engine.registerHandler('invoice.post', async () => {
      if (!fixed) throw new PermanentError('unknown customer C-9');
    });
    for (const k of ['a', 'b']) {
      await engine.accept({
        source: 'test',
        idempotencyKey: k,
        requestHash: 'h',
        type: 'invoice.post',
        partitionKey: k,
        priority: 'standard',
        payload: { k },
      });
    }
    engine.start();
    await waitFor('dead-lettered', () => engine.counters.deadLettered === 2);

    const list = await cli(
      'dlq',
      'list',
      '--database-url',
      db.url,
      '--json',
      '--error',
      'customer c-9',
    );
    assert.equal(list.code, 0, list.err);
    const page = JSON.parse(list.out) as { items: { id: string; idempotencyKey: string }[] };
    assert.equal(page.items.length, 2);
    const none = await cli('dlq', 'list', '--database-url', db.url, '--type', 'other');
    assert.match(none.out, /no dead letters/);
    const paged = await cli('dlq', 'list', '--database-url', db.url, '--limit', '1');
    assert.match(paged.out, /more: --cursor /);

    const show = await cli('dlq', 'show', page.items[0]!.id, '--database-url', db.url);
    assert.equal(show.code, 0, show.err);
    assert.match(show.out, /permanent handler failure: unknown customer C-9/);
    assert.match(show.out, /attempts:\n {2}#1 /);

    assert.equal((await cli('dlq', 'replay', '--database-url', db.url)).code, 2);
    fixed = true;
    const replay = await cli(
      'dlq',
      'replay',
      '--all',
      '--type',
      'invoice.post',
      '--database-url',
      db.url,
    );
    assert.equal(replay.code, 0, replay.err);
    assert.match(replay.out, /2 replayed/);
    await waitFor('replayed messages processed', () => engine.counters.processed === 2);
    await engine.stop();
    await store.close();
    const after = await cli(
      'dlq',
      'list',
      '--database-url',
      db.url,
      '--status',
      'replayed',
      '--json',
    );
    const replayed = JSON.parse(after.out) as { items: { replayCount: number }[] };
    assert.deepEqual(
      replayed.items.map((i) => i.replayCount),
      [1, 1],
    );
    const missing = await cli('dlq', 'show', 'nope', '--database-url', db.url);
    assert.equal(missing.code, 1);
  } finally {
    await db.drop();
  }
});

test('dlq show opens sealed payloads with the PII key, and says why when it cannot', async () => {
  const db = sqliteDatabase();
  const key = randomBytes(32);
  const saved = process.env.MIDDLEMART_PII_KEY;
  try {
    assert.equal((await cli('migrate', '--database-url', db.url)).code, 0);
    const store = await db.open();
    const engine = createEngine({
      store,
      pollMs: { min: 2, max: 20 },
      sealer: createPayloadSealer({ current: key }),
      sealScope: 'all',
    });
    engine.registerHandler('customer.sync', async () => {
      throw new PermanentError('refused');
    });
    await engine.accept({
      source: 'test',
      idempotencyKey: 'sealed',
      requestHash: 'h',
      type: 'customer.sync',
      partitionKey: 'c-1',
      priority: 'standard',
      payload: { email: 'ada@example.com' },
    });
    engine.start();
    await waitFor('dead-lettered', () => engine.counters.deadLettered === 1);
    await engine.stop();
    await store.close();
    const id = (
      JSON.parse((await cli('dlq', 'list', '--database-url', db.url, '--json')).out) as {
        items: { id: string }[];
      }
    ).items[0]!.id;

    delete process.env.MIDDLEMART_PII_KEY;
    const without = await cli('dlq', 'show', id, '--database-url', db.url, '--json');
    assert.equal(without.code, 0, without.err);
    const blind = JSON.parse(without.out) as { payload: unknown; payloadError?: string };
    assert.equal(blind.payload, null);
    assert.match(blind.payloadError ?? '', /key/);

    process.env.MIDDLEMART_PII_KEY = key.toString('base64');
    const withKey = await cli('dlq', 'show', id, '--database-url', db.url, '--json');
    assert.equal(withKey.code, 0, withKey.err);
    assert.deepEqual((JSON.parse(withKey.out) as { payload: unknown }).payload, {
      email: 'ada@example.com',
    });
  } finally {
    if (saved === undefined) delete process.env.MIDDLEMART_PII_KEY;
    else process.env.MIDDLEMART_PII_KEY = saved;
    await db.drop();
  }
});
