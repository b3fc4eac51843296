// The stewardship routes (role steward): the tasks the matcher could not decide, each with both
// records and the per-field comparison, and the steward's decision (merge / keep apart, with a
// reason). A decision is written to the audit log and accepted into the engine, which applies it
// in order with the customer records it concerns; a "keep apart" is remembered so the pair is not
// proposed again. A merge can be undone.
import type { FastifyPluginAsync } from 'fastify';
import {
  STEWARDSHIP_DECIDED_TYPE,
  STEWARDSHIP_PARTITION,
  UNMERGE_REQUESTED_TYPE,
  type StewardshipDecision,
  type StewardshipQueries,
  type TaskStatus,
} from '../../domains/customers/index.js';
import type { SqlRunner } from '../../ports/sql.js';
import type { AcceptRequest, AcceptResult } from '../../runtime/types.js';
import { auditActorOf } from '../auth/audit.js';
import { ACCESS } from '../auth/roles.js';
import { requestHashOf } from '../idempotency.js';
import { ProblemError } from '../problem.js';
import { answerAccepted } from '../idempotency.js';

const problemRef = { $ref: 'middlemart.problem#' } as const;
const denied = { 401: problemRef, 403: problemRef, 429: problemRef } as const;
const freeObject = { type: 'object', additionalProperties: true } as const;

export interface StewardshipRouteDeps {
  accept(req: AcceptRequest): Promise<AcceptResult>;
  queries: StewardshipQueries;
  db: SqlRunner;
  audit(entry: {
    actor: string;
    action: string;
    target?: string;
    remote?: string;
    detail?: Record<string, unknown>;
  }): Promise<void>;
}

const taskSummaryProperties = {
  id: { type: 'string' },
  status: { type: 'string', enum: ['open', 'merged', 'kept-apart', 'obsolete'] },
  customerA: { type: 'string', description: 'The stored identity the record resembles' },
  customerB: { type: 'string', description: 'The identity the new record was given' },
  score: { type: 'number', description: 'Match weight (log2 odds)' },
  probability: { type: 'number' },
  rule: { type: ['string', 'null'] },
  createdAt: { type: 'string', format: 'date-time' },
  decision: { type: ['string', 'null'], enum: ['merge', 'keep-apart', null] },
  reason: { type: ['string', 'null'] },
  decidedBy: { type: ['string', 'null'] },
  decidedAt: { type: ['string', 'null'] },
  mergeId: { type: ['string', 'null'] },
} as const;

const taskSummarySchema = {
  type: 'object',
  required: ['id', 'status', 'customerA', 'customerB', 'score', 'probability', 'createdAt'],
  properties: taskSummaryProperties,
} as const;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 128 } },
} as const;

const acceptedDecisionSchema = {
  type: 'object',
  required: ['id', 'traceId', 'acceptedAt'],
  properties: {
    id: { type: 'string', description: 'The message applying the decision' },
    traceId: { type: 'string' },
    acceptedAt: { type: 'string', format: 'date-time' },
  },
} as const;

