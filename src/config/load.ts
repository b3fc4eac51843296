// Loading the estate configuration: YAML → schema → `${NAME}` references resolved from the
// environment. Every problem is reported at once, each with its YAML path and the line and
// column of the key or value at fault, so `middlemart config validate` reads like a compiler.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { LineCounter, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { defaultConfigPath } from './package-root.js';
import {
  ENV_REF_GLOBAL,
  ENV_REF_PLACES,
  EstateConfigSchema,
  envRefAllowedAt,
  isHttpUrl,
  parseStoreUrl,
  type EstateConfig,
} from './schema.js';
import { suggest } from './suggest.js';

export { defaultConfigPath } from './package-root.js';

/** The variable that overrides `store.url` (the cluster profile's PostgreSQL, typically). */
export const DATABASE_URL_ENV = 'MIDDLEMART_DATABASE_URL';

export interface ConfigIssue {
  /** YAML path such as `systems[1].baseUrl`; empty for file-level problems. */
  path: string;
  /** 1-based; 0 when the problem has no place in the file (e.g. it cannot be read). */
  line: number;
  column: number;
  message: string;
}

export type LoadResult =
  | { ok: true; file: string; config: EstateConfig }
  | { ok: false; file: string; issues: ConfigIssue[] };

export interface LoadOptions {
  /**
   * Resolve `${NAME}` references and apply MIDDLEMART_DATABASE_URL (default true). With false the
   * file is only checked: references stay as written and no variable needs to be set.
   */
  resolveEnv?: boolean;
}

type Env = Record<string, string | undefined>;
type Segment = string | number;

/** Thrown by {@link requireConfig}: carries every issue found. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly issues: ConfigIssue[],
  ) {
    super(`invalid configuration ${file}:\n` + issues.map((i) => formatIssue(file, i)).join('\n'));
    this.name = 'ConfigError';
  }
}

/** `file:line:col  path  message`, as compilers print it. */
export function formatIssue(file: string, issue: ConfigIssue): string {
  const where = issue.line > 0 ? `${file}:${issue.line}:${issue.column}` : file;
  return issue.path ? `${where}  ${issue.path}  ${issue.message}` : `${where}  ${issue.message}`;
}

/** `['systems', 1, 'baseUrl']` → `systems[1].baseUrl`; odd keys are quoted: `priorities["a.b"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) {
      out += out === '' ? seg : `.${seg}`;
    } else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

export async function loadConfig(
  path?: string,
  env: Env = process.env,
  options: LoadOptions = {},
): Promise<LoadResult> {
  const file = path ?? defaultConfigPath();
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return unreadable(file, err);
  }
  return parseConfig(text, file, env, options);
}

export function loadConfigSync(
  path?: string,
  env: Env = process.env,
  options: LoadOptions = {},
): LoadResult {
  const file = path ?? defaultConfigPath();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return unreadable(file, err);
  }
  return parseConfig(text, file, env, options);
}

/** Loads and resolves, or throws a {@link ConfigError} listing every issue. */
export async function requireConfig(path?: string, env: Env = process.env): Promise<EstateConfig> {
  const result = await loadConfig(path, env);
  if (!result.ok) throw new ConfigError(result.file, result.issues);
  return result.config;
}

function unreadable(file: string, err: unknown): LoadResult {
  const code = (err as NodeJS.ErrnoException).code;
  const message =
    code === 'ENOENT'
      ? 'no such file'
      : code === 'EISDIR'
        ? 'is a directory, not a file'
        : `cannot read: ${(err as Error).message}`;
  return { ok: false, file, issues: [{ path: '', line: 0, column: 0, message }] };
}

/** Validates (and by default resolves) configuration text; `file` names it in the result. */
export function parseConfig(
  text: string,
  file = '<config>',
  env: Env = process.env,
  options: LoadOptions = {},
): LoadResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const locate = new Locator(doc, lineCounter);

  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e) => {
      const pos = lineCounter.linePos(e.pos[0]);
      return {
        path: '',
        line: pos.line,
        column: pos.col,
        message: `YAML: ${firstLine(e.message)}`,
      };
    });
    return { ok: false, file, issues: sortIssues(issues) };
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // e.g. an alias bomb: "Excessive alias count indicates a resource exhaustion attack"
    const message = `YAML: ${firstLine((err as Error).message)}`;
    return { ok: false, file, issues: [{ path: '', line: 1, column: 1, message }] };
  }
  const parsed = EstateConfigSchema.safeParse(data, { reportInput: true });
  const misplaced = misplacedEnvRefs(data, [], locate);
  if (!parsed.success || misplaced.length > 0) {
    // A misplaced reference explains any other complaint about the same value.
    const explained = new Set(misplaced.map((i) => i.path));
    const found = parsed.success
      ? []
      : parsed.error.issues
          .flatMap((issue) => describeIssue(issue, locate))
          .filter((i) => !explained.has(i.path));
    return { ok: false, file, issues: sortIssues(dedupe([...found, ...misplaced])) };
  }
  if (options.resolveEnv === false) return { ok: true, file, config: parsed.data };

  const issues: ConfigIssue[] = [];
  const config = resolveEnv(parsed.data, env, locate, issues);
  if (issues.length > 0) return { ok: false, file, issues: sortIssues(issues) };
  return { ok: true, file, config };
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.trim();
}

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues.sort((a, b) => a.line - b.line || a.column - b.column);
}

