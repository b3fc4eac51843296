// `middlemart match <a.csv> [b.csv] --id <column> --out pairs.csv [--clusters clusters.csv]`:
// batch deduplication of one customer file, or linkage of two, with the matching engine. Columns
// are recognised by their usual names unless `--config` maps them; the mapping chosen is printed.
// Parameters are estimated from the files (EM) unless the config fixes them.
import { readFileSync, writeFileSync } from 'node:fs';
import { SingleBar, Presets } from 'cli-progress';
import type { Command } from 'commander';
import { CsvError, parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import {
  fieldsFromRow,
  linkRecords,
  normaliseCustomer,
  parametersFromConfig,
  parseMatchConfig,
  recogniseColumns,
  type CustomerFieldName,
  type LinkRecord,
  type MatchConfig,
  type NormaliseOptions,
} from '../../domains/customers/matching/index.js';
import { CliExit, ExitCode } from '../errors.js';
import { outputOf, type CliOutput } from '../io.js';

interface MatchOptions {
  id: string;
  out: string;
  clusters?: string;
  config?: string;
  review?: boolean;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : ((err as Error).message ?? String(err));
    throw new CliExit(ExitCode.usage, `${file}: cannot read: ${reason}`);
  }
}

function loadConfig(file: string): MatchConfig {
  const result = parseMatchConfig(readText(file));
  if (result.ok) return result.config;
  const lines = result.issues.map((i) => {
    const where = i.line ? `${file}:${i.line}:${i.column ?? 1}` : file;
    return `${where}: ${i.path ? `${i.path}: ` : ''}${i.message}`;
  });
  throw new CliExit(ExitCode.invalidConfig, lines.join('\nmiddlemart: '));
}

interface Table {
  header: string[];
  rows: { line: number; cells: Record<string, string> }[];
}

function readCsv(file: string): Table {
  const text = readText(file);
  let records: { record: Record<string, string>; info: { lines: number } }[];
  let header: string[] = [];
  try {
    records = parse(text, {
      columns: (h: string[]) => {
        header = h.map((c) => c.trim());
        return header;
      },
      trim: true,
      skip_empty_lines: true,
      bom: true,
      info: true,
    }) as { record: Record<string, string>; info: { lines: number } }[];
  } catch (err) {
    if (err instanceof CsvError) {
      const e = err as CsvError & { lines?: number; column?: string | number | null };
      const line = e.lines ?? 1;
      const column = e.column !== undefined && e.column !== null ? `, column ${e.column}` : '';
      throw new CliExit(
        ExitCode.usage,
        `${file}:${line}: malformed CSV${column}: ${err.message.replace(/\s+/g, ' ')}`,
      );
    }
    throw err;
  }
  return { header, rows: records.map((r) => ({ line: r.info.lines, cells: r.record })) };
}

function toRecords(
  file: string,
  table: Table,
  idColumn: string,
  configColumns: Record<string, CustomerFieldName> | undefined,
  normalise: NormaliseOptions,
  io: CliOutput,
): LinkRecord[] {
  if (!table.header.includes(idColumn)) {
    throw new CliExit(
      ExitCode.usage,
      `${file}:1: no id column '${idColumn}' (columns: ${table.header.join(', ') || 'none'})`,
    );
  }
  let mapping: Record<string, CustomerFieldName>;
  let ignored: string[];
  if (configColumns) {
    const missing = Object.keys(configColumns).filter((c) => !table.header.includes(c));
    if (missing.length > 0) {
      throw new CliExit(
        ExitCode.usage,
        `${file}:1: no column ${missing.map((c) => `'${c}'`).join(', ')} (named in the config)`,
      );
    }
    mapping = configColumns;
    ignored = table.header.filter((c) => c !== idColumn && !(c in configColumns));
  } else {
    ({ columns: mapping, ignored } = recogniseColumns(table.header, idColumn));
  }
  const mapped = Object.entries(mapping).map(([c, f]) => `${c} -> ${f}`);
  io.err(
    `${file}: id column '${idColumn}'; ${mapped.length > 0 ? mapped.join(', ') : 'no column recognised'}`,
  );
  if (ignored.length > 0) io.err(`${file}: ignored ${ignored.map((c) => `'${c}'`).join(', ')}`);
  if (mapped.length === 0) {
    throw new CliExit(
      ExitCode.usage,
      `${file}:1: no column holds a customer field; map them with --config`,
    );
  }
  const seen = new Map<string, number>();
  return table.rows.map(({ line, cells }) => {
    const id = cells[idColumn] ?? '';
    if (id === '')
      throw new CliExit(ExitCode.usage, `${file}:${line}: empty id in column '${idColumn}'`);
    const first = seen.get(id);
    if (first !== undefined) {
      throw new CliExit(ExitCode.usage, `${file}:${line}: id '${id}' repeats line ${first}`);
    }
    seen.set(id, line);
    return { id, record: normaliseCustomer(fieldsFromRow(cells, mapping), normalise) };
  });
}

