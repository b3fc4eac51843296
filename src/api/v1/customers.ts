// The customer routes: `POST /v1/customers` takes one system's customer record into the engine as
// a canonical `customer.created` / `customer.updated` (its personal data sealed before it is
// stored), `GET /v1/customers/{id}` shows the golden record with provenance, decisions and history
// (stewards), and `GET /v1/customers/{id}/360` aggregates what the systems around the customer
// know right now, partially when a source fails.
import { createHash, randomUUID } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import {
  CanonicalValidationError,
  makeEvent,
  type CustomerV1,
  type SourceRef,
} from '../../canonical/index.js';
import {
  sealEvent,
  VIEW_SECTIONS,
  type Customer360,
  type CustomerDirectory,
  type PiiVault,
  type StewardshipQueries,
  type ViewSection,
} from '../../domains/customers/index.js';
import { normalisePhone } from '../../domains/customers/normalise.js';
import type { SqlRunner } from '../../ports/sql.js';
import type { AcceptRequest, AcceptResult } from '../../runtime/types.js';
import { ACCESS } from '../auth/roles.js';
import { answerAccepted, readIdempotencyKey, requestHashOf } from '../idempotency.js';
import { ProblemError, type FieldError } from '../problem.js';

const problemRef = { $ref: 'middlemart.problem#' } as const;
const denied = { 401: problemRef, 403: problemRef, 429: problemRef } as const;
const SYSTEM_ID_PATTERN = '^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$';
const CONSENT_PURPOSES = [
  'marketing',
  'personalisation',
  'analytics',
  'third_party_sharing',
  'loyalty_programme',
] as const;
const CONSENT_CHANNELS = ['email', 'sms', 'phone', 'post', 'push', 'any'] as const;

export interface CustomerRouteDeps {
  accept(req: AcceptRequest): Promise<AcceptResult>;
  vault: PiiVault;
  directory: CustomerDirectory;
  queries: StewardshipQueries;
  view360: Customer360;
  /** Reads outside any handler transaction. */
  db: SqlRunner;
  /** Region of records that name none. */
  defaultRegion: string;
  /** For phone numbers without a country code, when the record has no address country. */
  defaultCountry?: string;
}

const addressSchema = {
  type: 'object',
  required: ['lines', 'city', 'country'],
  additionalProperties: false,
  properties: {
    name: { type: 'string', maxLength: 200 },
    company: { type: 'string', maxLength: 200 },
    lines: {
      type: 'array',
      minItems: 1,
      maxItems: 4,
      items: { type: 'string', minLength: 1, maxLength: 200 },
    },
    city: { type: 'string', minLength: 1, maxLength: 100 },
    region: { type: 'string', maxLength: 100 },
    postalCode: { type: 'string', maxLength: 20 },
    country: { type: 'string', pattern: '^[A-Z]{2}$' },
  },
} as const;

const consentSchema = {
  type: 'object',
  required: ['purpose', 'channel', 'status', 'at'],
  additionalProperties: false,
  properties: {
    purpose: { type: 'string', enum: CONSENT_PURPOSES },
    channel: { type: 'string', enum: CONSENT_CHANNELS },
    status: { type: 'string', enum: ['granted', 'denied', 'withdrawn'] },
    at: { type: 'string', format: 'date-time' },
  },
} as const;

