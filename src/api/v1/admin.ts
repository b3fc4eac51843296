// Key administration (role admin) and the audit log (roles auditor and admin). A key's secret is
// in the answer to its creation only; every change is written to the audit log.
import type { FastifyPluginAsync } from 'fastify';
import { createApiKey, listApiKeys, PREFIX_PATTERN, revokeApiKey } from '../auth/api-keys.js';
import type { KeyStore } from '../auth/api-keys.js';
import {
  appendAudit,
  auditActorOf,
  InvalidCursorError,
  listAudit,
  verifyAudit,
} from '../auth/audit.js';
import { ACCESS, ROLES, type Role } from '../auth/roles.js';
import { ProblemError } from '../problem.js';

const problemRef = { $ref: 'middlemart.problem#' } as const;
const denied = { 401: problemRef, 403: problemRef, 429: problemRef } as const;

const keyRecordSchema = {
  type: 'object',
  required: ['prefix', 'name', 'roles', 'tier', 'createdAt', 'revokedAt'],
  properties: {
    prefix: { type: 'string' },
    name: { type: 'string' },
    roles: { type: 'array', items: { type: 'string', enum: [...ROLES] } },
    tier: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
    revokedAt: { type: ['string', 'null'] },
  },
} as const;

/** The `/admin/keys` and `/audit` routes (registered under `/v1`). */
export function adminRoutes(db: KeyStore, tiers: readonly string[]): FastifyPluginAsync {
  return async (server) => {
    server.get<{ Querystring: { includeRevoked?: boolean } }>(
      '/admin/keys',
      {
        config: { access: ACCESS.admin },
        schema: {
          summary: 'List API keys (never their secrets)',
          tags: ['admin'],
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: { includeRevoked: { type: 'boolean', default: false } },
          },
          response: {
            200: {
              type: 'object',
              required: ['items'],
              properties: { items: { type: 'array', items: keyRecordSchema } },
            },
            400: problemRef,
            ...denied,
          },
        },
      },
      async (request) => ({
        items: await listApiKeys(db, { includeRevoked: request.query.includeRevoked === true }),
      }),
    );

    server.post<{ Body: { name: string; roles: Role[]; tier?: string } }>(
      '/admin/keys',
      {
        config: { access: ACCESS.admin },
        schema: {
          summary: 'Create an API key; its secret is shown in this answer only',
          tags: ['admin'],
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'roles'],
            properties: {
              name: { type: 'string', minLength: 1, maxLength: 200 },
              roles: {
                type: 'array',
                minItems: 1,
                uniqueItems: true,
                items: { type: 'string', enum: [...ROLES] },
              },
              tier: { type: 'string', enum: [...tiers] },
            },
          },
          response: {
            201: {
              type: 'object',
              required: ['key', 'record'],
              properties: {
                key: { type: 'string', description: 'mm_<prefix>_<secret>; store it now' },
                record: keyRecordSchema,
              },
            },
            400: problemRef,
            ...denied,
          },
        },
      },
      async (request, reply) => {
        const created = await createApiKey(db, request.body);
        await appendAudit(db, {
          ...auditActorOf(request),
          action: 'key.created',
          target: created.record.prefix,
          detail: {
            name: created.record.name,
            roles: created.record.roles,
            tier: created.record.tier,
          },
        });
        reply.code(201);
        return created;
      },
    );

    server.delete<{ Params: { prefix: string } }>(
      '/admin/keys/:prefix',
      {
        config: { access: ACCESS.admin },
        schema: {
          summary: 'Revoke an API key by its prefix',
          tags: ['admin'],
          params: {
            type: 'object',
            required: ['prefix'],
            properties: { prefix: { type: 'string', pattern: PREFIX_PATTERN.source } },
          },
          response: { 204: { type: 'null' }, 400: problemRef, 404: problemRef, ...denied },
        },
      },
      async (request, reply) => {
        const { prefix } = request.params;
        if (!(await revokeApiKey(db, prefix))) {
          throw new ProblemError(404, 'not-found', {
            detail: `No active key with prefix ${prefix}.`,
          });
        }
        await appendAudit(db, { ...auditActorOf(request), action: 'key.revoked', target: prefix });
        return reply.code(204).send();
      },
    );

    server.get<{ Querystring: { limit?: number; cursor?: string } }>(
      '/audit',
      {
        config: { access: ACCESS.audit },
        schema: {
          summary: 'The audit log of administrative actions, newest first',
          tags: ['audit'],
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
              cursor: { type: 'string', minLength: 1, maxLength: 20 },
            },
          },
          response: {
            200: {
              type: 'object',
              required: ['items'],
              properties: {
                items: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['seq', 'id', 'at', 'actor', 'action', 'prevHash', 'hash'],
                    properties: {
                      seq: { type: 'integer' },
                      id: { type: 'string' },
                      at: { type: 'string', format: 'date-time' },
                      actor: { type: 'string' },
                      action: { type: 'string' },
                      target: { type: ['string', 'null'] },
                      detail: { type: 'object', additionalProperties: true },
                      remote: { type: ['string', 'null'] },
                      prevHash: { type: 'string' },
                      hash: { type: 'string', description: 'SHA-256 over prevHash and the entry' },
                    },
                  },
                },
                nextCursor: { type: 'string' },
              },
            },
            400: problemRef,
            ...denied,
          },
        },
      },
      async (request) => {
        try {
          return await listAudit(db, {
            limit: request.query.limit ?? 50,
            ...(request.query.cursor ? { cursor: request.query.cursor } : {}),
          });
        } catch (error) {
          if (error instanceof InvalidCursorError) {
            throw new ProblemError(400, 'validation-error', {
              detail: 'The cursor is not one this API gave out.',
              errors: [{ path: 'querystring.cursor', message: 'is not a valid cursor' }],
            });
          }
          throw error;
        }
      },
    );

    server.get(
      '/audit/verify',
      {
        config: { access: ACCESS.audit },
        schema: {
          summary: 'Check the audit log hash chain end to end',
          tags: ['audit'],
          response: {
            200: {
              type: 'object',
              required: ['ok', 'entries'],
              properties: {
                ok: { type: 'boolean' },
                entries: { type: 'integer' },
                brokenAt: { type: 'integer' },
                reason: { type: 'string' },
              },
            },
            ...denied,
          },
        },
      },
      async () => verifyAudit(db),
    );
  };
}
