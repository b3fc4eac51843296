// Matching benchmark (`npm run bench:match`): quality and speed of the customer matching engine
// on public identity data sets, with one configuration and parameters estimated by EM from each
// data set (no labels used for fitting). Ground truth is used only to score.
//
//  - FEBRL4 linkage (4a × 4b), FEBRL1, FEBRL2 (and FEBRL3 when present) deduplication: precision,
//    recall and F1 over all record pairs, wall time per run with loading; then every FEBRL set
//    again without `soc_sec_id` (retail data has no national id).
//  - Splink fake_1000 deduplication (ground truth: the `cluster` column).
//  - One new record matched against 100,000 stored customers (MatchIndex): p50 / p99 latency.
//
// Data: `../shared/data/identity` next to the repository, or MIDDLEMART_SHARED_DATA (pointing at
// the `data` folder that holds `identity/`). BENCH_INDEX_SIZE (default 100,000) and
// BENCH_QUERIES (default 2,000) bound the index part. The last line printed is one JSON object.
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import {
  estimateParameters,
  fieldsFromRow,
  linkRecords,
  MatchIndex,
  normaliseCustomer,
  recogniseColumns,
  type LinkRecord,
  type NormalisedCustomer,
} from '../src/domains/customers/matching/index.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const dataRoot = process.env.MIDDLEMART_SHARED_DATA
  ? resolve(process.env.MIDDLEMART_SHARED_DATA)
  : resolve(repo, '../shared/data');
const identity = join(dataRoot, 'identity');

interface Loaded {
  records: LinkRecord[];
  entity: string[];
}

function load(
  file: string,
  idColumn: string,
  entityOf: (row: Record<string, string>) => string,
  drop: string[] = [],
): Loaded {
  const rows = parse(readFileSync(file, 'utf8'), {
    columns: true,
    trim: true,
    skip_empty_lines: true,
  }) as Record<string, string>[];
  const header = Object.keys(rows[0] ?? {}).filter((c) => !drop.includes(c));
  const { columns } = recogniseColumns(header, idColumn);
  const records: LinkRecord[] = [];
  const entity: string[] = [];
  for (const row of rows) {
    records.push({ id: row[idColumn]!, record: normaliseCustomer(fieldsFromRow(row, columns)) });
    entity.push(entityOf(row));
  }
  return { records, entity };
}

const febrlEntity = (row: Record<string, string>) =>
  /^rec-(\d+)-/.exec(row['rec_id'] ?? '')?.[1] ?? '';

interface Quality {
  precision: number;
  recall: number;
  f1: number;
  truePairs: number;
  predictedPairs: number;
  seconds: number;
  /** CPU seconds of the run (user + system): what the run costs when the machine is shared. */
  cpuSeconds: number;
  candidatePairs: number;
}

function round(x: number, d = 4): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}

let cpuStart = process.cpuUsage();
function startClock(): number {
  cpuStart = process.cpuUsage();
  return performance.now();
}
function cpuSince(): number {
  const d = process.cpuUsage(cpuStart);
  return (d.user + d.system) / 1e6;
}

function score(
  predicted: number,
  correct: number,
  truth: number,
  seconds: number,
  candidates: number,
  cpuSeconds = 0,
): Quality {
  const precision = predicted === 0 ? 0 : correct / predicted;
  const recall = truth === 0 ? 0 : correct / truth;
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return {
    precision: round(precision),
    recall: round(recall),
    f1: round(f1),
    truePairs: truth,
    predictedPairs: predicted,
    seconds: round(seconds, 3),
    cpuSeconds: round(cpuSeconds, 3),
    candidatePairs: candidates,
  };
}

function truePairsDedupe(entity: string[]): number {
  const counts = new Map<string, number>();
  for (const e of entity) counts.set(e, (counts.get(e) ?? 0) + 1);
  let n = 0;
  for (const c of counts.values()) n += (c * (c - 1)) / 2;
  return n;
}

/** Pairs predicted by a run: the clusters' pairs (transitive) and the directly linked ones. */
interface RunQuality extends Quality {
  /** Directly linked pairs only (no transitive closure). */
  linkedPairs: { precision: number; recall: number; f1: number; predictedPairs: number };
}

function withLinked(q: Quality, linked: number, linkedCorrect: number): RunQuality {
  const l = score(linked, linkedCorrect, q.truePairs, q.seconds, q.candidatePairs);
  return {
    ...q,
    linkedPairs: { precision: l.precision, recall: l.recall, f1: l.f1, predictedPairs: linked },
  };
}

