#!/usr/bin/env node
// The `middlemart` command. Each command lives in `commands/<name>.ts` and exports
// `register(program: Command): void`, which adds it with `program.command(name)` (so it inherits
// the output, exit handling and help settings made here). A command's action resolves when its
// work is done (for a server: when it has shut down); to end with a non-zero status it throws
// `CliExit` (see errors.ts) or calls `command.error(message)` for a usage error.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { ConfigError, formatIssue } from '../config/load.js';
import { packageVersion } from '../config/package-root.js';
import { CliExit, ExitCode } from './errors.js';

// ---- Command modules: import each here and list it in COMMANDS below. ----------------------
import { register as registerStart } from './commands/start.js';
import { register as registerMigrate } from './commands/migrate.js';
import { register as registerDlq } from './commands/dlq.js';
import { register as registerSandbox } from './commands/sandbox.js';
import { register as registerSimulate } from './commands/simulate.js';
import { register as registerConfig } from './commands/config.js';
import { register as registerKeys } from './commands/keys.js';
import { register as registerAudit } from './commands/audit.js';
import { register as registerMatch } from './commands/match.js';
import { register as registerReconcile } from './commands/reconcile.js';
import { register as registerRoute } from './commands/route.js';

/** What every command module exports as `register`. */
export type RegisterCommand = (program: Command) => void;

/** Registered command modules, in the order `middlemart --help` lists them. */
export const COMMANDS: readonly RegisterCommand[] = [
  registerStart,
  registerMigrate,
  registerDlq,
  registerSandbox,
  registerSimulate,
  registerConfig,
  registerKeys,
  registerAudit,
  registerMatch,
  registerReconcile,
  registerRoute,
];
// ----------------------------------------------------------------------------------------------

export interface RunIo {
  writeOut(text: string): void;
  writeErr(text: string): void;
}

const processIo: RunIo = {
  writeOut: (text) => void process.stdout.write(text),
  writeErr: (text) => void process.stderr.write(text),
};

export function buildProgram(
  io: RunIo = processIo,
  commands: readonly RegisterCommand[] = COMMANDS,
): Command {
  const program = new Command('middlemart')
    .description(
      'Retail integration middleware: durable, ordered, exactly-once-in-effect coordination ' +
        'between ERP, commerce, POS, CRM, loyalty, WMS, tax and notification systems.',
    )
    .version(packageVersion(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help for the command')
    .configureOutput({ writeOut: io.writeOut, writeErr: io.writeErr })
    .exitOverride()
    .showSuggestionAfterError(true)
    .allowExcessArguments(false);
  for (const register of commands) register(program);
  return program;
}

/**
 * Runs the CLI on `argv` (the arguments after the program name) and returns the exit status:
 * 0 done, 1 failed, 2 usage error or invalid configuration. Never exits the process.
 * `commands` replaces the registered command modules (tests use it).
 */
export async function run(
  argv: readonly string[],
  io: RunIo = processIo,
  commands: readonly RegisterCommand[] = COMMANDS,
): Promise<number> {
  const program = buildProgram(io, commands);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return ExitCode.ok;
  } catch (err) {
    if (err instanceof CliExit) {
      if (err.message) io.writeErr(`middlemart: ${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof ConfigError) {
      io.writeErr(`${err.issues.map((i) => formatIssue(err.file, i)).join('\n')}\n`);
      return ExitCode.invalidConfig;
    }
    if (err instanceof CommanderError) {
      // Commander has printed its message (or the help/version) already.
      if (err.exitCode === 0) return ExitCode.ok;
      return err.code.startsWith('commander.') ? ExitCode.usage : err.exitCode;
    }
    const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
    io.writeErr(`middlemart: ${message}\n`);
    return ExitCode.failure;
  }
}

function invokedAsBin(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedAsBin()) {
  const code = await run(process.argv.slice(2));
  const flushed = (stream: NodeJS.WriteStream) =>
    new Promise<void>((resolve) => stream.write('', () => resolve()));
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
}
