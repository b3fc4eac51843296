// The outbound delivery gate: makes ONE attempt of a delivery under its destination's policies and
// classifies the outcome. The durable queue persists deliveries, schedules the retries this gate
// asks for (by `afterMs`) and dead-letters permanent failures.
//
// Per attempt, in this order:
//   1. circuit breaker   open → `circuit-open` (not sent); half-open admits one probe at a time
//   2. rate limit        token bucket; wait for a token, unless the wait exceeds the bound
//   3. concurrency       bulkhead with an adaptive (AIMD) limit ≤ max; bounded FIFO wait
//   4. send              with an AbortSignal that fires after `timeoutMs`
//   5. classify          2xx delivered; 408/425/429/5xx/transport/timeout retry; other 4xx permanent
//
// Everything that depends on time reads the injected `now` and `schedule`, and jitter reads the
// injected `random`, so the policies can be tested deterministically.

import { STATUS_CODES } from 'node:http';
import { retryDelayMs } from './backoff.js';
import { CircuitBreaker, type BreakerSignal, type BreakerTicket } from './circuit-breaker.js';
import { classifyStatus, statusIsDestinationFailure, statusIsOverload } from './classify.js';
import { ConcurrencyLimiter, type LimitSignal, type Schedule } from './concurrency.js';
import type { GateEvent } from './events.js';
import { TokenBucket } from './token-bucket.js';
import type {
  DeliveryAttempt,
  DeliveryOutcome,
  DeliveryResponse,
  DestinationPolicy,
  DestinationStatus,
} from './types.js';

export type { Schedule } from './concurrency.js';

/** Callers allowed to wait for a concurrency slot per destination, unless configured. */
export const DEFAULT_MAX_WAITING = 1000;

export interface DeliveryGateOptions {
  /** Milliseconds since the epoch (wall clock: Retry-After dates are compared with it). */
  now?: () => number;
  /** Uniform in [0, 1), for backoff jitter. */
  random?: () => number;
  /** Observability hook; exceptions it throws are swallowed. */
  onEvent?: (event: GateEvent) => void;
  /** Timer source (timeouts, rate waits, bulkhead waits). Defaults to setTimeout. */
  schedule?: Schedule;
  /** Callers that may wait for a concurrency slot per destination; more are deferred. */
  maxWaitingPerDestination?: number;
  /**
   * Longest wait for a rate token, and separately for a concurrency slot, before the attempt is
   * deferred (`retry` with `notSent`). Defaults to the destination's `timeoutMs`.
   */
  maxAdmissionWaitMs?: number;
}

export interface DeliveryGate {
  /** One attempt of one delivery. Rejects only with UnknownDestinationError. */
  attempt(attempt: DeliveryAttempt): Promise<DeliveryOutcome>;
  status(destinationId: string): DestinationStatus;
  statuses(): DestinationStatus[];
  /** The queue reports how many deliveries to this destination are pending. */
  setBacklog(destinationId: string, pending: number): void;
  /**
   * Replace the policy set. Destinations that stay keep their circuit, in-flight calls, tokens and
   * adaptive limit (clamped to the new max); new ones start fresh; removed ones are forgotten
   * (their in-flight calls finish normally).
   */
  updatePolicies(policies: DestinationPolicy[]): void;
}

/** The gate has no policy for this destination: a configuration error, never guessed around. */
export class UnknownDestinationError extends Error {
  readonly destination: string;
  constructor(destination: string) {
    super(`no delivery policy for destination "${destination}"`);
    this.name = 'UnknownDestinationError';
    this.destination = destination;
  }
}

export class InvalidDestinationPolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidDestinationPolicyError';
  }
}

interface Destination {
  policy: DestinationPolicy;
  breaker: CircuitBreaker;
  limiter: ConcurrencyLimiter;
  bucket: TokenBucket | undefined;
  backlog: number;
}

type SendResult =
  | { kind: 'response'; response: DeliveryResponse }
  | { kind: 'error'; error: unknown }
  | { kind: 'timeout' };

interface Failure {
  error: string;
  status?: number;
  latencyMs: number;
  retryAfter?: string;
}

const defaultSchedule: Schedule = (fn, ms) => {
  const timer = setTimeout(fn, Math.max(0, ms));
  return () => clearTimeout(timer);
};

