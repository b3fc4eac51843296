import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import {
  blockingKeys,
  createMatcher,
  dayMonthTransposed,
  defaultParameters,
  estimateParameters,
  fieldsFromRow,
  FIELDS,
  jaro,
  jaroWinkler,
  levenshtein,
  linkRecords,
  MatchIndex,
  normaliseCustomer,
  parametersFromConfig,
  parseMatchConfig,
  recogniseColumns,
  seededRandom,
  soundex,
  TermFrequencies,
  type NormalisedCustomer,
} from '../../../src/domains/customers/matching/index.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));
const identity = process.env.MIDDLEMART_SHARED_DATA
  ? resolve(process.env.MIDDLEMART_SHARED_DATA, 'identity')
  : resolve(repo, '../shared/data/identity');

const close = (actual: number, expected: number, tolerance: number, what: string) =>
  assert.ok(
    Math.abs(actual - expected) <= tolerance,
    `${what}: ${actual} not within ${tolerance} of ${expected}`,
  );

test('Jaro and Jaro-Winkler give the published values', () => {
  close(jaro('martha', 'marhta'), 0.9444, 0.0001, 'jaro martha');
  close(jaroWinkler('martha', 'marhta'), 0.9611, 0.0001, 'jw martha');
  close(jaroWinkler('dwayne', 'duane'), 0.84, 0.0001, 'jw dwayne');
  close(jaro('dixon', 'dicksonx'), 0.7667, 0.0001, 'jaro dixon');
  close(jaroWinkler('dixon', 'dicksonx'), 0.8133, 0.0001, 'jw dixon');
  assert.equal(jaroWinkler('same', 'same'), 1);
  assert.equal(jaroWinkler('', 'abc'), 0);
  assert.equal(jaroWinkler('abc', 'xyz'), 0);
});

test('Levenshtein counts edits and stops early past its bound', () => {
  assert.equal(levenshtein('kitten', 'sitting'), 3);
  assert.equal(levenshtein('flaw', 'lawn'), 2);
  assert.equal(levenshtein('', 'abc'), 3);
  assert.equal(levenshtein('abc', 'abc'), 0);
  // Bounded: anything past the bound is reported as bound + 1.
  assert.equal(levenshtein('kitten', 'sitting', 1), 2);
  assert.equal(levenshtein('a', 'abcdef', 2), 3);
});

test('Soundex and date closeness', () => {
  assert.deepEqual(
    ['robert', 'rupert', 'rubin', 'ashcraft', 'tymczak', 'pfister', 'honeyman'].map(soundex),
    ['R163', 'R163', 'R150', 'A261', 'T522', 'P236', 'H555'],
  );
  assert.equal(dayMonthTransposed('1990-05-06', '1990-06-05'), true);
  assert.equal(dayMonthTransposed('1990-05-06', '1991-06-05'), false);
  assert.equal(dayMonthTransposed('1990-05-05', '1990-05-05'), false);
});

test('comparison levels: exact, nickname, swapped names, date transposed, null', () => {
  const m = createMatcher(defaultParameters());
  const a = normaliseCustomer({
    givenName: 'William',
    surname: 'Hartley',
    dateOfBirth: '1980-03-04',
  });
  const b = normaliseCustomer({ givenName: 'Bill', surname: 'Hartly', dateOfBirth: '1980-04-03' });
  const e = m.explain(a, b);
  const level = (f: string) => e.fields.find((x) => x.field === f)!.level;
  assert.equal(level('givenName'), 'nickname');
  assert.equal(level('surname'), 'jaro-winkler>=0.92');
  assert.equal(level('dateOfBirth'), 'day-month-transposed');
  assert.equal(level('email'), 'null');
  const swapped = m.explain(
    normaliseCustomer({ givenName: 'Isla', surname: 'Hall' }),
    normaliseCustomer({ givenName: 'Hall', surname: 'Isla' }),
  );
  assert.equal(swapped.fields.find((x) => x.field === 'givenName')!.level, 'swapped-with-surname');
  assert.equal(swapped.fields.find((x) => x.field === 'surname')!.level, 'swapped-with-given-name');
});

