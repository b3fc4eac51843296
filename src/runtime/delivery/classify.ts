// What an HTTP-like status means for a delivery.

/** Client errors that are about timing, not about the message: worth sending again. */
export const RETRYABLE_CLIENT_STATUSES: ReadonlySet<number> = new Set([408, 425, 429]);

export type StatusClass = 'success' | 'retryable' | 'permanent';

/**
 * 2xx → success; 408, 425, 429 and 5xx → retryable; every other status (other 4xx, and
 * 1xx/3xx, which a delivery never expects because redirects are not followed) → permanent.
 */
export function classifyStatus(status: number): StatusClass {
  if (!Number.isInteger(status)) return 'permanent';
  if (status >= 200 && status <= 299) return 'success';
  if (status >= 500 && status <= 599) return 'retryable';
  if (RETRYABLE_CLIENT_STATUSES.has(status)) return 'retryable';
  return 'permanent';
}

/**
 * Whether a status counts against the destination's health (feeds the circuit breaker):
 * 5xx and 408 do. 429 and 425 are back-pressure / protocol timing and other 4xx are the message's
 * fault, so they do not.
 */
export function statusIsDestinationFailure(status: number): boolean {
  return (status >= 500 && status <= 599) || status === 408;
}

/** Whether a status asks the caller to send less (shrinks the adaptive concurrency limit). */
export function statusIsOverload(status: number): boolean {
  return status === 429 || status === 503;
}
