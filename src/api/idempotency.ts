// Idempotency-Key handling shared by every route that accepts work (Stripe's semantics): the same
// key with the same request gets the same answer; the same key with another request gets 409.
import { hash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { traceIdOf } from '../observability/trace-context.js';
import type { AcceptResult } from '../runtime/types.js';
import type {} from './types.js';
import { formatFieldPath, ProblemError } from './problem.js';

export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
/** Set to `true` on an answer replayed for a duplicate request. */
export const IDEMPOTENT_REPLAYED_HEADER = 'idempotent-replayed';
export const IDEMPOTENCY_KEY_MAX_LENGTH = 255;

// Printable ASCII: space (0x20) to tilde (0x7e).
const PRINTABLE_ASCII = /^[\x20-\x7e]+$/;

/** True when `key` is 1–255 printable ASCII characters. */
export function isValidIdempotencyKey(key: string): boolean {
  return key.length >= 1 && key.length <= IDEMPOTENCY_KEY_MAX_LENGTH && PRINTABLE_ASCII.test(key);
}

/**
 * The request's Idempotency-Key, or undefined when the header is absent. Throws a 400 problem
 * naming the header when it is present but empty, repeated, too long or not printable ASCII.
 */
export function readIdempotencyKey(request: FastifyRequest): string | undefined {
  const raw = request.headers[IDEMPOTENCY_KEY_HEADER];
  if (raw === undefined) return undefined;
  if (Array.isArray(raw)) {
    throw invalidKey('the Idempotency-Key header must be sent once');
  }
  if (!isValidIdempotencyKey(raw)) {
    throw invalidKey(
      `the Idempotency-Key header must be 1 to ${IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters`,
    );
  }
  return raw;
}

function invalidKey(detail: string): ProblemError {
  return new ProblemError(400, 'invalid-idempotency-key', {
    detail,
    errors: [{ path: formatFieldPath(['headers', IDEMPOTENCY_KEY_HEADER]), message: detail }],
  });
}

/**
 * The request hash compared under one Idempotency-Key: SHA-256 (hex) of the raw body bytes as
 * received. Raw bytes rather than a canonical JSON form, because (1) an idempotent retry re-sends
 * the same request, so its bytes are equal; (2) the hash is then independent of our JSON parser
 * and of schema coercion, which may change the parsed value before a handler sees it; (3) it costs
 * one pass over bytes already in memory. A client that re-serialises the body differently under
 * the same key gets a 409 that says so.
 */
export function sha256Hex(bytes: Buffer | string): string {
  // The one-shot form: no Hash object per request (the same digest as createHash's).
  return hash('sha256', bytes, 'hex');
}

/** The request hash of a request whose body was read by the server's JSON parser. */
export function requestHashOf(request: FastifyRequest): string {
  return sha256Hex(request.rawBody ?? Buffer.alloc(0));
}

/** The answer to an accepted (or replayed) request. */
export interface AcceptedAnswer {
  /** The message id Middlemart gave the request. */
  id: string;
  traceId: string;
  acceptedAt: string;
}

/**
 * The answer every accepting route gives for an engine accept: 202 (the original answer again for
 * a duplicate, with `Idempotent-Replayed: true`), or the 409 (key reused with another body) or
 * 429 (back-pressure, with `Retry-After`) problem.
 */
export function answerAccepted(
  request: FastifyRequest,
  reply: FastifyReply,
  result: AcceptResult,
  idempotencyKey: string,
): AcceptedAnswer {
  switch (result.outcome) {
    case 'accepted':
    case 'duplicate':
      if (result.outcome === 'duplicate') reply.header(IDEMPOTENT_REPLAYED_HEADER, 'true');
      reply.code(202);
      return {
        id: result.messageId,
        traceId: traceIdOf(result.traceparent) ?? request.traceId,
        acceptedAt: result.acceptedAt,
      };
    case 'conflict':
      throw new ProblemError(409, 'idempotency-key-reused', {
        detail: `Idempotency-Key ${JSON.stringify(idempotencyKey)} was already used with a different request body; use a new key for a different request.`,
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