test('an explanation carries every field with its level and weight, summing to the score', () => {
  const params = defaultParameters(10_000);
  const m = createMatcher(params);
  const a = normaliseCustomer({
    givenName: 'Ann',
    surname: 'Lee',
    email: 'ann@example.com',
    postcode: '2000',
  });
  const b = normaliseCustomer({
    givenName: 'Anne',
    surname: 'Lee',
    email: 'ann@example.com',
    postcode: '4710',
  });
  const e = m.explain(a, b);
  assert.deepEqual(
    e.fields.map((f) => f.field),
    FIELDS.map((f) => f.name),
  );
  const prior = Math.log2(params.prior / (1 - params.prior));
  const sum = e.fields.reduce((s, f) => s + f.weight, prior);
  close(e.score, sum, 0.01, 'score = prior + weights');
  const email = e.fields.find((f) => f.field === 'email')!;
  assert.equal(email.level, 'exact');
  close(email.weight, Math.log2(0.8 / 0.00001), 0.001, 'email exact weight');
  assert.ok(e.fields.find((f) => f.field === 'postcode')!.weight < 0);
  assert.equal(e.fields.find((f) => f.field === 'phone')!.weight, 0);
  assert.ok(e.probability > 0 && e.probability < 1);
});

test('deterministic rules link whatever the score, and say which rule', () => {
  const m = createMatcher(defaultParameters());
  const a = normaliseCustomer({ givenName: 'Ann', email: 'a@x.com', emailVerified: true });
  const b = normaliseCustomer({ givenName: 'Zed', email: 'A@X.com', emailVerified: true });
  const e = m.explain(a, b);
  assert.equal(e.decision, 'link');
  assert.equal(e.rule, 'same-verified-email');
  // Unverified on one side: no rule, the score decides.
  const c = normaliseCustomer({ givenName: 'Zed', email: 'a@x.com' });
  assert.equal(m.explain(a, c).rule, undefined);
  const l1 = normaliseCustomer({ surname: 'Kim', loyaltyId: 'L-1' });
  const l2 = normaliseCustomer({ surname: 'Park', loyaltyId: 'L-1' });
  assert.equal(m.explain(l1, l2).rule, 'same-loyalty-id');
  const e1 = normaliseCustomer({ surname: 'Kim', erpAccount: 'C100' });
  const e2 = normaliseCustomer({ surname: 'Kim', erpAccount: 'C100' });
  assert.equal(m.explain(e1, e2).rule, 'same-erp-account');
});

test('term frequencies: a rare surname agreeing weighs more than a common one', () => {
  const records: NormalisedCustomer[] = [];
  for (let i = 0; i < 200; i++) records.push({ surname: 'smith' });
  records.push({ surname: 'zaborowski' });
  const tf = new TermFrequencies(records);
  const m = createMatcher(defaultParameters(), { termFrequencies: tf });
  const weight = (s: string) =>
    m.explain({ surname: s }, { surname: s }).fields.find((f) => f.field === 'surname')!.weight;
  assert.ok(weight('zaborowski') > weight('smith') + 5);
  tf.remove({ surname: 'zaborowski' });
  // Unknown now: the untouched exact weight.
  close(weight('zaborowski'), Math.log2(0.88 / 0.002), 0.001, 'exact weight without tf');
});

