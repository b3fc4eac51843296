// The engine's public vocabulary: what callers hand to accept(), what they get back, and what a
// handler sees. Retail-agnostic: a message is a typed JSON payload ordered by a partition key.

import type { SqlRunner } from '../store/port.js';
import type {
  DeliveryAttempt,
  DeliveryOutcome,
  DeliveryResponse,
  DestinationStatus,
} from './delivery/types.js';

/** Priority classes, served strictly in this order when work competes. */
export const PRIORITY_CLASSES = ['critical', 'standard', 'deferrable'] as const;
export type PriorityClass = (typeof PRIORITY_CLASSES)[number];

export interface AcceptRequest {
  /** Source system id. Idempotency keys are scoped per source. */
  source: string;
  /** The caller's Idempotency-Key (or a key derived from the native message id). */
  idempotencyKey: string;
  /** Hash of the request as the caller received it (same key + other hash = conflict). */
  requestHash: string;
  /** Message type, e.g. `com.middlemart.order.created.v1`. */
  type: string;
  /** Messages of one partition key are processed one at a time, in accept order. */
  partitionKey: string;
  priority: PriorityClass;
  /** JSON payload (usually a CloudEvent). */
  payload: unknown;
  /**
   * `payload` already serialised (`JSON.stringify(payload)`), when the caller has it anyway,
   * e.g. to compute `requestHash`: stored as given instead of serialising the payload again.
   */
  payloadJson?: string;
  /** W3C traceparent carried from the caller. */
  traceparent?: string;
  /** Not before this time (delays). */
  availableAt?: Date;
  /**
   * The payload carries personal data: sealed at rest when the engine has a sealer, even when
   * it seals only personal data (ADR 0018).
   */
  personalData?: boolean;
}

export type AcceptResult =
  /** Committed to the store; the answer may now be sent. */
  | { outcome: 'accepted'; messageId: string; acceptedAt: string; traceparent?: string }
  /** Same source + key + request hash seen before: the original answer again. */
  | { outcome: 'duplicate'; messageId: string; acceptedAt: string; traceparent?: string }
  /** Same source + key with a different request hash. */
  | { outcome: 'conflict'; messageId: string }
  /** Refused for back-pressure (deferrable work above the configured backlog). */
  | { outcome: 'backpressure'; retryAfterSeconds: number };

// ---------------------------------------------------------------------------------------------
// Handlers, deliveries and the engine's observable surface.

/** A message as a handler sees it. */
export interface QueuedMessage {
  id: string;
  source: string;
  idempotencyKey: string;
  type: string;
  partitionKey: string;
  priority: PriorityClass;
  payload: unknown;
  traceparent?: string;
  /** 1 for the first processing attempt. */
  attempt: number;
  /** RFC 3339 UTC. */
  acceptedAt: string;
  replayCount: number;
}

/** A message a handler emits; defaults derive from the message being handled. */
export interface EmitRequest {
  type: string;
  partitionKey: string;
  payload: unknown;
  priority?: PriorityClass;
  /** Default `middlemart`. */
  source?: string;
  /** Default `<handled message id>/emit/<n>`: stable when the handler runs again. */
  idempotencyKey?: string;
  requestHash?: string;
  traceparent?: string;
  availableAt?: Date;
  /**
   * The payload carries personal data (sealed at rest when the engine has a sealer). A message
   * emitted by the handler of a personal-data message is sealed in any case.
   */
  personalData?: boolean;
}

/** An outbound delivery written by a handler (the outbox). */
export interface DeliveryRequest {
  /** Destination system id; a sender must be registered for it somewhere in the cluster. */
  destination: string;
  payload: unknown;
  /** Default `<message id>/<destination>/<n>` (n counts deliveries to that destination). */
  idempotencyKey?: string;
  /** Default: the handled message's class. */
  priority?: PriorityClass;
  headers?: Record<string, string>;
  traceparent?: string;
  availableAt?: Date;
  /**
   * The payload carries personal data (sealed at rest when the engine has a sealer). A delivery
   * written by the handler of a personal-data message is sealed in any case.
   */
  personalData?: boolean;
}

