// The operations API (roles operator and admin): the dead letter channel (list with filters and
// cursor pagination, show, replay one, replay by filter) and the queues (depth and oldest age by
// class and destination, circuit states). Payload bodies are redacted unless the key also holds
// `payload-reader` (or `admin`). Replays are written to the audit log when it is configured.
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { DeadLetter, DeadLetterFilter } from '../../runtime/dead-letters.js';
import { PRIORITY_CLASSES } from '../../runtime/types.js';
import { appendAudit, auditActorOf } from '../auth/audit.js';
import type { KeyStore } from '../auth/api-keys.js';
import { ACCESS, mayReadPayloads } from '../auth/roles.js';
import { ProblemError } from '../problem.js';
import type { OpsDeps } from '../types.js';

const problemRef = { $ref: 'middlemart.problem#' } as const;
const denied = { 401: problemRef, 403: problemRef, 429: problemRef } as const;

const filterProperties = {
  kind: { type: 'string', enum: ['message', 'delivery'] },
  type: { type: 'string', minLength: 1, maxLength: 255, description: 'message type' },
  destination: { type: 'string', minLength: 1, maxLength: 255, description: 'system id' },
  error: {
    type: 'string',
    minLength: 1,
    maxLength: 500,
    description: 'substring of the last error, case-insensitive',
  },
  since: { type: 'string', format: 'date-time', description: 'dead-lettered at or after' },
  until: { type: 'string', format: 'date-time', description: 'dead-lettered before' },
} as const;

const deadLetterSchema = {
  type: 'object',
  required: ['id', 'kind', 'reason', 'attempts', 'deadAt', 'status', 'payloadRedacted'],
  properties: {
    id: { type: 'string' },
    kind: { type: 'string', enum: ['message', 'delivery'] },
    type: { type: ['string', 'null'] },
    destination: { type: ['string', 'null'] },
    partitionKey: { type: ['string', 'null'] },
    idempotencyKey: { type: 'string' },
    reason: { type: 'string' },
    lastError: { type: ['string', 'null'] },
    attempts: { type: 'integer' },
    history: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          attempt: { type: 'integer' },
          at: { type: 'string' },
          outcome: { type: 'string' },
          status: { type: 'integer' },
          error: { type: 'string' },
          latencyMs: { type: 'number' },
        },
      },
    },
    traceparent: { type: ['string', 'null'] },
    payload: { description: 'The body; null when redacted for this key' },
    payloadRedacted: { type: 'boolean' },
    payloadError: {
      type: 'string',
      description: 'Why a sealed payload could not be opened (the key it names is not configured)',
    },
    deadAt: { type: 'string', format: 'date-time' },
    status: { type: 'string', enum: ['dead', 'replayed'] },
    replayCount: { type: 'integer' },
    replayedAt: { type: ['string', 'null'] },
  },
} as const;

const replayResultSchema = {
  type: 'object',
  required: ['id', 'kind', 'newId', 'priority'],
  properties: {
    id: { type: 'string' },
    kind: { type: 'string', enum: ['message', 'delivery'] },
    newId: { type: 'string', description: 'the re-queued delivery, or the new message' },
    priority: {
      type: 'string',
      enum: PRIORITY_CLASSES,
      description: 'the class it is queued in again',
    },
    destination: { type: 'string', description: "a delivery's destination" },
  },
} as const;

const depthSchema = {
  type: 'object',
  required: ['depth', 'oldestAgeMs'],
  properties: { depth: { type: 'integer' }, oldestAgeMs: { type: 'number' } },
} as const;