/** Synthetic customers with a known share of duplicates and known error rates per field. */
function synthetic(seed: number) {
  const rnd = seededRandom(seed);
  const word = (len: number) =>
    Array.from({ length: len }, () => String.fromCharCode(97 + Math.floor(rnd() * 26))).join('');
  const pool = (n: number, len: number) => Array.from({ length: n }, () => word(len));
  const surnames = pool(500, 7);
  const givens = pool(200, 6);
  const postcodes = Array.from({ length: 300 }, (_, i) => String(1000 + i * 7));
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const date = () => {
    const d = new Date(Date.UTC(1940, 0, 1) + Math.floor(rnd() * 60 * 365) * 86_400_000);
    return d.toISOString().slice(0, 10);
  };
  const errors = { surname: 0.1, givenName: 0.1, dateOfBirth: 0.2, postcode: 0.15 };
  const records: { id: string; entity: number; record: NormalisedCustomer }[] = [];
  const entities = 1500;
  const duplicated = 600;
  for (let e = 0; e < entities; e++) {
    const given = pick(givens);
    const base: NormalisedCustomer = {
      givenName: given,
      givenNameCanonical: given,
      surname: pick(surnames),
      dateOfBirth: date(),
      postcode: pick(postcodes),
    };
    records.push({ id: `${e}`, entity: e, record: base });
    if (e < duplicated) {
      const dup: NormalisedCustomer = { ...base };
      if (rnd() < errors.surname) dup.surname = pick(surnames);
      if (rnd() < errors.givenName) dup.givenName = dup.givenNameCanonical = pick(givens);
      if (rnd() < errors.dateOfBirth) dup.dateOfBirth = date();
      if (rnd() < errors.postcode) dup.postcode = pick(postcodes);
      records.push({ id: `${e}-dup`, entity: e, record: dup });
    }
  }
  return { records, errors, duplicated, pools: { surnames: 500, postcodes: 300 } };
}

test('EM recovers m and u on synthetic data with known truth', () => {
  const { records, errors, duplicated, pools } = synthetic(11);
  const p = estimateParameters(
    records.map((r) => r.record),
    { priorStrength: 0 },
  );
  // m(exact) is 1 − error rate (an error can land on the same value, by chance, rarely).
  close(p.fields['surname']!['exact']!.m, 1 - errors.surname, 0.05, 'm surname exact');
  close(p.fields['givenName']!['exact']!.m, 1 - errors.givenName, 0.05, 'm given exact');
  close(p.fields['dateOfBirth']!['exact']!.m, 1 - errors.dateOfBirth, 0.05, 'm dob exact');
  close(p.fields['postcode']!['exact']!.m, 1 - errors.postcode, 0.05, 'm postcode exact');
  // u(exact) is the chance two different people share a value: 1 / pool size.
  close(p.fields['surname']!['exact']!.u, 1 / pools.surnames, 0.5 / pools.surnames, 'u surname');
  close(p.fields['postcode']!['exact']!.u, 1 / pools.postcodes, 0.5 / pools.postcodes, 'u pc');
  close(p.diagnostics.expectedMatches, duplicated, duplicated * 0.1, 'expected matches');
  const n = records.length;
  close(
    p.prior,
    duplicated / ((n * (n - 1)) / 2),
    (0.1 * duplicated) / ((n * (n - 1)) / 2),
    'prior',
  );
});

test('linkRecords dedupes synthetic data with clusters over linked pairs', () => {
  const { records } = synthetic(23);
  const result = linkRecords(records.map((r) => ({ id: r.id, record: r.record })));
  const entityOf = new Map(records.map((r) => [r.id, r.entity]));
  const correct = result.pairs.filter((p) => entityOf.get(p.idA) === entityOf.get(p.idB)).length;
  assert.ok(correct / result.pairs.length > 0.97, `precision ${correct / result.pairs.length}`);
  assert.ok(correct / 600 > 0.9, `recall ${correct / 600}`);
  const first = result.pairs[0]!;
  const ia = records.findIndex((r) => r.id === first.idA);
  const ib = records.findIndex((r) => r.id === first.idB);
  assert.equal(result.clusters.a[ia], result.clusters.a[ib]);
  assert.equal(result.clusters.a.length, records.length);
});

