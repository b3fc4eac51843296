// The fields the matcher compares and the comparison levels of each, best first. A level is the
// first test two values pass; `-1` means one side has no value (the `null` level, weight 0).
// Levels are what the Fellegi–Sunter model gives an m and a u probability to.
import { dayMonthTransposed, jaroWinkler, levenshtein } from './comparators.js';
import type { NormalisedCustomer } from './contract.js';

export interface FieldDefinition {
  /** The name in explanations and parameters (a `NormalisedCustomer` key). */
  readonly name: string;
  /** Level names, best first; the last is always `else`. */
  readonly levels: readonly string[];
  /** The exact level's weight is adjusted by how common the value is. */
  readonly termFrequency: boolean;
  /** The value the exact level and term frequencies are computed on. */
  value(r: NormalisedCustomer): string | undefined;
  /** Level index reached by `a` and `b`, or -1 when either has no value. */
  compare(a: NormalisedCustomer, b: NormalisedCustomer): number;
}

export const NULL_LEVEL = -1;

type Test = (x: string, y: string, a: NormalisedCustomer, b: NormalisedCustomer) => boolean;

function field(
  name: string,
  value: (r: NormalisedCustomer) => string | undefined,
  tests: ReadonlyArray<readonly [string, Test]>,
  termFrequency = false,
): FieldDefinition {
  const levels = ['exact', ...tests.map(([n]) => n), 'else'];
  const elseLevel = levels.length - 1;
  return {
    name,
    levels,
    termFrequency,
    value,
    compare(a, b) {
      const x = value(a);
      const y = value(b);
      if (x === undefined || y === undefined) return NULL_LEVEL;
      if (x === y) return 0;
      for (let i = 0; i < tests.length; i++) {
        if (tests[i]![1](x, y, a, b)) return i + 1;
      }
      return elseLevel;
    },
  };
}

const jw =
  (threshold: number): Test =>
  (x, y) =>
    jaroWinkler(x, y) >= threshold;
const lev =
  (max: number): Test =>
  (x, y) =>
    levenshtein(x, y, max) <= max;

/** Given name and surname entered the wrong way round (each close to the other's). */
function namesSwapped(a: NormalisedCustomer, b: NormalisedCustomer): boolean {
  if (!a.givenName || !a.surname || !b.givenName || !b.surname) return false;
  return jaroWinkler(a.givenName, b.surname) >= 0.92 && jaroWinkler(a.surname, b.givenName) >= 0.92;
}

function localPart(email: string): string {
  const at = email.lastIndexOf('@');
  return at < 0 ? email : email.slice(0, at);
}

/** Every compared field, in explanation order. */
export const FIELDS: readonly FieldDefinition[] = [
  field(
    'givenName',
    (r) => r.givenName,
    [
      [
        'nickname',
        (_x, _y, a, b) =>
          a.givenNameCanonical !== undefined && a.givenNameCanonical === b.givenNameCanonical,
      ],
      ['jaro-winkler>=0.92', jw(0.92)],
      ['swapped-with-surname', (_x, _y, a, b) => namesSwapped(a, b)],
      ['jaro-winkler>=0.8', jw(0.8)],
    ],
    true,
  ),
  field(
    'surname',
    (r) => r.surname,
    [
      ['jaro-winkler>=0.92', jw(0.92)],
      ['swapped-with-given-name', (_x, _y, a, b) => namesSwapped(a, b)],
      ['jaro-winkler>=0.8', jw(0.8)],
    ],
    true,
  ),
  field('dateOfBirth', (r) => r.dateOfBirth, [
    ['day-month-transposed', (x, y) => dayMonthTransposed(x, y)],
    ['levenshtein<=1', lev(1)],
    ['levenshtein<=2', lev(2)],
  ]),
  field('streetNumber', (r) => r.streetNumber, []),
  field('streetName', (r) => r.streetName ?? r.street, [
    ['jaro-winkler>=0.9', jw(0.9)],
    ['jaro-winkler>=0.75', jw(0.75)],
  ]),
  field('addressLine2', (r) => r.addressLine2, [['jaro-winkler>=0.9', jw(0.9)]]),
  field('city', (r) => r.city, [['jaro-winkler>=0.9', jw(0.9)]], true),
  field('postcode', (r) => r.postcode, [['levenshtein<=1', lev(1)]], true),
  field('state', (r) => r.state, []),
  field('email', (r) => r.email, [
    ['same-local-part', (x, y) => localPart(x) === localPart(y)],
    ['levenshtein<=2', lev(2)],
    ['jaro-winkler>=0.88', jw(0.88)],
  ]),
  field('phone', (r) => r.phone, [['levenshtein<=1', lev(1)]]),
  field('nationalId', (r) => r.nationalId, [
    ['levenshtein<=1', lev(1)],
    ['levenshtein<=2', lev(2)],
  ]),
];

export const FIELD_INDEX: ReadonlyMap<string, number> = new Map(FIELDS.map((f, i) => [f.name, i]));

/** Comparison levels of every field for the pair (one entry per field of {@link FIELDS}). */
export function compareLevels(a: NormalisedCustomer, b: NormalisedCustomer): Int8Array {
  const out = new Int8Array(FIELDS.length);
  for (let i = 0; i < FIELDS.length; i++) out[i] = FIELDS[i]!.compare(a, b);
  return out;
}
