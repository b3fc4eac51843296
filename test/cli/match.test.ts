// `middlemart match` through run(): a small CRM-style export, a FEBRL file, and bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { REPO_ROOT, runInProcess } from './helpers.js';

const identity = process.env.MIDDLEMART_SHARED_DATA
  ? resolve(process.env.MIDDLEMART_SHARED_DATA, 'identity')
  : resolve(REPO_ROOT, '../shared/data/identity');

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'middlemart-match-'));
}

const GIVEN = ['olivia', 'noah', 'amelia', 'jack', 'isla', 'oliver', 'mia', 'leo', 'ava', 'henry'];
const SURNAMES = ['nguyen', 'patel', 'okafor', 'schmidt', 'rossi', 'kowalski', 'haddad', 'tanaka'];

/** A CRM export: distinct customers plus two people entered twice, differently. */
function crmExport(): string {
  const lines = ['Customer ID,First Name,Last Name,E-mail,Date of Birth,Zip,Notes'];
  let n = 0;
  for (let i = 0; i < GIVEN.length; i++) {
    for (let j = 0; j < 3; j++) {
      const given = GIVEN[i]!;
      const surname = SURNAMES[(i + j * 3) % SURNAMES.length]!;
      const day = String(1 + ((i * 3 + j) % 28)).padStart(2, '0');
      lines.push(
        `c${++n},${given},${surname},${given}.${surname}${n}@example.com,19${60 + n}-0${1 + (n % 9)}-${day},${2000 + n * 13},`,
      );
    }
  }
  lines.push('dup-1,William,Hartley,w.hartley@example.com,1980-03-04,2600,vip');
  lines.push('dup-2,Bill,Hartly,W.Hartley@Example.com,04/03/1980,2600,');
  lines.push('dup-3,Zoë,Müller,zoe.m@example.org,1991-11-23,3051,');
  lines.push('dup-4,Zoe,Muller,zoe.m@example.org,23/11/1991,3051,called twice');
  return `${lines.join('\n')}\n`;
}

