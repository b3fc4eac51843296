// `middlemart keys create|list|revoke`: API keys against the configured store. A key is printed
// once, at creation; afterwards only its prefix is known. Every change is written to the audit log.
import type { Command } from 'commander';
import {
  API_KEY_MIGRATIONS,
  createApiKey,
  listApiKeys,
  PREFIX_PATTERN,
  revokeApiKey,
  type ApiKeyRecord,
} from '../../api/auth/api-keys.js';
import { appendAudit } from '../../api/auth/audit.js';
import { isRole, ROLES, type Role } from '../../api/auth/roles.js';
import { DEFAULT_RATE_TIERS } from '../../api/limits.js';
import type { Store } from '../../store/port.js';
import { CliExit, ExitCode } from '../errors.js';
import { outputOf, type CliOutput } from '../io.js';
import { openStoreFromOptions, withDatabaseOptions, type DatabaseOptions } from './migrate.js';

interface KeyOptions extends DatabaseOptions {
  role?: string[];
  name?: string;
  tier?: string;
  json?: boolean;
  all?: boolean;
}

const CLI_ACTOR = 'cli';

function collect(value: string, previous: string[] = []): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  ];
}

function rolesOf(values: string[] | undefined): Role[] {
  if (!values || values.length === 0) {
    throw new CliExit(ExitCode.usage, `--role: required; one or more of ${ROLES.join(', ')}`);
  }
  return values.map((r) => {
    if (!isRole(r))
      throw new CliExit(ExitCode.usage, `--role: '${r}' is not one of ${ROLES.join(', ')}`);
    return r;
  });
}

function line(k: ApiKeyRecord): string {
  const state = k.revokedAt ? `revoked ${k.revokedAt}` : 'active';
  return `${k.prefix}  ${k.roles.join(',').padEnd(22)} ${k.tier.padEnd(9)} ${k.createdAt}  ${state}  ${k.name}`;
}

async function withKeyStore<T>(
  options: KeyOptions,
  io: CliOutput,
  fn: (store: Store) => Promise<T>,
): Promise<T> {
  const store = await openStoreFromOptions(options, io);
  try {
    await store.migrate(API_KEY_MIGRATIONS);
    return await fn(store);
  } catch (err) {
    if (err instanceof CliExit) throw err;
    throw new CliExit(ExitCode.failure, (err as Error).message);
  } finally {
    await store.close();
  }
}

export function register(program: Command): void {
  const keys = program
    .command('keys')
    .description('API keys: create (shown once), list (never the secret) and revoke');

  withDatabaseOptions(keys.command('create').description('create an API key and print it once'))
    .option('--role <role>', `a role (repeat or comma-separate): ${ROLES.join(', ')}`, collect)
    .option('--name <name>', 'who or what holds the key, e.g. "web shop"')
    .option(
      '--tier <tier>',
      `rate-limit tier: ${Object.keys(DEFAULT_RATE_TIERS).join(', ')}`,
      'standard',
    )
    .option('--json', 'print JSON')
    .action(async (options: KeyOptions, command: Command) => {
      const io = outputOf(command);
      const roles = rolesOf(options.role);
      const name = options.name?.trim();
      if (!name) throw new CliExit(ExitCode.usage, '--name: required');
      const tier = options.tier ?? 'standard';
      if (!(tier in DEFAULT_RATE_TIERS)) {
        throw new CliExit(
          ExitCode.usage,
          `--tier: '${tier}' is not one of ${Object.keys(DEFAULT_RATE_TIERS).join(', ')}`,
        );
      }
      const created = await withKeyStore(options, io, async (store) => {
        const c = await createApiKey(store, { name, roles, tier });
        await appendAudit(store, {
          actor: CLI_ACTOR,
          action: 'key.created',
          target: c.record.prefix,
          detail: { name, roles, tier },
        });
        return c;
      });
      if (options.json) {
        io.out(JSON.stringify(created));
        return;
      }
      io.out(created.key);
      io.err(
        `created key ${created.record.prefix} (${roles.join(', ')}, ${tier}) for ${name}: ` +
          'store it now, it is not shown again',
      );
    });

  withDatabaseOptions(
    keys.command('list').description('list API keys (prefix, roles, tier; never the secret)'),
  )
    .option('--all', 'include revoked keys')
    .option('--json', 'print JSON')
    .action(async (options: KeyOptions, command: Command) => {
      const io = outputOf(command);
      const list = await withKeyStore(options, io, (store) =>
        listApiKeys(store, { includeRevoked: options.all === true }),
      );
      if (options.json) {
        io.out(JSON.stringify(list));
        return;
      }
      if (list.length === 0) io.out('no keys');
      for (const k of list) io.out(line(k));
    });

  withDatabaseOptions(keys.command('revoke').description('revoke an API key by its prefix'))
    .argument('<prefix>', 'the 12-character prefix (mm_<prefix>_…)')
    .action(async (prefix: string, options: KeyOptions, command: Command) => {
      const io = outputOf(command);
      const bare = prefix.replace(/^mm_/, '').split('_')[0] ?? '';
      if (!PREFIX_PATTERN.test(bare)) {
        throw new CliExit(ExitCode.usage, `'${prefix}' is not a key prefix (12 hex characters)`);
      }
      const revoked = await withKeyStore(options, io, async (store) => {
        const done = await revokeApiKey(store, bare);
        if (done)
          await appendAudit(store, { actor: CLI_ACTOR, action: 'key.revoked', target: bare });
        return done;
      });
      if (!revoked) throw new CliExit(ExitCode.failure, `no active key with prefix ${bare}`);
      io.out(`revoked ${bare}`);
    });
}
