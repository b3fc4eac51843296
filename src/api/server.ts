// The HTTP server: Fastify with request ids, W3C trace context in and out, a JSON body parser that
// keeps the raw bytes (for request hashes and signatures), problem+json errors, health and
// readiness, the v1 routes, and graceful shutdown.
import { randomUUID } from 'node:crypto';
import Fastify, { LogController } from 'fastify';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
} from 'fastify';
import type { IncomingMessage } from 'node:http';
import { childTraceparent, traceIdOf } from '../observability/trace-context.js';
import { NO_TRACING } from '../observability/tracing.js';
import {
  buildProblem,
  installProblemHandlers,
  instanceOf,
  jsonErrorPosition,
  problemSchema,
  ProblemError,
  sendProblem,
} from './problem.js';
import { ACCESS, installAccessControl } from './auth/roles.js';
import { DEFAULT_RATE_TIERS, installRateLimits } from './limits.js';
import type { RateTier } from './limits.js';
import { installApiReference, installOpenApi } from './openapi.js';
import type { ApiDeps } from './types.js';
import { adminRoutes } from './v1/admin.js';
import { eventsRoutes } from './v1/events.js';
import { opsRoutes } from './v1/ops.js';

export type { ApiDeps, DescribedEvent, HttpMetrics, OpsDeps, RejectedEvent } from './types.js';

export const REQUEST_ID_HEADER = 'x-request-id';
export const TRACEPARENT_HEADER = 'traceparent';
export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;
/** Media types the JSON parser reads; anything else with a body is answered 415. */
export const JSON_MEDIA_TYPES = ['application/json', 'application/cloudevents+json'] as const;

// A caller's request id is reused when it is a short token of visible ASCII; otherwise we make one.
const ACCEPTABLE_REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

export interface ServerOptions {
  /** The process logger (a pino logger from `createLogger`); request logs are its children. */
  logger: FastifyBaseLogger;
  /** Largest accepted request body; default 1 MiB. Larger bodies get a 413 problem. */
  bodyLimitBytes?: number;
  /** Interface to listen on when `port` is given; default 127.0.0.1. */
  host?: string;
  /** When given, the server listens before `buildServer` resolves (0 = an ephemeral port). */
  port?: number;
  /** Further route plugins (other domains' `v1` modules) registered before listening. */
  routes?: ReadonlyArray<FastifyPluginAsync>;
  /** Rate limits per SLA tier; default `DEFAULT_RATE_TIERS` (standard 50/s, premium 500/s). */
  rateTiers?: Readonly<Record<string, RateTier>>;
  /** The version the OpenAPI document states; default 0.0.0. */
  version?: string;
}

/** The request id: the caller's `x-request-id` when acceptable, else a new UUID. */
export function requestIdFor(raw: IncomingMessage): string {
  const header = raw.headers[REQUEST_ID_HEADER];
  if (typeof header === 'string' && ACCEPTABLE_REQUEST_ID.test(header)) return header;
  return randomUUID();
}

// Keys JSON.parse would create as own properties but that poison objects when merged naively.
const SUSPECT_KEYS = /"(?:__proto__|constructor|\\u005f\\u005fproto\\u005f\\u005f)"\s*:/i;

function rejectPoisonedKeys(this: unknown, key: string, value: unknown): unknown {
  if (key === '__proto__') {
    throw new ProblemError(400, 'malformed-json', {
      detail: 'malformed JSON body: the property name "__proto__" is not allowed',
    });
  }
  if (
    key === 'constructor' &&
    value !== null &&
    typeof value === 'object' &&
    Object.hasOwn(value, 'prototype')
  ) {
    throw new ProblemError(400, 'malformed-json', {
      detail: 'malformed JSON body: "constructor.prototype" is not allowed',
    });
  }
  return value;
}

/**
 * The parser's complaint without the excerpt of the body V8 quotes in it (`Unexpected token '}',
 * "{"a":}" is not valid JSON` becomes `Unexpected token '}'`): the caller knows its own body, and
 * the excerpt may carry personal data into logs.
 */
function jsonSyntaxMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const quoted = message.indexOf(', "');
  const cut =
    quoted >= 0 && message.endsWith('is not valid JSON') ? message.slice(0, quoted) : message;
  return cut.replace(/ at position \d+.*$/, '').replace(/ in JSON$/, '');
}

/** Parses a JSON body, answering a 400 problem (with the position, when known) if malformed. */
export function parseJsonBody(bytes: Buffer): unknown {
  const text = bytes.toString('utf8');
  if (text.trim() === '') {
    throw new ProblemError(400, 'malformed-json', {
      detail: 'malformed JSON body: the body is empty but Content-Type is JSON',
    });
  }
  try {
    return SUSPECT_KEYS.test(text) ? JSON.parse(text, rejectPoisonedKeys) : JSON.parse(text);
  } catch (error) {
    if (error instanceof ProblemError) throw error;
    const message = jsonSyntaxMessage(error);
    const position = jsonErrorPosition(error instanceof Error ? error.message : '');
    throw new ProblemError(400, 'malformed-json', {
      detail:
        position === undefined
          ? `malformed JSON body: ${message}`
          : `malformed JSON body at position ${position}: ${message}`,
      ...(position === undefined ? {} : { extensions: { position } }),
    });
  }
}

function registerCore(server: FastifyInstance, deps: ApiDeps): void {
  server.decorateRequest('rawBody', undefined);
  server.decorateRequest('traceparent', '');
  server.decorateRequest('traceId', '');
  server.decorateRequest('hop', undefined);
  server.addSchema(problemSchema);

  // Only JSON bodies are read; every other media type is refused with 415.
  server.removeAllContentTypeParsers();
  server.addContentTypeParser(
    [...JSON_MEDIA_TYPES],
    { parseAs: 'buffer' },
    (request: FastifyRequest, body: Buffer, done: (err: Error | null, body?: unknown) => void) => {
      request.rawBody = body;
      try {
        done(null, parseJsonBody(body));
      } catch (error) {
        done(error as Error, undefined);
      }
    },
  );

  const tracing = deps.tracing ?? NO_TRACING;
  server.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const incoming = request.headers[TRACEPARENT_HEADER];
    const parent = typeof incoming === 'string' ? incoming : undefined;
    if (tracing.enabled) {
      const route = request.routeOptions.url ?? 'unmatched';
      request.hop = tracing.start(`${request.method} ${route}`, 'server', parent, {
        'http.request.method': request.method,
        'http.route': route,
        'url.path': request.url.split('?')[0] ?? '',
      });
      request.traceparent = request.hop.traceparent;
    } else {
      request.traceparent = childTraceparent(parent);
    }
    request.traceId = traceIdOf(request.traceparent) ?? '';
    // Every later line of this request (ours and Fastify's "request completed") names its trace.
    request.log = request.log.child({ traceId: request.traceId });
    reply.log = request.log;
    reply.header(REQUEST_ID_HEADER, request.id);
    reply.header(TRACEPARENT_HEADER, request.traceparent);
  });

  // Once the server is closing, answers close their connection: a keep-alive socket that just
  // finished an in-flight request would otherwise hold `close()` open until the client lets go.
  let closing = false;
  server.addHook('preClose', async () => {
    closing = true;
  });
  server.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close');
  });

  installProblemHandlers(server);
  installAccessControl(server, deps.authenticate);

  if (tracing.enabled) {
    server.addHook('onResponse', async (request, reply) => {
      request.hop?.setAttributes({ 'http.response.status_code': reply.statusCode });
      request.hop?.end(reply.statusCode >= 500 ? `HTTP ${reply.statusCode}` : undefined);
    });
  }

  const metrics = deps.metrics;
  if (metrics) {
    server.addHook('onResponse', async (request, reply) => {
      metrics.observeHttp(
        request.method,
        request.is404 ? 'unmatched' : (request.routeOptions.url ?? 'unmatched'),
        reply.statusCode,
        reply.elapsedTime / 1000,
      );
    });
  }
}

