import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  normaliseCustomer,
  normaliseDate,
  normaliseEmail,
  normaliseName,
  normalisePhone,
  normalisePostcode,
  normaliseAddressLine,
} from '../../../src/domains/customers/normalise.js';
import { canonicalGivenName, NICKNAME_COUNT } from '../../../src/domains/customers/nicknames.js';

test('names lose case, diacritics and punctuation', () => {
  assert.equal(normaliseName('  José  '), 'jose');
  assert.equal(normaliseName("O'Brien-Smith"), 'obriensmith');
  assert.equal(normaliseName('ZOË   van der  Berg'), 'zoe van der berg');
  assert.equal(normaliseName('Müller, Jr.'), 'muller jr');
  assert.equal(normaliseName(' ,. '), undefined);
});

test('nicknames resolve to the given name', () => {
  assert.equal(canonicalGivenName('bill'), 'william');
  assert.equal(canonicalGivenName('peggy'), 'margaret');
  assert.equal(canonicalGivenName('william'), 'william');
  assert.equal(canonicalGivenName('zebedee'), 'zebedee');
  assert.ok(NICKNAME_COUNT > 150);
  const c = normaliseCustomer({ givenName: 'Bob', surname: 'Smith' });
  assert.equal(c.givenName, 'bob');
  assert.equal(c.givenNameCanonical, 'robert');
});

test('emails follow provider rules', () => {
  assert.equal(normaliseEmail(' J.Smith+Promo@GoogleMail.com '), 'jsmith@gmail.com');
  assert.equal(normaliseEmail('j.smith+promo@gmail.com'), 'jsmith@gmail.com');
  // Other providers keep dots and tags unless configured.
  assert.equal(normaliseEmail('J.Smith+promo@Example.COM'), 'j.smith+promo@example.com');
  assert.equal(
    normaliseEmail('j.smith+promo@example.com', { stripPlusTagsEverywhere: true }),
    'j.smith@example.com',
  );
  assert.equal(
    normaliseEmail('j.smith@shop.example', {
      emailRules: { 'shop.example': { ignoreDots: true } },
    }),
    'jsmith@shop.example',
  );
  // Custom rules replace the defaults.
  assert.equal(normaliseEmail('j.smith@gmail.com', { emailRules: {} }), 'j.smith@gmail.com');
});

test('phones become E.164 with the record country as default region', () => {
  assert.equal(normalisePhone('(02) 9876 5432', 'AU'), '+61298765432');
  assert.equal(normalisePhone('020 7946 0958', 'GB'), '+442079460958');
  assert.equal(normalisePhone('+44 20 7946 0958', undefined), '+442079460958');
  assert.equal(normalisePhone('call me', 'GB'), undefined);
  const c = normaliseCustomer({ phone: '0412 345 678', country: 'au' });
  assert.equal(c.phone, '+61412345678');
  assert.equal(c.country, 'AU');
  assert.equal(
    normaliseCustomer({ phone: '0412 345 678' }, { defaultCountry: 'AU' }).phone,
    '+61412345678',
  );
});

test('addresses get standard tokens and postcodes are trimmed', () => {
  assert.equal(normaliseAddressLine('Avenue Road'), 'ave rd');
  assert.equal(normaliseAddressLine('Tullaroop Street'), 'tullaroop st');
  assert.equal(normalisePostcode(' sw1a 1aa '), 'SW1A1AA');
  const c = normaliseCustomer({ street: '12 High Street' });
  assert.equal(c.streetNumber, '12');
  assert.equal(c.streetName, 'high st');
  assert.equal(c.street, '12 high st');
  const d = normaliseCustomer({ street: 'Goldfinch Circuit', streetNumber: ' 48 ' });
  assert.equal(d.street, '48 goldfinch cct');
});

test('dates of birth become YYYY-MM-DD from common forms', () => {
  assert.equal(normaliseDate('19081209'), '1908-12-09');
  assert.equal(normaliseDate('1908-12-09'), '1908-12-09');
  assert.equal(normaliseDate('1908/12/09'), '1908-12-09');
  assert.equal(normaliseDate('09/12/1908'), '1908-12-09');
  assert.equal(normaliseDate('9.12.1908'), '1908-12-09');
  // Month first when the day-first reading is impossible.
  assert.equal(normaliseDate('12/31/1990'), '1990-12-31');
  assert.equal(normaliseDate('1990-05-06T00:00:00Z'), '1990-05-06');
  assert.equal(normaliseDate('1990-13-01'), undefined);
  assert.equal(normaliseDate('yesterday'), undefined);
});

test('a full name is split; empty fields stay absent', () => {
  const c = normaliseCustomer({ fullName: 'Mary Jane Watson', email: '', city: '  ' });
  assert.equal(c.givenName, 'mary');
  assert.equal(c.surname, 'jane watson');
  assert.equal('email' in c, false);
  assert.equal('city' in c, false);
  const d = normaliseCustomer({ fullName: 'Watson, Mary' });
  assert.equal(d.givenName, 'mary');
  assert.equal(d.surname, 'watson');
  assert.equal(normaliseCustomer({ email: 'A@B.C', emailVerified: true }).emailVerified, true);
});
