// Shared by the API tests: a capturing logger and fake engine dependencies that record calls.
import type { AcceptRequest, AcceptResult } from '../../src/runtime/types.js';
import type { ApiDeps, DescribedEvent, RejectedEvent } from '../../src/api/types.js';
import { createLogger } from '../../src/observability/logger.js';

export function capturingLogger(level = 'info') {
  const lines: string[] = [];
  const logger = createLogger({ level, destination: { write: (s) => lines.push(s) } });
  return {
    logger,
    lines,
    records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export interface FakeDeps extends ApiDeps {
  acceptCalls: AcceptRequest[];
  describeCalls: unknown[];
}

/** A fake catalogue: any object with string id/source/type is an event; partition key = subject. */
export function describeLikeCatalogue(body: unknown): DescribedEvent | RejectedEvent {
  const errors: Array<{ path: string; message: string }> = [];
  const b = (body ?? {}) as Record<string, unknown>;
  if (typeof b.type !== 'string' || !b.type.startsWith('com.middlemart.')) {
    errors.push({ path: 'type', message: 'is not a known event type' });
  }
  const data = b.data as { lines?: Array<{ quantity?: unknown }> } | undefined;
  data?.lines?.forEach((line, i) => {
    if (typeof line.quantity !== 'number' || line.quantity <= 0) {
      errors.push({ path: `data.lines[${i}].quantity`, message: 'must be a positive integer' });
    }
  });
  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    type: b.type as string,
    partitionKey: typeof b.subject === 'string' ? b.subject : String(b.id),
    priority: 'critical',
    source: String(b.source),
  };
}

export function fakeDeps(
  overrides: {
    ready?: () => Promise<boolean>;
    outcome?: (req: AcceptRequest, call: number) => AcceptResult | Promise<AcceptResult>;
  } = {},
): FakeDeps {
  const acceptCalls: AcceptRequest[] = [];
  const describeCalls: unknown[] = [];
  return {
    acceptCalls,
    describeCalls,
    ready: overrides.ready ?? (async () => true),
    describeEvent: (body) => {
      describeCalls.push(body);
      return describeLikeCatalogue(body);
    },
    accept: async (req) => {
      acceptCalls.push(req);
      const outcome =
        overrides.outcome ??
        ((r: AcceptRequest, call: number): AcceptResult => ({
          outcome: 'accepted',
          messageId: `msg-${call}`,
          acceptedAt: '2026-01-02T03:04:05.000Z',
          ...(r.traceparent ? { traceparent: r.traceparent } : {}),
        }));
      return outcome(req, acceptCalls.length);
    },
    // These suites test the server's other duties: every caller, keyed or not, is an admin here.
    // Authentication itself is tested end to end in access.test.ts.
    authenticate: async () => ({
      keyPrefix: '000000000000',
      name: 'test',
      roles: ['admin'],
      tier: 'premium',
    }),
  };
}
