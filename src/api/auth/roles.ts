// Roles (RBAC). Every route declares who may call it in its route config (`config.access`): either
// 'public' (no key: health and readiness, the API reference) or the roles allowed. The onRequest
// hook installed by `installAccessControl` authenticates the bearer key (401 problem with
// `WWW-Authenticate: Bearer`) and checks the roles (403 problem naming them). A route without a
// rule is refused to everyone: a forgotten rule fails closed, and test/api/access.test.ts fails.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { buildProblem, instanceOf, sendProblem } from '../problem.js';

export const ROLES = [
  /** Ingest and channel read APIs only. */
  'channel',
  /** Queues, dead letters, replay, metrics; payload bodies redacted unless `payload-reader`. */
  'operator',
  /** Sees payload bodies where an operator sees them redacted; granted beside `operator`. */
  'payload-reader',
  /** Stewardship tasks (customer matches, mappings). */
  'steward',
  /** The audit log, read-only. */
  'auditor',
  /** Keys and everything else. */
  'admin',
] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** Who a request is: the key it presented. */
export interface Principal {
  keyPrefix: string;
  name: string;
  roles: Role[];
  /** The SLA tier its rate limit is taken from. */
  tier: string;
}

/** A route's rule: public, or the roles allowed (admin is always allowed; list it anyway). */
export type Access = 'public' | readonly Role[];

/** Verifies a bearer token (undefined when the request sent none). */
export type Authenticator = (token: string | undefined) => Promise<Principal | undefined>;

/** Named role sets routes share. */
export const ACCESS = {
  public: 'public',
  ingest: ['channel', 'admin'],
  /** Channel read APIs (availability, prices, order status): channels and the people behind them. */
  channelRead: ['channel', 'operator', 'admin'],
  /** Stewardship tasks and decisions. */
  stewardship: ['steward', 'admin'],
  /** Per-transaction reads for operators (orders, timelines). */
  traces: ['operator', 'admin'],
  operations: ['operator', 'admin'],
  audit: ['auditor', 'admin'],
  admin: ['admin'],
} as const satisfies Record<string, Access>;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call this route; see src/api/auth/roles.ts. */
    access?: Access;
    /** The route takes no request body (so its schema declares none). */
    noBody?: boolean;
    /**
     * A `public` route that authenticates each request by a signature instead of an API key
     * names the header carrying it; the route answers 401 when it is missing or wrong.
     */
    signature?: string;
  }
  interface FastifyRequest {
    /** The authenticated caller; undefined on public routes. */
    principal: Principal | undefined;
  }
}

/** The bearer token of a request: undefined when absent or not `Bearer <token>`. */
export function bearerTokenOf(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  // Long enough for a JWT with generous claims; a header beyond it is not a token we issue.
  const m = /^Bearer[ ]+([\x21-\x7e]{1,8192})\s*$/i.exec(header);
  return m?.[1];
}

/** True when the principal holds one of the roles (admin holds every role). */
export function holds(principal: Principal | undefined, roles: readonly Role[]): boolean {
  if (!principal) return false;
  if (principal.roles.includes('admin')) return true;
  return roles.some((r) => principal.roles.includes(r));
}

/** True when payload bodies may be shown to this caller. */
export function mayReadPayloads(principal: Principal | undefined): boolean {
  return holds(principal, ['payload-reader', 'admin']);
}

function unauthorized(request: FastifyRequest, reply: FastifyReply, detail: string) {
  return sendProblem(
    reply,
    buildProblem(401, 'unauthorized', { detail, instance: instanceOf(request) }),
    { 'www-authenticate': 'Bearer realm="middlemart"' },
  );
}

/**
 * Installs authentication and role checks as the first request hook after trace context. Routes
 * Fastify cannot match (404) need a valid key too, so unknown paths reveal nothing to strangers.
 */
export function installAccessControl(server: FastifyInstance, authenticate: Authenticator): void {
  server.decorateRequest('principal', undefined);
  server.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const access = request.is404 ? undefined : request.routeOptions.config.access;
    if (access === 'public') return;
    const token = bearerTokenOf(request);
    let principal: Principal | undefined;
    try {
      principal = await authenticate(token);
    } catch (error) {
      request.log.warn({ err: error }, 'authentication failed');
      return sendProblem(
        reply,
        buildProblem(503, 'service-unavailable', {
          detail: 'Keys cannot be checked right now; retry shortly.',
          instance: instanceOf(request),
        }),
        { 'retry-after': '1' },
      );
    }
    if (!principal) {
      return unauthorized(
        request,
        reply,
        token === undefined
          ? 'Send an API key: Authorization: Bearer mm_<prefix>_<secret>.'
          : 'The API key is unknown, revoked or malformed.',
      );
    }
    request.principal = principal;
    request.log = request.log.child({ keyPrefix: principal.keyPrefix });
    reply.log = request.log;
    if (request.is404) return;
    if (access === undefined) {
      request.log.error({ route: request.routeOptions.url }, 'route has no access rule');
      return sendProblem(
        reply,
        buildProblem(403, 'forbidden', {
          detail: 'This route declares no access rule, so no key may call it.',
          instance: instanceOf(request),
          extensions: { requiredRoles: [] },
        }),
      );
    }
    if (!holds(principal, access)) {
      return sendProblem(
        reply,
        buildProblem(403, 'forbidden', {
          detail: `This route needs one of the roles ${access.join(', ')}; the key has ${principal.roles.join(', ')}.`,
          instance: instanceOf(request),
          extensions: { requiredRoles: [...access] },
        }),
      );
    }
  });
}
