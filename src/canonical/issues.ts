// Validation issues in a transport-neutral form: a field path such as `data.lines[0].quantity`
// and a message. The API turns these into RFC 9457 problem+json; connectors log them.
import type { z } from 'zod';

export interface ValidationIssue {
  /** Field path in JavaScript notation: `data.lines[0].quantity`; '' for the whole value. */
  readonly path: string;
  readonly message: string;
  /** Zod's issue code (`invalid_type`, `too_small`, `custom` …) or `unknown_type`. */
  readonly code: string;
}

export type ValidationResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly issues: readonly ValidationIssue[] };

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Formats path segments as `a.b[0].c` (keys that are not identifiers as `["odd key"]`). */
export function formatPath(segments: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'string' && IDENTIFIER.test(segment))
      out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}

/** Turns Zod issues into ValidationIssues, with an optional path prefix such as ['data']. */
export function toValidationIssues(
  issues: readonly z.core.$ZodIssue[],
  prefix: ReadonlyArray<PropertyKey> = [],
): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  for (const issue of issues) {
    // An unknown key is reported on the object; name the key itself so the caller can fix it.
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        out.push({
          path: formatPath([...prefix, ...issue.path, key]),
          message: 'unknown field',
          code: issue.code,
        });
      }
      continue;
    }
    out.push({
      path: formatPath([...prefix, ...issue.path]),
      message: issue.message,
      code: issue.code,
    });
  }
  return out;
}

/** Validates `value` against `schema`: the parsed value, or the issues with their paths. */
export function validate<S extends z.ZodType>(
  schema: S,
  value: unknown,
  prefix: ReadonlyArray<PropertyKey> = [],
): ValidationResult<z.output<S>> {
  const result = schema.safeParse(value);
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, issues: toValidationIssues(result.error.issues, prefix) };
}

/** Thrown when a value that must be canonical is not; carries every issue. */
export class CanonicalValidationError extends Error {
  readonly issues: readonly ValidationIssue[];
  constructor(what: string, issues: readonly ValidationIssue[]) {
    super(
      `${what} is not valid: ` +
        issues.map((i) => `${i.path === '' ? '(root)' : i.path}: ${i.message}`).join('; '),
    );
    this.name = 'CanonicalValidationError';
    this.issues = issues;
  }
}