/** A small key-value store in the engine's database, inside the handler's transaction. */
export interface StateAccess {
  get<T = unknown>(namespace: string, key: string): Promise<T | undefined>;
  put(namespace: string, key: string, value: unknown): Promise<void>;
  delete(namespace: string, key: string): Promise<boolean>;
}

/**
 * The handler's transaction: SQL (`?` placeholders) on its own tables, key-value state, emitted
 * messages and deliveries. All of it commits together with the message's done-mark, or none.
 */
export interface HandlerTx extends SqlRunner {
  readonly message: QueuedMessage;
  emit(req: EmitRequest): Promise<string>;
  deliver(req: DeliveryRequest): Promise<string>;
  readonly state: StateAccess;
}

export type MessageHandler = (message: QueuedMessage, tx: HandlerTx) => Promise<void>;

/** A delivery as a sender sees it. */
export interface OutboundDelivery {
  id: string;
  messageId: string | null;
  destination: string;
  idempotencyKey: string;
  priority: PriorityClass;
  payload: unknown;
  headers: Record<string, string>;
  traceparent?: string;
  /** 1 for the first attempt. */
  attempt: number;
  replayCount: number;
}

export type Sender = (
  delivery: OutboundDelivery,
  ctx: { signal: AbortSignal; idempotencyKey: string; attempt: number },
) => Promise<DeliveryResponse>;

/** What the engine needs of the delivery gate (src/runtime/delivery). */
export interface DeliveryGate {
  attempt(a: DeliveryAttempt): Promise<DeliveryOutcome>;
  status?(destination: string): DestinationStatus | undefined;
  /** The engine reports how many deliveries to a destination are queued. */
  setBacklog?(destination: string, pending: number): void;
}

/** Throw from a handler to dead-letter the message at once, without further attempts. */
export class PermanentError extends Error {
  override readonly name = 'PermanentError';
}

export interface DepthFigure {
  depth: number;
  /**
   * Age of the oldest waiting item, 0 when none. For messages on SQLite: of the oldest head of a
   * key in the class (a message behind an older head of another class is younger than it).
   */
  oldestAgeMs: number;
}

export interface EngineStats {
  at: string;
  messages: { total: DepthFigure; byClass: Record<PriorityClass, DepthFigure>; inFlight: number };
  deliveries: {
    total: DepthFigure;
    byDestination: Record<
      string,
      DepthFigure & { byClass: Record<PriorityClass, number>; circuit?: string; congested: boolean }
    >;
    inFlight: number;
  };
  deadLetters: number;
}

export interface EngineCounters {
  accepted: number;
  duplicates: number;
  conflicts: number;
  backpressured: number;
  processed: number;
  handlerFailures: number;
  delivered: number;
  retried: number;
  circuitOpenSkips: number;
  deadLettered: number;
  replayed: number;
  purged: number;
}

/** Events the engine emits (observability subscribes to these). */
export interface EngineEvents {
  accepted: [{ messageId: string; type: string; priority: PriorityClass; source: string }];
  processed: [{ messageId: string; type: string; priority: PriorityClass; latencyMs: number }];
  delivered: [
    {
      deliveryId: string;
      destination: string;
      priority: PriorityClass;
      attempt: number;
      latencyMs: number;
      /** From the accept of the message that caused the delivery to its success. */
      endToEndMs: number;
    },
  ];
  retried: [
    {
      kind: 'message' | 'delivery';
      id: string;
      destination?: string;
      afterMs: number;
      error: string;
    },
  ];
  'dead-lettered': [
    {
      kind: 'message' | 'delivery';
      id: string;
      destination?: string;
      type?: string;
      reason: string;
    },
  ];
  replayed: [{ kind: 'message' | 'delivery'; id: string; newId: string }];
  'circuit-open': [{ destination: string; deliveryId: string }];
  purged: [
    {
      messages: number;
      deliveries: number;
      idempotencyKeys: number;
      attempts: number;
      deadLetters: number;
      headsRepaired: number;
    },
  ];
  error: [{ where: string; error: unknown }];
}
