// `npm run schemas`: writes the canonical contracts into schemas/ — JSON Schema (draft 2020-12)
// for every model, event data and the envelope under schemas/json/, and the AsyncAPI 3.0
// document of the event catalogue as schemas/asyncapi.json. Deterministic: a re-run changes
// no byte. Files under schemas/json/ that the model no longer produces are removed.
//
//   --out <dir>   write somewhere else (tests regenerate into a temporary directory)
//   --publish     also copy every generated JSON Schema not yet published into
//                 schemas/published/v<n>/ (published files are never overwritten)
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { contractFiles } from '../src/canonical/index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(path));
    else out.push(path);
  }
  return out;
}

function writeContracts(outDir: string): { written: number; removed: string[] } {
  const files = contractFiles();
  for (const [path, text] of files) {
    const target = join(outDir, path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, text);
  }
  const removed: string[] = [];
  for (const file of listFiles(join(outDir, 'json'))) {
    const rel = relative(outDir, file).split('\\').join('/');
    if (!files.has(rel)) {
      rmSync(file);
      removed.push(rel);
    }
  }
  return { written: files.size, removed };
}

function publishContracts(outDir: string, publishedDir: string): string[] {
  const added: string[] = [];
  for (const [path, text] of contractFiles()) {
    const version = /\.v(\d+)\.schema\.json$/.exec(path)?.[1];
    if (!path.startsWith('json/') || version === undefined) continue;
    const target = join(publishedDir, `v${version}`, path.slice('json/'.length));
    if (existsSync(target)) continue;
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, text);
    added.push(relative(outDir, target));
  }
  return added;
}

function main(argv: string[]): void {
  const outAt = argv.indexOf('--out');
  const outDir = outAt >= 0 && argv[outAt + 1] ? resolve(argv[outAt + 1]!) : join(ROOT, 'schemas');
  const { written, removed } = writeContracts(outDir);
  console.log(`wrote ${written} contract files to ${outDir}`);
  for (const r of removed) console.log(`removed stale ${r}`);
  if (argv.includes('--publish')) {
    for (const p of publishContracts(outDir, join(outDir, 'published'))) {
      console.log(`published ${p}`);
    }
  }
  // Sanity: what was written reads back identically.
  for (const [path, text] of contractFiles()) {
    if (readFileSync(join(outDir, path), 'utf8') !== text) throw new Error(`${path} differs`);
  }
}

main(process.argv.slice(2));