const queuesSchema = {
  type: 'object',
  required: ['at', 'messages', 'deliveries', 'deadLetters', 'circuits'],
  properties: {
    at: { type: 'string', format: 'date-time' },
    messages: {
      type: 'object',
      properties: {
        total: depthSchema,
        byClass: {
          type: 'object',
          properties: Object.fromEntries(PRIORITY_CLASSES.map((c) => [c, depthSchema])),
        },
        inFlight: { type: 'integer' },
      },
    },
    deliveries: {
      type: 'object',
      properties: {
        total: depthSchema,
        byDestination: {
          type: 'object',
          additionalProperties: {
            type: 'object',
            properties: {
              depth: { type: 'integer' },
              oldestAgeMs: { type: 'number' },
              byClass: {
                type: 'object',
                properties: Object.fromEntries(
                  PRIORITY_CLASSES.map((c) => [c, { type: 'integer' }]),
                ),
              },
              circuit: { type: 'string' },
              congested: { type: 'boolean' },
            },
          },
        },
        inFlight: { type: 'integer' },
      },
    },
    deadLetters: { type: 'integer' },
    circuits: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'circuit'],
        properties: {
          id: { type: 'string' },
          circuit: { type: 'string', enum: ['closed', 'open', 'half-open'] },
          inFlight: { type: 'integer' },
          concurrencyLimit: { type: 'integer' },
          congested: { type: 'boolean' },
        },
      },
    },
  },
} as const;

const REPLAY_FIELDS = new Set([...Object.keys(filterProperties), 'limit']);

interface FilterQuery {
  kind?: 'message' | 'delivery';
  type?: string;
  destination?: string;
  error?: string;
  since?: string;
  until?: string;
}

function filterOf(q: FilterQuery): DeadLetterFilter {
  const f: DeadLetterFilter = {};
  if (q.kind) f.kind = q.kind;
  if (q.type) f.type = q.type;
  if (q.destination) f.destination = q.destination;
  if (q.error) f.error = q.error;
  if (q.since) f.since = new Date(q.since);
  if (q.until) f.until = new Date(q.until);
  return f;
}

function shown(request: FastifyRequest, d: DeadLetter) {
  const reveal = mayReadPayloads(request.principal);
  return { ...d, payload: reveal ? d.payload : null, payloadRedacted: !reveal };
}

