// Notifications simulator: an email/SMS sink. It validates what a real provider would refuse
// (malformed email addresses, phone numbers not in E.164, missing subject or body), records what
// would have been sent, lists it back, and honours `Idempotency-Key` so a retried send is one
// message, not two.
import { createSimulator } from '../kit.js';
import type { Simulator, SimulatorOptions } from '../kit.js';

export type NotificationsOptions = SimulatorOptions;

export interface SentMessage {
  id: string;
  channel: 'email' | 'sms';
  to: string;
  subject?: string;
  body: string;
  template?: string;
  reference?: string;
  status: 'delivered';
  acceptedAt: string;
}

interface FieldError {
  field: string;
  message: string;
}

/** A pragmatic address check: local@domain.tld, no spaces, no empty or doubled dots. */
export function isEmailAddress(value: string): boolean {
  if (value.length > 254) return false;
  const at = value.lastIndexOf('@');
  if (at <= 0 || at > 64) return false;
  const local = value.slice(0, at);
  const domain = value.slice(at + 1);
  if (!/^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$/.test(local)) return false;
  if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) return false;
  const labels = domain.split('.');
  if (labels.length < 2) return false;
  return labels.every(
    (l, i) =>
      /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l) &&
      (i < labels.length - 1 || /^[A-Za-z]{2,63}$/.test(l)),
  );
}

/** E.164: a plus, a country code not starting with 0, at most 15 digits in all. */
export function isE164(value: string): boolean {
  return /^\+[1-9]\d{1,14}$/.test(value);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Creates the notifications simulator (not yet listening). */
export function createNotifications(opts: NotificationsOptions = {}): Simulator {
  const now = opts.now ?? Date.now;
  const sim = createSimulator('notifications', opts);
  const { app } = sim;
  const messages: SentMessage[] = [];
  const byIdempotencyKey = new Map<string, { fingerprint: string; message: SentMessage }>();
  let nextMessage = 1;
  const RETAINED = 10_000;

  app.post('/messages', async (request, reply) => {
    const body: unknown = request.body;
    if (!isRecord(body)) {
      return reply
        .code(400)
        .send({ errors: [{ field: 'body', message: 'must be a JSON object' }] });
    }
    const key = request.headers['idempotency-key'];
    const fingerprint = JSON.stringify(body);
    if (typeof key === 'string' && key !== '') {
      const seen = byIdempotencyKey.get(key);
      if (seen !== undefined) {
        if (seen.fingerprint !== fingerprint) {
          return reply.code(409).send({
            errors: [
              { field: 'Idempotency-Key', message: 'already used with a different message' },
            ],
          });
        }
        sim.count('idempotentReplays');
        return reply.code(202).header('idempotent-replayed', 'true').send(seen.message);
      }
    }
    const errors: FieldError[] = [];
    const channel = body.channel;
    const to = body.to;
    if (channel !== 'email' && channel !== 'sms') {
      errors.push({ field: 'channel', message: 'email or sms' });
    }
    if (typeof to !== 'string') {
      errors.push({ field: 'to', message: 'required' });
    } else if (channel === 'email' && !isEmailAddress(to)) {
      errors.push({ field: 'to', message: 'not a valid email address' });
    } else if (channel === 'sms' && !isE164(to)) {
      errors.push({ field: 'to', message: 'not an E.164 phone number, e.g. +4915112345678' });
    }
    const subject = body.subject;
    if (
      channel === 'email' &&
      (typeof subject !== 'string' || subject === '' || subject.length > 998)
    ) {
      errors.push({ field: 'subject', message: 'required for email: 1 to 998 characters' });
    }
    if (channel === 'sms' && subject !== undefined) {
      errors.push({ field: 'subject', message: 'not allowed for sms' });
    }
    const text = body.body;
    const maxBody = channel === 'sms' ? 1600 : 100_000;
    if (typeof text !== 'string' || text === '' || text.length > maxBody) {
      errors.push({ field: 'body', message: `required: 1 to ${maxBody} characters` });
    }
    for (const optional of ['template', 'reference'] as const) {
      const v = body[optional];
      if (v !== undefined && (typeof v !== 'string' || v.length > 128)) {
        errors.push({ field: optional, message: 'a string of at most 128 characters' });
      }
    }
    if (errors.length > 0) {
      sim.count('messagesRejected');
      sim.record('rejectedMessages', { body, errors });
      return reply.code(422).send({ errors });
    }
    const message: SentMessage = {
      id: `MSG-${String(nextMessage++).padStart(8, '0')}`,
      channel: channel as 'email' | 'sms',
      to: to as string,
      ...(typeof subject === 'string' ? { subject } : {}),
      body: text as string,
      ...(typeof body.template === 'string' ? { template: body.template } : {}),
      ...(typeof body.reference === 'string' ? { reference: body.reference } : {}),
      status: 'delivered',
      acceptedAt: new Date(now()).toISOString(),
    };
    messages.push(message);
    if (messages.length > RETAINED) messages.splice(0, messages.length - RETAINED);
    if (typeof key === 'string' && key !== '') {
      byIdempotencyKey.set(key, { fingerprint, message });
      for (const oldest of byIdempotencyKey.keys()) {
        if (byIdempotencyKey.size <= RETAINED) break;
        byIdempotencyKey.delete(oldest);
      }
    }
    sim.count(channel === 'email' ? 'emailsSent' : 'smsSent');
    sim.record('messages', message);
    return reply.code(202).header('location', `/messages/${message.id}`).send(message);
  });

  app.get<{ Querystring: { to?: string; channel?: string; reference?: string } }>(
    '/messages',
    async (request) => {
      const { to, channel, reference } = request.query;
      const data = messages.filter(
        (m) =>
          (to === undefined || m.to === to) &&
          (channel === undefined || m.channel === channel) &&
          (reference === undefined || m.reference === reference),
      );
      return { total: data.length, data };
    },
  );

  app.get<{ Params: { id: string } }>('/messages/:id', async (request, reply) => {
    const found = messages.find((m) => m.id === request.params.id);
    return found ?? reply.code(404).send({ errors: [{ field: 'id', message: 'not found' }] });
  });

  sim.setStateProvider(() => ({ messages: messages.length }));
  return sim;
}