function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.path}\u0000${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// Positions: from a path of keys and indexes to the node in the YAML document.

class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /**
   * Where to point for `path`: at the key itself (`'key'`), or at its value (`'value'`). A path
   * that does not exist (a missing key) points at the deepest parent that does.
   */
  at(
    path: readonly Segment[],
    target: 'key' | 'value' = 'value',
  ): { line: number; column: number } {
    let node: unknown = this.doc.contents;
    let keyNode: YamlNode | undefined;
    for (const seg of path) {
      let next: unknown;
      let nextKey: YamlNode | undefined;
      let found = false;
      if (isMap(node)) {
        for (const pair of node.items) {
          const k = pair.key;
          if (isScalar(k) && String(k.value) === String(seg)) {
            next = pair.value;
            nextKey = k;
            found = true;
            break;
          }
        }
      } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
        next = node.items[seg];
        found = true;
      }
      if (!found) return this.pos(keyNode ?? (node as YamlNode | null));
      node = next;
      keyNode = nextKey;
    }
    if (target === 'key' && keyNode) return this.pos(keyNode);
    return this.pos((node as YamlNode | null) ?? keyNode ?? null);
  }

  has(path: readonly Segment[]): boolean {
    return this.doc.hasIn(path);
  }

  private pos(node: YamlNode | null | undefined): { line: number; column: number } {
    const offset = node?.range?.[0];
    if (offset === undefined) return { line: 1, column: 1 };
    const { line, col } = this.lines.linePos(offset);
    return { line: Math.max(line, 1), column: col };
  }
}

// ---------------------------------------------------------------------------------------------
// Zod issues → config issues with plain messages.

