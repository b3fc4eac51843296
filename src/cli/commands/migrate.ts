// `middlemart migrate`: apply the store's pending migrations (or list them with --status).
import type { Command } from 'commander';
import { DATABASE_URL_ENV, defaultConfigPath, formatIssue, loadConfig } from '../../config/load.js';
import { applicationMigrations } from '../../app.js';
import { openStore } from '../../store/index.js';
import type { Store } from '../../store/port.js';
import { CliExit, ExitCode } from '../errors.js';
import { outputOf, type CliOutput } from '../io.js';

export interface DatabaseOptions {
  databaseUrl?: string;
  config?: string;
  schema?: string;
}

/** Adds the options every store command shares. */
export function withDatabaseOptions(command: Command): Command {
  return command
    .option(
      '--database-url <url>',
      `the store (sqlite:<path> or postgres://…); default ${DATABASE_URL_ENV}, then store.url of the configuration`,
    )
    .option(
      '--config <file>',
      'the configuration file that names the store (default: middlemart.yaml)',
    )
    .option('--schema <name>', 'PostgreSQL schema to use (default: the search_path of the user)');
}

/** --database-url, else MIDDLEMART_DATABASE_URL, else the configuration's store.url. */
export async function resolveDatabaseUrl(opts: DatabaseOptions, io: CliOutput): Promise<string> {
  if (opts.databaseUrl) return opts.databaseUrl;
  const fromEnv = process.env[DATABASE_URL_ENV];
  if (fromEnv) return fromEnv;
  const path = opts.config ?? defaultConfigPath();
  const result = await loadConfig(path, process.env, { resolveEnv: true });
  if (!result.ok) {
    for (const issue of result.issues) io.err(formatIssue(path, issue));
    io.err(`no store: pass --database-url or set ${DATABASE_URL_ENV}`);
    throw new CliExit(ExitCode.invalidConfig);
  }
  return result.config.store.url;
}

/** Opens the store named by the options; migrations are applied unless `migrate` is false. */
export async function openStoreFromOptions(
  opts: DatabaseOptions,
  io: CliOutput,
  migrate = true,
): Promise<Store> {
  const url = await resolveDatabaseUrl(opts, io);
  try {
    return await openStore(url, { migrate, ...(opts.schema ? { schema: opts.schema } : {}) });
  } catch (err) {
    throw new CliExit(ExitCode.failure, `cannot open the store: ${(err as Error).message}`);
  }
}

interface MigrateOptions extends DatabaseOptions {
  status?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  withDatabaseOptions(
    program
      .command('migrate')
      .description('apply pending store migrations (versioned, recorded in schema_migrations)'),
  )
    .option('--status', 'list migrations and when each was applied, without applying any')
    .option('--json', 'print JSON')
    .action(async (options: MigrateOptions, command: Command) => {
      const io = outputOf(command);
      const store = await openStoreFromOptions(options, io, false);
      try {
        const applied = options.status
          ? []
          : await store.migrate(applicationMigrations(store.dialect));
        const status = await store.migrations();
        if (options.json) {
          io.out(JSON.stringify({ store: store.description, applied, migrations: status }));
          return;
        }
        if (!options.status) {
          io.out(
            applied.length === 0
              ? `${store.description}: up to date`
              : `${store.description}: applied ${applied.join(', ')}`,
          );
        }
        for (const m of status) {
          const when = m.appliedAt === null ? 'pending' : new Date(m.appliedAt).toISOString();
          io.out(`${String(m.version).padStart(4, '0')}  ${when}  ${m.name}`);
        }
      } catch (err) {
        if (err instanceof CliExit) throw err;
        throw new CliExit(ExitCode.failure, `migration failed: ${(err as Error).message}`);
      } finally {
        await store.close();
      }
    });
}
