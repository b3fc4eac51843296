// Compatibility of two versions of a published JSON Schema (draft 2020-12, as generated here).
// A change is compatible when every document valid under the old schema is still valid under
// the new one and no field disappears: producers built against the old contract keep working,
// consumers keep receiving every field they read. Additions (optional fields, enum values,
// looser limits) are compatible; removals, narrowing and new requirements are breaks that need
// a new schema version.

export type BreakKind =
  | 'field-removed'
  | 'field-became-required'
  | 'required-field-added'
  | 'type-changed'
  | 'enum-narrowed'
  | 'const-changed'
  | 'constraint-tightened'
  | 'pattern-changed'
  | 'format-changed'
  | 'closed-to-extra-fields'
  | 'variant-removed';

export interface CompatibilityBreak {
  readonly kind: BreakKind;
  /** Where in the instance: `lines[].quantity`, `(root)` for the document itself. */
  readonly path: string;
  readonly message: string;
}

type Schema = Record<string, unknown> | boolean;
type SchemaObject = Record<string, unknown>;

interface Side {
  readonly root: Schema;
}

const MAX_DEPTH = 64;

function resolve(schema: unknown, side: Side, seen: Set<string> = new Set()): Schema {
  if (typeof schema === 'boolean') return schema;
  if (schema === null || typeof schema !== 'object') return true;
  const s = schema as SchemaObject;
  const ref = s.$ref;
  if (typeof ref !== 'string') return s;
  if (seen.has(ref)) return s;
  seen.add(ref);
  const target = pointer(side.root, ref);
  if (target === undefined) throw new Error(`unresolvable $ref ${ref}`);
  const { $ref: _ref, ...siblings } = s;
  const resolved = resolve(target, side, seen);
  // Sibling keywords of $ref (description, …) apply alongside it.
  return typeof resolved === 'boolean' ? resolved : { ...resolved, ...siblings };
}

function pointer(root: Schema, ref: string): unknown {
  if (ref === '#') return root;
  if (!ref.startsWith('#/')) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as SchemaObject)[key];
  }
  return node;
}

function typesOf(s: SchemaObject): Set<string> | undefined {
  if (typeof s.type === 'string') return new Set([s.type]);
  if (Array.isArray(s.type)) return new Set(s.type as string[]);
  if ('const' in s) return new Set([jsonType(s.const)]);
  if (Array.isArray(s.enum)) return new Set(s.enum.map(jsonType));
  return undefined;
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/**
 * The alternatives of an `anyOf` / `oneOf` schema, each merged with the keywords beside the
 * union (so `{ type: object, properties, oneOf: [{ required: [a] }, { required: [b] }] }` is two
 * complete object schemas); undefined for a schema without alternatives.
 */
function variants(s: Schema): Schema[] | undefined {
  if (typeof s === 'boolean') return undefined;
  const { anyOf, oneOf, ...siblings } = s;
  const list = (anyOf ?? oneOf) as Schema[] | undefined;
  if (!Array.isArray(list)) return undefined;
  const structural = Object.keys(siblings).some((k) => !ANNOTATIONS.has(k));
  if (!structural) return list;
  return list.map((v) => {
    if (typeof v === 'boolean') return v;
    const merged: SchemaObject = { ...siblings, ...v };
    if (Array.isArray(siblings.required) || Array.isArray(v.required)) {
      merged.required = [
        ...new Set([
          ...((siblings.required ?? []) as string[]),
          ...((v.required ?? []) as string[]),
        ]),
      ];
    }
    if (siblings.properties || v.properties) {
      merged.properties = {
        ...((siblings.properties ?? {}) as SchemaObject),
        ...((v.properties ?? {}) as SchemaObject),
      };
    }
    return merged;
  });
}

/** Keywords that describe but do not constrain. */
const ANNOTATIONS = new Set([
  'title',
  'description',
  'default',
  'examples',
  'deprecated',
  'readOnly',
  'writeOnly',
  '$comment',
  '$id',
  '$schema',
  '$defs',
]);

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

function formatPath(path: string): string {
  return path === '' ? '(root)' : path;
}

function child(path: string, key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key)
    ? path === ''
      ? key
      : `${path}.${key}`
    : `${path}[${JSON.stringify(key)}]`;
}

interface Bound {
  value: number;
  exclusive: boolean;
}

function lowerBound(s: SchemaObject): Bound | undefined {
  const inc = typeof s.minimum === 'number' ? s.minimum : undefined;
  const exc = typeof s.exclusiveMinimum === 'number' ? s.exclusiveMinimum : undefined;
  if (inc === undefined && exc === undefined) return undefined;
  if (exc !== undefined && (inc === undefined || exc >= inc))
    return { value: exc, exclusive: true };
  return { value: inc as number, exclusive: false };
}

