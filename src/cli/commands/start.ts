// `middlemart start`: runs Middlemart from an estate config. With the built-in config (the
// embedded default: SQLite under ./.middlemart/) it also runs the sandbox estate beside it, so a
// new user sees every system answer with no other service installed.
import type { Command } from 'commander';
import type { FastifyBaseLogger } from 'fastify';
import {
  createApiKey,
  generateApiKey,
  listApiKeys,
  revokeApiKey,
} from '../../api/auth/api-keys.js';
import { installShutdown } from '../../api/server.js';
import { startApp } from '../../app.js';
import type { App } from '../../app.js';
import { defaultConfigPath, formatIssue, loadConfig } from '../../config/load.js';
import type { EstateConfig } from '../../config/schema.js';
import { createLogger } from '../../observability/logger.js';
import { renderEstateConfig, startEstate } from '../../sandbox/estate.js';
import type { Estate } from '../../sandbox/estate.js';
import { eventsTransport, runScenario } from '../../sandbox/scenarios/index.js';
import { CliExit, ExitCode } from '../errors.js';
import { outputOf } from '../io.js';
import { SANDBOX_SESSION_FILE, removeSandboxSession, writeSandboxSession } from '../session.js';
import type { CliOutput } from '../io.js';

interface StartOptions {
  config?: string;
  port?: string;
  sandbox: boolean;
  demoTraffic?: boolean;
  logLevel?: string;
}

export function register(program: Command): void {
  program
    .command('start')
    .description(
      'run Middlemart (API and workers) from an estate config; with the built-in config, ' +
        'the sandbox estate runs beside it',
    )
    .option('-c, --config <file>', 'estate config (default: the built-in middlemart.yaml)')
    .option('-p, --port <port>', 'HTTP port (overrides server.port; 0 picks a free port)')
    .option('--no-sandbox', 'do not run the sandbox estate even if the config enables it')
    .option('--demo-traffic', 'send a gentle steady scenario through the running estate')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace', 'info')
    .addHelpText(
      'after',
      '\nEnvironment: MIDDLEMART_DATABASE_URL overrides store.url (sqlite:<path> or postgres://…).\n' +
        'Stops cleanly on SIGINT (Ctrl-C) or SIGTERM: no new requests, in-flight work finishes.',
    )
    .action(async (options: StartOptions, command: Command) => {
      const io = outputOf(command);
      const port = parsePort(options.port);
      const code = await start(options, port, io);
      if (code !== ExitCode.ok) throw new CliExit(code);
    });
}

function parsePort(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new CliExit(ExitCode.usage, `--port: '${value}' is not a port number (0-65535)`);
  }
  return n;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

