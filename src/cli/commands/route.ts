// `middlemart route explain <order.json>`: which routing rule sends a transaction to which ERP,
// and why every rule before it did not match.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { eventByType } from '../../canonical/index.js';
import type { OrderV1 } from '../../canonical/index.js';
import { defaultConfigPath, formatIssue, loadConfig } from '../../config/load.js';
import {
  ROUTED_PROCESSES,
  RoutingRulesError,
  orderRoutingFacts,
  type RouteExplanation,
} from '../../domains/routing/index.js';
import type { ErpProcess, RoutingFacts } from '../../ports/routing.js';
import { routerFor } from '../../wiring/routing.js';
import { CliExit, ExitCode } from '../errors.js';
import { outputOf, type CliOutput } from '../io.js';

interface ExplainOptions {
  config?: string;
  businessUnit?: string;
  process?: string;
  event?: string;
  json?: boolean;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The routing facts of a file's content: a canonical order, a CloudEvent carrying one, a
 * `{ businessUnit, order }` wrapper, or routing facts as they are.
 */
export function factsOfDocument(
  doc: unknown,
  overrides: { businessUnit?: string; process?: string; event?: string } = {},
): { facts: RoutingFacts; subject: string } {
  if (!isRecord(doc)) throw new CliExit(ExitCode.usage, 'the file holds no JSON object');
  let order: unknown = doc;
  let event: string | undefined;
  let businessUnit: string | undefined;
  if (typeof doc.specversion === 'string' && typeof doc.type === 'string') {
    event = eventByType(doc.type)?.name;
    order = doc.data;
    if (typeof doc.businessunit === 'string') businessUnit = doc.businessunit;
  } else if (isRecord(doc.order)) {
    order = doc.order;
    if (typeof doc.businessUnit === 'string') businessUnit = doc.businessUnit;
    if (typeof doc.event === 'string') event = doc.event;
  }
  const proc = overrides.process;
  if (proc !== undefined && !ROUTED_PROCESSES.includes(proc as ErpProcess)) {
    throw new CliExit(
      ExitCode.usage,
      `--process must be one of ${ROUTED_PROCESSES.join(', ')}, not ${proc}`,
    );
  }
  if (isRecord(order) && typeof order.id === 'string' && typeof order.channel === 'string') {
    const o = order as unknown as OrderV1;
    const facts = orderRoutingFacts(
      { ...o, fulfilment: isRecord(o.fulfilment) ? o.fulfilment : { method: 'ship' } },
      {
        ...((overrides.businessUnit ?? businessUnit)
          ? { businessUnit: (overrides.businessUnit ?? businessUnit)! }
          : {}),
        ...((overrides.event ?? event) ? { event: (overrides.event ?? event)! } : {}),
        ...(proc ? { process: proc as ErpProcess } : {}),
      },
    );
    return { facts, subject: `order ${o.id}` };
  }
  if (typeof doc.process === 'string') {
    if (!ROUTED_PROCESSES.includes(doc.process as ErpProcess)) {
      throw new CliExit(
        ExitCode.usage,
        `process must be one of ${ROUTED_PROCESSES.join(', ')}, not ${doc.process}`,
      );
    }
    const facts: RoutingFacts = { process: (proc ?? doc.process) as ErpProcess };
    for (const key of ['event', 'businessUnit', 'country', 'region', 'channel', 'store'] as const) {
      const value = doc[key];
      if (typeof value === 'string') facts[key] = value;
    }
    if (overrides.businessUnit) facts.businessUnit = overrides.businessUnit;
    if (overrides.event) facts.event = overrides.event;
    return { facts, subject: 'transaction' };
  }
  throw new CliExit(
    ExitCode.usage,
    'the file is neither an order (id, channel, lines …), an order event, nor routing facts (process …)',
  );
}

function printExplanation(io: CliOutput, subject: string, explanation: RouteExplanation): void {
  const facts = Object.entries(explanation.facts)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(', ');
  io.out(`${subject}: ${facts}`);
  for (const e of explanation.evaluated) {
    const verdict = e.matched
      ? 'MATCH'
      : `no (${e.checks
          .filter((c) => !c.ok)
          .map(
            (c) =>
              `${c.dimension} is ${c.actual ?? '(none)'}, wants ${c.expected.length === 1 ? c.expected[0] : `one of [${c.expected.join(', ')}]`}`,
          )
          .join('; ')})`;
    io.out(`  routing[${e.index}] ${e.rule} (${e.conditions}) → ${e.to}: ${verdict}`);
  }
  const d = explanation.decision;
  if (d) io.out(`→ ${d.system} by rule ${d.rule}: ${d.reason}`);
}

export function register(program: Command): void {
  const route = program
    .command('route')
    .description('explain how the estate routes transactions to ERP systems');

  route
    .command('explain')
    .description('show which routing rule chooses which ERP for an order, and why')
    .argument(
      '<file>',
      'a JSON file: a canonical order, an order event, { "businessUnit", "order" }, or routing facts',
    )
    .option('-c, --config <file>', 'estate config (default: the built-in middlemart.yaml)')
    .option('--business-unit <bu>', 'the business unit of the order')
    .option('--process <process>', `process domain (${ROUTED_PROCESSES.join(', ')})`)
    .option('--event <event>', 'the event being routed (default order.created for orders)')
    .option('--json', 'print the explanation as JSON')
    .addHelpText(
      'after',
      '\nExit status: 0 routed, 1 no rule routes it, 2 invalid file or configuration.',
    )
    .action(async (file: string, options: ExplainOptions, command: Command) => {
      const io = outputOf(command);
      const configPath = options.config ?? defaultConfigPath();
      const loaded = await loadConfig(configPath, process.env, { resolveEnv: false });
      if (!loaded.ok) {
        for (const issue of loaded.issues) io.err(formatIssue(configPath, issue));
        throw new CliExit(ExitCode.invalidConfig);
      }
      let doc: unknown;
      try {
        doc = JSON.parse(await readFile(file, 'utf8'));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new CliExit(
          ExitCode.usage,
          code === 'ENOENT'
            ? `${file}: no such file`
            : `${file}: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
      const { facts, subject } = factsOfDocument(doc, {
        ...(options.businessUnit ? { businessUnit: options.businessUnit } : {}),
        ...(options.process ? { process: options.process } : {}),
        ...(options.event ? { event: options.event } : {}),
      });
      let explanation: RouteExplanation;
      try {
        explanation = routerFor(loaded.config).explain(facts);
      } catch (err) {
        if (err instanceof RoutingRulesError) {
          for (const f of err.findings.filter((x) => x.severity === 'error')) {
            io.err(`${configPath}  ${f.index >= 0 ? `routing[${f.index}]  ` : ''}${f.message}`);
          }
          throw new CliExit(ExitCode.invalidConfig);
        }
        throw err;
      }
      if (options.json) {
        io.out(JSON.stringify(explanation, null, 2));
      } else {
        printExplanation(io, subject, explanation);
      }
      if (!explanation.decision) {
        throw new CliExit(ExitCode.failure, explanation.error ?? 'no route');
      }
    });
}
