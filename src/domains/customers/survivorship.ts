// Source records and attribute-level survivorship. Each system's version of a customer is kept
// as a source record; the golden record takes every attribute from one of them: from the system
// that owns the attribute (config) when it holds a value, else from the most trusted source with
// a value (config `sourceTrust`), the most recent value among equally trusted ones.
import type { Address, Consent, CustomerV1, Money, SourceRef } from '../../canonical/index.js';
import type { CustomerFields } from './matching/contract.js';

/** Identity and contact attributes, held by every system that knows the customer. */
const CONTACT_ATTRIBUTES = [
  'givenName',
  'familyName',
  'email',
  'phone',
  'address',
  'dateOfBirth',
  'loyaltyId',
  'region',
] as const;

/** The attributes only a system of record holds (no contact point or identity data). */
export const ACCOUNT_ATTRIBUTES = [
  // Account data the ERP keeps (by default it owns them).
  'legalName',
  'taxId',
  'paymentTerms',
  'creditLimit',
  // What the CRM keeps.
  'preferences',
  'segments',
  // The loyalty standing.
  'loyaltyTier',
  'loyaltyPoints',
] as const;
export type AccountAttribute = (typeof ACCOUNT_ATTRIBUTES)[number];

/** The attributes survivorship decides, one value per golden record. */
export const CUSTOMER_ATTRIBUTES = [...CONTACT_ATTRIBUTES, ...ACCOUNT_ATTRIBUTES] as const;
export type CustomerAttribute = (typeof CUSTOMER_ATTRIBUTES)[number];

/** Preferences as the CRM keeps them: name → value. */
export type CustomerPreferences = Record<string, string | number | boolean>;

/** The account attributes' values (the same names in SourceRecord, GoldenAttributes, CustomerV1). */
export interface AccountValues {
  legalName?: string;
  taxId?: string;
  paymentTerms?: string;
  creditLimit?: Money;
  preferences?: CustomerPreferences;
  segments?: string[];
  loyaltyTier?: string;
  loyaltyPoints?: number;
}

/** One system's version of a customer, as stored (sealed) in `customer_source_records`. */
export interface SourceRecord extends AccountValues {
  system: string;
  sourceId: string;
  givenName?: string;
  familyName?: string;
  emails: Array<{ address: string; primary: boolean; verified?: boolean }>;
  phones: Array<{ number: string; kind?: 'mobile' | 'home' | 'work'; primary: boolean }>;
  addresses: Array<{ kind: 'billing' | 'shipping' | 'home'; address: Address; default: boolean }>;
  dateOfBirth?: string;
  loyaltyId?: string;
  region?: string;
  /** When the source last changed this record (epoch ms). */
  observedAt: number;
}

export interface GoldenAttributes extends AccountValues {
  givenName?: string;
  familyName?: string;
  email?: string;
  emailVerified?: boolean;
  phone?: string;
  address?: { kind: 'billing' | 'shipping' | 'home'; address: Address };
  dateOfBirth?: string;
  loyaltyId?: string;
  region?: string;
}

/** Where a surviving attribute came from, and by which rule. */
export interface AttributeProvenance {
  system: string;
  sourceId: string;
  rule: 'owner' | 'trust' | 'recency';
}

export interface SurvivorshipPolicy {
  ownership: Partial<Record<CustomerAttribute, string>>;
  /** Most trusted first. */
  sourceTrust: readonly string[];
}

/** A source record from a canonical customer profile (its own id is `sourceIds[0]`). */
export function sourceRecordOf(c: CustomerV1, own: SourceRef, observedAt: number): SourceRecord {
  const r: SourceRecord = {
    system: own.system,
    sourceId: own.id,
    emails: c.emails.map((e) => ({ ...e })),
    phones: c.phones.map((p) => ({ ...p })),
    addresses: c.addresses.map((a) => ({ ...a })),
    region: c.region,
    observedAt,
  };
  if (c.givenName) r.givenName = c.givenName;
  if (c.familyName) r.familyName = c.familyName;
  if (c.dateOfBirth) r.dateOfBirth = c.dateOfBirth;
  if (c.loyaltyId) r.loyaltyId = c.loyaltyId;
  copyAccountValues(c, r);
  return r;
}

