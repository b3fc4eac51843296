// The outbound delivery gate: one attempt at a time under a destination's policies.

export type * from './types.js';
export type { GateEvent, GateEventType } from './events.js';
export {
  createDeliveryGate,
  describeStatus,
  DEFAULT_MAX_WAITING,
  InvalidDestinationPolicyError,
  UnknownDestinationError,
  type DeliveryGate,
  type DeliveryGateOptions,
  type Schedule,
} from './gate.js';
export { fullJitterBackoffMs, parseRetryAfterMs, retryDelayMs } from './backoff.js';
export { classifyStatus, RETRYABLE_CLIENT_STATUSES, type StatusClass } from './classify.js';
export {
  DEFAULT_MAX_BODY_BYTES,
  httpSender,
  joinUrl,
  type DeliverySend,
  type HttpDeliveryMethod,
  type HttpSenderOptions,
} from './http.js';