function registerHealth(server: FastifyInstance, deps: ApiDeps): void {
  server.get(
    '/healthz',
    {
      logLevel: 'warn',
      config: { access: ACCESS.public },
      schema: {
        summary: 'Liveness: 200 while the process runs',
        response: {
          200: {
            type: 'object',
            required: ['status'],
            properties: { status: { type: 'string', const: 'ok' } },
          },
        },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  server.get(
    '/readyz',
    {
      logLevel: 'warn',
      config: { access: ACCESS.public },
      schema: {
        summary: 'Readiness: 200 when the store is reachable, else 503',
        response: {
          200: {
            type: 'object',
            required: ['status'],
            properties: { status: { type: 'string', const: 'ready' } },
          },
          503: { $ref: 'middlemart.problem#' },
        },
      },
    },
    async (request, reply) => {
      let ready = false;
      let reason = 'the store is not reachable';
      try {
        ready = (await deps.ready()) === true;
      } catch (error) {
        request.log.warn({ err: error }, 'readiness check failed');
        reason = 'the readiness check failed';
      }
      if (ready) return { status: 'ready' as const };
      return sendProblem(
        reply,
        buildProblem(503, 'not-ready', { detail: reason, instance: instanceOf(request) }),
        { 'retry-after': '1' },
      );
    },
  );
}

/** A registered route as the access and schema checks see it. */
export interface RegisteredRoute {
  method: string;
  url: string;
  config: FastifyContextConfigOf;
  schema: Record<string, unknown> | undefined;
}
type FastifyContextConfigOf = { access?: unknown; noBody?: boolean } & Record<string, unknown>;

const routeTables = new WeakMap<FastifyInstance, () => RegisteredRoute[]>();

/** Every route registered on a server built by `buildServer` (HEAD twins included). */
export function registeredRoutes(server: FastifyInstance): readonly RegisteredRoute[] {
  return routeTables.get(server)?.() ?? [];
}

/** `GET /metrics`: Prometheus exposition (roles operator and admin; see docs/api.md). */
function registerMetrics(server: FastifyInstance, metrics: NonNullable<ApiDeps['metrics']>): void {
  server.get(
    '/metrics',
    {
      logLevel: 'warn',
      config: { access: ACCESS.operations },
      schema: {
        summary: 'Prometheus metrics (text exposition format)',
        tags: ['operations'],
        response: {
          200: { type: 'string', description: 'Prometheus text format 0.0.4' },
          401: { $ref: 'middlemart.problem#' },
          403: { $ref: 'middlemart.problem#' },
          429: { $ref: 'middlemart.problem#' },
        },
      },
    },
    async (_request, reply) => {
      const { contentType, body } = await metrics.render();
      return reply
        .type(contentType)
        .serializer((payload: unknown) => String(payload))
        .send(body);
    },
  );
}

/**
 * Builds the HTTP server with its core (request ids, trace context, JSON parsing, problem
 * handlers, `/healthz`, `/readyz`) and the v1 routes. It listens only when `opts.port` is given;
 * otherwise the caller may add routes and use `inject` or `listen` itself.
 */
export async function buildServer(deps: ApiDeps, opts: ServerOptions): Promise<FastifyInstance> {
  const server = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: opts.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES,
    requestIdHeader: false,
    genReqId: requestIdFor,
    logController: new LogController({ requestIdLogLabel: 'requestId' }),
    // Idle keep-alive sockets are closed on shutdown; in-flight requests are let finish.
    forceCloseConnections: 'idle',
  });

  // Route options are kept by reference: later onRoute hooks (the API reference's) still edit them.
  const routes: Array<{
    method: string;
    options: { url: string; config?: unknown; schema?: unknown };
  }> = [];
  routeTables.set(server, () =>
    routes.map(({ method, options }) => ({
      method,
      url: options.url,
      config: { ...(options.config as object | undefined) } as FastifyContextConfigOf,
      schema: options.schema as Record<string, unknown> | undefined,
    })),
  );
  server.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) routes.push({ method: String(method), options: route });
  });

  registerCore(server, deps);
  await installRateLimits(server, opts.rateTiers ?? DEFAULT_RATE_TIERS);
  await installOpenApi(server, opts.version ?? '0.0.0');
  registerHealth(server, deps);
  await server.register(eventsRoutes(deps), { prefix: '/v1' });
  if (deps.ops) await server.register(opsRoutes(deps.ops, deps.keyStore), { prefix: '/v1' });
  if (deps.keyStore) {
    const tiers = Object.keys(opts.rateTiers ?? DEFAULT_RATE_TIERS);
    await server.register(adminRoutes(deps.keyStore, tiers), { prefix: '/v1' });
  }
  if (deps.metrics) registerMetrics(server, deps.metrics);
  for (const routes of opts.routes ?? []) await server.register(routes);
  await installApiReference(server);

  if (opts.port !== undefined) {
    await server.listen({ host: opts.host ?? '127.0.0.1', port: opts.port });
  }
  return server;
}