function upperBound(s: SchemaObject): Bound | undefined {
  const inc = typeof s.maximum === 'number' ? s.maximum : undefined;
  const exc = typeof s.exclusiveMaximum === 'number' ? s.exclusiveMaximum : undefined;
  if (inc === undefined && exc === undefined) return undefined;
  if (exc !== undefined && (inc === undefined || exc <= inc))
    return { value: exc, exclusive: true };
  return { value: inc as number, exclusive: false };
}

class Comparison {
  readonly breaks: CompatibilityBreak[] = [];
  constructor(
    private readonly before: Side,
    private readonly after: Side,
  ) {}

  add(kind: BreakKind, path: string, message: string): void {
    this.breaks.push({ kind, path: formatPath(path), message });
  }

  compare(rawBefore: unknown, rawAfter: unknown, path: string, depth: number): void {
    if (depth > MAX_DEPTH) return;
    const b = resolve(rawBefore, this.before);
    const a = resolve(rawAfter, this.after);
    if (a === true || (typeof a === 'object' && Object.keys(a).length === 0)) return;
    if (b === false) return;
    if (a === false) {
      this.add('type-changed', path, 'the schema now accepts nothing');
      return;
    }
    if (b === true) {
      this.add('type-changed', path, 'an unconstrained value is now constrained');
      return;
    }

    const vb = variants(b);
    const va = variants(a);
    if (vb || va) this.compareVariants(vb ?? [b], va ?? [a], path, depth);
    else this.compareKeywords(b, a, path, depth);
  }

  private compareVariants(vb: Schema[], va: Schema[], path: string, depth: number): void {
    if (vb.length === 1 && va.length === 1) {
      // One schema on each side: report its breaks in detail.
      this.compare(vb[0], va[0], path, depth + 1);
      return;
    }
    // Every old alternative must be accepted by some new one. When none accepts it, report the
    // breaks against the closest new alternative (fewest breaks), each once.
    const seen = new Set(this.breaks.map((b) => `${b.kind} ${b.path} ${b.message}`));
    for (const [i, variant] of vb.entries()) {
      let closest: CompatibilityBreak[] | undefined;
      for (const candidate of va) {
        const probe = new Comparison(this.before, this.after);
        probe.compare(variant, candidate, path, depth + 1);
        if (!closest || probe.breaks.length < closest.length) closest = probe.breaks;
        if (closest.length === 0) break;
      }
      if (closest === undefined) {
        this.add('variant-removed', path, `alternative ${i} of the old schema has no successor`);
        continue;
      }
      for (const b of closest) {
        const key = `${b.kind} ${b.path} ${b.message}`;
        if (!seen.has(key)) this.breaks.push(b);
        seen.add(key);
      }
    }
  }

  private compareKeywords(b: SchemaObject, a: SchemaObject, path: string, depth: number): void {
    const tb = typesOf(b);
    const ta = typesOf(a);
    if (ta) {
      if (!tb) this.add('type-changed', path, `any type is now restricted to ${[...ta].join('|')}`);
      else {
        const lost = [...tb].filter((t) => !ta.has(t) && !(t === 'integer' && ta.has('number')));
        if (lost.length > 0) {
          this.add(
            'type-changed',
            path,
            `type ${[...tb].join('|')} became ${[...ta].join('|')} (${lost.join(', ')} no longer accepted)`,
          );
          return;
        }
      }
    }

    if (Array.isArray(a.enum)) {
      if (!Array.isArray(b.enum) && !('const' in b)) {
        this.add('enum-narrowed', path, 'a free value is now limited to an enumeration');
      } else {
        const old = Array.isArray(b.enum) ? b.enum : [b.const];
        const lost = old.filter((v) => !(a.enum as unknown[]).some((n) => same(n, v)));
        if (lost.length > 0) {
          this.add(
            'enum-narrowed',
            path,
            `values no longer accepted: ${lost.map((v) => JSON.stringify(v)).join(', ')}`,
          );
        }
      }
    }
    if ('const' in a) {
      const old = 'const' in b ? [b.const] : Array.isArray(b.enum) ? b.enum : undefined;
      if (!old || old.some((v) => !same(v, a.const))) {
        this.add('const-changed', path, `now only ${JSON.stringify(a.const)} is accepted`);
      }
    }

    this.compareLimits(b, a, path);

    if (typeof a.pattern === 'string' && a.pattern !== b.pattern) {
      this.add('pattern-changed', path, `pattern is now ${a.pattern}`);
    }
    if (typeof a.format === 'string' && a.format !== b.format) {
      this.add('format-changed', path, `format is now ${a.format}`);
    }

    this.compareObject(b, a, path, depth);
    this.compareArray(b, a, path, depth);
  }

