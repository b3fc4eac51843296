// The durable engine's public surface.
export { createEngine } from './engine.js';
export type { Engine, EngineOptions, EngineLogger } from './engine.js';
export * from './types.js';
export {
  listDeadLetters,
  showDeadLetter,
  replayDeadLetter,
  replayDeadLetters,
} from './dead-letters.js';
export type { DeadLetter, DeadLetterFilter, DeadLetterPage, ReplayResult } from './dead-letters.js';
export { LeaseLostError, purgeExpired, queueDepths } from './queue.js';
export type { AttemptRecord, PurgeReport, RetentionWindows, QueueDepths } from './queue.js';
export {
  createPayloadSealer,
  isSealedPayload,
  sealedKeyId,
  sealingKeyId,
  SealedPayloadError,
  SEALED_PAYLOAD_PREFIX,
} from './sealing.js';
export type { PayloadSealer, SealingKeys } from './sealing.js';