// --- graceful shutdown -------------------------------------------------------------------------

export interface ShutdownOptions {
  /** Runs after the server has stopped and in-flight requests finished (engine stop, store close). */
  onClose: () => Promise<void>;
  signals?: ReadonlyArray<NodeJS.Signals>;
  logger: FastifyBaseLogger;
  /** Replaceable for tests; default `process.exit`. */
  exit?: (code: number) => void;
  /** In-flight requests get this long to finish; default `DEFAULT_DRAIN_TIMEOUT_MS`. */
  drainTimeoutMs?: number;
  /** Where signals are listened for; default `process`. */
  signalSource?: Pick<NodeJS.Process, 'on' | 'removeListener'>;
}

/** How long in-flight requests may take to finish on shutdown before their sockets are cut. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 25_000;

/**
 * Stops the server (no new connections; in-flight requests finish) and then runs `onClose`.
 * Requests still running after `drainTimeoutMs` have their connections closed. Resolves when
 * both steps are done; rejects with the first failure (after still running `onClose`).
 */
export async function shutdownServer(
  server: FastifyInstance,
  onClose: () => Promise<void>,
  drainTimeoutMs = DEFAULT_DRAIN_TIMEOUT_MS,
): Promise<void> {
  let closeError: unknown;
  const cut = setTimeout(() => {
    server.log.warn({ drainTimeoutMs }, 'in-flight requests did not finish: closing connections');
    server.server.closeAllConnections();
  }, drainTimeoutMs);
  try {
    await server.close();
  } catch (error) {
    closeError = error;
  } finally {
    clearTimeout(cut);
  }
  await onClose();
  if (closeError !== undefined) throw closeError;
}

export interface ShutdownHandle {
  /** Runs the shutdown as a signal would (without exiting); the same promise on every call. */
  shutdown: (reason: string) => Promise<void>;
  /** Removes the signal listeners. */
  uninstall: () => void;
}

/**
 * On the first of `signals` (default SIGTERM, SIGINT): stop accepting, let in-flight requests
 * finish, run `onClose`, then exit 0 (1 if shutting down failed). A second signal while shutting
 * down exits 1 at once.
 */
export function installShutdown(server: FastifyInstance, opts: ShutdownOptions): ShutdownHandle {
  const signals = opts.signals ?? ['SIGTERM', 'SIGINT'];
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const source = opts.signalSource ?? process;
  const log = opts.logger;
  let running: Promise<void> | undefined;

  const shutdown = (reason: string): Promise<void> => {
    if (running) return running;
    log.info({ reason }, 'shutting down: no new requests, finishing in-flight ones');
    running = shutdownServer(server, opts.onClose, opts.drainTimeoutMs).then(
      () => log.info('shutdown complete'),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        throw error;
      },
    );
    return running;
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    if (running) {
      log.warn({ signal }, 'second signal while shutting down: exiting now');
      exit(1);
      return;
    }
    shutdown(signal).then(
      () => exit(0),
      () => exit(1),
    );
  };

  // Listeners stay installed after the first signal, so that a second one forces the exit.
  const listeners = new Map<NodeJS.Signals, () => void>();
  for (const signal of signals) {
    const listener = (): void => onSignal(signal);
    source.on(signal, listener);
    listeners.set(signal, listener);
  }

  return {
    shutdown,
    uninstall: () => {
      for (const [signal, listener] of listeners) source.removeListener(signal, listener);
      listeners.clear();
    },
  };
}
