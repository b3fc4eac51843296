// `middlemart audit verify`: walks the hash-chained audit log and reports the first entry that
// was altered, deleted or re-ordered (exit 1), or how many entries hold (exit 0).
import type { Command } from 'commander';
import { API_KEY_MIGRATIONS } from '../../api/auth/api-keys.js';
import { verifyAudit } from '../../api/auth/audit.js';
import { CliExit, ExitCode } from '../errors.js';
import { outputOf } from '../io.js';
import { openStoreFromOptions, withDatabaseOptions, type DatabaseOptions } from './migrate.js';

interface AuditOptions extends DatabaseOptions {
  json?: boolean;
}

export function register(program: Command): void {
  const audit = program.command('audit').description('the append-only, hash-chained audit log');
  withDatabaseOptions(
    audit
      .command('verify')
      .description('check every entry of the audit log against its hash chain; exit 1 if broken'),
  )
    .option('--json', 'print JSON')
    .action(async (options: AuditOptions, command: Command) => {
      const io = outputOf(command);
      const store = await openStoreFromOptions(options, io);
      let result;
      try {
        await store.migrate(API_KEY_MIGRATIONS);
        result = await verifyAudit(store);
      } catch (err) {
        throw new CliExit(ExitCode.failure, (err as Error).message);
      } finally {
        await store.close();
      }
      if (options.json) io.out(JSON.stringify(result));
      else if (result.ok) io.out(`audit log intact: ${result.entries} entries verified`);
      else {
        io.out(
          `audit log BROKEN at entry ${result.brokenAt}: ${result.reason} (${result.entries} entries before it verified)`,
        );
      }
      if (!result.ok) throw new CliExit(ExitCode.failure);
    });
}
