// Customer normalisation: the one form every comparison and blocking key is computed on. Names
// lose case, diacritics and punctuation and gain a nickname-resolved given name; emails follow
// provider rules (configurable); phones become E.164; addresses get standard street tokens;
// dates of birth become YYYY-MM-DD.
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import type { CustomerFields, NormalisedCustomer } from './matching/contract.js';
import { canonicalGivenName } from './nicknames.js';

export interface EmailProviderRule {
  /** The local part ignores dots (`j.smith` = `jsmith`). */
  ignoreDots?: boolean;
  /** Everything after `+` in the local part is a tag and dropped. */
  stripPlusTag?: boolean;
  /** The domain is an alias of this one (`googlemail.com` → `gmail.com`). */
  aliasOf?: string;
}

export interface NormaliseOptions {
  /** Default region for phones without a country code, when the record has no country. */
  defaultCountry?: string;
  /** Provider rules by email domain; replaces {@link DEFAULT_EMAIL_RULES} when given. */
  emailRules?: Record<string, EmailProviderRule>;
  /** Drop a `+tag` on every domain, not only on those with a rule (default false). */
  stripPlusTagsEverywhere?: boolean;
}

export const DEFAULT_EMAIL_RULES: Readonly<Record<string, EmailProviderRule>> = {
  'gmail.com': { ignoreDots: true, stripPlusTag: true },
  'googlemail.com': { ignoreDots: true, stripPlusTag: true, aliasOf: 'gmail.com' },
};

