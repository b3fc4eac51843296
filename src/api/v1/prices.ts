// The pricing API: price changes pushed by the ERP or a pricing engine (`POST /prices/changes`,
// one canonical price or a batch; `POST /prices/files`, the ERP's CSV price file), the approval
// queue (`GET /prices/approvals`, `POST /prices/approvals/{id}/decision`), the price a channel
// shows at any moment (`GET /prices`) and the read-back verification report
// (`GET /prices/verification`). See docs/pricing.md.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import {
  parsePriceBody,
  parsePriceCsv,
  type ChangeStatus,
  type DecisionOutcome,
  type InputError,
  type PriceChangeInput,
  type ShownPrice,
  type StoredChange,
  type SyncState,
  type VerificationSummary,
} from '../../domains/pricing/index.js';
import { traceIdOf } from '../../observability/trace-context.js';
import type { AcceptResult } from '../../runtime/types.js';
import { auditActorOf } from '../auth/audit.js';
import { ACCESS } from '../auth/roles.js';
import { IDEMPOTENT_REPLAYED_HEADER, readIdempotencyKey, sha256Hex } from '../idempotency.js';
import { ProblemError } from '../problem.js';

/** What the pricing routes need (built by src/wiring/pricing.ts). */
export interface PricesApi {
  /** Most changes one request may carry. */
  maxChanges: number;
  submit(req: {
    source: string;
    changes: PriceChangeInput[];
    idempotencyKey: string;
    requestHash: string;
    traceparent?: string;
  }): Promise<AcceptResult>;
  listChanges(filter: {
    status?: ChangeStatus;
    sku?: string;
    limit: number;
    before?: { at: number; id: string };
  }): Promise<StoredChange[]>;
  decide(
    id: string,
    decision: { approve: boolean; reason: string; actor: string; remote: string },
  ): Promise<DecisionOutcome>;
  /** Resolves `channel` (a system id or a sales channel) and `storeGroup` to a target scope. */
  priceAt(q: { sku: string; channel: string; storeGroup?: string; at: number }): Promise<
    | {
        ok: true;
        system: string;
        scope: string;
        price: ShownPrice | undefined;
        sync: SyncState | undefined;
      }
    | { ok: false; errors: InputError[] }
  >;
  verification(): Promise<Array<VerificationSummary & { mismatches: SyncState[] }>>;
}

const problemRef = { $ref: 'middlemart.problem#' } as const;
const denied = { 401: problemRef, 403: problemRef, 429: problemRef } as const;

const money = {
  type: 'object',
  required: ['amount', 'currency'],
  properties: { amount: { type: 'integer' }, currency: { type: 'string' } },
} as const;

const acceptedSchema = {
  type: 'object',
  description: 'The changes are committed; approval and scheduling follow.',
  required: ['id', 'traceId', 'acceptedAt', 'changes'],
  properties: {
    id: { type: 'string', description: 'The submission id' },
    traceId: { type: 'string' },
    acceptedAt: { type: 'string', format: 'date-time' },
    changes: { type: 'integer', description: 'How many price changes the submission holds' },
  },
} as const;

const changeSchema = {
  type: 'object',
  required: [
    'id',
    'sku',
    'currency',
    'listPrice',
    'effectiveFrom',
    'status',
    'reasons',
    'source',
    'submittedAt',
  ],
  properties: {
    id: { type: 'string' },
    sku: { type: 'string' },
    channel: { type: 'string' },
    storeGroup: { type: 'string' },
    currency: { type: 'string' },
    listPrice: money,
    salePrice: money,
    pricesIncludeTax: { type: 'boolean' },
    effectiveFrom: { type: 'string', format: 'date-time' },
    effectiveUntil: { type: 'string', format: 'date-time' },
    promotionId: { type: 'string' },
    status: { type: 'string', enum: ['pending', 'approved', 'rejected'] },
    reasons: { type: 'array', items: { type: 'string' }, description: 'Why it needs approval' },
    source: { type: 'string' },
    submittedAt: { type: 'string', format: 'date-time' },
    decidedBy: { type: 'string' },
    decidedAt: { type: 'string', format: 'date-time' },
    decisionReason: { type: 'string' },
  },
} as const;