export const customerRecordBodySchema = {
  type: 'object',
  description:
    "One system's customer record. `system` + `sourceId` identify it; Middlemart matches it to a golden customer.",
  required: ['system', 'sourceId'],
  additionalProperties: false,
  properties: {
    system: { type: 'string', pattern: SYSTEM_ID_PATTERN, maxLength: 64, examples: ['crm'] },
    sourceId: { type: 'string', minLength: 1, maxLength: 256 },
    givenName: { type: 'string', minLength: 1, maxLength: 200 },
    familyName: { type: 'string', minLength: 1, maxLength: 200 },
    email: { type: 'string', minLength: 3, maxLength: 254 },
    emailVerified: { type: 'boolean' },
    phone: {
      type: 'string',
      minLength: 3,
      maxLength: 40,
      description: 'Any common form; stored as E.164.',
    },
    phoneKind: { type: 'string', enum: ['mobile', 'home', 'work'] },
    address: addressSchema,
    addressKind: { type: 'string', enum: ['billing', 'shipping', 'home'], default: 'home' },
    dateOfBirth: { type: 'string', format: 'date' },
    loyaltyId: { type: 'string', minLength: 1, maxLength: 64 },
    region: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,31}$' },
    legalName: {
      type: 'string',
      minLength: 1,
      maxLength: 200,
      description: 'Legal (registered) name of the account (the ERP owns it by default).',
    },
    taxId: { type: 'string', minLength: 1, maxLength: 64, description: 'Tax or VAT number.' },
    paymentTerms: {
      type: 'string',
      minLength: 1,
      maxLength: 64,
      description: 'Payment terms code, e.g. NET30.',
    },
    creditLimit: {
      type: 'object',
      required: ['amount', 'currency'],
      additionalProperties: false,
      description: 'Credit limit in integer minor units of an ISO 4217 currency.',
      properties: {
        amount: { type: 'integer', minimum: 0 },
        currency: { type: 'string', pattern: '^[A-Z]{3}$' },
      },
    },
    preferences: {
      type: 'object',
      maxProperties: 50,
      description: 'Preferences by name (the CRM owns them by default).',
      additionalProperties: {
        anyOf: [{ type: 'string', maxLength: 500 }, { type: 'number' }, { type: 'boolean' }],
      },
    },
    segments: {
      type: 'array',
      maxItems: 100,
      items: { type: 'string', minLength: 1, maxLength: 64 },
      description: 'Marketing segments (the CRM owns them by default).',
    },
    loyaltyTier: {
      type: 'string',
      minLength: 1,
      maxLength: 64,
      description: 'Loyalty tier (the loyalty system owns it by default).',
    },
    loyaltyPoints: {
      type: 'integer',
      minimum: 0,
      description: 'Loyalty points balance (the loyalty system owns it by default).',
    },
    consents: { type: 'array', maxItems: 50, items: consentSchema },
    otherSourceIds: {
      type: 'array',
      maxItems: 20,
      description: 'Ids of the same customer in other systems, as this system knows them.',
      items: {
        type: 'object',
        required: ['system', 'id'],
        additionalProperties: false,
        properties: {
          system: { type: 'string', pattern: SYSTEM_ID_PATTERN, maxLength: 64 },
          id: { type: 'string', minLength: 1, maxLength: 256 },
        },
      },
    },
    updatedAt: {
      type: 'string',
      format: 'date-time',
      description:
        'When the source last changed the record; an older version never overwrites a newer one.',
    },
  },
} as const;

interface CustomerRecordBody {
  system: string;
  sourceId: string;
  givenName?: string;
  familyName?: string;
  email?: string;
  emailVerified?: boolean;
  phone?: string;
  phoneKind?: 'mobile' | 'home' | 'work';
  address?: CustomerV1['addresses'][number]['address'];
  addressKind?: 'billing' | 'shipping' | 'home';
  dateOfBirth?: string;
  loyaltyId?: string;
  region?: string;
  legalName?: string;
  taxId?: string;
  paymentTerms?: string;
  creditLimit?: { amount: number; currency: string };
  preferences?: Record<string, string | number | boolean>;
  segments?: string[];
  loyaltyTier?: string;
  loyaltyPoints?: number;
  consents?: Array<{
    purpose: (typeof CONSENT_PURPOSES)[number];
    channel: (typeof CONSENT_CHANNELS)[number];
    status: 'granted' | 'denied' | 'withdrawn';
    at: string;
  }>;
  otherSourceIds?: SourceRef[];
  updatedAt?: string;
}

const acceptedSchema = {
  type: 'object',
  required: ['id', 'traceId', 'acceptedAt', 'event'],
  properties: {
    id: { type: 'string', description: 'The message id Middlemart gave the record' },
    traceId: { type: 'string' },
    acceptedAt: { type: 'string', format: 'date-time' },
    event: {
      type: 'string',
      enum: ['customer.created', 'customer.updated'],
      description: 'customer.created when the source id was new to Middlemart',
    },
  },
} as const;

const freeObject = { type: 'object', additionalProperties: true } as const;

const sourceStatusSchema = {
  type: 'object',
  required: ['system', 'status'],
  properties: {
    system: { type: ['string', 'null'] },
    status: {
      type: 'string',
      enum: ['ok', 'not-found', 'not-configured', 'error', 'timeout'],
    },
    latencyMs: { type: 'number' },
    error: { type: 'string' },
  },
} as const;

const FIELDS_360 = ['golden', ...VIEW_SECTIONS] as const;

function canonicalTime(value: string): string {
  return new Date(Date.parse(value)).toISOString().replace(/\.000Z$/, 'Z');
}

/** The body's path of a canonical issue path (`data.emails[0].address` → `email`). */
function bodyPath(path: string): string {
  const p = path.replace(/^data\.?/, '');
  if (p.startsWith('emails')) return 'email';
  if (p.startsWith('phones')) return 'phone';
  if (p.startsWith('addresses'))
    return p.replace(/^addresses\[\d+\]\.?(address\.?)?/, 'address.').replace(/\.$/, '');
  if (p.startsWith('sourceIds')) return 'otherSourceIds';
  return p === '' ? 'body' : p;
}