function typeName(value: unknown, secret = false): string {
  if (value === undefined) return 'nothing';
  if (secret && value !== null) return Array.isArray(value) ? 'a list' : `a ${typeof value}`;
  if (value === null) return 'null (empty value)';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the string '${value}'`;
  return `${typeof value} ${String(value)}`;
}

const EXPECTED: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
};

function describeIssue(issue: z.core.$ZodIssue, locate: Locator): ConfigIssue[] {
  const path = issue.path.filter(
    (s): s is Segment => typeof s === 'string' || typeof s === 'number',
  );
  // Never echo a credential's value, even a wrongly typed one.
  const secret = path.includes('credentials');
  const input = (issue as { input?: unknown }).input;
  const show = (value: unknown) => typeName(value, secret);
  const make = (p: Segment[], message: string, target: 'key' | 'value' = 'value'): ConfigIssue => ({
    path: formatPath(p),
    ...locate.at(p, target),
    message,
  });

  const missing =
    path.length > 0 &&
    input === undefined &&
    (issue.code === 'invalid_type' || issue.code === 'invalid_value') &&
    !locate.has(path);
  if (missing) {
    const key = path[path.length - 1];
    const what = typeof key === 'number' ? `item ${key}` : `key '${key}'`;
    return [make(path, `missing required ${what}`)];
  }

  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => {
        const hint = suggest(key, knownKeysAt(path));
        return make(
          [...path, key],
          `unknown key '${key}'${hint ? ` (did you mean '${hint}'?)` : ''}`,
          'key',
        );
      });
    case 'invalid_type': {
      if (path.length === 0) {
        return [
          make(path, "expected a mapping at the top of the file, starting with 'version: 1'"),
        ];
      }
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      return [make(path, `expected ${expected}, got ${show(input)}`)];
    }
    case 'invalid_value': {
      if (issue.values.length === 1) {
        return [make(path, `must be ${JSON.stringify(issue.values[0])}, got ${show(input)}`)];
      }
      const options = issue.values.map((v) => String(v));
      const hint = typeof input === 'string' ? suggest(input, options) : undefined;
      return [
        make(
          path,
          `${show(input)} is not one of: ${options.join(', ')}` +
            (hint ? ` (did you mean '${hint}'?)` : ''),
        ),
      ];
    }
    case 'invalid_key': {
      const key = path[path.length - 1];
      const inner = issue.issues.map((i) => i.message).join('; ');
      return [make(path, `invalid key '${String(key)}': ${inner}`, 'key')];
    }
    case 'invalid_union':
      return [make(path, `expected a string, number or boolean, got ${show(input)}`)];
    case 'too_small':
      if (issue.origin === 'array') return [make(path, issue.message)];
      if (issue.origin === 'string') {
        return [make(path, `must be at least ${String(issue.minimum)} characters long`)];
      }
      return [
        make(
          path,
          `must be ${issue.inclusive === false ? 'greater than' : 'at least'} ` +
            `${String(issue.minimum)}, got ${show(input)}`,
        ),
      ];
    case 'too_big':
      return [make(path, `must be at most ${String(issue.maximum)}, got ${show(input)}`)];
    case 'invalid_format':
      return [make(path, issue.message)];
    case 'custom':
      return [make(path, issue.message, issue.params?.at === 'key' ? 'key' : 'value')];
    default:
      return [make(path, issue.message)];
  }
}

/** The keys the schema allows at `path` (for "did you mean"). */
function knownKeysAt(path: readonly Segment[]): string[] {
  let schema: unknown = EstateConfigSchema;
  const unwrap = (s: unknown): unknown => {
    for (let i = 0; i < 10; i++) {
      const def = (s as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
      if (!def) return s;
      if (
        ['optional', 'default', 'prefault', 'nullable', 'readonly', 'catch'].includes(
          def.type as string,
        )
      ) {
        s = def.innerType;
      } else if (def.type === 'pipe') s = def.in;
      else return s;
    }
    return s;
  };
  for (const seg of path) {
    const def = (unwrap(schema) as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
    if (!def) return [];
    if (def.type === 'object') schema = (def.shape as Record<string, unknown>)[String(seg)];
    else if (def.type === 'array') schema = def.element;
    else if (def.type === 'record') schema = def.valueType;
    else return [];
    if (schema === undefined) return [];
  }
  const def = (unwrap(schema) as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
  return def?.type === 'object' ? Object.keys(def.shape as object) : [];
}

// ---------------------------------------------------------------------------------------------
// Environment references.

/** `${NAME}` written where it would not be resolved (it would silently stay literal). */
function misplacedEnvRefs(value: unknown, path: Segment[], locate: Locator): ConfigIssue[] {
  if (typeof value === 'string') {
    if (!value.includes('${') || envRefAllowedAt(path)) return [];
    return [
      {
        path: formatPath(path),
        ...locate.at(path),
        message: `environment references are resolved only in ${ENV_REF_PLACES.join(', ')}`,
      },
    ];
  }
  if (Array.isArray(value)) {
    return value.flatMap((item: unknown, i) => misplacedEnvRefs(item, [...path, i], locate));
  }
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([k, v]) => misplacedEnvRefs(v, [...path, k], locate));
  }
  return [];
}

function substitute(
  value: string,
  path: Segment[],
  env: Env,
  locate: Locator,
  issues: ConfigIssue[],
): string {
  return value.replace(ENV_REF_GLOBAL, (ref, name: string) => {
    const resolved = env[name];
    if (resolved === undefined || resolved === '') {
      issues.push({
        path: formatPath(path),
        ...locate.at(path),
        message: `environment variable ${name} is not set (referenced as ${ref})`,
      });
      return ref;
    }
    return resolved;
  });
}

function resolveEnv(
  config: EstateConfig,
  env: Env,
  locate: Locator,
  issues: ConfigIssue[],
): EstateConfig {
  const storeUrlPath: Segment[] = ['store', 'url'];
  let storeUrl: string;
  let source: string | undefined;
  const override = env[DATABASE_URL_ENV];
  if (override !== undefined && override !== '') {
    // The override replaces the file's url, so the file's references need not resolve.
    storeUrl = override;
    source = `from ${DATABASE_URL_ENV}`;
  } else {
    const mark = issues.length;
    storeUrl = substitute(config.store.url, storeUrlPath, env, locate, issues);
    if (issues.length === mark && storeUrl !== config.store.url) {
      source = 'after resolving its references';
    }
  }
  const store = source === undefined ? undefined : parseStoreUrl(storeUrl);
  if (store && 'error' in store) {
    // The value may hold a password: name its source, never print it.
    issues.push({
      path: 'store.url',
      ...locate.at(storeUrlPath),
      message: `${store.error} (${source})`,
    });
  }

  const systems = config.systems.map((system, i) => {
    const basePath: Segment[] = ['systems', i, 'baseUrl'];
    const mark = issues.length;
    const baseUrl = substitute(system.baseUrl, basePath, env, locate, issues);
    if (issues.length === mark && system.baseUrl !== baseUrl && !isHttpUrl(baseUrl)) {
      issues.push({
        path: formatPath(basePath),
        ...locate.at(basePath),
        message: `resolves to '${baseUrl}', which is not a valid http(s) URL`,
      });
    }
    const credentials: Record<string, string> = {};
    for (const [key, value] of Object.entries(system.credentials)) {
      credentials[key] = substitute(value, ['systems', i, 'credentials', key], env, locate, issues);
    }
    const settings: Record<string, string | number | boolean> = {};
    for (const [key, value] of Object.entries(system.settings)) {
      settings[key] =
        typeof value === 'string'
          ? substitute(value, ['systems', i, 'settings', key], env, locate, issues)
          : value;
    }
    return { ...system, baseUrl, credentials, settings };
  });

  return { ...config, store: { ...config.store, url: storeUrl }, systems };
}
