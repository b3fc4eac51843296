// The layer table of docs/architecture.md, enforced over the real import graph of src/.
// Arrows point down the table only: a module may import its own layer and the layers listed here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const SRC = resolve('src');

export const ALLOWED: Record<string, readonly string[]> = {
  canonical: [],
  store: [],
  runtime: ['store'],
  ports: ['canonical'],
  connectors: ['canonical', 'ports', 'runtime'],
  domains: ['canonical', 'ports', 'runtime'],
  observability: ['runtime'],
  api: ['domains', 'canonical', 'ports', 'runtime', 'observability'],
  sandbox: ['canonical'],
  // Wiring: the composition root, its feature modules, config and CLI may import everything.
  wiring: ['*'],
  config: ['*'],
  cli: ['*'],
  app: ['*'],
};

function layerOf(file: string): string {
  const rel = relative(SRC, file);
  const first = rel.split(sep)[0] ?? '';
  if (first === 'app.ts' || first === 'app.js') return 'app';
  return first;
}

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listTs(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

const IMPORT_RE =
  /(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|import\s+['"]([^'"]+)['"]/g;

export function importsOf(source: string): string[] {
  const found: string[] = [];
  for (const m of source.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (spec) found.push(spec);
  }
  return found;
}

export function violations(
  edges: ReadonlyArray<{ from: string; to: string }>,
): Array<{ from: string; to: string; rule: string }> {
  const bad: Array<{ from: string; to: string; rule: string }> = [];
  for (const { from, to } of edges) {
    const a = layerOf(from);
    const b = layerOf(to);
    if (a === b) continue;
    const allowed = ALLOWED[a];
    if (!allowed) {
      bad.push({ from, to, rule: `unknown layer '${a}' (add it to the layer table)` });
      continue;
    }
    if (allowed.includes('*')) continue;
    if (!allowed.includes(b)) bad.push({ from, to, rule: `${a} may not import ${b}` });
  }
  return bad;
}

function graph(): Array<{ from: string; to: string }> {
  const edges: Array<{ from: string; to: string }> = [];
  for (const file of listTs(SRC)) {
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const target = resolve(dirname(file), spec);
      if (!target.startsWith(SRC + sep)) {
        edges.push({ from: file, to: target });
        continue;
      }
      edges.push({ from: file, to: target });
    }
  }
  return edges;
}

test('every layer folder of src/ is in the layer table', () => {
  for (const name of readdirSync(SRC)) {
    const layer = name === 'app.ts' ? 'app' : name;
    if (statSync(join(SRC, name)).isFile() && name !== 'app.ts') continue;
    assert.ok(ALLOWED[layer], `src/${name} is not in the layer table`);
  }
});

test('no import in src/ points up the layer table', () => {
  const bad = violations(graph()).map(
    (v) => `${relative(SRC, v.from)} -> ${relative(SRC, v.to)}: ${v.rule}`,
  );
  assert.deepEqual(bad, []);
});

test('the checker itself catches upward imports', () => {
  const s = (p: string) => join(SRC, p);
  const bad = violations([
    { from: s('canonical/order.ts'), to: s('runtime/queue.ts') },
    { from: s('runtime/queue.ts'), to: s('domains/orders/index.ts') },
    { from: s('domains/orders/index.ts'), to: s('connectors/tryton/index.ts') },
    { from: s('connectors/shopify/index.ts'), to: s('domains/orders/index.ts') },
    { from: s('domains/orders/index.ts'), to: s('api/server.ts') },
    { from: s('sandbox/erp.ts'), to: s('domains/orders/index.ts') },
    { from: s('store/sqlite/index.ts'), to: s('runtime/queue.ts') },
  ]);
  assert.equal(bad.length, 7);
  const ok = violations([
    { from: s('domains/orders/index.ts'), to: s('ports/erp.ts') },
    { from: s('app.ts'), to: s('connectors/tryton/index.ts') },
    { from: s('runtime/queue.ts'), to: s('store/port.ts') },
  ]);
  assert.equal(ok.length, 0);
});

test('import parsing finds static, dynamic and side-effect imports', () => {
  const specs = importsOf(
    `import { a } from './a.js';\nimport type { B } from "../b.js";\nexport * from './c.js';\nconst d = await import('./d.js');\nimport './e.js';`,
  );
  assert.deepEqual(specs, ['./a.js', '../b.js', './c.js', './d.js', './e.js']);
});
