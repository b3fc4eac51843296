// Recognising customer fields in a table by their usual column names, so an export from any CRM,
// shop or loyalty system can be matched without a mapping file.
import type { CustomerFields } from './contract.js';

export type CustomerFieldName = keyof CustomerFields;

/** Usual column names of each field, compared without case, spaces or punctuation. */
export const COLUMN_ALIASES: Readonly<Record<CustomerFieldName, readonly string[]>> = {
  givenName: ['givenname', 'firstname', 'forename', 'first', 'fname', 'given'],
  surname: ['surname', 'lastname', 'familyname', 'last', 'lname'],
  fullName: ['name', 'fullname', 'customername', 'contactname'],
  email: ['email', 'emailaddress', 'mail'],
  emailVerified: ['emailverified', 'verifiedemail'],
  phone: ['phone', 'phonenumber', 'telephone', 'tel', 'mobile', 'mobilephone', 'cell', 'cellphone'],
  dateOfBirth: ['dateofbirth', 'dob', 'birthdate', 'birthday', 'dateofbirthday'],
  streetNumber: ['streetnumber', 'housenumber', 'streetno', 'houseno'],
  street: ['address1', 'street', 'address', 'addressline1', 'streetaddress', 'streetname'],
  addressLine2: ['address2', 'addressline2'],
  postcode: ['postcode', 'zip', 'zipcode', 'postalcode', 'postal'],
  city: ['suburb', 'city', 'town', 'locality'],
  state: ['state', 'region', 'province', 'county'],
  country: ['country', 'countrycode'],
  loyaltyId: ['loyaltyid', 'loyaltynumber', 'membernumber', 'memberid', 'loyaltycard'],
  erpAccount: ['erpaccount', 'accountnumber', 'customernumber', 'erpcustomer'],
  nationalId: ['socsecid', 'ssn', 'nationalid', 'socialsecuritynumber', 'nino'],
};

function squash(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]/g, '');
}

export interface ColumnMapping {
  /** Column name → field it feeds. */
  columns: Record<string, CustomerFieldName>;
  /** Columns that feed no field (the id column excluded). */
  ignored: string[];
}

/**
 * Maps each column to the field its name usually stands for; the first column found for a field
 * wins, later ones are ignored. `idColumn` is neither mapped nor ignored.
 */
export function recogniseColumns(header: readonly string[], idColumn?: string): ColumnMapping {
  const byAlias = new Map<string, CustomerFieldName>();
  for (const [field, aliases] of Object.entries(COLUMN_ALIASES) as [
    CustomerFieldName,
    readonly string[],
  ][]) {
    for (const alias of aliases) byAlias.set(alias, field);
  }
  const columns: Record<string, CustomerFieldName> = {};
  const ignored: string[] = [];
  const taken = new Set<CustomerFieldName>();
  for (const column of header) {
    if (column === idColumn) continue;
    const field = byAlias.get(squash(column));
    if (field && !taken.has(field)) {
      columns[column] = field;
      taken.add(field);
    } else {
      ignored.push(column);
    }
  }
  return { columns, ignored };
}

const TRUE_WORDS = new Set(['1', 'true', 'yes', 'y', 't']);

/** The customer fields of one row under a mapping; empty cells stay absent. */
export function fieldsFromRow(
  row: Readonly<Record<string, string | undefined>>,
  mapping: Readonly<Record<string, CustomerFieldName>>,
): CustomerFields {
  const out: CustomerFields = {};
  for (const [column, field] of Object.entries(mapping)) {
    const value = row[column]?.trim();
    if (value === undefined || value === '') continue;
    if (field === 'emailVerified') out.emailVerified = TRUE_WORDS.has(value.toLowerCase());
    else out[field] = value;
  }
  return out;
}