test('match dedupes a CRM export with recognised columns and writes pairs and clusters', async () => {
  const dir = tempDir();
  try {
    const input = join(dir, 'crm.csv');
    writeFileSync(input, crmExport());
    const out = join(dir, 'pairs.csv');
    const clusters = join(dir, 'clusters.csv');
    const r = await runInProcess([
      'match',
      input,
      '--id',
      'Customer ID',
      '--out',
      out,
      '--clusters',
      clusters,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /First Name -> givenName/);
    assert.match(r.stderr, /Zip -> postcode/);
    assert.match(r.stderr, /ignored 'Notes'/);
    const pairs = parse(readFileSync(out, 'utf8'), { columns: true }) as Record<string, string>[];
    assert.deepEqual(Object.keys(pairs[0] ?? {}), ['id_a', 'id_b', 'score']);
    const linked = new Set(pairs.map((p) => [p.id_a, p.id_b].sort().join('+')));
    assert.ok(linked.has('dup-1+dup-2'), `pairs: ${[...linked].join(' ')}`);
    assert.ok(linked.has('dup-3+dup-4'), `pairs: ${[...linked].join(' ')}`);
    assert.equal(linked.size, 2, `only the two duplicates: ${[...linked].join(' ')}`);
    for (const p of pairs) assert.ok(Number(p.score) > 0);
    const cl = parse(readFileSync(clusters, 'utf8'), { columns: true }) as Record<string, string>[];
    const clusterOf = new Map(cl.map((c) => [c.id, c.cluster]));
    assert.equal(cl.length, 34);
    assert.equal(clusterOf.get('dup-1'), clusterOf.get('dup-2'));
    assert.notEqual(clusterOf.get('dup-1'), clusterOf.get('dup-3'));
    assert.equal(new Set(cl.map((c) => c.cluster)).size, 32);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('match links two FEBRL files and dedupes one', async (t) => {
  const a = join(identity, 'febrl/dataset4a.csv');
  const b = join(identity, 'febrl/dataset4b.csv');
  const one = join(identity, 'febrl/dataset1.csv');
  if (!existsSync(a) || !existsSync(one)) {
    t.skip(`no FEBRL data under ${identity}`);
    return;
  }
  const dir = tempDir();
  try {
    const out = join(dir, 'pairs.csv');
    const r = await runInProcess(['match', a, b, '--id', 'rec_id', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const pairs = parse(readFileSync(out, 'utf8'), { columns: true }) as Record<string, string>[];
    const entity = (id: string) => /^rec-(\d+)-/.exec(id)?.[1];
    const correct = pairs.filter((p) => entity(p.id_a!) === entity(p.id_b!)).length;
    assert.ok(correct >= 4900 && correct / pairs.length >= 0.99, `${correct}/${pairs.length}`);
    const out1 = join(dir, 'pairs1.csv');
    const r1 = await runInProcess(['match', one, '--id', 'rec_id', '--out', out1]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.match(r1.stderr, /soc_sec_id -> nationalId/);
    const pairs1 = parse(readFileSync(out1, 'utf8'), { columns: true }) as Record<string, string>[];
    const correct1 = pairs1.filter((p) => entity(p.id_a!) === entity(p.id_b!)).length;
    assert.ok(correct1 >= 485 && correct1 / pairs1.length >= 0.98, `${correct1}/${pairs1.length}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad input exits 2 naming the file and line', async () => {
  const dir = tempDir();
  try {
    const out = join(dir, 'pairs.csv');
    const malformed = join(dir, 'malformed.csv');
    writeFileSync(malformed, 'id,first_name,surname\n1,ann,lee\n2,"bob,smith\n3,cy,young\n');
    let r = await runInProcess(['match', malformed, '--id', 'id', '--out', out]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /malformed\.csv:\d+: malformed CSV/);

    const ragged = join(dir, 'ragged.csv');
    writeFileSync(ragged, 'id,first_name,surname\n1,ann,lee\n2,bob,smith,extra\n');
    r = await runInProcess(['match', ragged, '--id', 'id', '--out', out]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /ragged\.csv:3: malformed CSV/);

    const good = join(dir, 'good.csv');
    writeFileSync(good, 'id,first_name,surname\n1,ann,lee\n1,bob,smith\n');
    r = await runInProcess(['match', good, '--id', 'customer', '--out', out]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /good\.csv:1: no id column 'customer'/);

    r = await runInProcess(['match', good, '--id', 'id', '--out', out]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /good\.csv:3: id '1' repeats line 2/);

    r = await runInProcess(['match', join(dir, 'missing.csv'), '--id', 'id', '--out', out]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /missing\.csv: cannot read: no such file/);

    const config = join(dir, 'match.yaml');
    writeFileSync(config, 'thresholds:\n  link: 0.9\n  review: 0.5\ncolumns:\n  surname: maiden\n');
    r = await runInProcess(['match', good, '--id', 'id', '--config', config, '--out', out]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /match\.yaml:5:\d+: columns\.surname/);
    assert.equal(existsSync(out), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a config maps columns and fixes thresholds', async () => {
  const dir = tempDir();
  try {
    const input = join(dir, 'shop.csv');
    writeFileSync(
      input,
      'ref,vorname,nachname,mail\nA,Jana,Novak,jana@example.cz\nB,Jana,Novakova,JANA@example.cz\nC,Petr,Svoboda,petr@example.cz\n',
    );
    const config = join(dir, 'match.yaml');
    writeFileSync(
      config,
      'columns:\n  vorname: givenName\n  nachname: surname\n  mail: email\nthresholds:\n  link: 0.5\n  review: 0.1\n',
    );
    const out = join(dir, 'pairs.csv');
    const r = await runInProcess(['match', input, '--id', 'ref', '--config', config, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /vorname -> givenName/);
    const pairs = parse(readFileSync(out, 'utf8'), { columns: true }) as Record<string, string>[];
    assert.deepEqual(
      pairs.map((p) => [p.id_a, p.id_b].sort().join('+')),
      ['A+B'],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