/**
 * Copies the account attributes a profile or record holds. Segments are kept sorted and
 * preferences by name, so equal values compare equal whatever order a system sent them in.
 */
export function copyAccountValues(from: AccountValues, to: AccountValues): void {
  if (from.legalName) to.legalName = from.legalName;
  if (from.taxId) to.taxId = from.taxId;
  if (from.paymentTerms) to.paymentTerms = from.paymentTerms;
  if (from.creditLimit) to.creditLimit = { ...from.creditLimit };
  if (from.preferences && Object.keys(from.preferences).length > 0) {
    to.preferences = Object.fromEntries(
      Object.entries(from.preferences).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
    );
  }
  if (from.segments) to.segments = [...new Set(from.segments)].sort();
  if (from.loyaltyTier) to.loyaltyTier = from.loyaltyTier;
  if (from.loyaltyPoints !== undefined) to.loyaltyPoints = from.loyaltyPoints;
}

function primaryOf<T extends { primary: boolean }>(list: readonly T[]): T | undefined {
  return list.find((x) => x.primary) ?? list[0];
}

function addressOf(r: SourceRecord): SourceRecord['addresses'][number] | undefined {
  return r.addresses.find((a) => a.default) ?? r.addresses[0];
}

/** The value a record holds for one attribute (undefined when it holds none). */
export function attributeOf(r: SourceRecord, attr: CustomerAttribute): unknown {
  switch (attr) {
    case 'givenName':
      return r.givenName;
    case 'familyName':
      return r.familyName;
    case 'email':
      return primaryOf(r.emails)?.address;
    case 'phone':
      return primaryOf(r.phones)?.number;
    case 'address': {
      const a = addressOf(r);
      return a ? { kind: a.kind, address: a.address } : undefined;
    }
    case 'dateOfBirth':
      return r.dateOfBirth;
    case 'loyaltyId':
      return r.loyaltyId;
    case 'region':
      return r.region;
    case 'legalName':
    case 'taxId':
    case 'paymentTerms':
    case 'creditLimit':
    case 'preferences':
    case 'segments':
    case 'loyaltyTier':
    case 'loyaltyPoints':
      return r[attr];
  }
}

/** The matcher's view of a record. */
export function matchFieldsOf(r: SourceRecord): CustomerFields {
  const f: CustomerFields = {};
  if (r.givenName) f.givenName = r.givenName;
  if (r.familyName) f.surname = r.familyName;
  const email = primaryOf(r.emails);
  if (email) {
    f.email = email.address;
    if (email.verified) f.emailVerified = true;
  }
  const phone = primaryOf(r.phones);
  if (phone) f.phone = phone.number;
  if (r.dateOfBirth) f.dateOfBirth = r.dateOfBirth;
  const a = addressOf(r)?.address;
  if (a) {
    if (a.lines[0]) f.street = a.lines[0];
    if (a.lines[1]) f.addressLine2 = a.lines[1];
    if (a.postalCode) f.postcode = a.postalCode;
    f.city = a.city;
    if (a.region) f.state = a.region;
    f.country = a.country;
  }
  if (r.loyaltyId) f.loyaltyId = r.loyaltyId;
  return f;
}

