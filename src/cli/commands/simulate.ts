// `middlemart simulate <scenario>`: generates a scenario's traffic from a seed, sends it to
// Middlemart at a paced rate through the chosen transport, shows progress on stderr and prints
// a summary: sent, accepted, rejected by reason, latency percentiles, what each sandbox system
// received and any limit violations the ERP simulators counted.
import { readFileSync } from 'node:fs';
import { SingleBar } from 'cli-progress';
import { InvalidArgumentError } from 'commander';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import {
  ScenarioOptionError,
  SCENARIO_NAMES,
  SCENARIOS,
  eventsTransport,
  nativeTransport,
  runScenario,
} from '../../sandbox/scenarios/index.js';
import type { EstateSystemRef, RunSummary, ScenarioRun } from '../../sandbox/scenarios/index.js';
import { CliExit, ExitCode } from '../errors.js';
import { outputOf } from '../io.js';
import { SANDBOX_SESSION_FILE, readSandboxSession } from '../session.js';
import type { SandboxSession } from '../session.js';
import type { CliOutput } from '../io.js';
import { parseInteger, parseTransport } from './sandbox.js';

export interface SimulateOptions {
  target: string;
  apiKey?: string;
  rate?: number;
  duration?: number;
  size?: number;
  seed: number;
  json?: boolean;
  transport: 'events' | 'native';
  estate?: string;
  /** An estate config's text, used when no `estate` file is named (the sandbox session's). */
  estateConfig?: string;
  concurrency: number;
  webhookSecret?: string;
  timeout: number;
  progress?: boolean;
  stores?: number;
  offlineSeconds?: number;
  hotSkus?: number;
  batchSize?: number;
}

function parsePositive(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError(`expected a positive number, got '${value}'`);
  }
  return n;
}

function parsePositiveInteger(value: string): number {
  const n = parsePositive(value);
  if (!Number.isInteger(n))
    throw new InvalidArgumentError(`expected a positive integer, got '${value}'`);
  return n;
}

function parseUrl(value: string): string {
  try {
    const u = new URL(value);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http');
    return value.replace(/\/+$/, '');
  } catch {
    throw new InvalidArgumentError(`expected an http(s) URL, got '${value}'`);
  }
}

