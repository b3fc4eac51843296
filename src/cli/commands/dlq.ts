// `middlemart dlq list|show|replay`: inspect and replay the dead letter channel.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { defaultConfigPath, loadConfig } from '../../config/load.js';
import {
  createPayloadSealer,
  listDeadLetters,
  replayDeadLetter,
  replayDeadLetters,
  showDeadLetter,
  type DeadLetter,
  type DeadLetterFilter,
  type PayloadSealer,
} from '../../runtime/index.js';
import type { Store } from '../../store/port.js';
import { PII_KEY_ENV, configuredPiiKeys } from '../../wiring/customers.js';
import { CliExit, ExitCode } from '../errors.js';
import { outputOf } from '../io.js';
import { openStoreFromOptions, withDatabaseOptions, type DatabaseOptions } from './migrate.js';

interface FilterOptions extends DatabaseOptions {
  kind?: string;
  type?: string;
  destination?: string;
  error?: string;
  since?: string;
  until?: string;
  status?: string;
  limit?: string;
  cursor?: string;
  json?: boolean;
  all?: boolean;
}

/**
 * The sealer of payloads stored sealed (ADR 0018), from the same keys the running app uses:
 * MIDDLEMART_PII_KEY, the configuration's customers.pii.keyFile, or `pii.key` beside a SQLite
 * store. Only keys that exist are read: reading dead letters never generates one. Without a key,
 * sealed payloads show as null with the reason.
 */
async function payloadSealer(
  options: DatabaseOptions,
  store: Store,
): Promise<PayloadSealer | undefined> {
  let keyFile: string | undefined;
  const path = options.config ?? defaultConfigPath();
  if (existsSync(path)) {
    const loaded = await loadConfig(path, process.env, { resolveEnv: true });
    if (loaded.ok) keyFile = loaded.config.customers.pii.keyFile;
  }
  const file = store.description.replace(/^sqlite:/, '');
  const beside =
    store.dialect === 'sqlite' && file !== ':memory:' && existsSync(join(dirname(file), 'pii.key'));
  if (!process.env[PII_KEY_ENV] && !keyFile && !beside) return undefined;
  const keys = configuredPiiKeys({
    env: process.env,
    ...(keyFile ? { keyFile } : {}),
    storeDescription: store.description,
    dialect: store.dialect,
  });
  return keys
    ? createPayloadSealer({
        current: keys.current,
        ...(keys.previous ? { previous: keys.previous } : {}),
      })
    : undefined;
}

function withFilters(command: Command): Command {
  return command
    .option('--kind <kind>', 'message or delivery')
    .option('--type <type>', 'message type')
    .option('--destination <id>', 'destination system id')
    .option('--error <text>', 'substring of the last error (case-insensitive)')
    .option('--since <time>', 'dead-lettered at or after this RFC 3339 time')
    .option('--until <time>', 'dead-lettered before this RFC 3339 time');
}

function parseTime(value: string | undefined, name: string): Date | undefined {
  if (value === undefined) return undefined;
  const d = new Date(value);
  if (Number.isNaN(d.getTime()))
    throw new CliExit(ExitCode.usage, `--${name}: not a time: ${value}`);
  return d;
}

function filterOf(o: FilterOptions): DeadLetterFilter {
  const f: DeadLetterFilter = {};
  if (o.kind !== undefined) {
    if (o.kind !== 'message' && o.kind !== 'delivery') {
      throw new CliExit(ExitCode.usage, '--kind: message or delivery');
    }
    f.kind = o.kind;
  }
  if (o.type) f.type = o.type;
  if (o.destination) f.destination = o.destination;
  if (o.error) f.error = o.error;
  const since = parseTime(o.since, 'since');
  const until = parseTime(o.until, 'until');
  if (since) f.since = since;
  if (until) f.until = until;
  if (o.status !== undefined) {
    if (o.status !== 'dead' && o.status !== 'replayed' && o.status !== 'all') {
      throw new CliExit(ExitCode.usage, '--status: dead, replayed or all');
    }
    f.status = o.status;
  }
  return f;
}

function parseLimit(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new CliExit(ExitCode.usage, `--limit: a positive integer`);
  return n;
}

function line(d: DeadLetter): string {
  const what =
    d.kind === 'delivery' ? `delivery to ${d.destination ?? '?'}` : `message ${d.type ?? '?'}`;
  const replays = d.replayCount > 0 ? ` replays=${d.replayCount}` : '';
  return `${d.deadAt}  ${d.id}  ${what}  attempts=${d.attempts}${replays}  ${d.status}  ${d.reason}: ${d.lastError ?? ''}`;
}

