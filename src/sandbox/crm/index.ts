// CRM simulator: contacts upserted by external id and searchable by email, a timeline of
// activities per contact (deduplicated by the caller's event id), marketing preferences
// (consents by channel and purpose) and segments computed from all of that. API-key auth.
import { createSimulator, secretsEqual } from '../kit.js';
import type { Simulator, SimulatorOptions } from '../kit.js';

export interface CrmOptions extends SimulatorOptions {
  /** Value expected in the `x-api-key` header. */
  apiKey: string;
}

export interface CrmContact {
  id: string;
  externalId: string;
  email: string;
  firstName?: string;
  lastName?: string;
  phone?: string;
  country?: string;
  properties: Record<string, string | number | boolean>;
  createdAt: string;
  updatedAt: string;
  version: number;
}

export interface TimelineEntry {
  id: string;
  contactId: string;
  eventId?: string;
  type: string;
  title: string;
  occurredAt: string;
  data: Record<string, unknown>;
  recordedAt: string;
}

export interface Consent {
  channel: 'email' | 'sms' | 'post' | 'phone';
  purpose: 'marketing' | 'transactional' | 'profiling';
  granted: boolean;
  source?: string;
  updatedAt: string;
}

const CHANNELS = new Set(['email', 'sms', 'post', 'phone']);
const PURPOSES = new Set(['marketing', 'transactional', 'profiling']);
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const E164 = /^\+[1-9]\d{1,14}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

interface FieldError {
  in: string;
  message: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optionalString(
  body: Record<string, unknown>,
  key: string,
  errors: FieldError[],
  max = 200,
): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length > max) {
    errors.push({ in: key, message: `${key} must be a string of at most ${max} characters` });
    return undefined;
  }
  return v;
}