  private compareLimits(b: SchemaObject, a: SchemaObject, path: string): void {
    for (const key of ['minLength', 'minItems', 'minProperties'] as const) {
      const nb = typeof b[key] === 'number' ? b[key] : 0;
      if (typeof a[key] === 'number' && a[key] > nb) {
        this.add('constraint-tightened', path, `${key} rose from ${nb} to ${a[key]}`);
      }
    }
    for (const key of ['maxLength', 'maxItems', 'maxProperties'] as const) {
      const nb = typeof b[key] === 'number' ? b[key] : Infinity;
      if (typeof a[key] === 'number' && a[key] < nb) {
        this.add('constraint-tightened', path, `${key} fell from ${nb} to ${a[key]}`);
      }
    }
    const lb = lowerBound(b);
    const la = lowerBound(a);
    if (
      la &&
      (!lb || la.value > lb.value || (la.value === lb.value && la.exclusive && !lb.exclusive))
    ) {
      this.add(
        'constraint-tightened',
        path,
        `lower bound rose to ${la.exclusive ? '>' : '≥'} ${la.value}`,
      );
    }
    const ub = upperBound(b);
    const ua = upperBound(a);
    if (
      ua &&
      (!ub || ua.value < ub.value || (ua.value === ub.value && ua.exclusive && !ub.exclusive))
    ) {
      this.add(
        'constraint-tightened',
        path,
        `upper bound fell to ${ua.exclusive ? '<' : '≤'} ${ua.value}`,
      );
    }
    if (typeof a.multipleOf === 'number') {
      const mb = typeof b.multipleOf === 'number' ? b.multipleOf : undefined;
      if (mb === undefined || mb % a.multipleOf !== 0) {
        this.add('constraint-tightened', path, `values must now be multiples of ${a.multipleOf}`);
      }
    }
    if (a.uniqueItems === true && b.uniqueItems !== true) {
      this.add('constraint-tightened', path, 'items must now be unique');
    }
  }

  private compareObject(b: SchemaObject, a: SchemaObject, path: string, depth: number): void {
    const pb = (b.properties ?? {}) as Record<string, unknown>;
    const pa = (a.properties ?? {}) as Record<string, unknown>;
    const rb = new Set((b.required ?? []) as string[]);
    const ra = new Set((a.required ?? []) as string[]);
    for (const key of Object.keys(pb)) {
      if (!(key in pa)) {
        this.add('field-removed', child(path, key), `field ${key} was removed`);
        continue;
      }
      this.compare(pb[key], pa[key], child(path, key), depth + 1);
    }
    for (const key of ra) {
      if (rb.has(key)) continue;
      if (key in pb) {
        this.add(
          'field-became-required',
          child(path, key),
          `optional field ${key} became required`,
        );
      } else {
        this.add('required-field-added', child(path, key), `new required field ${key}`);
      }
    }
    const addB = b.additionalProperties;
    const addA = a.additionalProperties;
    if (addA === false && addB !== false && addB !== undefined) {
      this.add('closed-to-extra-fields', path, 'extra fields are no longer accepted');
    } else if (addA === false && addB === undefined && (b.type === 'object' || b.properties)) {
      this.add('closed-to-extra-fields', path, 'extra fields are no longer accepted');
    } else if (addA !== undefined && addA !== false && addB !== undefined && addB !== false) {
      this.compare(addB, addA, `${path}[*]`, depth + 1);
    }
    if (b.propertyNames !== undefined || a.propertyNames !== undefined) {
      this.compare(b.propertyNames ?? true, a.propertyNames ?? true, `${path}{key}`, depth + 1);
    }
  }

  private compareArray(b: SchemaObject, a: SchemaObject, path: string, depth: number): void {
    if (b.items !== undefined || a.items !== undefined) {
      this.compare(b.items ?? true, a.items ?? true, `${path}[]`, depth + 1);
    }
    const tb = (b.prefixItems ?? []) as unknown[];
    const ta = (a.prefixItems ?? []) as unknown[];
    ta.forEach((s, i) => this.compare(tb[i] ?? b.items ?? true, s, `${path}[${i}]`, depth + 1));
  }
}

/**
 * Every break between a published schema and its successor of the same version; an empty list
 * means the change is compatible (additive only).
 */
export function checkCompatibility(before: unknown, after: unknown): CompatibilityBreak[] {
  const b = before as Schema;
  const a = after as Schema;
  const comparison = new Comparison({ root: b }, { root: a });
  comparison.compare(b, a, '', 0);
  return comparison.breaks;
}
