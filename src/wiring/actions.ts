// System actions on the wire of the engine: a connector's `ActionPerformer` becomes the engine
// sender of its destination, and every success is acknowledged back to the process that asked
// (src/ports/system-actions.ts), durably and once; every permanent refusal is reported back the
// same way (a refusal message), so the process can leave its waiting state.
import { ErpError } from '../ports/erp.js';
import {
  ActionError,
  SYSTEM_ACKNOWLEDGED_TYPE,
  SYSTEM_REFUSED_TYPE,
  type ActionPerformer,
  type SystemAcknowledgement,
  type SystemAction,
  type SystemAnswer,
  type SystemRefusal,
} from '../ports/system-actions.js';
import type { Engine, MessageHandler, Sender } from '../runtime/index.js';
import type { SystemActionName } from '../ports/system-actions.js';
import type { DeliveryResponse } from '../runtime/delivery/index.js';
import type { AcknowledgementHandler, RefusalHandler } from './module.js';

function isAction(payload: unknown): payload is SystemAction {
  if (payload === null || typeof payload !== 'object') return false;
  const p = payload as Record<string, unknown>;
  const c = p.correlation as Record<string, unknown> | undefined;
  return (
    typeof p.action === 'string' &&
    c !== undefined &&
    c !== null &&
    typeof c.process === 'string' &&
    typeof c.id === 'string'
  );
}

/** The delivery answer for a failed action: permanent → 422, transient → 503 (+ Retry-After). */
export function failureResponse(err: unknown): DeliveryResponse | undefined {
  if (err instanceof ActionError || err instanceof ErpError) {
    const permanent = err.kind === 'permanent' || err.kind === 'warning';
    const retryAfter =
      'retryAfterSeconds' in err.details && err.details.retryAfterSeconds !== undefined
        ? String(err.details.retryAfterSeconds)
        : undefined;
    return {
      status: permanent ? 422 : err.details.status === 429 ? 429 : 503,
      ...(retryAfter ? { retryAfter } : {}),
      body: { detail: err.message, ...(err.details.code ? { code: err.details.code } : {}) },
    };
  }
  return undefined;
}

/**
 * The engine sender of a destination whose connector performs system actions. A payload that is
 * no system action is refused permanently (422). On success an acknowledgement message is
 * accepted into the engine (keyed by the delivery's idempotency key, so a repeat after a crash is
 * a duplicate) before the delivery counts as done. On a permanent failure (the system refused
 * the action, or residency did) a refusal message is accepted the same way (keyed
 * `refused/<idempotency key>`, partitioned by the correlation id) before the 422 that
 * dead-letters the delivery; a replay that then succeeds sends the ordinary acknowledgement.
 */
export function actionSender(
  engine: Pick<Engine, 'accept'>,
  destination: string,
  perform: ActionPerformer,
  now: () => number = Date.now,
): Sender {
  return async (delivery, ctx) => {
    const action = delivery.payload;
    if (!isAction(action)) {
      return {
        status: 422,
        body: { detail: `${destination}: the payload is not a system action` },
      };
    }
    // The answer back to the asking process: keyed by the delivery's key (a repeat after a crash
    // is a duplicate), partitioned like the process, sealed when the action carries personal data
    // (the system's answer or refusal may quote it back, ADR 0018).
    const reply = (type: string, key: string, payload: unknown) =>
      engine.accept({
        source: 'middlemart',
        idempotencyKey: key,
        requestHash: key,
        type,
        partitionKey: action.correlation.id,
        priority: delivery.priority,
        payload,
        ...(delivery.traceparent ? { traceparent: delivery.traceparent } : {}),
        ...(action.pii ? { personalData: true } : {}),
      });
    // Which action was answered, by whom, and when: the same in an acknowledgement and a refusal.
    const answered = (): SystemAnswer => ({
      action: action.action,
      correlation: action.correlation,
      destination,
      deliveryId: delivery.id,
      idempotencyKey: ctx.idempotencyKey,
      at: new Date(now()).toISOString(),
    });
    let result: unknown;
    try {
      result = await perform(action, ctx);
    } catch (err) {
      const answer = failureResponse(err);
      if (
        answer &&
        answer.status === 422 &&
        (err instanceof ActionError || err instanceof ErpError)
      ) {
        const refusal: SystemRefusal = {
          ...answered(),
          reason: err.message.slice(0, 2000),
          ...(err.details.code ? { code: err.details.code } : {}),
          ...(err.details.status !== undefined ? { status: err.details.status } : {}),
        };
        await reply(SYSTEM_REFUSED_TYPE, `refused/${ctx.idempotencyKey}`, refusal);
      }
      if (answer) return answer;
      throw err;
    }
    const ack: SystemAcknowledgement = {
      ...answered(),
      ...(result === undefined ? {} : { result }),
    };
    await reply(SYSTEM_ACKNOWLEDGED_TYPE, `ack/${ctx.idempotencyKey}`, ack);
    return { status: 200, body: result };
  };
}

