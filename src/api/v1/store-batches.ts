// POST /v1/stores/{storeId}/batches: a store's upload of sales and returns, numbered per store
// within a till session. GET /v1/stores/{storeId}/sequence-gaps: the numbers not received yet.
//
// Each transaction is accepted into the engine on its own, under the key
// `pos:<store>:<session>:<sequence>` (scope `/middlemart/stores/<store>`): the transaction, not
// the batch, is the unit of idempotency, because a store that was offline re-cuts its buffer into
// other batches when it retries, and a transaction must be taken once whatever batch carries it.
// The whole batch is validated first (nothing is stored when any transaction is at fault) and
// checked against the ledger (a sequence number already taken with other content refuses the
// batch with 409 before anything is accepted). Duplicates and replays are answered with the
// message first accepted for them. Sales become `order.created` (fulfilment `store_sale`),
// returns `return.requested`, each with the catalogue's partition key (the order id; a return
// the id of the sale it returns), accepted in sequence order so that a return always queues
// behind its sale while unrelated transactions of the store (and other stores) run in parallel.
import type { FastifyPluginAsync } from 'fastify';
import {
  acceptWaves,
  batchAnswer,
  readStoreBatch,
  recordTransactions,
  recordedTransactions,
  saveBatchAnswer,
  sequenceGaps,
  sessionProgress,
  type RecordedTransaction,
  type StoreContext,
} from '../../domains/store-batches/index.js';
import type { SqlRunner } from '../../ports/sql.js';
import { ACCESS } from '../auth/roles.js';
import { IDEMPOTENT_REPLAYED_HEADER, readIdempotencyKey, requestHashOf } from '../idempotency.js';
import { ProblemError } from '../problem.js';
import { acceptIngressEvent, problemRef, type IngressDeps } from './orders-intake.js';

export interface StoreBatchDeps extends IngressDeps {
  /** The store (the ledger's tables). */
  sql: SqlRunner;
  stores: StoreContext;
  now: () => number;
}

export function storeSource(storeId: string): string {
  return `/middlemart/stores/${storeId}`;
}

const storeParams = {
  type: 'object',
  required: ['storeId'],
  properties: {
    storeId: {
      type: 'string',
      minLength: 1,
      maxLength: 64,
      pattern: '^[^\\s@/]+$',
      description: 'The store’s location id',
    },
  },
} as const;

const gapSchema = {
  type: 'object',
  required: ['session', 'from', 'to', 'missing'],
  properties: {
    session: { type: 'string' },
    from: { type: 'integer' },
    to: { type: 'integer' },
    missing: { type: 'integer' },
  },
} as const;

const batchAnswerSchema = {
  type: 'object',
  description: 'Every transaction of the batch is committed (or was already).',
  required: [
    'storeId',
    'session',
    'traceId',
    'received',
    'accepted',
    'duplicates',
    'transactions',
    'lastSequence',
    'gaps',
  ],
  properties: {
    storeId: { type: 'string' },
    session: { type: 'string' },
    batchId: { type: 'string' },
    traceId: { type: 'string' },
    received: { type: 'integer', description: 'Distinct transactions in the batch' },
    accepted: { type: 'integer', description: 'Taken now' },
    duplicates: { type: 'integer', description: 'Taken before (same sequence, same content)' },
    transactions: {
      type: 'array',
      items: {
        type: 'object',
        required: ['sequence', 'transactionId', 'event', 'id', 'outcome'],
        properties: {
          sequence: { type: 'integer' },
          transactionId: { type: 'string' },
          event: { type: 'string', description: 'order.created or return.requested' },
          id: { type: 'string', description: 'The message id' },
          outcome: { type: 'string', enum: ['accepted', 'duplicate'] },
        },
      },
    },
    lastSequence: { type: 'integer', description: 'Highest sequence taken in this session' },
    gaps: {
      type: 'array',
      items: gapSchema,
      description: 'Missing numbers of every session of the store',
    },
  },
} as const;

interface BatchAnswer {
  storeId: string;
  session: string;
  batchId?: string;
  traceId: string;
  received: number;
  accepted: number;
  duplicates: number;
  transactions: Array<{
    sequence: number;
    transactionId: string;
    event: string;
    id: string;
    outcome: 'accepted' | 'duplicate';
  }>;
  lastSequence: number;
  gaps: Awaited<ReturnType<typeof sequenceGaps>>;
}