/** Reads system ids and URLs (and the commerce system's id) from an estate config file. */
export function readEstateSystems(path: string): {
  systems: EstateSystemRef[];
  commerceSystem?: string;
} {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliExit(
      ExitCode.usage,
      `--estate ${path}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  return estateSystemsOf(text, path);
}

const DEFAULT_TARGET = 'http://127.0.0.1:8080';

/**
 * Fills what was not given from the sandbox session `middlemart start` leaves in this folder:
 * the target, the development key (when the target is that sandbox) and its systems' URLs.
 */
export function withSessionDefaults(
  given: Partial<SimulateOptions>,
  session: SandboxSession | undefined = readSandboxSession(),
): SimulateOptions {
  const target = given.target ?? session?.url ?? DEFAULT_TARGET;
  const sameSandbox = session !== undefined && session.url === target;
  const apiKey =
    given.apiKey ?? process.env.MIDDLEMART_API_KEY ?? (sameSandbox ? session.apiKey : undefined);
  return {
    ...(given as SimulateOptions),
    target,
    ...(apiKey ? { apiKey } : {}),
    ...(given.estate === undefined && sameSandbox ? { estateConfig: session.estateConfig } : {}),
  };
}

/** System ids and URLs (and the commerce system's id) of an estate config's text. */
export function estateSystemsOf(
  text: string,
  path: string,
): { systems: EstateSystemRef[]; commerceSystem?: string } {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new CliExit(
      ExitCode.usage,
      `--estate ${path}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const systems = (doc as { systems?: unknown } | null)?.systems;
  if (!Array.isArray(systems))
    throw new CliExit(ExitCode.usage, `--estate ${path}: no systems list`);
  const refs: EstateSystemRef[] = [];
  let commerceSystem: string | undefined;
  for (const s of systems as Array<Record<string, unknown>>) {
    if (typeof s?.id !== 'string' || typeof s.baseUrl !== 'string') continue;
    refs.push({ id: s.id, url: s.baseUrl });
    if (s.kind === 'shopify' && commerceSystem === undefined) commerceSystem = s.id;
  }
  return { systems: refs, ...(commerceSystem ? { commerceSystem } : {}) };
}

export function formatSummary(run: ScenarioRun): string[] {
  const s: RunSummary = run.summary;
  const o = run.options;
  const lines = [
    `scenario ${run.scenario} (seed ${o.seed}, ${o.size} ${SCENARIOS[run.scenario]?.unit ?? 'items'}) → ${s.target} via ${s.transport}`,
    `  requests   planned ${s.planned}  sent ${s.sent}  accepted ${s.accepted}  rejected ${s.rejected}  not sent ${s.notSent}`,
    `  duration   ${(s.durationMs / 1000).toFixed(1)} s  (${s.throughput} req/s, stopped: ${s.stoppedBy})`,
    `  latency    p50 ${s.latencyMs.p50} ms  p95 ${s.latencyMs.p95} ms  p99 ${s.latencyMs.p99} ms  max ${s.latencyMs.max} ms`,
  ];
  const reasons = Object.entries(s.rejectedByReason).sort((a, b) => b[1] - a[1]);
  if (reasons.length > 0) {
    lines.push('  rejected by reason');
    for (const [reason, n] of reasons) lines.push(`    ${String(n).padStart(7)}  ${reason}`);
  }
  const labels = Object.entries(s.byLabel).sort((a, b) => a[0].localeCompare(b[0]));
  if (labels.length > 0) {
    lines.push('  by request');
    for (const [label, v] of labels) {
      lines.push(
        `    ${label.padEnd(28)} sent ${String(v.sent).padStart(7)}  accepted ${String(v.accepted).padStart(7)}`,
      );
    }
  }
  if (s.systems.length > 0) {
    lines.push('  systems received');
    for (const sys of s.systems) {
      const what = sys.error
        ? `unreachable (${sys.error})`
        : Object.entries(sys.received ?? {})
            .map(([k, v]) => `${k} ${v}`)
            .join(', ') || 'nothing';
      lines.push(`    ${sys.id.padEnd(14)} ${what}`);
    }
  }
  const violations = Object.entries(s.limitViolations);
  lines.push(
    violations.length === 0
      ? '  limit violations: none counted'
      : `  limit violations: ${violations.map(([k, v]) => `${k} ${v}`).join(', ')}`,
  );
  return lines;
}

export async function simulate(
  scenarioName: string,
  options: SimulateOptions,
  io: CliOutput,
): Promise<ScenarioRun> {
  const scenario = SCENARIOS[scenarioName];
  if (!Object.hasOwn(SCENARIOS, scenarioName) || scenario === undefined) {
    throw new CliExit(
      ExitCode.usage,
      `unknown scenario '${scenarioName}' (known: ${SCENARIO_NAMES.join(', ')})`,
    );
  }
  const estate = options.estate
    ? readEstateSystems(options.estate)
    : options.estateConfig
      ? estateSystemsOf(options.estateConfig, SANDBOX_SESSION_FILE)
      : undefined;
  let transport;
  if (options.transport === 'native') {
    const secret = options.webhookSecret ?? process.env.SANDBOX_COMMERCE_WEBHOOK_SECRET;
    if (!secret) {
      throw new CliExit(
        ExitCode.usage,
        '--transport native signs Shopify webhooks: pass --webhook-secret or set SANDBOX_COMMERCE_WEBHOOK_SECRET',
      );
    }
    transport = nativeTransport({ webhookSecret: secret });
  } else transport = eventsTransport();

  const scenarioOptions = {
    seed: options.seed,
    ...(options.rate !== undefined ? { rate: options.rate } : {}),
    ...(options.duration !== undefined ? { duration: options.duration } : {}),
    ...(options.size !== undefined ? { size: options.size } : {}),
    ...(estate?.commerceSystem ? { commerceSystem: estate.commerceSystem } : {}),
    ...(options.stores !== undefined ? { stores: options.stores } : {}),
    ...(options.offlineSeconds !== undefined ? { offlineSeconds: options.offlineSeconds } : {}),
    ...(options.hotSkus !== undefined ? { hotSkus: options.hotSkus } : {}),
    ...(options.batchSize !== undefined
      ? { batchSize: options.batchSize, maxBatchSize: options.batchSize }
      : {}),
  };
  try {
    scenario.resolve(scenarioOptions);
  } catch (err) {
    if (err instanceof ScenarioOptionError) throw new CliExit(ExitCode.usage, err.message);
    throw err;
  }

  const showProgress = options.progress !== false && !options.json && process.stderr.isTTY === true;
  const bar = showProgress
    ? new SingleBar({
        stream: process.stderr,
        format: `${scenarioName} [{bar}] {value}/{total} requests | accepted {accepted} | rejected {rejected} | {eta_formatted}`,
        hideCursor: true,
        clearOnComplete: true,
      })
    : undefined;
  let barStarted = false;
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  try {
    const run = await runScenario(scenarioName, scenarioOptions, {
      target: options.target,
      transport,
      concurrency: options.concurrency,
      timeoutMs: options.timeout,
      signal: controller.signal,
      ...(options.apiKey ? { apiKey: options.apiKey } : {}),
      ...(estate ? { systems: estate.systems } : {}),
      onProgress: (p) => {
        if (!bar) return;
        if (!barStarted) {
          bar.start(p.total, p.done, { accepted: p.accepted, rejected: p.rejected });
          barStarted = true;
        } else bar.update(p.done, { accepted: p.accepted, rejected: p.rejected });
      },
    });
    if (barStarted) bar?.stop();
    if (options.json)
      io.out(JSON.stringify({ scenario: run.scenario, options: run.options, ...run.summary }));
    else for (const line of formatSummary(run)) io.out(line);
    return run;
  } finally {
    if (barStarted) bar?.stop();
    process.off('SIGINT', onSignal);
  }
}

export function register(program: Command): void {
  program
    .command('simulate')
    .description(`send a traffic scenario to Middlemart (${SCENARIO_NAMES.join(', ')})`)
    .argument('<scenario>', `one of: ${SCENARIO_NAMES.join(', ')}`)
    .option(
      '--target <url>',
      `Middlemart base URL (default: the sandbox started here, see ${SANDBOX_SESSION_FILE}, else ${DEFAULT_TARGET})`,
      parseUrl,
    )
    .option(
      '--api-key <key>',
      "sent as Authorization: Bearer <key> (default: $MIDDLEMART_API_KEY, else the sandbox's development key)",
    )
    .option('--rate <n>', "requests per second (default: the scenario's)", parsePositive)
    .option('--duration <seconds>', "seconds of traffic (default: the scenario's)", parsePositive)
    .option('--size <n>', 'number of occurrences (overrides rate × duration)', parsePositiveInteger)
    .option('--seed <n>', 'seed: the same seed sends the same traffic', parseInteger, 1)
    .option('--json', 'print the summary as one JSON object (no progress bar)')
    .option(
      '--transport <kind>',
      'events (POST /v1/events) or native (webhooks, POS batches …)',
      parseTransport,
      'events',
    )
    .option(
      '--estate <file>',
      'sandbox estate config (e.g. .middlemart/sandbox.yaml) to read system URLs from',
    )
    .option('--concurrency <n>', 'items in flight at once', parsePositiveInteger, 8)
    .option('--timeout <ms>', 'per-request timeout in ms', parsePositiveInteger, 10_000)
    .option(
      '--webhook-secret <secret>',
      'Shopify webhook secret for --transport native (default $SANDBOX_COMMERCE_WEBHOOK_SECRET)',
    )
    .option('--no-progress', 'no progress bar')
    .option(
      '--stores <n>',
      'POS stores (steady, return-surge: 10; store-reconnect: 20)',
      parsePositiveInteger,
    )
    .option(
      '--offline-seconds <s>',
      'store-reconnect: how long the stores stay offline (60)',
      parsePositive,
    )
    .option('--hot-skus <n>', 'flash-sale: SKUs on sale (3)', parsePositiveInteger)
    .option(
      '--batch-size <n>',
      'price changes per price-feed request, transactions per store batch (500)',
      parsePositiveInteger,
    )
    .addHelpText(
      'after',
      '\nExit status: 0 when the run completed (rejections are reported, not failures); 1 when no ' +
        'request reached Middlemart; 2 for an unknown scenario or a bad option.',
    )
    .action(async (scenario: string, given: Partial<SimulateOptions>, command: Command) => {
      const io = outputOf(command);
      const run = await simulate(scenario, withSessionDefaults(given), io);
      const s = run.summary;
      const network = Object.entries(s.rejectedByReason)
        .filter(([reason]) => reason.startsWith('network '))
        .reduce((n, [, v]) => n + v, 0);
      if (s.sent > 0 && network === s.sent) {
        throw new CliExit(ExitCode.failure, `no request reached ${s.target}`);
      }
    });
}
