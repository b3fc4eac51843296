// Retry delays: exponential backoff with full jitter, and the server's own Retry-After.

import type { RetryPolicy } from './types.js';

/** Exponents above this would overflow to Infinity (and 0 × Infinity is NaN). */
const MAX_EXPONENT = 52;

/**
 * Full-jitter exponential backoff (the AWS Architecture Blog's "full jitter"):
 * `random() * min(maxDelayMs, baseDelayMs * 2^(attempt - 1))`, in whole milliseconds.
 * `attempt` is the attempt that just failed, 1 for the first.
 */
export function fullJitterBackoffMs(
  attempt: number,
  retry: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>,
  random: () => number,
): number {
  const exponent = Math.min(MAX_EXPONENT, Math.max(0, Math.floor(attempt) - 1));
  const ceiling = Math.max(0, Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** exponent));
  const r = random();
  const unit = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0;
  return Math.floor(unit * ceiling);
}

const DELTA_SECONDS = /^\s*(\d+(?:\.\d+)?)\s*$/;

/**
 * Milliseconds to wait as told by a Retry-After value (RFC 9110 §10.2.3): either delay-seconds or
 * an HTTP-date. A date in the past means 0. Returns undefined when the value is missing or
 * unreadable, so the caller falls back to its own backoff.
 */
export function parseRetryAfterMs(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const seconds = DELTA_SECONDS.exec(value);
  if (seconds?.[1] !== undefined) return Math.ceil(Number(seconds[1]) * 1000);
  const trimmed = value.trim();
  // Date.parse accepts almost anything; an HTTP-date always names a weekday or month in letters.
  if (!/[a-z]/i.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, Math.ceil(at - nowMs));
}

/** The delay before the next attempt: Retry-After when readable, capped at maxDelayMs, else backoff. */
export function retryDelayMs(
  attempt: number,
  retry: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>,
  retryAfter: string | undefined,
  nowMs: number,
  random: () => number,
): number {
  const told = parseRetryAfterMs(retryAfter, nowMs);
  if (told !== undefined) return Math.min(told, Math.max(0, retry.maxDelayMs));
  return fullJitterBackoffMs(attempt, retry, random);
}
