// `middlemart sandbox`: runs the simulated retail estate on its own (every system on
// basePort + 1 … + 9), prints where each system listens, writes an estate config pointing at it
// (and, on request, an env file with this start's SANDBOX_* credentials), and runs until SIGINT
// or SIGTERM.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import { defaultConfigPath } from '../../config/package-root.js';
import { renderEstateConfig, startEstate } from '../../sandbox/estate.js';
import type { Estate } from '../../sandbox/estate.js';
import { CliExit, ExitCode } from '../errors.js';
import { outputOf } from '../io.js';
import type { CliOutput } from '../io.js';

export const DEFAULT_SANDBOX_CONFIG = '.middlemart/sandbox.yaml';

export interface SandboxCommandOptions {
  basePort: number;
  seed: number;
  writeConfig: string;
  envFile?: string;
  middlemartUrl?: string;
  transport: 'events' | 'native';
  apiKey?: string;
  dropDir?: string;
}

export function parsePort(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65526) {
    throw new InvalidArgumentError('expected 0 (ephemeral ports) or a port number up to 65526');
  }
  return n;
}

export function parseInteger(value: string): number {
  if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError(`expected an integer, got '${value}'`);
  return Number(value);
}

export function parseTransport(value: string): 'events' | 'native' {
  if (value !== 'events' && value !== 'native') {
    throw new InvalidArgumentError(`expected 'events' or 'native', got '${value}'`);
  }
  return value;
}

/** `KEY=value` lines of the estate's credentials, for `--env-file`. */
export function renderEnvFile(env: Record<string, string>): string {
  const lines = [
    '# Credentials of a running Middlemart sandbox estate (regenerated at every start).',
    ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * Starts the estate, reports it, writes its config (and env file), then waits for `stop`
 * to abort before stopping every system. Resolves once the estate is down.
 */
export async function serveSandbox(
  options: SandboxCommandOptions,
  io: CliOutput,
  stop: AbortSignal,
  onStarted?: (estate: Estate) => void,
): Promise<void> {
  let estate: Estate;
  try {
    estate = await startEstate({
      basePort: options.basePort,
      seed: options.seed,
      transport: options.transport,
      ...(options.middlemartUrl ? { middlemartUrl: options.middlemartUrl } : {}),
      ...(options.apiKey ? { apiKey: options.apiKey } : {}),
      ...(options.dropDir ? { dropDir: resolve(options.dropDir) } : {}),
    });
  } catch (err) {
    throw new CliExit(ExitCode.failure, err instanceof Error ? err.message : String(err));
  }
  try {
    const width = Math.max(...estate.systems.map((s) => s.id.length));
    io.out(`sandbox estate (seed ${estate.seed}):`);
    for (const s of estate.systems)
      io.out(`  ${s.id.padEnd(width)}  ${s.kind.padEnd(12)}  ${s.url}`);

    const templatePath = defaultConfigPath();
    const template = existsSync(templatePath) ? readFileSync(templatePath, 'utf8') : undefined;
    const yaml = renderEstateConfig(estate, template !== undefined ? { template } : {});
    await writeText(options.writeConfig, yaml);
    io.out(`estate config: ${options.writeConfig}`);
    if (options.envFile) {
      await writeText(options.envFile, renderEnvFile(estate.env), 0o600);
      io.out(`credentials: ${options.envFile} (${Object.keys(estate.env).join(', ')})`);
    } else {
      io.out('credentials: not written (pass --env-file <file> to write the SANDBOX_* variables)');
    }
    if (options.middlemartUrl)
      io.out(`stores upload to ${options.middlemartUrl} (${options.transport})`);
    io.out('running; press Ctrl+C to stop');
    onStarted?.(estate);
    if (!stop.aborted) {
      await new Promise<void>((done) =>
        stop.addEventListener('abort', () => done(), { once: true }),
      );
    }
  } finally {
    await estate.stop();
    io.out('sandbox estate stopped');
  }
}

async function writeText(path: string, text: string, mode?: number): Promise<void> {
  await mkdir(dirname(resolve(path)), { recursive: true });
  await writeFile(path, text, mode === undefined ? 'utf8' : { encoding: 'utf8', mode });
}

export function register(program: Command): void {
  program
    .command('sandbox')
    .description(
      'run the simulated retail estate (ERP, commerce, POS, CRM, loyalty, WMS, tax, notifications)',
    )
    .option(
      '--base-port <port>',
      'systems listen on port+1 … port+9 (0: ephemeral ports)',
      parsePort,
      7100,
    )
    .option('--seed <n>', 'seed of catalogues, customers and sales', parseInteger, 1)
    .option(
      '--write-config <file>',
      'where to write the estate config pointing at the sandbox',
      DEFAULT_SANDBOX_CONFIG,
    )
    .option('--env-file <file>', "write this start's SANDBOX_* credentials to this file")
    .option(
      '--write-env <file>',
      'the same as --env-file (Node 20 itself reads a --env-file argument, even after the script)',
    )
    .option(
      '--middlemart-url <url>',
      'Middlemart base URL stores upload to (and native webhooks go to)',
    )
    .option(
      '--transport <kind>',
      'how stores reach Middlemart: events or native',
      parseTransport,
      'events',
    )
    .option('--api-key <key>', 'sent as Authorization: Bearer by uploading stores')
    .option('--drop-dir <dir>', "folder of the legacy ERP's flat-file exchange")
    .action(async (options: SandboxCommandOptions & { writeEnv?: string }, command: Command) => {
      const io = outputOf(command);
      if (options.writeEnv !== undefined) {
        if (options.envFile !== undefined && options.envFile !== options.writeEnv) {
          throw new CliExit(ExitCode.usage, '--env-file and --write-env name different files');
        }
        options.envFile = options.writeEnv;
      }
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        await serveSandbox(options, io, controller.signal);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