export function register(program: Command): void {
  const dlq = program
    .command('dlq')
    .description(
      'the dead letter channel: list, show and replay what could not be processed or delivered',
    );

  withFilters(
    withDatabaseOptions(dlq.command('list').description('list dead letters, newest first')),
  )
    .option('--status <status>', 'dead (default), replayed or all')
    .option('--limit <n>', 'items per page (default 50)')
    .option('--cursor <cursor>', 'continue after a previous page')
    .option('--json', 'print JSON')
    .action(async (options: FilterOptions, command: Command) => {
      const io = outputOf(command);
      const filter = filterOf(options);
      const store = await openStoreFromOptions(options, io);
      try {
        const page = await listDeadLetters(
          store,
          filter,
          {
            limit: parseLimit(options.limit, 50),
            ...(options.cursor ? { cursor: options.cursor } : {}),
          },
          await payloadSealer(options, store),
        );
        if (options.json) {
          io.out(JSON.stringify(page));
          return;
        }
        if (page.items.length === 0) io.out('no dead letters');
        for (const d of page.items) io.out(line(d));
        if (page.nextCursor) io.out(`more: --cursor ${page.nextCursor}`);
      } catch (err) {
        if (err instanceof CliExit) throw err;
        throw new CliExit(ExitCode.failure, (err as Error).message);
      } finally {
        await store.close();
      }
    });

  withDatabaseOptions(
    dlq.command('show').description('show one dead letter with its attempt history'),
  )
    .argument('<id>', 'the dead letter id (the message or delivery id)')
    .option('--json', 'print JSON')
    .action(async (id: string, options: FilterOptions, command: Command) => {
      const io = outputOf(command);
      const store = await openStoreFromOptions(options, io);
      try {
        const d = await showDeadLetter(store, id, await payloadSealer(options, store));
        if (!d) throw new CliExit(ExitCode.failure, `no dead letter ${id}`);
        if (options.json) {
          io.out(JSON.stringify(d));
          return;
        }
        io.out(line(d));
        io.out(`idempotency key: ${d.idempotencyKey}`);
        if (d.partitionKey) io.out(`partition key: ${d.partitionKey}`);
        if (d.traceparent) io.out(`traceparent: ${d.traceparent}`);
        io.out('attempts:');
        for (const a of d.history) {
          io.out(
            `  #${a.attempt}  ${a.at}  ${a.outcome}${a.status !== undefined ? ` status=${a.status}` : ''}` +
              `${a.latencyMs !== undefined ? ` ${a.latencyMs}ms` : ''}${a.error ? `  ${a.error}` : ''}`,
          );
        }
        io.out(`payload: ${JSON.stringify(d.payload)}`);
      } finally {
        await store.close();
      }
    });

  withFilters(
    withDatabaseOptions(
      dlq
        .command('replay')
        .description(
          're-queue one dead letter, or every one matching filters, under the same idempotency key',
        ),
    ),
  )
    .argument('[id]', 'the dead letter to replay')
    .option('--all', 'replay every dead letter matching the filters (required without id)')
    .option('--limit <n>', 'at most this many (default 1000)')
    .option('--json', 'print JSON')
    .action(async (id: string | undefined, options: FilterOptions, command: Command) => {
      const io = outputOf(command);
      if (!id && !options.all) {
        throw new CliExit(ExitCode.usage, 'name a dead letter id, or pass --all with filters');
      }
      const filter = filterOf(options);
      const store = await openStoreFromOptions(options, io);
      try {
        const results = id
          ? [await replayDeadLetter(store, id)].filter((r) => r !== undefined)
          : await replayDeadLetters(store, filter, { limit: parseLimit(options.limit, 1000) });
        if (id && results.length === 0) {
          throw new CliExit(ExitCode.failure, `no dead letter ${id} waiting for replay`);
        }
        if (options.json) {
          io.out(JSON.stringify({ replayed: results }));
          return;
        }
        for (const r of results)
          io.out(`replayed ${r.kind} ${r.id}${r.newId !== r.id ? ` as ${r.newId}` : ''}`);
        io.out(`${results.length} replayed`);
      } catch (err) {
        if (err instanceof CliExit) throw err;
        throw new CliExit(ExitCode.failure, (err as Error).message);
      } finally {
        await store.close();
      }
    });
}
