// The customer profile: identities in each system, contact points, consents and loyalty link.
import { z } from 'zod';
import {
  Address,
  CalendarDate,
  EmailAddress,
  EntityId,
  NonNegativeMoney,
  PhoneNumber,
  Region,
  SourceRef,
  Timestamp,
  requireUnique,
  whenValid,
} from './primitives.js';

export const ConsentPurpose = z
  .enum(['marketing', 'personalisation', 'analytics', 'third_party_sharing', 'loyalty_programme'])
  .meta({ id: 'ConsentPurpose', description: 'What the personal data may be used for.' });
export type ConsentPurpose = z.infer<typeof ConsentPurpose>;

export const ConsentChannel = z
  .enum(['email', 'sms', 'phone', 'post', 'push', 'any'])
  .meta({ id: 'ConsentChannel', description: 'Contact channel a consent covers (any: all).' });
export type ConsentChannel = z.infer<typeof ConsentChannel>;

export const ConsentStatus = z
  .enum(['granted', 'denied', 'withdrawn'])
  .meta({ id: 'ConsentStatus', description: 'granted, denied (never given) or withdrawn.' });
export type ConsentStatus = z.infer<typeof ConsentStatus>;

export const Consent = z
  .object({
    purpose: ConsentPurpose,
    channel: ConsentChannel,
    status: ConsentStatus,
    at: Timestamp.describe('When the customer gave or withdrew it (RFC 3339 UTC).'),
    source: z.string().max(64).optional().describe('System where it was captured.'),
  })
  .strict()
  .meta({ id: 'Consent', description: 'Consent for one purpose over one channel.' });
export type Consent = z.infer<typeof Consent>;

export const CustomerV1 = z
  .object({
    id: EntityId.describe('Middlemart customer id.'),
    sourceIds: z
      .array(SourceRef)
      .min(1)
      .describe('The identifiers of this customer in each system that knows them.'),
    givenName: z.string().max(200).optional().describe('Given (first) name.'),
    familyName: z.string().max(200).optional().describe('Family (last) name.'),
    emails: z
      .array(
        z
          .object({
            address: EmailAddress,
            primary: z.boolean().describe('The preferred address.'),
            verified: z.boolean().optional().describe('Confirmed by the customer.'),
          })
          .strict(),
      )
      .describe('Email addresses.'),
    phones: z
      .array(
        z
          .object({
            number: PhoneNumber,
            kind: z.enum(['mobile', 'home', 'work']).optional().describe('Kind of line.'),
            primary: z.boolean().describe('The preferred number.'),
          })
          .strict(),
      )
      .describe('Phone numbers.'),
    addresses: z
      .array(
        z
          .object({
            kind: z.enum(['billing', 'shipping', 'home']).describe('Use of the address.'),
            address: Address,
            default: z.boolean().describe('Default address of this kind.'),
          })
          .strict(),
      )
      .describe('Postal addresses.'),
    dateOfBirth: CalendarDate.optional(),
    consents: z.array(Consent).describe('Consents, at most one per purpose and channel.'),
    region: Region,
    loyaltyId: z.string().min(1).max(64).optional().describe('Loyalty programme member id.'),
    legalName: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe('Legal (registered) name of the account, as the ERP keeps it.'),
    taxId: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .describe('Tax or VAT identification number, as the ERP keeps it.'),
    paymentTerms: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .describe('Payment terms agreed in the ERP, by their code (e.g. NET30).'),
    creditLimit: NonNegativeMoney.optional(),
    preferences: z
      .record(z.string().min(1).max(64), z.union([z.string().max(500), z.number(), z.boolean()]))
      .optional()
      .describe('Preferences the CRM keeps (language, contact time, sizes …), by name.'),
    segments: z
      .array(z.string().min(1).max(64))
      .max(100)
      .optional()
      .describe('Marketing segments the CRM assigns.'),
    loyaltyTier: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .describe('Loyalty programme tier (e.g. gold), as the loyalty system keeps it.'),
    loyaltyPoints: z
      .int()
      .nonnegative()
      .optional()
      .describe('Loyalty points balance, as the loyalty system keeps it.'),
    createdAt: Timestamp.optional().describe('When the customer first became known.'),
    updatedAt: Timestamp.optional().describe('When the profile last changed.'),
  })
  .strict()
  .superRefine(
    (c, ctx) => {
      requireUnique(ctx, c.sourceIds, (s) => `${s.system}/${s.id}`, ['sourceIds'], 'source id');
      requireUnique(ctx, c.consents, (k) => `${k.purpose}/${k.channel}`, ['consents'], 'consent');
      requireUnique(ctx, c.emails, (e) => e.address.toLowerCase(), ['emails'], 'email');
      if (c.emails.filter((e) => e.primary).length > 1) {
        ctx.addIssue({ code: 'custom', path: ['emails'], message: 'at most one primary email' });
      }
      if (c.phones.filter((p) => p.primary).length > 1) {
        ctx.addIssue({ code: 'custom', path: ['phones'], message: 'at most one primary phone' });
      }
      if (c.dateOfBirth && c.createdAt && c.dateOfBirth > c.createdAt.slice(0, 10)) {
        ctx.addIssue({
          code: 'custom',
          path: ['dateOfBirth'],
          message: 'dateOfBirth lies after the profile was created',
        });
      }
    },
    { when: whenValid },
  )
  .meta({
    id: 'Customer.v1',
    title: 'Customer',
    description: 'A customer profile merged across the systems that know the customer.',
  });
export type CustomerV1 = z.infer<typeof CustomerV1>;