function writeOut(file: string, text: string): void {
  try {
    writeFileSync(file, text);
  } catch (err) {
    throw new CliExit(ExitCode.failure, `${file}: cannot write: ${(err as Error).message}`);
  }
}

export function register(program: Command): void {
  program
    .command('match')
    .description('deduplicate one customer CSV, or link two, and write the matched pairs')
    .argument('<a.csv>', 'customers to deduplicate (or the first set to link)')
    .argument('[b.csv]', 'a second set: link a to b instead of deduplicating a')
    .requiredOption('--id <column>', 'the column holding each record id')
    .requiredOption('--out <pairs.csv>', 'where to write the pairs: id_a,id_b,score')
    .option('--clusters <clusters.csv>', 'also write id,cluster (linked records share a cluster)')
    .option('--config <match.yaml>', 'column mapping, thresholds, email rules, fixed parameters')
    .option('--review', 'also write pairs in the review band (score between the thresholds)')
    .addHelpText(
      'after',
      '\nThe score is the match weight: log2 of the odds that the two records are the same customer.\n' +
        'Without --config, columns are recognised by their usual names and the mapping is printed.\n' +
        'Exit status: 0 done, 2 bad input (the message names the file and line).',
    )
    .action((fileA: string, fileB: string | undefined, options: MatchOptions, command: Command) => {
      const io = outputOf(command);
      const config = options.config ? loadConfig(options.config) : {};
      const normalise: NormaliseOptions = {};
      if (config.defaultCountry) normalise.defaultCountry = config.defaultCountry;
      if (config.email?.rules) normalise.emailRules = config.email.rules;
      if (config.email?.stripPlusTagsEverywhere) normalise.stripPlusTagsEverywhere = true;
      const a = toRecords(fileA, readCsv(fileA), options.id, config.columns, normalise, io);
      const b = fileB
        ? toRecords(fileB, readCsv(fileB), options.id, config.columns, normalise, io)
        : undefined;
      const bar = process.stderr.isTTY
        ? new SingleBar(
            {
              stream: process.stderr,
              format: 'matching [{bar}] {percentage}% {value}/{total} pairs',
            },
            Presets.shades_classic,
          )
        : undefined;
      let started = false;
      const parameters = parametersFromConfig(config);
      const result = linkRecords(a, b, {
        ...(parameters ? { parameters } : {}),
        ...(config.thresholds && !parameters
          ? { estimate: { thresholds: config.thresholds } }
          : {}),
        includeReview: options.review === true,
        onProgress: (done, total) => {
          if (!bar) return;
          if (!started) {
            bar.start(total, done);
            started = true;
          } else bar.update(done);
        },
      });
      if (started) bar?.stop();
      io.err(
        result.parameterSource === 'estimated'
          ? `parameters: estimated by EM from ${result.candidatePairs} candidate pairs`
          : result.parameterSource === 'defaults'
            ? 'parameters: generic defaults (too few records to estimate from)'
            : `parameters: from ${options.config}`,
      );
      writeOut(
        options.out,
        stringify(
          result.pairs.map((p) => [p.idA, p.idB, p.score]),
          { header: true, columns: ['id_a', 'id_b', 'score'] },
        ),
      );
      let clusterCount = 0;
      if (options.clusters) {
        const rows: [string, number][] = [];
        a.forEach((r, i) => rows.push([r.id, result.clusters.a[i]!]));
        b?.forEach((r, j) => rows.push([r.id, result.clusters.b[j]!]));
        clusterCount = new Set(rows.map((r) => r[1])).size;
        writeOut(options.clusters, stringify(rows, { header: true, columns: ['id', 'cluster'] }));
      }
      const records = a.length + (b?.length ?? 0);
      io.out(
        `${records} records, ${result.candidatePairs} pairs compared, ${result.pairs.length} pairs written to ${options.out}` +
          (options.clusters ? `, ${clusterCount} clusters written to ${options.clusters}` : ''),
      );
    });
}