/** The `/ops` routes (registered under `/v1`). */
export function opsRoutes(ops: OpsDeps, auditLog?: KeyStore): FastifyPluginAsync {
  const audit = async (request: FastifyRequest, action: string, target: string, detail = {}) => {
    if (!auditLog) return;
    await appendAudit(auditLog, { ...auditActorOf(request), action, target, detail });
  };

  return async (server) => {
    server.get<{
      Querystring: FilterQuery & {
        status?: 'dead' | 'replayed' | 'all';
        limit?: number;
        cursor?: string;
      };
    }>(
      '/ops/dead-letters',
      {
        config: { access: ACCESS.operations },
        schema: {
          summary: 'List dead letters, newest first',
          tags: ['operations'],
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              ...filterProperties,
              status: { type: 'string', enum: ['dead', 'replayed', 'all'], default: 'dead' },
              limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 },
              cursor: { type: 'string', minLength: 1, maxLength: 500 },
            },
          },
          response: {
            200: {
              type: 'object',
              required: ['items'],
              properties: {
                items: { type: 'array', items: deadLetterSchema },
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
        const filter: DeadLetterFilter = {
          ...filterOf(q),
          ...(q.status ? { status: q.status } : {}),
        };
        let page;
        try {
          page = await ops.deadLetters.list(filter, {
            limit: q.limit ?? 50,
            ...(q.cursor ? { cursor: q.cursor } : {}),
          });
        } catch (error) {
          if (error instanceof Error && error.message === 'invalid cursor') {
            throw new ProblemError(400, 'validation-error', {
              detail: 'The cursor is not one this API gave out.',
              errors: [{ path: 'querystring.cursor', message: 'is not a valid cursor' }],
            });
          }
          throw error;
        }
        if (mayReadPayloads(request.principal) && page.items.length > 0) {
          await audit(request, 'dead-letters.payloads-viewed', 'dead-letters', {
            ids: page.items.map((d) => d.id),
          });
        }
        return {
          items: page.items.map((d) => shown(request, d)),
          ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
        };
      },
    );

    const idParams = {
      type: 'object',
      required: ['id'],
      properties: { id: { type: 'string', minLength: 1, maxLength: 200 } },
    } as const;

    server.get<{ Params: { id: string } }>(
      '/ops/dead-letters/:id',
      {
        config: { access: ACCESS.operations },
        schema: {
          summary: 'One dead letter with its attempt history',
          tags: ['operations'],
          params: idParams,
          response: { 200: deadLetterSchema, 404: problemRef, ...denied },
        },
      },
      async (request) => {
        const d = await ops.deadLetters.show(request.params.id);
        if (!d) {
          throw new ProblemError(404, 'not-found', {
            detail: `No dead letter ${JSON.stringify(request.params.id)}.`,
          });
        }
        if (mayReadPayloads(request.principal)) {
          await audit(request, 'dead-letter.payload-viewed', d.id);
        }
        return shown(request, d);
      },
    );

    server.post<{ Params: { id: string } }>(
      '/ops/dead-letters/:id/replay',
      {
        config: { access: ACCESS.operations, noBody: true },
        schema: {
          summary: 'Replay one dead letter under its original idempotency key',
          tags: ['operations'],
          params: idParams,
          response: { 202: replayResultSchema, 404: problemRef, 409: problemRef, ...denied },
        },
      },
      async (request, reply) => {
        const { id } = request.params;
        const result = await ops.deadLetters.replay(id);
        if (!result) {
          const d = await ops.deadLetters.show(id);
          if (!d)
            throw new ProblemError(404, 'not-found', {
              detail: `No dead letter ${JSON.stringify(id)}.`,
            });
          throw new ProblemError(409, 'already-replayed', {
            detail: `Dead letter ${JSON.stringify(id)} was already replayed at ${d.replayedAt ?? 'an earlier time'}.`,
          });
        }
        await audit(request, 'dead-letter.replayed', id, { newId: result.newId });
        reply.code(202);
        return result;
      },
    );

    server.post<{ Body: FilterQuery & { limit?: number } }>(
      '/ops/replays',
      {
        config: { access: ACCESS.operations },
        // A misspelt filter must not widen a bulk replay: unknown fields are refused, not dropped.
        preValidation: async (request) => {
          const body = request.body;
          if (body === null || typeof body !== 'object' || Array.isArray(body)) return;
          const unknown = Object.keys(body).filter((k) => !REPLAY_FIELDS.has(k));
          if (unknown.length > 0) {
            throw new ProblemError(400, 'validation-error', {
              detail: `Unknown filter field(s): ${unknown.join(', ')}.`,
              errors: unknown.map((k) => ({ path: k, message: 'is not allowed' })),
            });
          }
        },
        schema: {
          summary: 'Replay every dead letter matching a filter, oldest first, up to a limit',
          tags: ['operations'],
          body: {
            type: 'object',
            additionalProperties: false,
            properties: {
              ...filterProperties,
              limit: { type: 'integer', minimum: 1, maximum: 10_000, default: 100 },
            },
          },
          response: {
            202: {
              type: 'object',
              required: ['replayed', 'items'],
              properties: {
                replayed: { type: 'integer' },
                items: { type: 'array', items: replayResultSchema },
              },
            },
            400: problemRef,
            ...denied,
          },
        },
      },
      async (request, reply) => {
        const body = request.body ?? {};
        const limit = body.limit ?? 100;
        const filter = filterOf(body);
        const items = await ops.deadLetters.replayMatching(filter, limit);
        await audit(request, 'dead-letters.replayed-by-filter', 'dead-letters', {
          filter: body,
          replayed: items.length,
        });
        reply.code(202);
        return { replayed: items.length, items };
      },
    );

    server.get(
      '/ops/queues',
      {
        config: { access: ACCESS.operations },
        schema: {
          summary: 'Queue depth and oldest age by class and destination, and circuit states',
          tags: ['operations'],
          response: { 200: queuesSchema, ...denied },
        },
      },
      async () => {
        const stats = await ops.stats();
        return { ...stats, circuits: ops.circuits() };
      },
    );
  };
}
