// Loyalty simulator: members with a points balance and a tier from lifetime points; accruals and
// reversals that are idempotent by the `Idempotency-Key` header with Stripe's semantics (same
// key and body: the stored answer again, no double points; same key, other body: 409). API key.
import { createHash } from 'node:crypto';
import { minorUnitsOf } from '../../canonical/primitives.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createSimulator, secretsEqual } from '../kit.js';
import type { Simulator, SimulatorOptions } from '../kit.js';

export interface LoyaltyTier {
  name: string;
  /** Lifetime points from which a member holds this tier. */
  minLifetimePoints: number;
}

export const DEFAULT_LOYALTY_TIERS: readonly LoyaltyTier[] = [
  { name: 'Bronze', minLifetimePoints: 0 },
  { name: 'Silver', minLifetimePoints: 1000 },
  { name: 'Gold', minLifetimePoints: 5000 },
  { name: 'Platinum', minLifetimePoints: 20000 },
];

export interface LoyaltyOptions extends SimulatorOptions {
  /** Value expected in the `x-api-key` header. */
  apiKey: string;
  /** Tier thresholds (default Bronze 0, Silver 1000, Gold 5000, Platinum 20000). */
  tiers?: readonly LoyaltyTier[];
  /** Points per whole unit of spend in accruals given as spend (default 1). */
  pointsPerCurrencyUnit?: number;
}

export interface LoyaltyMember {
  id: string;
  email: string;
  firstName?: string;
  lastName?: string;
  externalCustomerId?: string;
  balance: number;
  lifetimePoints: number;
  tier: string;
  enrolledAt: string;
}

export interface LoyaltyActivity {
  id: string;
  memberId: string;
  kind: 'accrual' | 'reversal';
  points: number;
  orderReference?: string;
  reason?: string;
  balanceAfter: number;
  at: string;
}