function dedupeRun(
  file: string,
  idColumn: string,
  entityOf: (r: Record<string, string>) => string,
  drop: string[] = [],
): RunQuality {
  const t0 = startClock();
  const data = load(file, idColumn, entityOf, drop);
  const result = linkRecords(data.records);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSince();
  const entityById = new Map(data.records.map((r, i) => [r.id, data.entity[i]!]));
  let linkedCorrect = 0;
  for (const p of result.pairs)
    if (entityById.get(p.idA) === entityById.get(p.idB)) linkedCorrect++;
  // Every pair inside a cluster is a predicted match.
  const members = new Map<number, number[]>();
  result.clusters.a.forEach((c, i) => {
    const list = members.get(c);
    if (list) list.push(i);
    else members.set(c, [i]);
  });
  let predicted = 0;
  let correct = 0;
  for (const list of members.values()) {
    for (let x = 0; x < list.length; x++) {
      for (let y = x + 1; y < list.length; y++) {
        predicted++;
        if (data.entity[list[x]!] === data.entity[list[y]!]) correct++;
      }
    }
  }
  const q = score(
    predicted,
    correct,
    truePairsDedupe(data.entity),
    seconds,
    result.candidatePairs,
    cpu,
  );
  return withLinked(q, result.pairs.length, linkedCorrect);
}

