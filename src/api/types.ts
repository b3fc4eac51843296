// What the experience layer is given by the composition root, and what it adds to a request.
import type { DestinationStatus } from '../runtime/delivery/types.js';
import type { Engine } from '../runtime/engine.js';
import type { AcceptRequest, AcceptResult, EngineStats, PriorityClass } from '../runtime/types.js';
import type { KeyStore } from './auth/api-keys.js';
import type { Authenticator } from './auth/roles.js';
import type { Hop, Tracing } from '../observability/tracing.js';

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
  /** Verifies a request's bearer token (undefined when it sent none); see auth/api-keys.ts. */
  authenticate: Authenticator;
  /** The engine's operations surface; the `/v1/ops` routes exist when given. */
  ops?: OpsDeps;
  /** Key storage and the audit log; the `/v1/admin/keys` and `/v1/audit` routes exist when given. */
  keyStore?: KeyStore;
  /** Prometheus metrics; `/metrics` exists when given. */
  metrics?: HttpMetrics;
  /** OpenTelemetry: each request is a server span (default: traceparents only, no spans). */
  tracing?: Tracing;
}

export interface OpsDeps {
  deadLetters: Engine['deadLetters'];
  stats: () => Promise<EngineStats>;
  /** Each destination's circuit and concurrency, from the delivery gate. */
  circuits: () => DestinationStatus[];
}

/** What the server needs of the metrics registry (src/observability/metrics.ts). */
export interface HttpMetrics {
  observeHttp(method: string, route: string, status: number, seconds: number): void;
  /** The exposition text and its content type. */
  render(): Promise<{ contentType: string; body: string }>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The body bytes as received, set by the server's JSON parser (undefined without a body). */
    rawBody: Buffer | undefined;
    /** This request's own span: a child of the caller's traceparent, or a new trace. */
    traceparent: string;
    /** The trace id of `traceparent`. */
    traceId: string;
    /** This request's span (ended when the answer is sent). */
    hop: Hop | undefined;
  }
}