/** The canonical profile of a record (its own id first in `sourceIds`). */
export function customerOfRecord(
  body: CustomerRecordBody,
  defaults: { region: string; country?: string },
): { customer: CustomerV1; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const own = { system: body.system, id: body.sourceId };
  const sourceIds = [own, ...(body.otherSourceIds ?? [])];
  const id = `rec_${createHash('sha256').update(`${body.system}\u0000${body.sourceId}`).digest('hex').slice(0, 32)}`;
  const customer: CustomerV1 = {
    id,
    sourceIds,
    emails: body.email
      ? [
          {
            address: body.email.trim(),
            primary: true,
            ...(body.emailVerified ? { verified: true } : {}),
          },
        ]
      : [],
    phones: [],
    addresses: body.address
      ? [{ kind: body.addressKind ?? 'home', address: body.address, default: true }]
      : [],
    consents: (body.consents ?? []).map((c) => ({
      ...c,
      at: canonicalTime(c.at),
      source: body.system,
    })),
    region: body.region ?? defaults.region,
  };
  if (body.phone) {
    const e164 = normalisePhone(body.phone, body.address?.country ?? defaults.country);
    if (e164)
      customer.phones.push({
        number: e164,
        primary: true,
        ...(body.phoneKind ? { kind: body.phoneKind } : {}),
      });
    else
      errors.push({
        path: 'phone',
        message:
          'is not a phone number Middlemart can read (send E.164, e.g. +4930123456, or add an address country)',
      });
  }
  if (body.givenName) customer.givenName = body.givenName;
  if (body.familyName) customer.familyName = body.familyName;
  if (body.dateOfBirth) customer.dateOfBirth = body.dateOfBirth;
  if (body.loyaltyId) customer.loyaltyId = body.loyaltyId;
  if (body.legalName) customer.legalName = body.legalName;
  if (body.taxId) customer.taxId = body.taxId;
  if (body.paymentTerms) customer.paymentTerms = body.paymentTerms;
  if (body.creditLimit) customer.creditLimit = body.creditLimit as CustomerV1['creditLimit'];
  if (body.preferences) customer.preferences = body.preferences;
  if (body.segments) customer.segments = body.segments;
  if (body.loyaltyTier) customer.loyaltyTier = body.loyaltyTier;
  if (body.loyaltyPoints !== undefined) customer.loyaltyPoints = body.loyaltyPoints;
  if (body.updatedAt) customer.updatedAt = canonicalTime(body.updatedAt);
  return { customer, errors };
}

function parseFields(raw: string | undefined): ReadonlyArray<(typeof FIELDS_360)[number]> {
  if (raw === undefined || raw.trim() === '') return FIELDS_360;
  const wanted = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = wanted.filter((w) => !(FIELDS_360 as readonly string[]).includes(w));
  if (unknown.length > 0) {
    throw new ProblemError(400, 'validation-error', {
      detail: `fields names unknown sections: ${unknown.join(', ')} (known: ${FIELDS_360.join(', ')})`,
      errors: [{ path: 'querystring.fields', message: `unknown: ${unknown.join(', ')}` }],
    });
  }
  return [...new Set(wanted)] as Array<(typeof FIELDS_360)[number]>;
}