/** The store upload routes. */
export function storeBatchRoutes(deps: StoreBatchDeps): FastifyPluginAsync {
  return async (server) => {
    server.post<{ Params: { storeId: string } }>(
      '/v1/stores/:storeId/batches',
      {
        config: { access: ACCESS.ingest },
        schema: {
          tags: ['ingest'],
          summary: 'Upload a store’s sales and returns (numbered per store and till session)',
          description:
            'Each transaction is accepted on its own key (store, session, sequence): a resent sequence with the same content is a duplicate answered with its first message; with other content the batch is refused (409) before anything is taken. Sequence gaps are reported in the answer and by GET …/sequence-gaps; transactions after a gap are taken. An Idempotency-Key (optional) replays the first answer of the same upload.',
          params: storeParams,
          headers: {
            type: 'object',
            properties: {
              'idempotency-key': {
                type: 'string',
                description: 'Optional: the upload’s key, e.g. batch:<batchId>',
              },
              traceparent: { type: 'string' },
            },
          },
          body: {
            type: 'object',
            description: 'A store batch: { storeId, session, batchId?, transactions: [...] }',
          },
          response: {
            202: batchAnswerSchema,
            400: problemRef,
            401: problemRef,
            403: problemRef,
            409: problemRef,
            413: problemRef,
            415: problemRef,
            429: problemRef,
          },
        },
        preValidation: async (request) => {
          readIdempotencyKey(request);
        },
      },
      async (request, reply) => {
        const { storeId } = request.params;
        const uploadKey = readIdempotencyKey(request);
        const uploadHash = requestHashOf(request);
        if (uploadKey !== undefined) {
          const earlier = await batchAnswer(deps.sql, storeId, uploadKey);
          if (earlier) {
            if (earlier.requestHash !== uploadHash) {
              throw new ProblemError(409, 'idempotency-key-reused', {
                detail: `Idempotency-Key ${JSON.stringify(uploadKey)} was already used for another upload of store ${storeId}.`,
              });
            }
            reply.header(IDEMPOTENT_REPLAYED_HEADER, 'true');
            return reply.code(202).send(earlier.answer);
          }
        }

        const read = readStoreBatch(request.body, storeId, deps.stores);
        if (!read.ok) {
          throw new ProblemError(400, 'validation-error', {
            detail:
              'The batch is refused whole: nothing of it was taken. Every field at fault is listed.',
            errors: read.issues,
          });
        }
        const { batch, transactions } = read;
        const recorded = await recordedTransactions(
          deps.sql,
          storeId,
          batch.session,
          transactions.map((t) => t.tx.sequence),
        );
        const conflicts = transactions.filter((t) => {
          const r = recorded.get(t.tx.sequence);
          return r !== undefined && r.requestHash !== t.hash;
        });
        const at = (tx: (typeof transactions)[number]['tx']) => ({
          path: `transactions[${batch.transactions.indexOf(tx)}].sequence`,
          sequence: tx.sequence,
          transactionId: tx.transactionId,
        });
        if (conflicts.length > 0) {
          throw conflictProblem(
            storeId,
            batch.session,
            conflicts.map((t) => at(t.tx)),
            recorded,
          );
        }

        const outcomes = new Map<number, { id: string; outcome: 'accepted' | 'duplicate' }>();
        for (const t of transactions) {
          const r = recorded.get(t.tx.sequence);
          if (r) outcomes.set(t.tx.sequence, { id: r.messageId, outcome: 'duplicate' });
        }
        const fresh = transactions.filter((t) => !recorded.has(t.tx.sequence));
        const taken: Array<RecordedTransaction & { kind: string }> = [];
        const raced: typeof fresh = [];
        for (const wave of acceptWaves(fresh)) {
          const results = await Promise.all(
            wave.map((t) =>
              acceptIngressEvent(deps, {
                event: t.event,
                data: t.data,
                source: storeSource(storeId),
                idempotencyKey: `pos:${storeId}:${t.tx.session}:${t.tx.sequence}`,
                requestHash: t.hash,
                traceparent: request.traceparent,
                time: t.tx.occurredAt,
              }).then(({ result, event }) => ({ t, result, event })),
            ),
          );
          for (const { t, result, event } of results) {
            if (result.outcome === 'accepted' || result.outcome === 'duplicate') {
              outcomes.set(t.tx.sequence, { id: result.messageId, outcome: result.outcome });
              taken.push({
                sequence: t.tx.sequence,
                transactionId: t.tx.transactionId,
                kind: t.tx.kind,
                eventType: event.type,
                messageId: result.messageId,
                requestHash: t.hash,
              });
            } else if (result.outcome === 'conflict') {
              raced.push(t);
            } else {
              throw new ProblemError(429, 'backpressure', {
                detail: `Middlemart is shedding work; retry after ${Math.max(1, Math.ceil(result.retryAfterSeconds))} s.`,
                headers: {
                  'retry-after': String(Math.max(1, Math.ceil(result.retryAfterSeconds))),
                },
              });
            }
          }
        }
        await recordTransactions(
          deps.sql,
          storeId,
          batch.session,
          taken,
          batch.batchId,
          deps.now(),
        );
        if (raced.length > 0) {
          throw conflictProblem(
            storeId,
            batch.session,
            raced.map((t) => at(t.tx)),
            new Map(),
          );
        }

        const progress = (await sessionProgress(deps.sql, storeId)).find(
          (p) => p.session === batch.session,
        );
        const answer: BatchAnswer = {
          storeId,
          session: batch.session,
          ...(batch.batchId ? { batchId: batch.batchId } : {}),
          traceId: request.traceId,
          received: transactions.length,
          accepted: [...outcomes.values()].filter((o) => o.outcome === 'accepted').length,
          duplicates: [...outcomes.values()].filter((o) => o.outcome === 'duplicate').length,
          transactions: transactions.map((t) => ({
            sequence: t.tx.sequence,
            transactionId: t.tx.transactionId,
            event: t.event,
            ...(outcomes.get(t.tx.sequence) as { id: string; outcome: 'accepted' | 'duplicate' }),
          })),
          lastSequence: progress?.lastSequence ?? 0,
          gaps: await sequenceGaps(deps.sql, storeId),
        };
        if (uploadKey !== undefined) {
          await saveBatchAnswer(deps.sql, storeId, uploadKey, uploadHash, answer, deps.now());
        }
        request.log.info(
          {
            storeId,
            session: batch.session,
            batchId: batch.batchId,
            accepted: answer.accepted,
            duplicates: answer.duplicates,
            gaps: answer.gaps.length,
          },
          'store batch',
        );
        return reply.code(202).send(answer);
      },
    );

    server.get<{ Params: { storeId: string } }>(
      '/v1/stores/:storeId/sequence-gaps',
      {
        config: { access: ACCESS.channelRead },
        schema: {
          tags: ['ingest'],
          summary: 'Sequence numbers of a store not received yet, per till session',
          params: storeParams,
          response: {
            200: {
              type: 'object',
              required: ['storeId', 'sessions', 'gaps'],
              properties: {
                storeId: { type: 'string' },
                sessions: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['session', 'received', 'lastSequence'],
                    properties: {
                      session: { type: 'string' },
                      received: { type: 'integer' },
                      lastSequence: { type: 'integer' },
                    },
                  },
                },
                gaps: { type: 'array', items: gapSchema },
              },
            },
            400: problemRef,
            401: problemRef,
            403: problemRef,
            429: problemRef,
          },
        },
      },
      async (request) => {
        const { storeId } = request.params;
        return {
          storeId,
          sessions: await sessionProgress(deps.sql, storeId),
          gaps: await sequenceGaps(deps.sql, storeId),
        };
      },
    );
  };
}

function conflictProblem(
  storeId: string,
  session: string,
  txs: ReadonlyArray<{ path: string; sequence: number; transactionId: string }>,
  recorded: ReadonlyMap<number, RecordedTransaction>,
): ProblemError {
  return new ProblemError(409, 'idempotency-key-reused', {
    detail: `Store ${storeId} session ${session}: ${txs.length === 1 ? 'a sequence number was' : 'sequence numbers were'} already taken with other content; nothing of this batch was taken for ${txs.length === 1 ? 'it' : 'them'}. A sequence number names one transaction for good.`,
    errors: txs.map((t) => ({
      path: t.path,
      message: `sequence ${t.sequence} (${t.transactionId}) differs from the transaction taken before${recorded.get(t.sequence) ? ` (${recorded.get(t.sequence)?.transactionId})` : ''}`,
    })),
  });
}
