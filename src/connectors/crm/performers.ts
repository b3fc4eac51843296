// The CRM connector (kind `crm`): a HubSpot-class contacts API with an `x-api-key`. Contacts are
// kept under Middlemart's golden customer id as their external id (PUT upserts, properties
// merge); timeline entries carry the delivery's idempotency key as `eventId`, so a repeat returns
// the first entry; consents go to the contact's preferences.
//
// Performs `crm.timeline-entry` (answers `{ contactId, entryId, duplicate }`) and `customer.sync`
// (answers `{ sourceId, created, version }`). Errors: 400 VALIDATION_ERROR and 404
// OBJECT_NOT_FOUND are permanent with the CRM's message; 401 is permanent (credentials); 429,
// 5xx, transport errors and unreadable answers are transient.
import { createHash } from 'node:crypto';
import {
  ActionError,
  type ActionPerformer,
  type SystemAction,
  type SystemActionName,
} from '../../ports/system-actions.js';
import {
  actionCall,
  actionErrorOf,
  isRecord,
  joinUrl,
  type HttpAnswer,
} from '../cloud-erp/json-http.js';

type ActionOf<N extends SystemActionName> = Extract<SystemAction, { action: N }>;

export interface CrmOptions {
  system: string;
  baseUrl: string;
  apiKey: string;
}

const TIMELINE_TYPES: Record<ActionOf<'crm.timeline-entry'>['kind'], string> = {
  order: 'order.placed',
  return: 'return.completed',
  shipment: 'order.shipped',
  backorder: 'order.backordered',
  consent: 'consent.changed',
  note: 'note.added',
};

const CONTACT_FIELDS = ['email', 'firstName', 'lastName', 'phone', 'country'] as const;
const CONSENT_CHANNELS = new Set(['email', 'sms', 'post', 'phone']);
const CONSENT_PURPOSES = new Set(['marketing', 'transactional', 'profiling']);

/** A stable CRM event id (at most 128 characters) for a delivery's idempotency key. */
export function timelineEventId(idempotencyKey: string): string {
  return idempotencyKey.length <= 128
    ? idempotencyKey
    : `sha256:${createHash('sha256').update(idempotencyKey).digest('hex')}`;
}

function crmMessage(answer: HttpAnswer): string {
  const body = isRecord(answer.json) ? answer.json : {};
  const errors = Array.isArray(body.errors)
    ? body.errors
        .filter(isRecord)
        .map((e) => `${String(e.in ?? '')}: ${String(e.message ?? '')}`)
        .join('; ')
    : '';
  const message = typeof body.message === 'string' ? body.message : `HTTP ${answer.status}`;
  const category = typeof body.category === 'string' ? `${body.category} ` : '';
  return `${category}${errors !== '' ? errors : message}`;
}

export class CrmClient {
  constructor(private readonly opts: CrmOptions) {}

  get system(): string {
    return this.opts.system;
  }

  async request(
    method: 'GET' | 'PUT' | 'POST',
    path: string,
    body: unknown,
    signal: AbortSignal | undefined,
  ): Promise<HttpAnswer> {
    return actionCall(this.opts.system, {
      method,
      url: joinUrl(this.opts.baseUrl, path),
      headers: { 'x-api-key': this.opts.apiKey },
      ...(body !== undefined ? { body } : {}),
      ...(signal ? { signal } : {}),
    });
  }

  /** The answer's JSON object when 2xx; a classified ActionError otherwise. */
  ok(answer: HttpAnswer): Record<string, unknown> {
    if (answer.status >= 200 && answer.status < 300) {
      if (!isRecord(answer.json) || answer.malformed) {
        throw actionErrorOf(this.system, answer, 'the answer is not a JSON object');
      }
      return answer.json;
    }
    throw actionErrorOf(this.system, answer, crmMessage(answer));
  }

  /** The contact kept under the golden id, or found by email; undefined when neither exists. */
  async findContact(
    customerId: string | undefined,
    email: string | undefined,
    signal?: AbortSignal,
  ): Promise<Record<string, unknown> | undefined> {
    if (customerId !== undefined) {
      const answer = await this.request(
        'GET',
        `/contacts/by-external-id/${encodeURIComponent(customerId)}`,
        undefined,
        signal,
      );
      if (answer.status !== 404) return this.ok(answer);
    }
    if (email !== undefined) {
      const found = this.ok(
        await this.request(
          'GET',
          `/contacts?email=${encodeURIComponent(email)}`,
          undefined,
          signal,
        ),
      );
      const first = Array.isArray(found.results) ? found.results.find(isRecord) : undefined;
      if (first !== undefined) return first;
    }
    return undefined;
  }
}