export function createDeliveryGate(
  policies: DestinationPolicy[],
  opts: DeliveryGateOptions = {},
): DeliveryGate {
  const now = opts.now ?? Date.now;
  const random = opts.random ?? Math.random;
  const schedule = opts.schedule ?? defaultSchedule;
  const maxWaiting = opts.maxWaitingPerDestination ?? DEFAULT_MAX_WAITING;
  const destinations = new Map<string, Destination>();

  const emit = (event: GateEvent): void => {
    if (!opts.onEvent) return;
    try {
      opts.onEvent(event);
    } catch {
      // An observer must never break delivery.
    }
  };

  const sleep = (ms: number): Promise<void> =>
    new Promise<void>((resolve) => {
      schedule(resolve, ms);
    });

  const create = (policy: DestinationPolicy): Destination => {
    const id = policy.id;
    return {
      policy,
      breaker: new CircuitBreaker(policy.circuitBreaker, now, (from, to) =>
        emit({ type: 'circuit', destination: id, from, to }),
      ),
      limiter: new ConcurrencyLimiter(policy.concurrency, (from, to, reason) =>
        emit({ type: 'concurrency-limit', destination: id, from, to, reason }),
      ),
      bucket: policy.rate ? new TokenBucket(policy.rate, now) : undefined,
      backlog: 0,
    };
  };

  const load = (next: DestinationPolicy[]): void => {
    validatePolicies(next);
    const seen = new Set<string>();
    for (const policy of next) {
      seen.add(policy.id);
      const existing = destinations.get(policy.id);
      if (!existing) {
        destinations.set(policy.id, create(policy));
        continue;
      }
      existing.policy = policy;
      existing.breaker.setPolicy(policy.circuitBreaker);
      existing.limiter.setPolicy(policy.concurrency);
      if (!policy.rate) existing.bucket = undefined;
      else if (existing.bucket) existing.bucket.setRate(policy.rate);
      else existing.bucket = new TokenBucket(policy.rate, now);
    }
    for (const id of [...destinations.keys()]) if (!seen.has(id)) destinations.delete(id);
  };

  const lookup = (id: string): Destination => {
    const d = destinations.get(id);
    if (!d) throw new UnknownDestinationError(id);
    return d;
  };

  const statusOf = (d: Destination): DestinationStatus => {
    const circuit = d.breaker.state;
    const { limiter, policy } = d;
    const overBacklog =
      policy.backlogThreshold !== undefined && d.backlog > policy.backlogThreshold;
    // "Squeezed well below max": more than one halving below it.
    const squeezed = policy.concurrency.adaptive && limiter.limit * 2 < limiter.max;
    return {
      id: policy.id,
      circuit,
      inFlight: limiter.inFlight,
      concurrencyLimit: limiter.limit,
      // Half-open is not congested: deferrable work must be claimable, or a destination that only
      // receives deferrable work would never send the probe that closes its circuit.
      congested: overBacklog || circuit === 'open' || squeezed,
    };
  };

  /** A local limit deferred the attempt before anything was sent. */
  const deferred = (a: DeliveryAttempt, afterMs: number, error: string): DeliveryOutcome => {
    emit({ ...ref(a), type: 'retry', afterMs, error, latencyMs: 0, notSent: true });
    return { kind: 'retry', afterMs, error, latencyMs: 0, notSent: true };
  };

  const failed = (d: Destination, a: DeliveryAttempt, f: Failure): DeliveryOutcome => {
    const { retry } = d.policy;
    const status = f.status === undefined ? {} : { status: f.status };
    if (a.attempt >= retry.maxAttempts) {
      const error = `attempts exhausted (${a.attempt} of ${retry.maxAttempts}): ${f.error}`;
      emit({ ...ref(a), type: 'permanent', error, ...status, latencyMs: f.latencyMs });
      return { kind: 'permanent', error, ...status, latencyMs: f.latencyMs };
    }
    const afterMs = retryDelayMs(a.attempt, retry, f.retryAfter, now(), random);
    emit({
      ...ref(a),
      type: 'retry',
      afterMs,
      error: f.error,
      ...status,
      latencyMs: f.latencyMs,
      notSent: false,
    });
    return { kind: 'retry', afterMs, error: f.error, ...status, latencyMs: f.latencyMs };
  };

  /**
   * Calls the sender under the timeout. On an answer in time the caller frees the slot (after
   * feeding the adaptive limit); on a timeout, the slot is freed here once the sender lets go.
   */
  const send = (
    d: Destination,
    a: DeliveryAttempt,
    releaseSlot: () => void,
  ): Promise<SendResult> => {
    const timeoutMs = d.policy.timeoutMs;
    const controller = new AbortController();
    return new Promise<SendResult>((resolve) => {
      let timedOut = false;
      let answered = false;
      let cancelGrace = (): void => {};
      const cancelTimeout = schedule(() => {
        if (answered) return;
        timedOut = true;
        controller.abort(
          new DOMException(`delivery timed out after ${timeoutMs} ms`, 'TimeoutError'),
        );
        resolve({ kind: 'timeout' });
        // The slot stays taken until the sender lets go, so a sender slow to honour the abort
        // never lets more than the limit run at once; bounded by one more timeout.
        cancelGrace = schedule(releaseSlot, timeoutMs);
      }, timeoutMs);
      const settle = (result: SendResult): void => {
        if (timedOut) {
          cancelGrace();
          releaseSlot();
          return;
        }
        answered = true;
        cancelTimeout();
        resolve(result);
      };
      let sending: Promise<DeliveryResponse>;
      try {
        sending = Promise.resolve(
          a.send({ signal: controller.signal, idempotencyKey: a.idempotencyKey }),
        );
      } catch (error) {
        sending = Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
      sending.then(
        (response) => settle({ kind: 'response', response }),
        (error: unknown) => settle({ kind: 'error', error }),
      );
    });
  };

  const attempt = async (a: DeliveryAttempt): Promise<DeliveryOutcome> => {
    const d = lookup(a.destination);
    const { policy } = d;
    const maxWaitMs = opts.maxAdmissionWaitMs ?? policy.timeoutMs;

    // 1. Circuit breaker.
    let admission = d.breaker.admit();
    if (!admission.admitted) {
      emit({ ...ref(a), type: 'short-circuited', afterMs: admission.afterMs });
      return { kind: 'circuit-open', afterMs: admission.afterMs };
    }
    let ticket: BreakerTicket = admission;

    // 2. Rate limit.
    const bucket = d.bucket;
    if (bucket) {
      const reservation = bucket.reserve(maxWaitMs);
      if (!reservation.reserved) {
        d.breaker.release(ticket);
        emit({ ...ref(a), type: 'rate-limited', waitMs: reservation.waitMs, deferred: true });
        return deferred(
          a,
          reservation.waitMs,
          `rate limited: next token in ${reservation.waitMs} ms`,
        );
      }
      if (reservation.waitMs > 0) {
        emit({ ...ref(a), type: 'rate-limited', waitMs: reservation.waitMs, deferred: false });
        await sleep(reservation.waitMs);
      }
    }

    // 3. Concurrency limit.
    const acquired = await d.limiter.acquire(maxWaiting, maxWaitMs, schedule);
    if (typeof acquired === 'string') {
      bucket?.refund();
      d.breaker.release(ticket);
      emit({ ...ref(a), type: 'bulkhead-rejected', reason: acquired, waiting: d.limiter.waiting });
      const afterMs = Math.ceil(Math.max(1, policy.retry.baseDelayMs) * (0.5 + random()));
      const why = acquired === 'queue-full' ? 'wait queue full' : `no slot within ${maxWaitMs} ms`;
      return deferred(a, afterMs, `concurrency limit: ${why}`);
    }
    const slot = acquired;

    // The circuit may have opened while this call waited: ask again rather than pile on.
    if (!ticket.probe && ticket.generation !== d.breaker.generation) {
      admission = d.breaker.admit();
      if (!admission.admitted) {
        d.limiter.release(slot);
        bucket?.refund();
        emit({ ...ref(a), type: 'short-circuited', afterMs: admission.afterMs });
        return { kind: 'circuit-open', afterMs: admission.afterMs };
      }
      ticket = admission;
    }

    // 4. Send, under the timeout.
    emit({
      ...ref(a),
      type: 'attempt',
      ...(a.traceparent === undefined ? {} : { traceparent: a.traceparent }),
    });
    let released = false;
    const releaseSlot = (): void => {
      if (released) return;
      released = true;
      d.limiter.release(slot);
    };
    const started = now();
    const result = await send(d, a, releaseSlot);
    const latencyMs = Math.max(0, now() - started);

    // 5. Classify; feed the breaker and the adaptive limit, then free the slot.
    const feed = (breaker: BreakerSignal, limit: LimitSignal): void => {
      d.breaker.record(ticket, breaker);
      d.limiter.observe(slot, limit, latencyMs);
      if (result.kind !== 'timeout') releaseSlot();
    };
    if (result.kind === 'timeout') {
      feed('failure', 'overload');
      return failed(d, a, { error: `timed out after ${policy.timeoutMs} ms`, latencyMs });
    }
    if (result.kind === 'error') {
      feed('failure', 'other');
      return failed(d, a, { error: `transport error: ${describeError(result.error)}`, latencyMs });
    }
    const { status, retryAfter, body } = result.response;
    switch (classifyStatus(status)) {
      case 'success': {
        feed('success', 'success');
        emit({ ...ref(a), type: 'delivered', status, latencyMs });
        return body === undefined
          ? { kind: 'delivered', status, latencyMs }
          : { kind: 'delivered', status, latencyMs, body };
      }
      case 'retryable': {
        feed(
          statusIsDestinationFailure(status) ? 'failure' : 'neutral',
          statusIsOverload(status) ? 'overload' : 'other',
        );
        return failed(d, a, {
          error: describeStatus(status, body),
          status,
          latencyMs,
          ...(retryAfter === undefined ? {} : { retryAfter }),
        });
      }
      case 'permanent': {
        // The message's fault, not the destination's: the breaker does not count it.
        feed('neutral', 'other');
        const error = describeStatus(status, body);
        emit({ ...ref(a), type: 'permanent', error, status, latencyMs });
        return { kind: 'permanent', error, status, latencyMs };
      }
    }
  };

  load(policies);

  return {
    attempt,
    status: (id) => statusOf(lookup(id)),
    statuses: () => [...destinations.values()].map(statusOf),
    setBacklog: (id, pending) => {
      if (!Number.isFinite(pending) || pending < 0) {
        throw new RangeError(`backlog must be a non-negative number, got ${pending}`);
      }
      lookup(id).backlog = pending;
    },
    updatePolicies: load,
  };
}

function ref(a: DeliveryAttempt): { destination: string; idempotencyKey: string; attempt: number } {
  return { destination: a.destination, idempotencyKey: a.idempotencyKey, attempt: a.attempt };
}

/** `HTTP 422 Unprocessable Entity: <detail from the body>` */
export function describeStatus(status: number, body: unknown): string {
  const reason = STATUS_CODES[status];
  const head = `HTTP ${status}${reason ? ` ${reason}` : ''}`;
  const detail = detailOf(body);
  return detail ? `${head}: ${detail}` : head;
}

const MAX_DETAIL = 300;

function detailOf(body: unknown): string | undefined {
  let text: string | undefined;
  if (typeof body === 'string') text = body.trim();
  else if (body !== null && typeof body === 'object') {
    const record = body as Record<string, unknown>;
    for (const key of ['detail', 'title', 'message', 'error']) {
      const value = record[key];
      if (typeof value === 'string' && value.trim() !== '') {
        text = value.trim();
        break;
      }
    }
  }
  if (!text) return undefined;
  return text.length > MAX_DETAIL ? `${text.slice(0, MAX_DETAIL)}…` : text;
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  const prefix = typeof code === 'string' && !error.message.includes(code) ? `${code} ` : '';
  return `${prefix}${error.message || error.name}`;
}

function validatePolicies(policies: DestinationPolicy[]): void {
  const problems: string[] = [];
  const ids = new Set<string>();
  for (const p of policies) {
    const id = p.id;
    const check = (
      path: string,
      value: number | undefined,
      ok: (v: number) => boolean,
      rule: string,
    ): void => {
      if (value !== undefined && !(Number.isFinite(value) && ok(value))) {
        problems.push(`${id || '(no id)'}: ${path} must be ${rule}, got ${value}`);
      }
    };
    const positive = (v: number): boolean => v > 0;
    const nonNegative = (v: number): boolean => v >= 0;
    const count = (v: number): boolean => Number.isInteger(v) && v >= 1;
    if (!id) problems.push('a destination policy has an empty id');
    else if (ids.has(id)) problems.push(`${id}: duplicate destination id`);
    ids.add(id);
    check('timeoutMs', p.timeoutMs, positive, '> 0');
    check('retry.maxAttempts', p.retry.maxAttempts, count, 'an integer >= 1');
    check('retry.baseDelayMs', p.retry.baseDelayMs, nonNegative, '>= 0');
    check('retry.maxDelayMs', p.retry.maxDelayMs, nonNegative, '>= 0');
    const cb = p.circuitBreaker;
    check('circuitBreaker.consecutiveFailures', cb.consecutiveFailures, count, 'an integer >= 1');
    check('circuitBreaker.halfOpenAfterMs', cb.halfOpenAfterMs, nonNegative, '>= 0');
    check(
      'circuitBreaker.failureRateThreshold',
      cb.failureRateThreshold,
      (v) => v > 0 && v <= 1,
      'in (0, 1]',
    );
    check('circuitBreaker.samplingWindowMs', cb.samplingWindowMs, positive, '> 0');
    check('circuitBreaker.minimumCalls', cb.minimumCalls, count, 'an integer >= 1');
    check('concurrency.max', p.concurrency.max, count, 'an integer >= 1');
    check('concurrency.latencyTargetMs', p.concurrency.latencyTargetMs, positive, '> 0');
    check('rate.perSecond', p.rate?.perSecond, positive, '> 0');
    check('rate.burst', p.rate?.burst, (v) => v >= 1, '>= 1');
    check('backlogThreshold', p.backlogThreshold, nonNegative, '>= 0');
  }
  if (problems.length > 0) {
    throw new InvalidDestinationPolicyError(`invalid delivery policy: ${problems.join('; ')}`);
  }
}
