// Rate limits per API key by SLA tier (@fastify/rate-limit): each key has its own window of one
// second holding `requestsPerSecond` requests; beyond it the answer is a 429 problem with
// `Retry-After`. Requests without a principal (public routes; refused keys never get this far)
// are not counted.
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ProblemError } from './problem.js';

export interface RateTier {
  /** Requests a key of this tier may make per second. */
  requestsPerSecond: number;
}

/** The SLA tiers; a key names one (default `standard`). */
export const DEFAULT_RATE_TIERS: Readonly<Record<string, RateTier>> = {
  standard: { requestsPerSecond: 50 },
  premium: { requestsPerSecond: 500 },
};

/** The tier a key names, else `standard`, else the smallest configured tier. */
export function tierOf(
  tiers: Readonly<Record<string, RateTier>>,
  name: string | undefined,
): RateTier {
  const named = name === undefined ? undefined : tiers[name];
  if (named) return named;
  const standard = tiers.standard;
  if (standard) return standard;
  const all = Object.values(tiers);
  return all.reduce<RateTier>(
    (min, t) => (t.requestsPerSecond < min.requestsPerSecond ? t : min),
    all[0] ?? { requestsPerSecond: 50 },
  );
}

/** Registers the per-key rate limit; call before any route is added. */
export async function installRateLimits(
  server: FastifyInstance,
  tiers: Readonly<Record<string, RateTier>> = DEFAULT_RATE_TIERS,
): Promise<void> {
  await server.register(rateLimit, {
    global: true,
    timeWindow: 1000,
    max: (request: FastifyRequest) => tierOf(tiers, request.principal?.tier).requestsPerSecond,
    keyGenerator: (request: FastifyRequest) => request.principal?.keyPrefix ?? 'anonymous',
    allowList: (request: FastifyRequest) => request.principal === undefined,
    errorResponseBuilder: (_request, context) => {
      const seconds = Math.max(1, Math.ceil(context.ttl / 1000));
      return new ProblemError(429, 'rate-limited', {
        detail: `This key may make ${context.max} requests per second; retry after ${seconds} s.`,
        headers: { 'retry-after': String(seconds) },
        extensions: { limit: context.max },
      });
    },
  });
}