/** Performs `crm.timeline-entry`: finds (or, with an email, creates) the contact, then adds it. */
export function crmTimelinePerformer(client: CrmClient): ActionPerformer {
  return async (raw, ctx) => {
    if (raw.action !== 'crm.timeline-entry') {
      throw new ActionError(`expected crm.timeline-entry, got ${raw.action}`, 'permanent');
    }
    const action = raw;
    let contact = await client.findContact(action.customerId, action.email, ctx.signal);
    if (contact === undefined && action.customerId !== undefined && action.email !== undefined) {
      contact = client.ok(
        await client.request(
          'PUT',
          `/contacts/by-external-id/${encodeURIComponent(action.customerId)}`,
          { email: action.email },
          ctx.signal,
        ),
      );
    }
    if (contact === undefined || typeof contact.id !== 'string') {
      throw new ActionError(
        `${client.system}: no contact for customer ${action.customerId ?? '-'} / ${action.email ?? '-'}, and no email to create one`,
        'permanent',
        { code: 'OBJECT_NOT_FOUND' },
      );
    }
    const answer = await client.request(
      'POST',
      `/contacts/${encodeURIComponent(contact.id)}/timeline`,
      {
        eventId: timelineEventId(ctx.idempotencyKey),
        type: TIMELINE_TYPES[action.kind],
        title: action.summary.slice(0, 500),
        occurredAt: action.at,
        data: {
          ...(action.orderId !== undefined ? { orderId: action.orderId } : {}),
          ...(action.amountMinor !== undefined ? { amountMinor: action.amountMinor } : {}),
          ...(action.currency !== undefined ? { currency: action.currency } : {}),
          process: action.correlation.process,
          processId: action.correlation.id,
        },
      },
      ctx.signal,
    );
    const entry = client.ok(answer);
    return { contactId: contact.id, entryId: entry.id, duplicate: answer.status === 200 };
  };
}

/**
 * Performs `customer.sync` on the CRM: upserts the contact under the golden id with the
 * contact fields among the attributes (the rest as properties) and replaces the named consents.
 */
export function crmCustomerSyncPerformer(client: CrmClient): ActionPerformer {
  return async (raw, ctx) => {
    if (raw.action !== 'customer.sync') {
      throw new ActionError(`expected customer.sync, got ${raw.action}`, 'permanent');
    }
    const action = raw;
    const body: Record<string, unknown> = {};
    const properties: Record<string, string | number | boolean> = {};
    for (const [key, value] of Object.entries(action.attributes)) {
      if (value === undefined || value === null) continue;
      if ((CONTACT_FIELDS as readonly string[]).includes(key)) body[key] = value;
      else if (['string', 'number', 'boolean'].includes(typeof value)) {
        properties[key] = value as string | number | boolean;
      } else properties[key] = JSON.stringify(value);
    }
    if (action.mergedFrom && action.mergedFrom.length > 0) {
      properties.mergedFrom = action.mergedFrom.join(',');
    }
    if (Object.keys(properties).length > 0) body.properties = properties;
    const path = `/contacts/by-external-id/${encodeURIComponent(action.customerId)}`;
    const answer = await client.request('PUT', path, body, ctx.signal);
    const contact = client.ok(answer);
    const consents = (action.consents ?? []).filter(
      (c) => CONSENT_CHANNELS.has(c.channel) && CONSENT_PURPOSES.has(c.purpose),
    );
    if (consents.length > 0 && typeof contact.id === 'string') {
      client.ok(
        await client.request(
          'PUT',
          `/contacts/${encodeURIComponent(contact.id)}/preferences`,
          {
            consents: consents.map((c) => ({
              channel: c.channel,
              purpose: c.purpose,
              granted: c.status === 'granted',
              source: 'middlemart',
            })),
          },
          ctx.signal,
        ),
      );
    }
    return {
      sourceId: contact.id,
      created: answer.status === 201,
      version: contact.version,
      consentsSynced: consents.length,
    };
  };
}
