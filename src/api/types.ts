// What the experience layer is given by the composition root, and what it adds to a request.
import type { AcceptRequest, AcceptResult, PriorityClass } from '../runtime/types.js';

/** What the catalogue says of a valid canonical CloudEvent. */
export interface DescribedEvent {
  ok: true;
  type: string;
  partitionKey: string;
  priority: PriorityClass;
  source: string;
}

/** Why a body is not a valid canonical CloudEvent: every error with its field path. */
export interface RejectedEvent {
  ok: false;
  errors: Array<{ path: string; message: string }>;
}

export interface ApiDeps {
  /** True when the process can serve: the store is reachable. */
  ready: () => Promise<boolean>;
  /** The engine's idempotent accept (the inbox): resolves once the message is committed. */
  accept: (req: AcceptRequest) => Promise<AcceptResult>;
  /** Validates a structured CloudEvent against the canonical event catalogue. */
  describeEvent: (body: unknown) => DescribedEvent | RejectedEvent;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The body bytes as received, set by the server's JSON parser (undefined without a body). */
    rawBody: Buffer | undefined;
    /** This request's own span: a child of the caller's traceparent, or a new trace. */
    traceparent: string;
    /** The trace id of `traceparent`. */
    traceId: string;
  }
}