function linkRun(fileA: string, fileB: string, drop: string[] = []): RunQuality {
  const t0 = startClock();
  const a = load(fileA, 'rec_id', febrlEntity, drop);
  const b = load(fileB, 'rec_id', febrlEntity, drop);
  const result = linkRecords(a.records, b.records);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSince();
  const ea = new Map(a.records.map((r, i) => [r.id, a.entity[i]!]));
  const eb = new Map(b.records.map((r, i) => [r.id, b.entity[i]!]));
  let linkedCorrect = 0;
  for (const p of result.pairs) if (ea.get(p.idA) === eb.get(p.idB)) linkedCorrect++;
  // Cross pairs inside a cluster are predicted links.
  const membersA = new Map<number, number[]>();
  result.clusters.a.forEach((c, i) => {
    const list = membersA.get(c);
    if (list) list.push(i);
    else membersA.set(c, [i]);
  });
  let predicted = 0;
  let correct = 0;
  result.clusters.b.forEach((c, j) => {
    for (const i of membersA.get(c) ?? []) {
      predicted++;
      if (a.entity[i] === b.entity[j]) correct++;
    }
  });
  const countB = new Map<string, number>();
  for (const e of b.entity) countB.set(e, (countB.get(e) ?? 0) + 1);
  let truth = 0;
  for (const e of a.entity) truth += countB.get(e) ?? 0;
  const q = score(predicted, correct, truth, seconds, result.candidatePairs, cpu);
  return withLinked(q, result.pairs.length, linkedCorrect);
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Synthetic customers built by recombining FEBRL values, so the index holds realistic variety. */
function indexRun(size: number, queries: number): Record<string, number> {
  const source = load(join(identity, 'febrl/dataset2.csv'), 'rec_id', febrlEntity).records.map(
    (r) => r.record,
  );
  let seed = 7;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const pick = <K extends keyof NormalisedCustomer>(k: K): NormalisedCustomer[K] =>
    source[Math.floor(rnd() * source.length)]![k];
  const make = (): NormalisedCustomer => {
    const given = pick('givenName');
    const r: NormalisedCustomer = {
      givenName: given,
      givenNameCanonical: given,
      surname: pick('surname'),
      dateOfBirth: pick('dateOfBirth'),
      streetNumber: pick('streetNumber'),
      streetName: pick('streetName'),
      postcode: pick('postcode'),
      city: pick('city'),
      state: pick('state'),
    };
    for (const k of Object.keys(r) as (keyof NormalisedCustomer)[])
      if (r[k] === undefined) delete r[k];
    return r;
  };
  const stored: NormalisedCustomer[] = [];
  for (let i = 0; i < size; i++) stored.push(make());
  const tBuild = performance.now();
  const params = estimateParameters(stored.slice(0, 5000));
  const index = new MatchIndex(params);
  stored.forEach((r, i) => index.add(String(i), r));
  const buildSeconds = (performance.now() - tBuild) / 1000;
  // Warm-up (JIT, and the garbage of building the index collected) before anything is timed.
  for (let q = 0; q < Math.min(200, queries); q++) index.match(make(), { limit: 5 });
  const times: number[] = [];
  const cpuTimes: number[] = [];
  let found = 0;
  for (let q = 0; q < queries; q++) {
    // Half the queries are a stored customer with a typo in the surname, half are new people.
    const base = q % 2 === 0 ? { ...stored[Math.floor(rnd() * size)]! } : make();
    if (q % 2 === 0 && base.surname && base.surname.length > 2) {
      base.surname = base.surname.slice(0, 1) + base.surname.slice(2);
    }
    const c = process.cpuUsage();
    const t = performance.now();
    const matches = index.match(base, { limit: 5 });
    times.push(performance.now() - t);
    const dc = process.cpuUsage(c);
    cpuTimes.push((dc.user + dc.system) / 1000);
    if (matches.length > 0) found++;
  }
  times.sort((x, y) => x - y);
  cpuTimes.sort((x, y) => x - y);
  return {
    stored: size,
    queries,
    buildSeconds: round(buildSeconds, 2),
    p50Ms: round(percentile(times, 0.5), 3),
    p99Ms: round(percentile(times, 0.99), 3),
    cpuP50Ms: round(percentile(cpuTimes, 0.5), 3),
    cpuP99Ms: round(percentile(cpuTimes, 0.99), 3),
    queriesWithMatch: found,
  };
}

function main(): void {
  if (!existsSync(identity)) {
    console.error(`bench:match: no data at ${identity} (set MIDDLEMART_SHARED_DATA)`);
    process.exit(2);
  }
  const febrl = (name: string) => join(identity, 'febrl', name);
  const results: Record<string, unknown> = {};
  const noNid = ['soc_sec_id'];
  const runs: [string, () => RunQuality][] = [
    ['febrl4', () => linkRun(febrl('dataset4a.csv'), febrl('dataset4b.csv'))],
    ['febrl1', () => dedupeRun(febrl('dataset1.csv'), 'rec_id', febrlEntity)],
    ['febrl2', () => dedupeRun(febrl('dataset2.csv'), 'rec_id', febrlEntity)],
  ];
  if (existsSync(febrl('dataset3.csv'))) {
    runs.push(['febrl3', () => dedupeRun(febrl('dataset3.csv'), 'rec_id', febrlEntity)]);
  }
  for (const [name] of [...runs]) {
    runs.push([
      `${name}NoNationalId`,
      name === 'febrl4'
        ? () => linkRun(febrl('dataset4a.csv'), febrl('dataset4b.csv'), noNid)
        : () => dedupeRun(febrl(`dataset${name.slice(5)}.csv`), 'rec_id', febrlEntity, noNid),
    ]);
  }
  runs.push([
    'fake1000',
    () =>
      dedupeRun(
        join(identity, 'splink_fake_1000/fake_1000.csv'),
        'unique_id',
        (r) => r['cluster'] ?? '',
      ),
  ]);
  const only = process.env.BENCH_ONLY?.split(',');
  for (const [name, fn] of runs) {
    if (only && !only.includes(name)) continue;
    const q = fn();
    results[name] = q;
    console.log(
      `${name.padEnd(20)} P ${q.precision.toFixed(4)}  R ${q.recall.toFixed(4)}  F1 ${q.f1.toFixed(4)}  ${q.seconds.toFixed(2)} s (cpu ${q.cpuSeconds.toFixed(2)} s)  (${q.predictedPairs} predicted / ${q.truePairs} true, ${q.candidatePairs} compared; linked pairs only: F1 ${q.linkedPairs.f1.toFixed(4)})`,
    );
  }
  if (!only || only.includes('index')) {
    const size = Number(process.env.BENCH_INDEX_SIZE ?? 100_000);
    const queries = Number(process.env.BENCH_QUERIES ?? 2_000);
    const idx = indexRun(size, queries);
    results['index'] = idx;
    console.log(
      `index ${size} stored: p50 ${idx['p50Ms']} ms, p99 ${idx['p99Ms']} ms; cpu p50 ${idx['cpuP50Ms']} ms, p99 ${idx['cpuP99Ms']} ms (build ${idx['buildSeconds']} s)`,
    );
  }
  // The load average says how much the machine was shared while the wall times were taken.
  const load = loadavg().map((x) => round(x, 2));
  console.log(JSON.stringify({ bench: 'match', node: process.version, loadavg: load, ...results }));
}

main();