interface FieldError {
  field: string;
  message: string;
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
/** Idempotency keys remembered (oldest forgotten first). */
const IDEMPOTENCY_KEYS_RETAINED = 100_000;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** JSON with object keys sorted, so the same body fingerprints the same however it is ordered. */
function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (isRecord(v)) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

function invalid(fields: FieldError[]) {
  return {
    error: {
      code: 'invalid_request',
      message: fields.map((f) => `${f.field}: ${f.message}`).join('; '),
      fields,
    },
  };
}

/** Creates the loyalty simulator (not yet listening). */
export function createLoyalty(opts: LoyaltyOptions): Simulator {
  const now = opts.now ?? Date.now;
  const sim = createSimulator('loyalty', opts);
  const { app } = sim;
  const tiers = [...(opts.tiers ?? DEFAULT_LOYALTY_TIERS)].sort(
    (a, b) => a.minLifetimePoints - b.minLifetimePoints,
  );
  const pointsPerUnit = opts.pointsPerCurrencyUnit ?? 1;
  const members = new Map<string, LoyaltyMember>();
  const activities = new Map<string, LoyaltyActivity[]>();
  const idempotency = new Map<string, { fingerprint: string; status: number; body: unknown }>();
  let nextMember = 1;
  let nextActivity = 1;
  const iso = (): string => new Date(now()).toISOString();

  const tierOf = (lifetime: number): string => {
    let name = tiers[0]?.name ?? 'Member';
    for (const t of tiers) if (lifetime >= t.minLifetimePoints) name = t.name;
    return name;
  };
  const view = (m: LoyaltyMember) => {
    const next = tiers.find((t) => t.minLifetimePoints > m.lifetimePoints);
    return {
      ...m,
      nextTier:
        next !== undefined
          ? { name: next.name, pointsNeeded: next.minLifetimePoints - m.lifetimePoints }
          : null,
    };
  };
  const notFound = { error: { code: 'member_not_found', message: 'No member with this id.' } };

  app.addHook('onRequest', async (request, reply) => {
    if (request.url.startsWith('/_sandbox')) return;
    const key = request.headers['x-api-key'];
    if (typeof key !== 'string' || !secretsEqual(key, opts.apiKey)) {
      sim.count('unauthorizedRequests');
      return reply.code(401).send({
        error: { code: 'unauthorized', message: 'A valid x-api-key header is required.' },
      });
    }
  });

  app.post('/members', async (request, reply) => {
    const body: unknown = request.body;
    const errors: FieldError[] = [];
    if (!isRecord(body))
      return reply.code(400).send(invalid([{ field: 'body', message: 'JSON object' }]));
    const email = body.email;
    if (typeof email !== 'string' || !EMAIL.test(email) || email.length > 254) {
      errors.push({ field: 'email', message: 'a valid email address is required' });
    }
    for (const key of ['firstName', 'lastName', 'externalCustomerId'] as const) {
      const v = body[key];
      if (v !== undefined && (typeof v !== 'string' || v.length > 128)) {
        errors.push({ field: key, message: 'a string of at most 128 characters' });
      }
    }
    if (errors.length > 0) return reply.code(400).send(invalid(errors));
    const existing = [...members.values()].find(
      (m) => m.email.toLowerCase() === (email as string).toLowerCase(),
    );
    if (existing !== undefined) {
      sim.count('enrolmentConflicts');
      return reply.code(409).send({
        error: {
          code: 'member_exists',
          message: 'A member with this email is already enrolled.',
          memberId: existing.id,
        },
      });
    }
    const member: LoyaltyMember = {
      id: `LM-${String(nextMember++).padStart(6, '0')}`,
      email: email as string,
      ...(typeof body.firstName === 'string' ? { firstName: body.firstName } : {}),
      ...(typeof body.lastName === 'string' ? { lastName: body.lastName } : {}),
      ...(typeof body.externalCustomerId === 'string'
        ? { externalCustomerId: body.externalCustomerId }
        : {}),
      balance: 0,
      lifetimePoints: 0,
      tier: tierOf(0),
      enrolledAt: iso(),
    };
    members.set(member.id, member);
    sim.record('enrolments', body);
    return reply.code(201).header('location', `/members/${member.id}`).send(view(member));
  });

  app.get<{ Querystring: { email?: string } }>('/members', async (request, reply) => {
    const email = request.query.email;
    if (email === undefined) {
      return reply
        .code(400)
        .send(invalid([{ field: 'email', message: 'query parameter required' }]));
    }
    const found = [...members.values()].filter(
      (m) => m.email.toLowerCase() === email.toLowerCase(),
    );
    return { data: found.map(view) };
  });

  app.get<{ Params: { id: string } }>('/members/:id', async (request, reply) => {
    const member = members.get(request.params.id);
    return member !== undefined ? view(member) : reply.code(404).send(notFound);
  });

  app.get<{ Params: { id: string } }>('/members/:id/activities', async (request, reply) => {
    if (!members.has(request.params.id)) return reply.code(404).send(notFound);
    return { data: activities.get(request.params.id) ?? [] };
  });

  const pointsMovement = (kind: 'accrual' | 'reversal') =>
    async function (request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) {
      const key = request.headers['idempotency-key'];
      if (typeof key !== 'string' || key.length === 0 || key.length > 255) {
        return reply
          .code(400)
          .send(
            invalid([{ field: 'Idempotency-Key', message: 'header required (1 to 255 chars)' }]),
          );
      }
      const fingerprint = createHash('sha256')
        .update(`${kind} ${request.params.id} ${stableJson(request.body)}`)
        .digest('hex');
      const stored = idempotency.get(key);
      if (stored !== undefined) {
        if (stored.fingerprint !== fingerprint) {
          sim.count('idempotencyConflicts');
          return reply.code(409).send({
            error: {
              code: 'idempotency_key_reused',
              message: 'This Idempotency-Key was used with a different request.',
            },
          });
        }
        sim.count('idempotentReplays');
        sim.record(kind === 'accrual' ? 'accruals' : 'reversals', {
          memberId: request.params.id,
          idempotencyKey: key,
          replayed: true,
        });
        return reply.code(stored.status).header('idempotent-replayed', 'true').send(stored.body);
      }
      const answer = (status: number, body: unknown) => {
        // Validation failures are not stored: the caller may fix the body and retry with the key.
        if (status < 400 || status === 404 || status === 422) {
          idempotency.set(key, { fingerprint, status, body });
          // Bounded memory: the oldest keys go first (a Map iterates in insertion order).
          for (const oldest of idempotency.keys()) {
            if (idempotency.size <= IDEMPOTENCY_KEYS_RETAINED) break;
            idempotency.delete(oldest);
          }
        }
        return reply.code(status).send(body);
      };
      const member = members.get(request.params.id);
      if (member === undefined) return answer(404, notFound);
      const body = request.body;
      if (!isRecord(body))
        return reply.code(400).send(invalid([{ field: 'body', message: 'JSON object' }]));
      const errors: FieldError[] = [];
      let points: number | undefined;
      if (body.points !== undefined) {
        if (typeof body.points !== 'number' || !Number.isInteger(body.points) || body.points <= 0) {
          errors.push({ field: 'points', message: 'a whole number greater than 0' });
        } else points = body.points;
      } else if (kind === 'accrual' && body.spend !== undefined) {
        const spend = body.spend;
        const minor =
          isRecord(spend) && typeof spend.currency === 'string'
            ? minorUnitsOf(spend.currency)
            : undefined;
        if (
          !isRecord(spend) ||
          typeof spend.amount !== 'number' ||
          !Number.isInteger(spend.amount) ||
          spend.amount <= 0 ||
          minor === undefined
        ) {
          errors.push({
            field: 'spend',
            message: '{ amount: integer minor units > 0, currency: ISO 4217 }',
          });
        } else {
          points = Math.floor((spend.amount as number) / 10 ** minor) * pointsPerUnit;
          if (points <= 0) errors.push({ field: 'spend.amount', message: 'earns no points' });
        }
      } else {
        errors.push({
          field: 'points',
          message: kind === 'accrual' ? 'points or spend is required' : 'points is required',
        });
      }
      const orderReference = body.orderReference;
      if (
        orderReference !== undefined &&
        (typeof orderReference !== 'string' || orderReference === '')
      ) {
        errors.push({ field: 'orderReference', message: 'a non-empty string' });
      }
      const reason = body.reason;
      if (reason !== undefined && typeof reason !== 'string') {
        errors.push({ field: 'reason', message: 'a string' });
      }
      if (errors.length > 0) return reply.code(400).send(invalid(errors));
      const delta = points as number;
      if (kind === 'reversal' && delta > member.balance) {
        sim.count('reversalsRefused');
        return answer(422, {
          error: {
            code: 'insufficient_balance',
            message: `Cannot reverse ${delta} points: the balance is ${member.balance}.`,
          },
        });
      }
      member.balance += kind === 'accrual' ? delta : -delta;
      member.lifetimePoints = Math.max(
        0,
        member.lifetimePoints + (kind === 'accrual' ? delta : -delta),
      );
      member.tier = tierOf(member.lifetimePoints);
      const activity: LoyaltyActivity = {
        id: `LA-${String(nextActivity++).padStart(8, '0')}`,
        memberId: member.id,
        kind,
        points: delta,
        ...(typeof orderReference === 'string' ? { orderReference } : {}),
        ...(typeof reason === 'string' ? { reason } : {}),
        balanceAfter: member.balance,
        at: iso(),
      };
      const list = activities.get(member.id) ?? [];
      list.push(activity);
      activities.set(member.id, list);
      sim.record(kind === 'accrual' ? 'accruals' : 'reversals', {
        memberId: member.id,
        idempotencyKey: key,
        replayed: false,
        body,
      });
      return answer(201, { activity, member: view(member) });
    };

  app.post<{ Params: { id: string } }>('/members/:id/accruals', pointsMovement('accrual'));
  app.post<{ Params: { id: string } }>('/members/:id/reversals', pointsMovement('reversal'));

  sim.setStateProvider(() => ({
    members: members.size,
    idempotencyKeys: idempotency.size,
    tiers,
  }));
  return sim;
}