/** The surviving value of every attribute, with where it came from. */
export function survive(
  records: readonly SourceRecord[],
  policy: SurvivorshipPolicy,
): {
  attributes: GoldenAttributes;
  provenance: Partial<Record<CustomerAttribute, AttributeProvenance>>;
} {
  const attributes: GoldenAttributes = {};
  const provenance: Partial<Record<CustomerAttribute, AttributeProvenance>> = {};
  const trustRank = (system: string) => {
    const i = policy.sourceTrust.indexOf(system);
    return i < 0 ? policy.sourceTrust.length : i;
  };
  for (const attr of CUSTOMER_ATTRIBUTES) {
    const holders = records.filter((r) => attributeOf(r, attr) !== undefined);
    if (holders.length === 0) continue;
    const owner = policy.ownership[attr];
    const owned = owner ? holders.filter((r) => r.system === owner) : [];
    let chosen: SourceRecord;
    let rule: AttributeProvenance['rule'];
    if (owned.length > 0) {
      chosen = owned.reduce((a, b) => (b.observedAt > a.observedAt ? b : a));
      rule = 'owner';
    } else {
      const sorted = [...holders].sort(
        (a, b) =>
          trustRank(a.system) - trustRank(b.system) ||
          b.observedAt - a.observedAt ||
          (a.system + a.sourceId).localeCompare(b.system + b.sourceId),
      );
      chosen = sorted[0]!;
      const tied = sorted.filter((r) => trustRank(r.system) === trustRank(chosen.system));
      rule = tied.length > 1 || policy.sourceTrust.length === 0 ? 'recency' : 'trust';
    }
    (attributes as Record<string, unknown>)[attr] = attributeOf(chosen, attr);
    if (attr === 'email') {
      const e = primaryOf(chosen.emails);
      if (e?.verified) attributes.emailVerified = true;
    }
    provenance[attr] = { system: chosen.system, sourceId: chosen.sourceId, rule };
  }
  return { attributes, provenance };
}

/** The golden record as a canonical profile. */
export function goldenProfile(input: {
  id: string;
  records: readonly SourceRecord[];
  extraSourceIds?: readonly SourceRef[];
  attributes: GoldenAttributes;
  consents: readonly Consent[];
  defaultRegion: string;
  createdAt: number;
  updatedAt: number;
}): CustomerV1 {
  const a = input.attributes;
  const seenRefs = new Set<string>();
  const sourceIds: SourceRef[] = [];
  for (const r of [
    ...input.records.map((x) => ({ system: x.system, id: x.sourceId })),
    ...(input.extraSourceIds ?? []),
  ]) {
    const k = `${r.system}/${r.id}`;
    if (!seenRefs.has(k)) {
      seenRefs.add(k);
      sourceIds.push(r);
    }
  }
  if (sourceIds.length === 0) sourceIds.push({ system: 'middlemart', id: input.id });
  const emails: CustomerV1['emails'] = [];
  const seenEmails = new Set<string>();
  const addEmail = (address: string, primary: boolean, verified?: boolean) => {
    const k = address.toLowerCase();
    if (seenEmails.has(k)) return;
    seenEmails.add(k);
    emails.push({ address, primary, ...(verified ? { verified } : {}) });
  };
  if (a.email) addEmail(a.email, true, a.emailVerified);
  for (const r of input.records) for (const e of r.emails) addEmail(e.address, false, e.verified);
  const phones: CustomerV1['phones'] = [];
  const seenPhones = new Set<string>();
  const addPhone = (number: string, primary: boolean, kind?: 'mobile' | 'home' | 'work') => {
    if (seenPhones.has(number)) return;
    seenPhones.add(number);
    phones.push({ number, primary, ...(kind ? { kind } : {}) });
  };
  if (a.phone) addPhone(a.phone, true);
  for (const r of input.records) for (const p of r.phones) addPhone(p.number, false, p.kind);
  const addresses: CustomerV1['addresses'] = [];
  if (a.address)
    addresses.push({ kind: a.address.kind, address: a.address.address, default: true });
  const seenAddr = new Set(addresses.map((x) => JSON.stringify(x.address)));
  for (const r of input.records) {
    for (const x of r.addresses) {
      const k = JSON.stringify(x.address);
      if (seenAddr.has(k) || addresses.length >= 10) continue;
      seenAddr.add(k);
      addresses.push({ kind: x.kind, address: x.address, default: false });
    }
  }
  const profile: CustomerV1 = {
    id: input.id,
    sourceIds,
    emails,
    phones,
    addresses,
    consents: [...input.consents],
    region: a.region ?? input.defaultRegion,
    createdAt: new Date(input.createdAt).toISOString(),
    updatedAt: new Date(input.updatedAt).toISOString(),
  };
  if (a.givenName) profile.givenName = a.givenName;
  if (a.familyName) profile.familyName = a.familyName;
  if (a.dateOfBirth) profile.dateOfBirth = a.dateOfBirth;
  if (a.loyaltyId) profile.loyaltyId = a.loyaltyId;
  copyAccountValues(a, profile);
  return profile;
}