async function start(options: StartOptions, port: number | undefined, io: CliOutput) {
  const level = options.logLevel ?? 'info';
  if (!LOG_LEVELS.includes(level)) {
    throw new CliExit(
      ExitCode.usage,
      `--log-level: '${level}' is not one of ${LOG_LEVELS.join(', ')}`,
    );
  }
  const path = options.config ?? defaultConfigPath();

  // First pass without the environment: is the file valid, and does it want the sandbox?
  const shape = await loadConfig(path, process.env, { resolveEnv: false });
  if (!shape.ok) {
    for (const issue of shape.issues) io.err(formatIssue(path, issue));
    return ExitCode.invalidConfig;
  }
  const wantSandbox = shape.config.sandbox.enabled && options.sandbox;
  const listenPort = port ?? shape.config.server.port;

  let estate: Estate | undefined;
  let env: NodeJS.ProcessEnv = process.env;
  // With the sandbox, a development admin key: the simulated stores upload with it, and it is
  // printed so every route can be tried at once. A real estate mints keys with `keys create`.
  const devKey = wantSandbox ? generateApiKey() : undefined;
  if (wantSandbox) {
    estate = await startEstate({
      basePort: shape.config.sandbox.basePort,
      middlemartUrl: `http://${shape.config.server.host}:${listenPort}`,
      ...(devKey ? { apiKey: devKey } : {}),
    });
    env = { ...process.env, ...estate.env };
  }

  const loaded = await loadConfig(path, env);
  if (!loaded.ok) {
    for (const issue of loaded.issues) io.err(formatIssue(path, issue));
    await estate?.stop();
    return ExitCode.invalidConfig;
  }
  const config = estate ? pointAtEstate(loaded.config, estate) : loaded.config;

  const logger = createLogger({ name: 'middlemart', level });
  let app: App;
  try {
    app = await startApp({
      config,
      logger,
      configFile: path,
      ...(port === undefined ? {} : { port }),
    });
  } catch (err) {
    await estate?.stop();
    io.err(`middlemart: could not start: ${err instanceof Error ? err.message : String(err)}`);
    return ExitCode.failure;
  }

  if (devKey) {
    try {
      await storeSandboxKey(app, devKey);
    } catch (err) {
      await app.stop();
      await estate?.stop();
      io.err(`middlemart: could not create the development key: ${(err as Error).message}`);
      return ExitCode.failure;
    }
  }

  io.out('');
  io.out(`Middlemart ${app.url ?? '(worker only)'}  store ${describeStore(config.store.url)}`);
  if (app.url) {
    io.out(`  health     ${app.url}/healthz`);
    io.out(`  ingest     POST ${app.url}/v1/events`);
    io.out(`  api docs   ${app.url}/docs`);
    io.out(`  metrics    ${app.url}/metrics`);
    io.out(`  queues     ${app.url}/v1/ops/queues`);
  }
  if (devKey) {
    io.out(`  api key    ${devKey}`);
    io.out('             (admin, sandbox development only: Authorization: Bearer <key>)');
  }
  if (estate) {
    io.out('Sandbox estate:');
    for (const s of estate.systems) io.out(`  ${s.id.padEnd(14)} ${s.url}`);
    if (app.url && devKey) {
      writeSandboxSession({
        url: app.url,
        apiKey: devKey,
        estateConfig: renderEstateConfig(estate),
      });
      io.out(`Try: middlemart simulate steady --duration 30   (uses ${SANDBOX_SESSION_FILE})`);
    }
  }
  io.out('Press Ctrl-C to stop.');
  io.out('');

  const demo = new AbortController();
  if (options.demoTraffic && app.url) {
    void runScenario(
      'steady',
      { seed: Date.now() % 2 ** 31, rate: 2, duration: 3600 },
      {
        target: app.url,
        transport: eventsTransport(),
        ...(devKey ? { apiKey: devKey } : {}),
        rate: 2,
        signal: demo.signal,
        maxDurationMs: 3600 * 1000,
      },
    ).then(
      (run) =>
        logger.info(
          { sent: run.summary.sent, accepted: run.summary.accepted },
          'demo traffic finished',
        ),
      (err: unknown) => logger.warn({ err }, 'demo traffic stopped'),
    );
  }

  return await new Promise<number>((resolve) => {
    const onClose = async () => {
      demo.abort();
      if (estate) removeSandboxSession();
      await app.stop();
      await estate?.stop();
    };
    if (app.server) {
      installShutdown(app.server, {
        onClose,
        logger: logger as unknown as FastifyBaseLogger,
        exit: resolve,
      });
    } else {
      let stopping = false;
      const onSignal = () => {
        if (stopping) return resolve(ExitCode.failure);
        stopping = true;
        onClose().then(
          () => resolve(ExitCode.ok),
          () => resolve(ExitCode.failure),
        );
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    }
  });
}

const SANDBOX_KEY_NAME = 'sandbox development key';

/** Revokes the previous sandbox development key(s) and stores this run's as an admin key. */
async function storeSandboxKey(app: App, key: string): Promise<void> {
  for (const k of await listApiKeys(app.store)) {
    if (k.name === SANDBOX_KEY_NAME) await revokeApiKey(app.store, k.prefix);
  }
  await createApiKey(app.store, { name: SANDBOX_KEY_NAME, roles: ['admin'], tier: 'premium', key });
}

/** The sandbox systems listen where the estate put them: their configured URLs follow. */
function pointAtEstate(config: EstateConfig, estate: Estate): EstateConfig {
  const urls = new Map(estate.systems.map((s) => [s.id as string, s.url]));
  return {
    ...config,
    systems: config.systems.map((s) => {
      const url = urls.get(s.id);
      return url ? { ...s, baseUrl: url } : s;
    }),
  };
}

function describeStore(url: string): string {
  if (url.startsWith('postgres')) {
    try {
      const u = new URL(url);
      return `postgres ${u.host}${u.pathname}`;
    } catch {
      return 'postgres';
    }
  }
  return url;
}