/** One engine handler for a kind of answer (acks, refusals), dispatching by the process. */
class ProcessRouter<T extends { correlation: { process: string } }> {
  private readonly handlers = new Map<
    string,
    (answer: T, tx: Parameters<MessageHandler>[1]) => Promise<void>
  >();

  constructor(private readonly what: string) {}

  on(
    process: string,
    handler: (answer: T, tx: Parameters<MessageHandler>[1]) => Promise<void>,
  ): void {
    if (this.handlers.has(process)) {
      throw new Error(`${this.what} of ${process} already have a handler`);
    }
    this.handlers.set(process, handler);
  }

  /** The engine handler; answers to a process nobody handles complete as they are. */
  readonly handler: MessageHandler = async (message, tx) => {
    const answer = message.payload as T;
    const handler = this.handlers.get(answer?.correlation?.process);
    if (handler) await handler(answer, tx);
  };
}

/** One engine handler for every acknowledgement, dispatching by the correlation's process. */
export class AcknowledgementRouter extends ProcessRouter<SystemAcknowledgement> {
  constructor() {
    super('acknowledgements');
  }
  override on(process: string, handler: AcknowledgementHandler): void {
    super.on(process, handler);
  }
}

/** One engine handler for every refusal, dispatching by the correlation's process. */
export class RefusalRouter extends ProcessRouter<SystemRefusal> {
  constructor() {
    super('refusals');
  }
  override on(process: string, handler: RefusalHandler): void {
    super.on(process, handler);
  }
}

/** The actions each system performs, contributed by modules; one engine sender per system. */
export class ActionRegistry {
  private readonly bySystem = new Map<string, Map<SystemActionName, ActionPerformer>>();

  register(destination: string, action: SystemActionName, performer: ActionPerformer): void {
    let actions = this.bySystem.get(destination);
    if (!actions) this.bySystem.set(destination, (actions = new Map()));
    if (actions.has(action)) {
      throw new Error(`${destination} already has a performer for ${action}`);
    }
    actions.set(action, performer);
  }

  /**
   * Registers one dispatching sender per system that performs any action. An action carrying a
   * customer's personal data is refused (permanently: dead-lettered with the reason, never sent)
   * when `residency` says the system may not hold that customer's data.
   */
  registerSenders(
    engine: Pick<Engine, 'accept' | 'registerSender'>,
    opts: {
      now?: () => number;
      residency?: (destination: string, customerRegion: string) => string | undefined;
      onResidencyRefusal?: (destination: string, action: SystemActionName) => void;
    } = {},
  ): void {
    for (const [destination, actions] of this.bySystem) {
      const dispatch: ActionPerformer = (action, ctx) => {
        if (action.pii && opts.residency) {
          const refusal = opts.residency(destination, action.pii.customerRegion);
          if (refusal) {
            opts.onResidencyRefusal?.(destination, action.action);
            throw new ActionError(refusal, 'permanent', { code: 'residency' });
          }
        }
        const perform = actions.get(action.action);
        if (!perform) {
          throw new ActionError(
            `${destination} does not perform ${action.action} (it performs ${[...actions.keys()].join(', ')})`,
            'permanent',
          );
        }
        return perform(action, ctx);
      };
      engine.registerSender(destination, actionSender(engine, destination, dispatch, opts.now));
    }
  }
}