test('MatchIndex finds a stored customer through a typo and forgets removed ones', () => {
  const { records } = synthetic(5);
  const index = new MatchIndex(estimateParameters(records.map((r) => r.record)));
  for (const r of records) index.add(r.id, r.record);
  assert.equal(index.size, records.length);
  const target = records[1000]!;
  const query: NormalisedCustomer = {
    ...target.record,
    surname: `${target.record.surname!.slice(0, 3)}${target.record.surname!.slice(4)}`,
  };
  assert.ok(index.candidates(query).includes(target.id));
  const best = index.match(query, { limit: 3 });
  assert.equal(best[0]?.id, target.id);
  assert.equal(best[0]!.explanation.decision, 'link');
  assert.equal(
    best[0]!.explanation.fields.find((f) => f.field === 'surname')!.level,
    'jaro-winkler>=0.92',
  );
  assert.ok(index.remove(target.id));
  assert.equal(
    index.match(query).some((m) => m.id === target.id),
    false,
  );
  assert.deepEqual(blockingKeys({}), []);
  // A shared loyalty id links and ranks first, whatever the other fields say.
  index.add('member', { surname: 'quigley', givenName: 'ros', loyaltyId: 'L-77' });
  const byLoyalty = index.match({ surname: 'other', loyaltyId: 'L-77' });
  assert.equal(byLoyalty[0]?.id, 'member');
  assert.equal(byLoyalty[0]!.explanation.rule, 'same-loyalty-id');
  assert.equal(byLoyalty[0]!.explanation.decision, 'link');
});

test('FEBRL1 deduplication reaches F1 >= 0.97 with estimated parameters', (t) => {
  const file = resolve(identity, 'febrl/dataset1.csv');
  if (!existsSync(file)) {
    t.skip(`no FEBRL data at ${file}`);
    return;
  }
  const rows = parse(readFileSync(file, 'utf8'), { columns: true, trim: true }) as Record<
    string,
    string
  >[];
  const { columns } = recogniseColumns(Object.keys(rows[0]!), 'rec_id');
  const records = rows.map((r) => ({
    id: r['rec_id']!,
    record: normaliseCustomer(fieldsFromRow(r, columns)),
  }));
  const entity = (id: string) => /^rec-(\d+)-/.exec(id)![1];
  const result = linkRecords(records);
  const counts = new Map<string, number>();
  for (const r of records) counts.set(entity(r.id)!, (counts.get(entity(r.id)!) ?? 0) + 1);
  let truth = 0;
  for (const c of counts.values()) truth += (c * (c - 1)) / 2;
  const correct = result.pairs.filter((p) => entity(p.idA) === entity(p.idB)).length;
  const precision = correct / result.pairs.length;
  const recall = correct / truth;
  const f1 = (2 * precision * recall) / (precision + recall);
  assert.ok(f1 >= 0.97, `F1 ${f1} (P ${precision}, R ${recall})`);
});

test('a matching config fixes parameters and names the line of a wrong setting', () => {
  const ok = parseMatchConfig(
    [
      'thresholds: { link: 0.9, review: 0.4 }',
      'parameters:',
      '  prior: 0.001',
      '  fields:',
      '    surname:',
      '      exact: { m: 0.9, u: 0.01 }',
      '      else: { m: 0.1, u: 0.99 }',
    ].join('\n'),
  );
  assert.ok(ok.ok);
  const params = parametersFromConfig(ok.config)!;
  assert.equal(params.prior, 0.001);
  assert.deepEqual(params.thresholds, { link: 0.9, review: 0.4 });
  const m = createMatcher(params);
  const e = m.explain({ surname: 'lee' }, { surname: 'lee' });
  close(e.fields.find((f) => f.field === 'surname')!.weight, Math.log2(0.9 / 0.01), 0.001, 'w');
  const bad = parseMatchConfig(
    [
      'parameters:',
      '  prior: 0.001',
      '  fields:',
      '    surname:',
      '      close: { m: 0.5, u: 0.1 }',
    ].join('\n'),
  );
  assert.equal(bad.ok, false);
  if (!bad.ok) {
    assert.equal(bad.issues[0]!.path, 'parameters.fields.surname.close');
    assert.match(bad.issues[0]!.message, /unknown level/);
    assert.equal(bad.issues[0]!.line, 5);
  }
  const broken = parseMatchConfig('thresholds: [1, 2\n');
  assert.equal(broken.ok, false);
});