/** The customer routes (full paths under /v1). */
export function customerRoutes(deps: CustomerRouteDeps): FastifyPluginAsync {
  return async (server) => {
    server.post<{ Body: CustomerRecordBody }>(
      '/v1/customers',
      {
        config: { access: ACCESS.ingest },
        schema: {
          tags: ['customers'],
          summary: "Accept one system's customer record",
          description:
            'Answered 202 once the record is committed (its personal data sealed). Matching, survivorship and the sync to the other systems follow in the engine. Same Idempotency-Key and body → the same answer; without a key the body itself is the key.',
          headers: {
            type: 'object',
            properties: { 'idempotency-key': { type: 'string' }, traceparent: { type: 'string' } },
          },
          body: customerRecordBodySchema,
          response: {
            202: acceptedSchema,
            400: problemRef,
            409: problemRef,
            413: problemRef,
            415: problemRef,
            ...denied,
          },
        },
        preValidation: async (request) => {
          readIdempotencyKey(request);
        },
      },
      async (request, reply) => {
        const body = request.body;
        const { customer, errors } = customerOfRecord(body, {
          region: deps.defaultRegion,
          ...(deps.defaultCountry ? { country: deps.defaultCountry } : {}),
        });
        if (errors.length > 0) {
          throw new ProblemError(400, 'validation-error', {
            detail: 'The customer record is not valid.',
            errors,
          });
        }
        const known = await deps.directory.customerOfSource(deps.db, body.system, body.sourceId);
        const name = known ? 'customer.updated' : 'customer.created';
        let event;
        try {
          event = makeEvent(name, customer, {
            source: `/${body.system}`,
            id: randomUUID(),
            ...(request.traceparent ? { traceparent: request.traceparent } : {}),
          });
        } catch (err) {
          if (err instanceof CanonicalValidationError) {
            throw new ProblemError(400, 'validation-error', {
              detail: 'The customer record is not valid.',
              errors: err.issues.map((i) => ({ path: bodyPath(i.path), message: i.message })),
            });
          }
          throw err;
        }
        const requestHash = requestHashOf(request);
        const key = readIdempotencyKey(request) ?? `record/${body.sourceId}/${requestHash}`;
        const result = await deps.accept({
          source: body.system,
          idempotencyKey: key,
          requestHash,
          type: event.type,
          partitionKey: customer.id,
          priority: 'standard',
          payload: sealEvent(deps.vault, event as unknown as Record<string, unknown>),
          personalData: true,
          ...(request.traceparent ? { traceparent: request.traceparent } : {}),
        });
        return { ...answerAccepted(request, reply, result, key), event: name };
      },
    );

    server.get<{ Params: { id: string } }>(
      '/v1/customers/:id',
      {
        config: { access: ACCESS.stewardship },
        schema: {
          tags: ['customers', 'stewardship'],
          summary: 'A golden customer record with provenance, match decisions and history',
          params: {
            type: 'object',
            required: ['id'],
            properties: { id: { type: 'string', minLength: 1, maxLength: 128 } },
          },
          response: {
            200: {
              type: 'object',
              required: ['id', 'profile'],
              properties: {
                id: { type: 'string', description: 'The current golden id (after merges)' },
                requestedId: { type: 'string' },
                provisional: { type: 'boolean' },
                version: { type: 'integer' },
                profile: freeObject,
                provenance: freeObject,
                decisions: { type: 'array', items: freeObject },
                history: { type: 'array', items: freeObject },
              },
            },
            404: problemRef,
            ...denied,
          },
        },
      },
      async (request) => {
        const customer = await deps.queries.customer(deps.db, request.params.id);
        if (!customer) {
          throw new ProblemError(404, 'not-found', { detail: `No customer ${request.params.id}.` });
        }
        return customer;
      },
    );

    server.get<{ Params: { id: string }; Querystring: { fields?: string } }>(
      '/v1/customers/:id/360',
      {
        config: { access: ACCESS.channelRead },
        schema: {
          tags: ['customers'],
          summary:
            'Customer 360: golden record, CRM profile, loyalty, open invoices, recent orders',
          description:
            'Sources are called in parallel, each with its own timeout. A failing source is reported in `sources` with its status; the rest is answered (`partial: true`), never an error.',
          params: {
            type: 'object',
            required: ['id'],
            properties: { id: { type: 'string', minLength: 1, maxLength: 128 } },
          },
          querystring: {
            type: 'object',
            properties: {
              fields: {
                type: 'string',
                maxLength: 200,
                description: `Comma-separated sections to include: ${FIELDS_360.join(', ')} (default all).`,
              },
            },
          },
          response: {
            200: {
              type: 'object',
              required: ['customerId', 'partial', 'sources'],
              properties: {
                customerId: { type: 'string' },
                provisional: { type: 'boolean' },
                partial: {
                  type: 'boolean',
                  description: 'True when a source asked for did not answer',
                },
                golden: freeObject,
                profile: freeObject,
                loyalty: freeObject,
                invoices: { type: 'array', items: freeObject },
                orders: { type: 'array', items: freeObject },
                sources: {
                  type: 'object',
                  properties: Object.fromEntries(VIEW_SECTIONS.map((s) => [s, sourceStatusSchema])),
                },
              },
            },
            400: problemRef,
            404: problemRef,
            ...denied,
          },
        },
      },
      async (request) => {
        const fields = parseFields(request.query.fields);
        const current = await deps.directory.currentId(deps.db, request.params.id);
        const golden = current ? await deps.directory.golden(deps.db, current) : undefined;
        if (!current || !golden) {
          throw new ProblemError(404, 'not-found', { detail: `No customer ${request.params.id}.` });
        }
        const sections = fields.filter((f): f is ViewSection => f !== 'golden');
        const identity = {
          customerId: current,
          sourceIds: golden.profile.sourceIds,
          ...(golden.attributes.email ? { email: golden.attributes.email } : {}),
          ...(golden.attributes.loyaltyId ? { loyaltyId: golden.attributes.loyaltyId } : {}),
        };
        const view = await deps.view360.view(identity, sections);
        const partial = Object.values(view.sources).some(
          (s) => s.status === 'error' || s.status === 'timeout',
        );
        return {
          customerId: current,
          provisional: golden.provisional,
          partial,
          ...(fields.includes('golden') ? { golden: golden.profile } : {}),
          ...view.sections,
          sources: view.sources,
        };
      },
    );
  };
}