const iso = (ms: number) => new Date(ms).toISOString();

function changeBody(c: StoredChange) {
  return {
    id: c.id,
    sku: c.sku,
    ...(c.channel !== undefined ? { channel: c.channel } : {}),
    ...(c.storeGroup !== undefined ? { storeGroup: c.storeGroup } : {}),
    currency: c.currency,
    listPrice: { amount: c.listMinor, currency: c.currency },
    ...(c.saleMinor !== undefined
      ? { salePrice: { amount: c.saleMinor, currency: c.currency } }
      : {}),
    pricesIncludeTax: c.includesTax,
    effectiveFrom: iso(c.effectiveFrom),
    ...(c.effectiveUntil !== undefined ? { effectiveUntil: iso(c.effectiveUntil) } : {}),
    ...(c.promotionId !== undefined ? { promotionId: c.promotionId } : {}),
    status: c.status,
    reasons: c.reasons,
    source: c.source,
    submittedAt: iso(c.ingestedAt),
    ...(c.decidedBy !== undefined ? { decidedBy: c.decidedBy } : {}),
    ...(c.decidedAt !== undefined ? { decidedAt: iso(c.decidedAt) } : {}),
    ...(c.decisionReason !== undefined ? { decisionReason: c.decisionReason } : {}),
  };
}

function answer(
  request: FastifyRequest,
  reply: FastifyReply,
  result: AcceptResult,
  key: string,
  changes: number,
) {
  switch (result.outcome) {
    case 'accepted':
    case 'duplicate':
      if (result.outcome === 'duplicate') reply.header(IDEMPOTENT_REPLAYED_HEADER, 'true');
      reply.code(202);
      return {
        id: result.messageId,
        traceId: traceIdOf(result.traceparent) ?? request.traceId,
        acceptedAt: result.acceptedAt,
        changes,
      };
    case 'conflict':
      throw new ProblemError(409, 'idempotency-key-reused', {
        detail: `Idempotency-Key ${JSON.stringify(key)} was already used with a different request body; use a new key for different changes.`,
        extensions: { messageId: result.messageId },
      });
    case 'backpressure': {
      const seconds = Math.max(1, Math.ceil(result.retryAfterSeconds));
      throw new ProblemError(429, 'backpressure', {
        detail: `Middlemart is shedding deferrable work; retry after ${seconds} s.`,
        headers: { 'retry-after': String(seconds) },
      });
    }
  }
}

const idempotencyHeaders = {
  type: 'object',
  properties: {
    'idempotency-key': {
      type: 'string',
      description: '1–255 printable ASCII characters; default the SHA-256 of the body.',
    },
    traceparent: { type: 'string' },
  },
} as const;

/**
 * The pricing routes, under `/v1` (added here when the server registers module routes without
 * that prefix).
 */
export function pricesRoutes(api: PricesApi): FastifyPluginAsync {
  const routes = pricingRoutes(api);
  return async (server) => {
    await server.register(routes, { prefix: server.prefix.endsWith('/v1') ? '' : '/v1' });
  };
}

