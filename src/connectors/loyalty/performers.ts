// The loyalty connector (kind `loyalty`): a points platform with an `x-api-key`. Accruals and
// reversals carry the delivery's idempotency key as `Idempotency-Key`, so a repeat replays the
// stored answer (`Idempotent-Replayed: true`) and never moves points twice.
//
// Performs `loyalty.accrue` and `loyalty.reverse` (answering `{ activityId, memberId, points,
// balance, tier, replayed }`) and `customer.sync` (enrols the member by email when the identity
// has no member id yet; answers `{ sourceId, created }`). Errors: 400 (validation), 404
// member_not_found, 409 idempotency_key_reused, 422 insufficient_balance are permanent with the
// platform's message; 401 is permanent; 429, 5xx, transport errors and unreadable answers are
// transient.
import { ActionError, type ActionPerformer } from '../../ports/system-actions.js';
import {
  actionCall,
  actionErrorOf,
  firstHeader,
  isRecord,
  joinUrl,
  type HttpAnswer,
} from '../cloud-erp/json-http.js';

export interface LoyaltyOptions {
  system: string;
  baseUrl: string;
  apiKey: string;
}

function loyaltyMessage(answer: HttpAnswer): string {
  const error = isRecord(answer.json) && isRecord(answer.json.error) ? answer.json.error : {};
  const fields = Array.isArray(error.fields)
    ? error.fields
        .filter(isRecord)
        .map((f) => `${String(f.field ?? '')}: ${String(f.message ?? '')}`)
        .join('; ')
    : '';
  const message = typeof error.message === 'string' ? error.message : `HTTP ${answer.status}`;
  const code = typeof error.code === 'string' ? `${error.code}: ` : '';
  return `${code}${message}${fields ? ` (${fields})` : ''}`;
}

export class LoyaltyClient {
  constructor(private readonly opts: LoyaltyOptions) {}

  get system(): string {
    return this.opts.system;
  }

  async request(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    ctx: { signal?: AbortSignal; idempotencyKey?: string },
  ): Promise<HttpAnswer> {
    return actionCall(this.opts.system, {
      method,
      url: joinUrl(this.opts.baseUrl, path),
      headers: {
        'x-api-key': this.opts.apiKey,
        ...(ctx.idempotencyKey ? { 'idempotency-key': ctx.idempotencyKey } : {}),
      },
      ...(body !== undefined ? { body } : {}),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
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
    throw actionErrorOf(this.system, answer, loyaltyMessage(answer));
  }
}

/** An idempotency key the platform accepts (1 to 255 characters). */
function platformKey(key: string): string {
  return key.length <= 255 ? key : key.slice(0, 255);
}

function movementResult(answer: HttpAnswer, body: Record<string, unknown>) {
  const activity = isRecord(body.activity) ? body.activity : {};
  const member = isRecord(body.member) ? body.member : {};
  return {
    activityId: activity.id,
    memberId: member.id,
    points: activity.points,
    balance: member.balance,
    tier: member.tier,
    replayed: firstHeader(answer.headers['idempotent-replayed']) === 'true',
  };
}

/** Performs `loyalty.accrue`: the points the order earned, once per delivery. */
export function loyaltyAccruePerformer(client: LoyaltyClient): ActionPerformer {
  return async (raw, ctx) => {
    if (raw.action !== 'loyalty.accrue') {
      throw new ActionError(`expected loyalty.accrue, got ${raw.action}`, 'permanent');
    }
    const body =
      raw.points > 0
        ? { points: raw.points, orderReference: raw.orderId, reason: `order ${raw.orderId}` }
        : {
            spend: { amount: raw.amountMinor, currency: raw.currency },
            orderReference: raw.orderId,
            reason: `order ${raw.orderId}`,
          };
    const answer = await client.request(
      'POST',
      `/members/${encodeURIComponent(raw.memberId)}/accruals`,
      body,
      { signal: ctx.signal, idempotencyKey: platformKey(ctx.idempotencyKey) },
    );
    return movementResult(answer, client.ok(answer));
  };
}

/** Performs `loyalty.reverse`: takes back the points of a returned order, once per delivery. */
export function loyaltyReversePerformer(client: LoyaltyClient): ActionPerformer {
  return async (raw, ctx) => {
    if (raw.action !== 'loyalty.reverse') {
      throw new ActionError(`expected loyalty.reverse, got ${raw.action}`, 'permanent');
    }
    if (!Number.isInteger(raw.points) || raw.points <= 0) {
      throw new ActionError(
        `${client.system}: points to reverse must be a whole number > 0`,
        'permanent',
      );
    }
    const answer = await client.request(
      'POST',
      `/members/${encodeURIComponent(raw.memberId)}/reversals`,
      { points: raw.points, orderReference: raw.orderId, reason: `return ${raw.returnId}` },
      { signal: ctx.signal, idempotencyKey: platformKey(ctx.idempotencyKey) },
    );
    return movementResult(answer, client.ok(answer));
  };
}

/**
 * Performs `customer.sync` on the loyalty platform: an identity with a member id is checked to
 * exist; one without is enrolled by email (an email already enrolled answers its member id).
 */
export function loyaltyCustomerSyncPerformer(client: LoyaltyClient): ActionPerformer {
  return async (raw, ctx) => {
    if (raw.action !== 'customer.sync') {
      throw new ActionError(`expected customer.sync, got ${raw.action}`, 'permanent');
    }
    const call = { signal: ctx.signal };
    if (raw.sourceId !== undefined) {
      const member = client.ok(
        await client.request(
          'GET',
          `/members/${encodeURIComponent(raw.sourceId)}`,
          undefined,
          call,
        ),
      );
      return { sourceId: member.id, created: false };
    }
    const a = raw.attributes;
    const email = typeof a.email === 'string' ? a.email : undefined;
    if (email === undefined) {
      throw new ActionError(
        `${client.system}: customer ${raw.customerId} has no member id and no email to enrol with (attributes.email)`,
        'permanent',
        { code: 'email_required' },
      );
    }
    const answer = await client.request(
      'POST',
      '/members',
      {
        email,
        ...(typeof a.firstName === 'string' ? { firstName: a.firstName } : {}),
        ...(typeof a.lastName === 'string' ? { lastName: a.lastName } : {}),
        externalCustomerId: raw.customerId,
      },
      call,
    );
    if (answer.status === 409) {
      const error = isRecord(answer.json) && isRecord(answer.json.error) ? answer.json.error : {};
      if (error.code === 'member_exists' && typeof error.memberId === 'string') {
        return { sourceId: error.memberId, created: false };
      }
    }
    const member = client.ok(answer);
    return { sourceId: member.id, created: true };
  };
}