export function stewardshipRoutes(deps: StewardshipRouteDeps): FastifyPluginAsync {
  return async (server) => {
    server.get<{
      Querystring: { status?: TaskStatus | 'all'; limit?: number; cursor?: string };
    }>(
      '/v1/stewardship/tasks',
      {
        config: { access: ACCESS.stewardship },
        schema: {
          tags: ['stewardship'],
          summary: 'Stewardship tasks, oldest first',
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              status: {
                type: 'string',
                enum: ['open', 'merged', 'kept-apart', 'obsolete', 'all'],
                default: 'open',
              },
              limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
              cursor: { type: 'string', minLength: 1, maxLength: 128 },
            },
          },
          response: {
            200: {
              type: 'object',
              required: ['items', 'nextCursor'],
              properties: {
                items: { type: 'array', items: taskSummarySchema },
                nextCursor: { type: ['string', 'null'] },
              },
            },
            400: problemRef,
            ...denied,
          },
        },
      },
      async (request) =>
        deps.queries.listTasks(deps.db, {
          status: request.query.status ?? 'open',
          limit: request.query.limit ?? 50,
          ...(request.query.cursor ? { cursor: request.query.cursor } : {}),
        }),
    );

    server.get<{ Params: { id: string } }>(
      '/v1/stewardship/tasks/:id',
      {
        config: { access: ACCESS.stewardship },
        schema: {
          tags: ['stewardship'],
          summary: 'One task: both records and the per-field comparison',
          params: idParams,
          response: {
            200: {
              type: 'object',
              required: [...taskSummarySchema.required, 'comparison'],
              properties: {
                ...taskSummaryProperties,
                recordA: { ...freeObject, type: ['object', 'null'] },
                recordB: { ...freeObject, type: ['object', 'null'] },
                comparison: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['field', 'level', 'weight'],
                    properties: {
                      field: { type: 'string' },
                      level: { type: 'string' },
                      weight: { type: 'number', description: 'log2 Bayes factor of the level' },
                      a: {},
                      b: {},
                    },
                  },
                },
              },
            },
            404: problemRef,
            ...denied,
          },
        },
      },
      async (request) => {
        const task = await deps.queries.task(deps.db, request.params.id);
        if (!task)
          throw new ProblemError(404, 'not-found', { detail: `No task ${request.params.id}.` });
        return task;
      },
    );

    server.post<{
      Params: { id: string };
      Body: { decision: 'merge' | 'keep-apart'; reason: string };
    }>(
      '/v1/stewardship/tasks/:id/decision',
      {
        config: { access: ACCESS.stewardship },
        schema: {
          tags: ['stewardship'],
          summary: 'Decide a task: merge the two identities or keep them apart',
          description:
            'Audited. Applied by the engine in order with the customer records (202); the task shows the outcome once applied. A decided task answers 409.',
          params: idParams,
          body: {
            type: 'object',
            required: ['decision', 'reason'],
            additionalProperties: false,
            properties: {
              decision: { type: 'string', enum: ['merge', 'keep-apart'] },
              reason: { type: 'string', minLength: 1, maxLength: 1000 },
            },
          },
          response: {
            202: acceptedDecisionSchema,
            400: problemRef,
            404: problemRef,
            409: problemRef,
            ...denied,
          },
        },
      },
      async (request, reply) => {
        const taskId = request.params.id;
        const task = await deps.queries.task(deps.db, taskId);
        if (!task) throw new ProblemError(404, 'not-found', { detail: `No task ${taskId}.` });
        const who = auditActorOf(request);
        const reason = request.body.reason.trim();
        if (reason === '') {
          throw new ProblemError(400, 'validation-error', {
            detail: 'Give a reason for the decision.',
            errors: [{ path: 'reason', message: 'must not be blank' }],
          });
        }
        if (task.status !== 'open') {
          throw new ProblemError(409, 'conflict', {
            detail: `Task ${taskId} is already decided (${task.status}).`,
            extensions: { status: task.status },
          });
        }
        const decision: StewardshipDecision = {
          taskId,
          decision: request.body.decision,
          reason,
          actor: who.actor,
        };
        const key = `stewardship/${taskId}`;
        const result = await deps.accept({
          source: 'middlemart/stewardship',
          idempotencyKey: key,
          requestHash: requestHashOf(request),
          type: STEWARDSHIP_DECIDED_TYPE,
          partitionKey: STEWARDSHIP_PARTITION,
          priority: 'standard',
          payload: decision,
          ...(request.traceparent ? { traceparent: request.traceparent } : {}),
        });
        const answer = answerAccepted(request, reply, result, key);
        if (result.outcome === 'accepted') {
          await deps.audit({
            ...who,
            action: `stewardship.${request.body.decision}`,
            target: taskId,
            detail: { customerA: task.customerA, customerB: task.customerB, reason },
          });
        }
        return answer;
      },
    );

    server.post<{ Params: { id: string }; Body: { reason: string } }>(
      '/v1/stewardship/merges/:id/undo',
      {
        config: { access: ACCESS.stewardship },
        schema: {
          tags: ['stewardship'],
          summary: 'Undo a merge: the merged identity comes back with its source records',
          params: idParams,
          body: {
            type: 'object',
            required: ['reason'],
            additionalProperties: false,
            properties: { reason: { type: 'string', minLength: 1, maxLength: 1000 } },
          },
          response: {
            202: acceptedDecisionSchema,
            400: problemRef,
            404: problemRef,
            409: problemRef,
            ...denied,
          },
        },
      },
      async (request, reply) => {
        const mergeId = request.params.id;
        const rows = await deps.db.query<{ undone_at: unknown }>(
          'SELECT undone_at FROM customer_merges WHERE id = ?',
          [mergeId],
        );
        if (!rows[0]) throw new ProblemError(404, 'not-found', { detail: `No merge ${mergeId}.` });
        if (rows[0].undone_at !== null) {
          throw new ProblemError(409, 'conflict', {
            detail: `Merge ${mergeId} is already undone.`,
          });
        }
        const who = auditActorOf(request);
        const key = `unmerge/${mergeId}`;
        const result = await deps.accept({
          source: 'middlemart/stewardship',
          idempotencyKey: key,
          requestHash: requestHashOf(request),
          type: UNMERGE_REQUESTED_TYPE,
          partitionKey: STEWARDSHIP_PARTITION,
          priority: 'standard',
          payload: { mergeId, actor: who.actor, reason: request.body.reason },
          ...(request.traceparent ? { traceparent: request.traceparent } : {}),
        });
        const answer = answerAccepted(request, reply, result, key);
        if (result.outcome === 'accepted') {
          await deps.audit({
            ...who,
            action: 'stewardship.unmerge',
            target: mergeId,
            detail: { reason: request.body.reason },
          });
        }
        return answer;
      },
    );
  };
}