function pricingRoutes(api: PricesApi): FastifyPluginAsync {
  return async (server) => {
    // The ERP's price file is CSV; this plugin (and only it) reads text/csv bodies.
    server.addContentTypeParser(
      ['text/csv', 'application/csv'],
      { parseAs: 'string' },
      (
        request: FastifyRequest,
        body: string | Buffer,
        done: (err: Error | null, body?: unknown) => void,
      ) => {
        request.rawBody = Buffer.from(body);
        done(null, String(body));
      },
    );

    server.post(
      '/prices/changes',
      {
        config: { access: ACCESS.ingest },
        schema: {
          tags: ['pricing'],
          summary: 'Submit price changes (one canonical Price, or { changes: [Price, …] })',
          description:
            'Every change is validated first (errors name the field, e.g. changes[3].listPrice.amount); nothing is stored unless all are valid. Answered 202 once committed; approval rules then hold or schedule each change.',
          headers: idempotencyHeaders,
          body: {
            type: 'object',
            description: 'A canonical Price.v1, or { changes: [Price.v1, …] }',
            additionalProperties: true,
          },
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
        const parsed = parsePriceBody(request.body, api.maxChanges);
        if (!parsed.ok) {
          throw new ProblemError(400, 'validation-error', {
            detail: 'Some price changes are not valid; nothing was stored.',
            errors: parsed.errors,
          });
        }
        const hash = sha256Hex(request.rawBody ?? Buffer.alloc(0));
        const key = readIdempotencyKey(request) ?? `body:${hash}`;
        const result = await api.submit({
          source: 'prices-api',
          changes: parsed.changes,
          idempotencyKey: key,
          requestHash: hash,
          traceparent: request.traceparent,
        });
        return answer(request, reply, result, key, parsed.changes.length);
      },
    );

    server.post(
      '/prices/files',
      {
        config: { access: ACCESS.ingest },
        schema: {
          tags: ['pricing'],
          summary: 'Submit an ERP price file (text/csv)',
          description:
            'Columns: sku, channel, store_group, currency, list_price, sale_price, effective_from, effective_until, promotion_id, prices_include_tax (decimals in major units). A file is all or nothing: every bad line is reported as `line N: column`.',
          headers: idempotencyHeaders,
          body: { type: 'string', description: 'The CSV file (header line first)' },
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
        const parsed = parsePriceCsv(String(request.body ?? ''));
        if (!parsed.ok) {
          throw new ProblemError(400, 'validation-error', {
            detail: 'The price file has bad lines; nothing was stored.',
            errors: parsed.errors,
          });
        }
        if (parsed.changes.length > api.maxChanges) {
          throw new ProblemError(400, 'validation-error', {
            detail: `at most ${api.maxChanges} lines per file`,
            errors: [{ path: 'body', message: `at most ${api.maxChanges} lines per file` }],
          });
        }
        const hash = sha256Hex(request.rawBody ?? Buffer.alloc(0));
        const key = readIdempotencyKey(request) ?? `file:${hash}`;
        const result = await api.submit({
          source: 'prices-file-api',
          changes: parsed.changes,
          idempotencyKey: key,
          requestHash: hash,
          traceparent: request.traceparent,
        });
        return answer(request, reply, result, key, parsed.changes.length);
      },
    );

    server.get<{
      Querystring: { status?: ChangeStatus; sku?: string; limit?: number; cursor?: string };
    }>(
      '/prices/approvals',
      {
        config: { access: ACCESS.stewardship },
        schema: {
          tags: ['pricing'],
          summary:
            'Price changes by approval state (default: waiting for a decision), newest first',
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              status: {
                type: 'string',
                enum: ['pending', 'approved', 'rejected'],
                default: 'pending',
              },
              sku: { type: 'string', minLength: 1, maxLength: 64 },
              limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 },
              cursor: { type: 'string', minLength: 1, maxLength: 600 },
            },
          },
          response: {
            200: {
              type: 'object',
              required: ['items'],
              properties: {
                items: { type: 'array', items: changeSchema },
                nextCursor: { type: 'string' },
              },
            },
            400: problemRef,
            ...denied,
          },
        },
      },
      async (request) => {
        const q = request.query;
        let before: { at: number; id: string } | undefined;
        if (q.cursor) {
          try {
            const c = JSON.parse(Buffer.from(q.cursor, 'base64url').toString('utf8')) as {
              at: number;
              id: string;
            };
            if (typeof c.at !== 'number' || typeof c.id !== 'string') throw new Error('bad');
            before = c;
          } catch {
            throw new ProblemError(400, 'validation-error', {
              detail: 'The cursor is not one this API gave.',
              errors: [{ path: 'querystring.cursor', message: 'not a cursor this API gave' }],
            });
          }
        }
        const limit = q.limit ?? 100;
        const items = await api.listChanges({
          status: q.status ?? 'pending',
          ...(q.sku ? { sku: q.sku } : {}),
          limit,
          ...(before ? { before } : {}),
        });
        const last = items[items.length - 1];
        return {
          items: items.map(changeBody),
          ...(items.length === limit && last
            ? {
                nextCursor: Buffer.from(
                  JSON.stringify({ at: last.ingestedAt, id: last.id }),
                ).toString('base64url'),
              }
            : {}),
        };
      },
    );

    server.post<{
      Params: { id: string };
      Body: { decision: 'approve' | 'reject'; reason: string };
    }>(
      '/prices/approvals/:id/decision',
      {
        config: { access: ACCESS.stewardship },
        schema: {
          tags: ['pricing'],
          summary: 'Approve or reject a held price change (audited)',
          params: {
            type: 'object',
            required: ['id'],
            properties: { id: { type: 'string', minLength: 1, maxLength: 300 } },
          },
          body: {
            type: 'object',
            required: ['decision', 'reason'],
            additionalProperties: false,
            properties: {
              decision: { type: 'string', enum: ['approve', 'reject'] },
              reason: { type: 'string', minLength: 1, maxLength: 1000 },
            },
          },
          response: {
            200: changeSchema,
            400: problemRef,
            404: problemRef,
            409: problemRef,
            ...denied,
          },
        },
      },
      async (request) => {
        const { actor, remote } = auditActorOf(request);
        const outcome = await api.decide(request.params.id, {
          approve: request.body.decision === 'approve',
          reason: request.body.reason,
          actor,
          remote,
        });
        if (!outcome.ok && outcome.reason === 'not-found') {
          throw new ProblemError(404, 'not-found', {
            detail: `No price change ${request.params.id}.`,
          });
        }
        if (!outcome.ok) {
          throw new ProblemError(409, 'conflict', {
            detail: `Price change ${request.params.id} is already ${outcome.change.status}; a decision is made once.`,
            extensions: { status: outcome.change.status },
          });
        }
        return changeBody(outcome.change);
      },
    );

    server.get<{ Querystring: { sku: string; channel: string; storeGroup?: string; at?: string } }>(
      '/prices',
      {
        config: { access: ACCESS.channelRead },
        schema: {
          tags: ['pricing'],
          summary: 'The price a channel shows for a SKU at a moment (default now)',
          querystring: {
            type: 'object',
            required: ['sku', 'channel'],
            additionalProperties: false,
            properties: {
              sku: { type: 'string', minLength: 1, maxLength: 64 },
              channel: {
                type: 'string',
                minLength: 1,
                maxLength: 64,
                description: 'A system id (commerce, pos …) or a sales channel (web, store …)',
              },
              storeGroup: {
                type: 'string',
                minLength: 1,
                maxLength: 64,
                description: 'For store systems',
              },
              at: { type: 'string', format: 'date-time' },
            },
          },
          response: {
            200: {
              type: 'object',
              required: ['sku', 'channel', 'at', 'price'],
              properties: {
                sku: { type: 'string' },
                channel: { type: 'string', description: 'The system that shows it' },
                storeGroup: { type: 'string' },
                at: { type: 'string', format: 'date-time' },
                price: {
                  type: ['object', 'null'],
                  properties: {
                    currency: { type: 'string' },
                    listPrice: money,
                    salePrice: money,
                    promotionId: { type: 'string' },
                    changeId: { type: 'string' },
                  },
                },
                acknowledged: {
                  type: 'object',
                  description: 'What the channel last acknowledged showing (now)',
                  properties: {
                    version: { type: 'integer' },
                    listPrice: money,
                    salePrice: money,
                    at: { type: 'string', format: 'date-time' },
                    listed: { type: 'boolean' },
                    verification: { type: 'string' },
                  },
                },
              },
            },
            400: problemRef,
            ...denied,
          },
        },
      },
      async (request) => {
        const q = request.query;
        const at = q.at !== undefined ? Date.parse(q.at) : Date.now();
        if (Number.isNaN(at)) {
          throw new ProblemError(400, 'validation-error', {
            errors: [{ path: 'querystring.at', message: 'an RFC 3339 time' }],
          });
        }
        const r = await api.priceAt({
          sku: q.sku,
          channel: q.channel,
          at,
          ...(q.storeGroup ? { storeGroup: q.storeGroup } : {}),
        });
        if (!r.ok) {
          throw new ProblemError(400, 'validation-error', {
            detail: 'The channel or store group is not one prices are distributed to.',
            errors: r.errors,
          });
        }
        const p = r.price;
        const a = r.sync?.acked;
        return {
          sku: q.sku,
          channel: r.system,
          ...(r.scope !== '' ? { storeGroup: r.scope } : {}),
          at: iso(at),
          price: p
            ? {
                currency: p.currency,
                listPrice: { amount: p.listMinor, currency: p.currency },
                ...(p.saleMinor !== undefined
                  ? { salePrice: { amount: p.saleMinor, currency: p.currency } }
                  : {}),
                ...(p.promotionId !== undefined ? { promotionId: p.promotionId } : {}),
                changeId: p.changeId,
              }
            : null,
          ...(a && r.sync
            ? {
                acknowledged: {
                  version: r.sync.ackedVersion,
                  listPrice: { amount: a.listMinor, currency: a.currency },
                  ...(a.saleMinor !== undefined
                    ? { salePrice: { amount: a.saleMinor, currency: a.currency } }
                    : {}),
                  at: iso(a.at),
                  ...(r.sync.listed !== undefined ? { listed: r.sync.listed } : {}),
                  ...(r.sync.verification ? { verification: r.sync.verification.outcome } : {}),
                },
              }
            : {}),
        };
      },
    );

    server.get(
      '/prices/verification',
      {
        config: { access: ACCESS.operations },
        schema: {
          tags: ['pricing'],
          summary: 'Read-back verification of distributed prices per channel, with mismatches',
          response: {
            200: {
              type: 'object',
              required: ['targets'],
              properties: {
                targets: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: {
                      channel: { type: 'string' },
                      keys: { type: 'integer' },
                      acknowledged: { type: 'integer' },
                      waiting: { type: 'integer' },
                      matched: { type: 'integer' },
                      mismatched: { type: 'integer' },
                      notListed: { type: 'integer' },
                      unreadable: { type: 'integer' },
                      unverified: { type: 'integer' },
                      lastCheckedAt: { type: 'string', format: 'date-time' },
                      mismatches: {
                        type: 'array',
                        items: {
                          type: 'object',
                          properties: {
                            sku: { type: 'string' },
                            storeGroup: { type: 'string' },
                            expected: money,
                            expectedSale: money,
                            observedListPrice: { type: ['integer', 'null'] },
                            observedSalePrice: { type: ['integer', 'null'] },
                            checkedAt: { type: 'string', format: 'date-time' },
                          },
                        },
                      },
                    },
                  },
                },
              },
            },
            ...denied,
          },
        },
      },
      async () => {
        const targets = await api.verification();
        return {
          targets: targets.map((t) => ({
            channel: t.target,
            keys: t.keys,
            acknowledged: t.acknowledged,
            waiting: t.waiting,
            matched: t.matched,
            mismatched: t.mismatched,
            notListed: t.notListed,
            unreadable: t.unreadable,
            unverified: t.unverified,
            ...(t.lastCheckedAt !== undefined ? { lastCheckedAt: iso(t.lastCheckedAt) } : {}),
            mismatches: t.mismatches.map((m) => ({
              sku: m.sku,
              ...(m.scope !== '' ? { storeGroup: m.scope } : {}),
              ...(m.acked
                ? { expected: { amount: m.acked.listMinor, currency: m.acked.currency } }
                : {}),
              ...(m.acked?.saleMinor !== undefined
                ? { expectedSale: { amount: m.acked.saleMinor, currency: m.acked.currency } }
                : {}),
              observedListPrice: m.verification?.observedListMinor ?? null,
              observedSalePrice: m.verification?.observedSaleMinor ?? null,
              ...(m.verification ? { checkedAt: iso(m.verification.at) } : {}),
            })),
          })),
        };
      },
    );
  };
}