/** Lower case, no diacritics, punctuation removed (apostrophes and hyphens join), one space. */
export function normaliseName(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const lower = value.toLowerCase();
  if (!/[^\x20-\x7e]/.test(lower)) {
    // Plain ASCII (the common case): no Unicode normalisation needed.
    const ascii = lower
      .replace(/['`.-]/g, '')
      .replace(/[^a-z0-9]+/g, ' ')
      .trim();
    return ascii === '' ? undefined : ascii;
  }
  const out = value
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/ß/g, 'ss')
    .replace(/['’`.\u2019-]/g, '')
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
  return out === '' ? undefined : out;
}

/** Lower case; provider rules (dots, plus tags, domain aliases) applied. */
export function normaliseEmail(
  value: string | undefined,
  opts: NormaliseOptions = {},
): string | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim().toLowerCase();
  const at = trimmed.lastIndexOf('@');
  if (at <= 0 || at === trimmed.length - 1) return trimmed === '' ? undefined : trimmed;
  let local = trimmed.slice(0, at);
  let domain = trimmed.slice(at + 1);
  const rules = opts.emailRules ?? DEFAULT_EMAIL_RULES;
  const rule = rules[domain];
  if (rule?.stripPlusTag || opts.stripPlusTagsEverywhere) {
    const plus = local.indexOf('+');
    if (plus > 0) local = local.slice(0, plus);
  }
  if (rule?.ignoreDots) local = local.replace(/\./g, '');
  if (rule?.aliasOf) domain = rule.aliasOf;
  return `${local}@${domain}`;
}

/** E.164 when the number parses (region from `country`), otherwise undefined. */
export function normalisePhone(
  value: string | undefined,
  country: string | undefined,
): string | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const region = country?.toUpperCase() as CountryCode | undefined;
  try {
    const parsed = parsePhoneNumberFromString(value, region ? { defaultCountry: region } : {});
    if (parsed && parsed.isPossible()) return parsed.number;
  } catch {
    // Unknown region or garbage: treated as no phone.
  }
  return undefined;
}

const STREET_TOKENS: Record<string, string> = {
  street: 'st',
  str: 'st',
  road: 'rd',
  avenue: 'ave',
  av: 'ave',
  drive: 'dr',
  court: 'ct',
  crescent: 'cres',
  cresent: 'cres',
  place: 'pl',
  lane: 'ln',
  terrace: 'tce',
  boulevard: 'blvd',
  parade: 'pde',
  highway: 'hwy',
  circuit: 'cct',
  close: 'cl',
  square: 'sq',
  grove: 'gr',
  way: 'way',
  parkway: 'pkwy',
  north: 'n',
  south: 's',
  east: 'e',
  west: 'w',
  apartment: 'apt',
  unit: 'unit',
  mount: 'mt',
  saint: 'st',
};

/** Lower case, punctuation removed, street-type and direction words abbreviated. */
export function normaliseAddressLine(value: string | undefined): string | undefined {
  const base = normaliseName(value);
  if (base === undefined) return undefined;
  return base
    .split(' ')
    .map((t) => STREET_TOKENS[t] ?? t)
    .join(' ');
}

/** Upper case with spaces and dashes removed. */
export function normalisePostcode(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const out = value.replace(/[\s-]+/g, '').toUpperCase();
  return out === '' ? undefined : out;
}

function isoDate(y: number, m: number, d: number): string | undefined {
  if (y < 1000 || y > 2999 || m < 1 || m > 12 || d < 1 || d > 31) return undefined;
  return `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

/**
 * YYYY-MM-DD from `YYYY-MM-DD`, `YYYYMMDD`, `YYYY/MM/DD`, `DD/MM/YYYY`, `DD-MM-YYYY`, `DD.MM.YYYY`
 * (day first unless the middle number cannot be a month), or an ISO date-time. Undefined when
 * the value is not a date (month outside 1–12, day outside 1–31).
 */
export function normaliseDate(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  let m = /^(\d{4})[-/.]?(\d{2})[-/.]?(\d{2})(?:[T ].*)?$/.exec(v);
  if (m) return isoDate(Number(m[1]), Number(m[2]), Number(m[3]));
  m = /^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$/.exec(v);
  if (m) {
    const first = Number(m[1]);
    const second = Number(m[2]);
    // Day first (the common form outside the US) unless that cannot be.
    if (second > 12 && first <= 12) return isoDate(Number(m[3]), first, second);
    return isoDate(Number(m[3]), second, first);
  }
  return undefined;
}

function splitFullName(full: string): { given?: string; surname?: string } {
  const trimmed = full.trim();
  const comma = trimmed.indexOf(',');
  if (comma >= 0) {
    // "Surname, Given"
    return { surname: trimmed.slice(0, comma), given: trimmed.slice(comma + 1) };
  }
  const parts = trimmed.split(/\s+/).filter(Boolean);
  if (parts.length === 0) return {};
  if (parts.length === 1) return { surname: parts[0] };
  return { given: parts[0], surname: parts.slice(1).join(' ') };
}

function clean(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const t = value.trim();
  return t === '' ? undefined : t;
}

/** The normalised form of one customer record; absent or empty fields stay absent. */
export function normaliseCustomer(
  fields: CustomerFields,
  opts: NormaliseOptions = {},
): NormalisedCustomer {
  let given = clean(fields.givenName);
  let surname = clean(fields.surname);
  const full = clean(fields.fullName);
  if (full && given === undefined && surname === undefined) {
    const split = splitFullName(full);
    given = split.given;
    surname = split.surname;
  }
  const out: NormalisedCustomer = {};
  const givenName = normaliseName(given);
  if (givenName) {
    out.givenName = givenName;
    // The first word carries the nickname ("bill j" → "william").
    out.givenNameCanonical = canonicalGivenName(givenName.split(' ')[0]!);
  }
  const sn = normaliseName(surname);
  if (sn) out.surname = sn;
  const email = normaliseEmail(clean(fields.email), opts);
  if (email) out.email = email;
  if (email && fields.emailVerified) out.emailVerified = true;
  const country = clean(fields.country)?.toUpperCase();
  if (country) out.country = country;
  const phone = normalisePhone(clean(fields.phone), country ?? opts.defaultCountry);
  if (phone) out.phone = phone;
  const dob = normaliseDate(clean(fields.dateOfBirth));
  if (dob) out.dateOfBirth = dob;
  const number = normaliseName(fields.streetNumber)?.replace(/\s+/g, '');
  let streetName = normaliseAddressLine(fields.street);
  let streetNumber = number;
  if (streetName && streetNumber === undefined) {
    // "12 high street" carries its number in the line.
    const m = /^(\d+[a-z]?)\s+(.*)$/.exec(streetName);
    if (m) {
      streetNumber = m[1];
      streetName = m[2] || undefined;
    }
  }
  if (streetNumber) out.streetNumber = streetNumber;
  if (streetName) out.streetName = streetName;
  const street = [streetNumber, streetName].filter(Boolean).join(' ');
  if (street) out.street = street;
  const line2 = normaliseAddressLine(fields.addressLine2);
  if (line2) out.addressLine2 = line2;
  const postcode = normalisePostcode(clean(fields.postcode));
  if (postcode) out.postcode = postcode;
  const city = normaliseName(fields.city);
  if (city) out.city = city;
  const state = normaliseName(fields.state);
  if (state) out.state = state;
  const loyaltyId = clean(fields.loyaltyId);
  if (loyaltyId) out.loyaltyId = loyaltyId;
  const erpAccount = clean(fields.erpAccount);
  if (erpAccount) out.erpAccount = erpAccount;
  const nationalId = normaliseName(fields.nationalId)?.replace(/\s+/g, '');
  if (nationalId) out.nationalId = nationalId;
  return out;
}
