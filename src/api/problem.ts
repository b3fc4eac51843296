// RFC 9457 problem details: every error this API answers is `application/problem+json` with a
// machine-readable `type`, a human `title`, the `status`, a `detail` saying what to fix, the
// `instance` (the request id) and, for validation problems, every failing field path.
import type {
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  FastifySchemaValidationError,
} from 'fastify';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
export const PROBLEM_TYPE_BASE = 'https://middlemart.dev/problems/';

/** The problem types this API answers with, and their titles. */
export const PROBLEM_TYPES = {
  'validation-error': 'Request validation failed',
  'malformed-json': 'Malformed JSON body',
  'body-too-large': 'Request body too large',
  'unsupported-media-type': 'Unsupported media type',
  'bad-request': 'Bad request',
  'not-found': 'Not found',
  'invalid-idempotency-key': 'Invalid Idempotency-Key header',
  'idempotency-key-reused': 'Idempotency-Key reused with a different request',
  backpressure: 'Too many requests: back-pressure',
  unauthorized: 'Authentication required',
  forbidden: 'Forbidden: role not allowed',
  'rate-limited': 'Too many requests: rate limit',
  'already-replayed': 'Dead letter already replayed',
  conflict: 'Conflict: the resource is not in a state that allows this',
  'insufficient-stock': 'Not enough stock available',
  'not-ready': 'Service not ready',
  'service-unavailable': 'Service unavailable',
  'internal-error': 'Internal server error',
} as const;
export type ProblemSlug = keyof typeof PROBLEM_TYPES;

export interface FieldError {
  /** Where the failing value is, e.g. `data.lines[0].quantity` (body fields need no prefix). */
  path: string;
  message: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

/** The URI of a problem type. */
export function problemType(slug: ProblemSlug): string {
  return PROBLEM_TYPE_BASE + slug;
}

/** At most this many field errors are listed (the rest are counted), to bound the answer's size. */
export const MAX_FIELD_ERRORS = 100;

export interface ProblemInit {
  detail?: string;
  errors?: FieldError[];
  /** Response headers to send with the problem (e.g. `retry-after`). */
  headers?: Record<string, string>;
  /** Further members of the problem object (RFC 9457 extensions). */
  extensions?: Record<string, unknown>;
}

/** An error a route throws to answer with a problem. */
export class ProblemError extends Error {
  readonly slug: ProblemSlug;
  readonly status: number;
  readonly detail: string | undefined;
  readonly errors: FieldError[] | undefined;
  readonly headers: Record<string, string>;
  readonly extensions: Record<string, unknown>;

  constructor(status: number, slug: ProblemSlug, init: ProblemInit = {}) {
    super(init.detail ?? PROBLEM_TYPES[slug]);
    this.name = 'ProblemError';
    this.status = status;
    this.slug = slug;
    this.detail = init.detail;
    this.errors = init.errors;
    this.headers = init.headers ?? {};
    this.extensions = init.extensions ?? {};
  }

