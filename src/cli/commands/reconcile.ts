// `middlemart reconcile inventory`: compares the ERP's stock snapshot with the availability
// ledger, and what each pushed channel shows with what it should show; prints the drift per
// SKU-location (JSON, CSV or a summary) and, with --fix, corrects the ledger to the ERP and
// makes the drifted channel keys due again (a running worker pushes them).
import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { formatIssue, loadConfig, parseConfig } from '../../config/load.js';
import type { EstateConfig } from '../../config/schema.js';
import { applicationMigrations } from '../../app.js';
import { reconciliationCsv } from '../../domains/inventory/index.js';
import { openStore } from '../../store/index.js';
import { runInventoryReconciliation } from '../../wiring/inventory.js';
import { CliExit, ExitCode } from '../errors.js';
import { outputOf, type CliOutput } from '../io.js';
import { readSandboxSession } from '../session.js';

interface ReconcileOptions {
  config?: string;
  databaseUrl?: string;
  schema?: string;
  fix?: boolean;
  format: 'summary' | 'json' | 'csv';
  output?: string;
  failOnDrift?: boolean;
}

/** The configuration: --config, else the running sandbox's estate, else middlemart.yaml. */
async function configOf(opts: ReconcileOptions, io: CliOutput): Promise<EstateConfig> {
  const session = opts.config ? undefined : readSandboxSession();
  const result = session
    ? parseConfig(session.estateConfig, 'sandbox session', process.env)
    : await loadConfig(opts.config, process.env, { resolveEnv: true });
  if (!result.ok) {
    for (const issue of result.issues) io.err(formatIssue(opts.config ?? 'config', issue));
    throw new CliExit(ExitCode.invalidConfig);
  }
  return result.config;
}

export function register(program: Command): void {
  const reconcile = program
    .command('reconcile')
    .description('compare Middlemart with the systems around it and report drift');
  reconcile
    .command('inventory')
    .description(
      'compare the ERP stock snapshot with the ledger and with what each channel shows; report drift per SKU-location',
    )
    .option(
      '--config <file>',
      'estate configuration (default: the running sandbox, then middlemart.yaml)',
    )
    .option('--database-url <url>', 'the store (default: MIDDLEMART_DATABASE_URL, then store.url)')
    .option('--schema <name>', 'PostgreSQL schema to use')
    .option('--fix', 'correct the ledger to the ERP and re-push drifted channel keys')
    .option('--format <format>', 'summary, json or csv', 'summary')
    .option('--output <file>', 'write the report (json or csv) to a file instead of stdout')
    .option('--fail-on-drift', 'exit with status 1 when any drift is found')
    .action(async (options: ReconcileOptions, command: Command) => {
      const io = outputOf(command);
      if (!['summary', 'json', 'csv'].includes(options.format)) {
        command.error(`--format must be summary, json or csv (got ${options.format})`);
      }
      const config = await configOf(options, io);
      const url = options.databaseUrl ?? process.env.MIDDLEMART_DATABASE_URL ?? config.store.url;
      let store;
      try {
        store = await openStore(url, { ...(options.schema ? { schema: options.schema } : {}) });
        await store.migrate(applicationMigrations(store.dialect));
      } catch (err) {
        throw new CliExit(ExitCode.failure, `cannot open the store: ${(err as Error).message}`);
      }
      try {
        const report = await runInventoryReconciliation({
          config,
          store,
          ...(options.fix ? { fix: true } : {}),
        });
        const text =
          options.format === 'json'
            ? JSON.stringify(report, null, 2)
            : options.format === 'csv'
              ? reconciliationCsv(report).trimEnd()
              : [
                  `reconciled ${report.checked} SKU-locations with ${report.erp} (snapshot ${report.snapshotAt})`,
                  `ledger drift: ${report.summary.ledgerDrifts}; moving since the snapshot: ${report.moving.length}`,
                  ...report.channels.map(
                    (c) =>
                      `channel ${c.channel}: ${c.drifts.length} drifting of ${c.checked} checked (${c.inFlight} being pushed)`,
                  ),
                  ...(options.fix
                    ? [
                        `fixed: ${report.fixed.ledger} ledger positions, ${report.fixed.channelKeys} channel keys re-pushed`,
                      ]
                    : []),
                ].join('\n');
        if (options.output) await writeFile(options.output, `${text}\n`);
        else io.out(text);
        const drift = report.summary.ledgerDrifts + report.summary.channelDrifts;
        if (options.failOnDrift && drift > 0) throw new CliExit(ExitCode.failure);
      } catch (err) {
        if (err instanceof CliExit) throw err;
        throw new CliExit(ExitCode.failure, `reconciliation failed: ${(err as Error).message}`);
      } finally {
        await store.close();
      }
    });
}
