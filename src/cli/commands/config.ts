// `middlemart config …`: check the estate configuration and show what it amounts to.
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument, stringify } from 'yaml';
import { defaultConfigPath, formatIssue, loadConfig } from '../../config/load.js';
import { analyseRouting, type RouteRule } from '../../domains/routing/index.js';
import { erpSystemsOf } from '../../wiring/routing.js';
import { CliExit, ExitCode } from '../errors.js';
import { outputOf } from '../io.js';

interface ValidateOptions {
  env?: boolean;
}

export function register(program: Command): void {
  const config = program
    .command('config')
    .description('check and inspect the estate configuration (middlemart.yaml)');

  config
    .command('validate')
    .description('validate a configuration file, reporting every error with its path and line')
    .argument('[file]', 'the configuration file (default: the built-in middlemart.yaml)')
    .option(
      '--env',
      'also resolve ${NAME} references and MIDDLEMART_DATABASE_URL against the environment',
    )
    .addHelpText(
      'after',
      '\nExit status: 0 when valid, 2 when invalid.\n' +
        'Without --env no environment variable needs to be set: references are checked for form only.\n' +
        'Routing rules are also checked: an unreachable rule (an earlier rule takes everything it\n' +
        'matches) or an ERP rule without a default behind it is an error; a rule that partly\n' +
        'overlaps an earlier rule routing elsewhere is a warning (on stderr).',
    )
    .action(async (file: string | undefined, options: ValidateOptions, command: Command) => {
      const io = outputOf(command);
      const path = file ?? defaultConfigPath();
      const result = await loadConfig(path, process.env, { resolveEnv: options.env === true });
      if (!result.ok) {
        for (const issue of result.issues) io.err(formatIssue(path, issue));
        const n = result.issues.length;
        io.err(`${path}: invalid (${n} ${n === 1 ? 'error' : 'errors'})`);
        throw new CliExit(ExitCode.invalidConfig);
      }
      const c = result.config;
      const findings = analyseRouting(c.routing as RouteRule[], {
        erpSystems: new Set(erpSystemsOf(c)),
      });
      const errors = findings.filter((f) => f.severity === 'error');
      if (findings.length > 0) {
        const locate = await ruleLocator(path);
        for (const f of findings) {
          const at = f.index >= 0 ? locate(f.index) : undefined;
          const where = at ? `${path}:${at.line}:${at.col}` : path;
          const rule = f.index >= 0 ? `routing[${f.index}]  ` : '';
          io.err(`${where}  ${rule}${f.severity === 'warning' ? 'warning: ' : ''}${f.message}`);
        }
      }
      if (errors.length > 0) {
        const n = errors.length;
        io.err(`${path}: invalid (${n} ${n === 1 ? 'error' : 'errors'})`);
        throw new CliExit(ExitCode.invalidConfig);
      }
      const owners = Object.values(c.fieldOwnership).reduce(
        (sum, fields) => sum + Object.keys(fields).length,
        0,
      );
      io.out(
        `${path}: OK (${plural(c.systems.length, 'system')}, ` +
          `${plural(c.routing.length, 'routing rule')}, ${plural(owners, 'owned field')}` +
          `${options.env ? ', environment resolved' : ''})`,
      );
    });

  config
    .command('show')
    .description(
      'print the configuration with every default filled in (references are shown, never resolved)',
    )
    .argument('[file]', 'the configuration file (default: the built-in middlemart.yaml)')
    .action(async (file: string | undefined, _options: unknown, command: Command) => {
      const io = outputOf(command);
      const path = file ?? defaultConfigPath();
      const result = await loadConfig(path, process.env, { resolveEnv: false });
      if (!result.ok) {
        for (const issue of result.issues) io.err(formatIssue(path, issue));
        throw new CliExit(ExitCode.invalidConfig);
      }
      io.out(`# ${path} with defaults applied`);
      io.out(stringify(result.config, { lineWidth: 0 }).trimEnd());
    });
}

/** Finds the line and column of `routing[i]` in the file (undefined when it cannot). */
async function ruleLocator(
  path: string,
): Promise<(index: number) => { line: number; col: number } | undefined> {
  try {
    const lineCounter = new LineCounter();
    const doc = parseDocument(await readFile(path, 'utf8'), { lineCounter });
    return (index) => {
      const node = doc.getIn(['routing', index], true) as { range?: [number, number, number] };
      return node?.range ? lineCounter.linePos(node.range[0]) : undefined;
    };
  } catch {
    return () => undefined;
  }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