/** Creates the CRM simulator (not yet listening). */
export function createCrm(opts: CrmOptions): Simulator {
  const now = opts.now ?? Date.now;
  const sim = createSimulator('crm', opts);
  const { app } = sim;
  const contacts = new Map<string, CrmContact>();
  const byExternalId = new Map<string, CrmContact>();
  const timelines = new Map<string, TimelineEntry[]>();
  const timelineByEventId = new Map<string, TimelineEntry>();
  const preferences = new Map<string, Consent[]>();
  let nextContact = 1;
  let nextEntry = 1;
  const iso = (): string => new Date(now()).toISOString();

  const validationError = (errors: FieldError[]) => ({
    status: 'error',
    category: 'VALIDATION_ERROR',
    message: errors.map((e) => `${e.in}: ${e.message}`).join('; '),
    errors,
  });
  const notFound = (what: string) => ({
    status: 'error',
    category: 'OBJECT_NOT_FOUND',
    message: `${what} not found`,
  });

  app.addHook('onRequest', async (request, reply) => {
    if (request.url.startsWith('/_sandbox')) return;
    const key = request.headers['x-api-key'];
    if (typeof key !== 'string' || !secretsEqual(key, opts.apiKey)) {
      sim.count('unauthorizedRequests');
      return reply.code(401).send({
        status: 'error',
        category: 'INVALID_AUTHENTICATION',
        message: 'A valid x-api-key header is required.',
      });
    }
  });

  // ---- contacts ------------------------------------------------------------------------------
  app.put<{ Params: { externalId: string } }>(
    '/contacts/by-external-id/:externalId',
    async (request, reply) => {
      const externalId = request.params.externalId;
      const body: unknown = request.body;
      const errors: FieldError[] = [];
      if (!isRecord(body)) {
        return reply
          .code(400)
          .send(validationError([{ in: 'body', message: 'must be a JSON object' }]));
      }
      if (externalId.length === 0 || externalId.length > 128) {
        errors.push({ in: 'externalId', message: '1 to 128 characters' });
      }
      const existing = byExternalId.get(externalId);
      const email = optionalString(body, 'email', errors, 254);
      if (email !== undefined && !EMAIL.test(email)) {
        errors.push({ in: 'email', message: 'not a valid email address' });
      }
      if (email === undefined && existing === undefined) {
        errors.push({ in: 'email', message: 'required when creating a contact' });
      }
      const phone = optionalString(body, 'phone', errors, 16);
      if (phone !== undefined && !E164.test(phone)) {
        errors.push({ in: 'phone', message: 'must be E.164, e.g. +4930123456' });
      }
      const country = optionalString(body, 'country', errors, 2);
      if (country !== undefined && !/^[A-Z]{2}$/.test(country)) {
        errors.push({ in: 'country', message: 'must be ISO 3166-1 alpha-2' });
      }
      const firstName = optionalString(body, 'firstName', errors);
      const lastName = optionalString(body, 'lastName', errors);
      let properties: Record<string, string | number | boolean> = {};
      if (body.properties !== undefined) {
        if (!isRecord(body.properties)) {
          errors.push({ in: 'properties', message: 'must be an object' });
        } else {
          for (const [k, v] of Object.entries(body.properties)) {
            if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') {
              properties[k] = v;
            } else
              errors.push({
                in: `properties.${k}`,
                message: 'must be a string, number or boolean',
              });
          }
        }
      }
      if (errors.length > 0) {
        sim.record('rejectedContacts', { externalId, body, errors });
        return reply.code(400).send(validationError(errors));
      }
      const at = iso();
      if (existing !== undefined) {
        properties = { ...existing.properties, ...properties };
        const updated: CrmContact = {
          ...existing,
          ...(email !== undefined ? { email } : {}),
          ...(firstName !== undefined ? { firstName } : {}),
          ...(lastName !== undefined ? { lastName } : {}),
          ...(phone !== undefined ? { phone } : {}),
          ...(country !== undefined ? { country } : {}),
          properties,
          updatedAt: at,
          version: existing.version + 1,
        };
        contacts.set(updated.id, updated);
        byExternalId.set(externalId, updated);
        sim.record('contacts', { op: 'update', externalId, body });
        return reply.code(200).send(updated);
      }
      const contact: CrmContact = {
        id: `C${String(nextContact++).padStart(7, '0')}`,
        externalId,
        email: email as string,
        ...(firstName !== undefined ? { firstName } : {}),
        ...(lastName !== undefined ? { lastName } : {}),
        ...(phone !== undefined ? { phone } : {}),
        ...(country !== undefined ? { country } : {}),
        properties,
        createdAt: at,
        updatedAt: at,
        version: 1,
      };
      contacts.set(contact.id, contact);
      byExternalId.set(externalId, contact);
      sim.record('contacts', { op: 'create', externalId, body });
      return reply.code(201).header('location', `/contacts/${contact.id}`).send(contact);
    },
  );

  app.get<{ Params: { externalId: string } }>(
    '/contacts/by-external-id/:externalId',
    async (request, reply) => {
      const contact = byExternalId.get(request.params.externalId);
      return contact ?? reply.code(404).send(notFound('contact'));
    },
  );

  app.get<{ Params: { id: string } }>('/contacts/:id', async (request, reply) => {
    const contact = contacts.get(request.params.id);
    return contact ?? reply.code(404).send(notFound('contact'));
  });

  app.get<{ Querystring: { email?: string } }>('/contacts', async (request, reply) => {
    const email = request.query.email;
    if (email === undefined || email === '') {
      return reply
        .code(400)
        .send(validationError([{ in: 'email', message: 'query parameter required' }]));
    }
    const wanted = email.toLowerCase();
    const results = [...contacts.values()].filter((c) => c.email.toLowerCase() === wanted);
    return { total: results.length, results };
  });

  // ---- timeline ------------------------------------------------------------------------------
  app.post<{ Params: { id: string } }>('/contacts/:id/timeline', async (request, reply) => {
    const contact = contacts.get(request.params.id);
    if (contact === undefined) return reply.code(404).send(notFound('contact'));
    const body: unknown = request.body;
    if (!isRecord(body)) {
      return reply
        .code(400)
        .send(validationError([{ in: 'body', message: 'must be a JSON object' }]));
    }
    const errors: FieldError[] = [];
    const eventId = optionalString(body, 'eventId', errors, 128);
    if (eventId !== undefined) {
      const existing = timelineByEventId.get(`${contact.id}:${eventId}`);
      if (existing !== undefined) {
        sim.count('timelineDuplicates');
        sim.record('timeline', { contactId: contact.id, duplicate: true, body });
        return reply.code(200).send(existing);
      }
    }
    const type = body.type;
    if (typeof type !== 'string' || !/^[a-z][a-z0-9_.-]{0,63}$/.test(type)) {
      errors.push({ in: 'type', message: 'required: lowercase event type such as order.placed' });
    }
    const title = body.title;
    if (typeof title !== 'string' || title.length === 0 || title.length > 500) {
      errors.push({ in: 'title', message: 'required: 1 to 500 characters' });
    }
    const occurredAt = body.occurredAt;
    if (
      typeof occurredAt !== 'string' ||
      !RFC3339.test(occurredAt) ||
      Number.isNaN(Date.parse(occurredAt))
    ) {
      errors.push({ in: 'occurredAt', message: 'required: RFC 3339 date-time' });
    }
    if (body.data !== undefined && !isRecord(body.data)) {
      errors.push({ in: 'data', message: 'must be an object' });
    }
    if (errors.length > 0) return reply.code(400).send(validationError(errors));
    const entry: TimelineEntry = {
      id: `T${String(nextEntry++).padStart(8, '0')}`,
      contactId: contact.id,
      ...(eventId !== undefined ? { eventId } : {}),
      type: type as string,
      title: title as string,
      occurredAt: occurredAt as string,
      data: isRecord(body.data) ? body.data : {},
      recordedAt: iso(),
    };
    const list = timelines.get(contact.id) ?? [];
    list.push(entry);
    timelines.set(contact.id, list);
    if (eventId !== undefined) timelineByEventId.set(`${contact.id}:${eventId}`, entry);
    sim.record('timeline', { contactId: contact.id, duplicate: false, body });
    return reply.code(201).send(entry);
  });

  app.get<{ Params: { id: string } }>('/contacts/:id/timeline', async (request, reply) => {
    if (!contacts.has(request.params.id)) return reply.code(404).send(notFound('contact'));
    const results = timelines.get(request.params.id) ?? [];
    return { total: results.length, results };
  });

  // ---- preferences ---------------------------------------------------------------------------
  app.put<{ Params: { id: string } }>('/contacts/:id/preferences', async (request, reply) => {
    const contact = contacts.get(request.params.id);
    if (contact === undefined) return reply.code(404).send(notFound('contact'));
    const body: unknown = request.body;
    const errors: FieldError[] = [];
    const raw = isRecord(body) ? body.consents : undefined;
    if (!Array.isArray(raw) || raw.length === 0) {
      errors.push({ in: 'consents', message: 'required: a non-empty array' });
    }
    const incoming: Consent[] = [];
    (Array.isArray(raw) ? raw : []).forEach((c: unknown, i) => {
      const at = `consents[${i}]`;
      if (!isRecord(c)) {
        errors.push({ in: at, message: 'must be an object' });
        return;
      }
      if (typeof c.channel !== 'string' || !CHANNELS.has(c.channel)) {
        errors.push({ in: `${at}.channel`, message: `one of ${[...CHANNELS].join(', ')}` });
      }
      if (typeof c.purpose !== 'string' || !PURPOSES.has(c.purpose)) {
        errors.push({ in: `${at}.purpose`, message: `one of ${[...PURPOSES].join(', ')}` });
      }
      if (typeof c.granted !== 'boolean') {
        errors.push({ in: `${at}.granted`, message: 'must be true or false' });
      }
      if (c.source !== undefined && typeof c.source !== 'string') {
        errors.push({ in: `${at}.source`, message: 'must be a string' });
      }
      incoming.push({
        channel: c.channel as Consent['channel'],
        purpose: c.purpose as Consent['purpose'],
        granted: c.granted === true,
        ...(typeof c.source === 'string' ? { source: c.source } : {}),
        updatedAt: iso(),
      });
    });
    if (errors.length > 0) return reply.code(400).send(validationError(errors));
    // Replaces the consents named; keeps others as they were.
    const merged = (preferences.get(contact.id) ?? []).filter(
      (old) => !incoming.some((n) => n.channel === old.channel && n.purpose === old.purpose),
    );
    merged.push(...incoming);
    preferences.set(contact.id, merged);
    sim.record('preferences', { contactId: contact.id, body });
    return { contactId: contact.id, consents: merged };
  });

  app.get<{ Params: { id: string } }>('/contacts/:id/preferences', async (request, reply) => {
    if (!contacts.has(request.params.id)) return reply.code(404).send(notFound('contact'));
    return { contactId: request.params.id, consents: preferences.get(request.params.id) ?? [] };
  });

  // ---- segments ------------------------------------------------------------------------------
  const DAY = 86_400_000;
  const segmentDefinitions: { id: string; name: string; test: (c: CrmContact) => boolean }[] = [
    { id: 'all-contacts', name: 'All contacts', test: () => true },
    {
      id: 'email-marketing-opt-in',
      name: 'Email marketing opt-in',
      test: (c) =>
        (preferences.get(c.id) ?? []).some(
          (p) => p.channel === 'email' && p.purpose === 'marketing' && p.granted,
        ),
    },
    {
      id: 'recent-purchasers',
      name: 'Purchased in the last 30 days',
      test: (c) =>
        (timelines.get(c.id) ?? []).some(
          (e) => e.type.startsWith('order.') && Date.parse(e.occurredAt) >= now() - 30 * DAY,
        ),
    },
    {
      id: 'loyalty-members',
      name: 'Loyalty members',
      test: (c) => typeof c.properties.loyaltyId === 'string' && c.properties.loyaltyId !== '',
    },
  ];

  app.get('/segments', async () => {
    const all = [...contacts.values()];
    return {
      results: segmentDefinitions.map((s) => ({
        id: s.id,
        name: s.name,
        size: all.filter(s.test).length,
      })),
    };
  });

  app.get<{ Params: { id: string } }>('/segments/:id/contacts', async (request, reply) => {
    const segment = segmentDefinitions.find((s) => s.id === request.params.id);
    if (segment === undefined) return reply.code(404).send(notFound('segment'));
    const results = [...contacts.values()].filter(segment.test).map((c) => c.id);
    return { total: results.length, results };
  });

  sim.setStateProvider(() => ({
    contacts: contacts.size,
    timelineEntries: [...timelines.values()].reduce((n, l) => n + l.length, 0),
  }));
  return sim;
}
