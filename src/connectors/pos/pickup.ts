// Click-and-collect: a store pickup task for the store's staff, through the store system's task
// API (`POST /api/v1/pickup-tasks`). The store system keeps one task per order and store, so a
// repeat after a lost answer finds the task already made instead of making a second.
import { ActionError, type ActionPerformer } from '../../ports/system-actions.js';
import {
  actionErrorOf,
  httpCall,
  isRecord,
  joinUrl,
  TransportError,
} from '../cloud-erp/json-http.js';

export function pickupTaskPerformer(opts: { system: string; baseUrl: string }): ActionPerformer {
  return async (action, ctx) => {
    if (action.action !== 'store.pickup-task') {
      throw new ActionError(`${opts.system}: cannot perform ${action.action}`, 'permanent');
    }
    let answer;
    try {
      answer = await httpCall({
        method: 'POST',
        url: joinUrl(opts.baseUrl, '/api/v1/pickup-tasks'),
        headers: { 'idempotency-key': ctx.idempotencyKey },
        body: { orderId: action.orderId, store: action.store, lines: action.lines },
        signal: ctx.signal,
      });
    } catch (err) {
      if (err instanceof TransportError) {
        throw new ActionError(`${opts.system}: ${err.message}`, 'transient');
      }
      throw err;
    }
    if (answer.status === 200 || answer.status === 201) {
      if (answer.malformed || !isRecord(answer.json) || typeof answer.json.id !== 'string') {
        throw new ActionError(`${opts.system}: the pickup task answer was unreadable`, 'transient');
      }
      return { taskId: answer.json.id, store: action.store, duplicate: answer.status === 200 };
    }
    const message =
      isRecord(answer.json) && typeof answer.json.message === 'string'
        ? answer.json.message
        : answer.text.slice(0, 200);
    throw actionErrorOf(opts.system, answer, `pickup task refused: ${message}`);
  };
}