  /** The problem object, with `instance` set to the request it answers. */
  toProblem(instance?: string): Problem {
    return buildProblem(this.status, this.slug, {
      detail: this.detail,
      errors: this.errors,
      instance,
      extensions: this.extensions,
    });
  }
}

export function buildProblem(
  status: number,
  slug: ProblemSlug,
  init: {
    detail?: string | undefined;
    errors?: FieldError[] | undefined;
    instance?: string | undefined;
    extensions?: Record<string, unknown>;
  } = {},
): Problem {
  const problem: Problem = {
    ...init.extensions,
    type: problemType(slug),
    title: PROBLEM_TYPES[slug],
    status,
  };
  if (init.detail !== undefined) problem.detail = init.detail;
  if (init.instance !== undefined) problem.instance = init.instance;
  if (init.errors !== undefined) {
    problem.errors = init.errors.slice(0, MAX_FIELD_ERRORS);
    if (init.errors.length > MAX_FIELD_ERRORS) {
      problem.errorsOmitted = init.errors.length - MAX_FIELD_ERRORS;
    }
  }
  return problem;
}

/** The `instance` member for a request: its request id as a URN. */
export function instanceOf(request: FastifyRequest): string {
  return `urn:middlemart:request:${request.id}`;
}

/** Sends a problem answer. */
export function sendProblem(
  reply: FastifyReply,
  problem: Problem,
  headers: Record<string, string> = {},
): FastifyReply {
  for (const [name, value] of Object.entries(headers)) reply.header(name, value);
  return reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send(problem);
}

// --- field paths -------------------------------------------------------------------------------

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Joins path segments the way a JavaScript reader writes them: `data.lines[0].quantity`. */
export function formatFieldPath(segments: ReadonlyArray<string | number>): string {
  let out = '';
  for (const segment of segments) {
    if (typeof segment === 'number' || /^(0|[1-9][0-9]*)$/.test(segment)) {
      out += `[${segment}]`;
    } else if (IDENTIFIER.test(segment)) {
      out += out === '' ? segment : `.${segment}`;
    } else {
      out += `[${JSON.stringify(segment)}]`;
    }
  }
  return out;
}

/** Converts a JSON Pointer (`/data/lines/0/quantity`) to a field path. */
export function pointerToSegments(pointer: string): string[] {
  if (pointer === '' || pointer === '/') return [];
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Maps Ajv errors (as Fastify reports them) to field errors. Body paths carry no prefix. */
export function fieldErrorsFromValidation(
  validation: ReadonlyArray<FastifySchemaValidationError>,
  context: string | undefined,
): FieldError[] {
  return validation.map((issue) => {
    const segments: string[] = [];
    if (context && context !== 'body') segments.push(context);
    segments.push(...pointerToSegments(issue.instancePath));
    const params = (issue.params ?? {}) as Record<string, unknown>;
    let message = issue.message ?? 'is invalid';
    if (issue.keyword === 'required' && typeof params.missingProperty === 'string') {
      segments.push(params.missingProperty);
      message = 'is required';
    } else if (
      issue.keyword === 'additionalProperties' &&
      typeof params.additionalProperty === 'string'
    ) {
      segments.push(params.additionalProperty);
      message = 'is not allowed';
    }
    const path = formatFieldPath(segments);
    return { path: path === '' ? (context ?? 'body') : path, message };
  });
}

// --- the error handler -------------------------------------------------------------------------

/** Extracts the position of a JSON syntax error from the parser's message, when it names one. */
export function jsonErrorPosition(message: string): number | undefined {
  const m = /position (\d+)/.exec(message);
  return m ? Number(m[1]) : undefined;
}

/** Turns any error thrown while handling a request into the problem answered for it. */
export function problemFromError(
  error: unknown,
  request: FastifyRequest,
): { problem: Problem; headers: Record<string, string>; unexpected: boolean } {
  const instance = instanceOf(request);
  if (error instanceof ProblemError) {
    return { problem: error.toProblem(instance), headers: error.headers, unexpected: false };
  }
  const err = (error ?? {}) as Partial<FastifyError> & { validationContext?: string };
  if (Array.isArray(err.validation)) {
    return {
      problem: buildProblem(400, 'validation-error', {
        detail: `The request ${err.validationContext ?? 'body'} does not match the schema.`,
        errors: fieldErrorsFromValidation(err.validation, err.validationContext),
        instance,
      }),
      headers: {},
      unexpected: false,
    };
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        problem: buildProblem(413, 'body-too-large', {
          detail: `The request body exceeds the limit of ${request.routeOptions.bodyLimit ?? 'the server'} bytes.`,
          instance,
        }),
        headers: {},
        unexpected: false,
      };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        problem: buildProblem(415, 'unsupported-media-type', {
          detail: `Content-Type ${JSON.stringify(request.headers['content-type'] ?? '')} is not accepted; send application/json.`,
          instance,
        }),
        headers: { accept: 'application/json, application/cloudevents+json' },
        unexpected: false,
      };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return {
        problem: buildProblem(400, 'malformed-json', {
          detail: 'malformed JSON body: the body is empty but Content-Type is JSON',
          instance,
        }),
        headers: {},
        unexpected: false,
      };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return {
        problem: buildProblem(400, 'malformed-json', { detail: 'malformed JSON body', instance }),
        headers: {},
        unexpected: false,
      };
    default:
      break;
  }
  const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
  if (status >= 400 && status < 500) {
    // Fastify's own client errors (bad URL, bad Content-Length, …): their message is about the
    // request, not about our internals.
    return {
      problem: buildProblem(status, status === 404 ? 'not-found' : 'bad-request', {
        detail: typeof err.message === 'string' ? err.message : undefined,
        instance,
      }),
      headers: {},
      unexpected: false,
    };
  }
  if (status === 503) {
    return {
      problem: buildProblem(503, 'service-unavailable', {
        detail: 'The service is shutting down or overloaded; retry shortly.',
        instance,
      }),
      headers: { 'retry-after': '1' },
      unexpected: false,
    };
  }
  return {
    problem: buildProblem(500, 'internal-error', {
      detail: `An unexpected error occurred; quote request id ${request.id} when reporting it.`,
      instance,
    }),
    headers: {},
    unexpected: true,
  };
}

/**
 * Installs the error and not-found handlers on a Fastify instance: every error becomes a problem,
 * a client's mistake is never a 500, and an unexpected error is logged with its request id but
 * its message and stack are not sent.
 */
export function installProblemHandlers(server: FastifyInstance): void {
  server.setErrorHandler((error, request, reply) => {
    const { problem, headers, unexpected } = problemFromError(error, request);
    if (unexpected) {
      request.log.error({ err: error, requestId: request.id }, 'unexpected error');
    } else if (problem.status >= 500) {
      request.log.warn({ err: error, status: problem.status }, problem.title);
    } else {
      request.log.info({ status: problem.status, problemType: problem.type }, problem.title);
    }
    return sendProblem(reply, problem, headers);
  });

  server.setNotFoundHandler((request, reply) =>
    sendProblem(
      reply,
      buildProblem(404, 'not-found', {
        detail: `No route ${request.method} ${request.url.split('?')[0] ?? ''}.`,
        instance: instanceOf(request),
      }),
    ),
  );
}

/** JSON Schema of a problem, for route response schemas (extensions pass through). */
export const problemSchema = {
  $id: 'middlemart.problem',
  type: 'object',
  description: 'RFC 9457 problem details',
  required: ['type', 'title', 'status'],
  properties: {
    type: { type: 'string', format: 'uri' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    instance: { type: 'string' },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        required: ['path', 'message'],
        properties: { path: { type: 'string' }, message: { type: 'string' } },
      },
    },
  },
  additionalProperties: true,
} as const;
