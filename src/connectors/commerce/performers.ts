// The commerce platform connector (kind `shopify`): the Shopify-compatible Admin REST API under
// `/admin/api/{version}/` with `X-Shopify-Access-Token`. Performs `commerce.order-status`:
//   - `fulfilled` / `shipped`: creates a fulfilment of what is still open (an order with nothing
//     left to fulfil counts as done, so a repeat changes nothing);
//   - `cancelled`: cancels the order (one the shop cancelled already counts as done);
//     `closed`: closes it;
//   - every status: sets the order's tags (the platform's own tags kept, Middlemart's status
//     tag `middlemart:<status>` replaced, the action's tags added) and its note (with the
//     expected date of a backorder). Setting tags is idempotent.
// Answers `{ channelOrderId, status, tags, fulfilmentCreated }`. Shopify ids are read and written
// as strings (digits), never as JS numbers. A 404, 400 or 422 is permanent with Shopify's
// `errors`; 401 is permanent; 429 (leaky bucket, with Retry-After), 5xx, transport errors and
// unreadable answers are transient.
import { ActionError, type ActionPerformer } from '../../ports/system-actions.js';
import {
  actionCall,
  actionErrorOf,
  isRecord,
  joinUrl,
  type HttpAnswer,
} from '../cloud-erp/json-http.js';

export interface CommerceOptions {
  system: string;
  baseUrl: string;
  accessToken: string;
  /** Admin API version (default 2024-10). */
  apiVersion?: string;
}

const STATUS_TAG_PREFIX = 'middlemart:';

function shopifyErrors(answer: HttpAnswer): string {
  const errors = isRecord(answer.json) ? answer.json.errors : undefined;
  if (typeof errors === 'string') return errors;
  if (isRecord(errors)) {
    return Object.entries(errors)
      .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : String(v)}`)
      .join('; ');
  }
  return `HTTP ${answer.status}`;
}

/** The order's tags after a status update. */
export function nextTags(
  current: readonly string[],
  status: string,
  extra: readonly string[] = [],
) {
  const kept = current.filter((t) => !t.startsWith(STATUS_TAG_PREFIX));
  const out = [...kept, `${STATUS_TAG_PREFIX}${status}`];
  for (const tag of extra) if (!out.includes(tag)) out.push(tag);
  return out;
}

export function commerceOrderStatusPerformer(opts: CommerceOptions): ActionPerformer {
  const version = opts.apiVersion ?? '2024-10';
  const admin = (path: string) => joinUrl(opts.baseUrl, `/admin/api/${version}/${path}`);
  const call = async (
    method: 'GET' | 'PUT' | 'POST',
    path: string,
    body: unknown,
    signal: AbortSignal,
  ): Promise<HttpAnswer> =>
    actionCall(opts.system, {
      method,
      url: admin(path),
      headers: { 'x-shopify-access-token': opts.accessToken },
      ...(body !== undefined ? { body } : {}),
      signal,
    });
  const ok = (answer: HttpAnswer): Record<string, unknown> => {
    if (answer.status >= 200 && answer.status < 300 && isRecord(answer.json) && !answer.malformed) {
      return answer.json;
    }
    throw actionErrorOf(opts.system, answer, shopifyErrors(answer));
  };

  return async (raw, ctx) => {
    if (raw.action !== 'commerce.order-status') {
      throw new ActionError(`expected commerce.order-status, got ${raw.action}`, 'permanent');
    }
    const id = raw.channelOrderId.replace(/^gid:\/\/shopify\/Order\//, '');
    if (!/^\d{1,20}$/.test(id)) {
      throw new ActionError(
        `${opts.system}: channelOrderId ${JSON.stringify(raw.channelOrderId)} is not a Shopify order id`,
        'permanent',
        { code: 'channelOrderId' },
      );
    }
    const status = raw.status.trim().toLowerCase().replace(/\s+/g, '_');
    let fulfilmentCreated = false;
    if (status === 'fulfilled' || status === 'shipped') {
      const answer = await call(
        'POST',
        `orders/${id}/fulfillments.json`,
        { fulfillment: {} },
        ctx.signal,
      );
      const alreadyDone = answer.status === 422 && /already fulfilled/i.test(shopifyErrors(answer));
      if (!alreadyDone) ok(answer);
      fulfilmentCreated = !alreadyDone;
    } else if (status === 'cancelled' || status === 'canceled') {
      // An order cancelled at the shop (the usual way a cancellation starts) is already done.
      const answer = await call('POST', `orders/${id}/cancel.json`, {}, ctx.signal);
      const alreadyDone =
        answer.status === 422 && /already (been )?cancel/i.test(shopifyErrors(answer));
      if (!alreadyDone) ok(answer);
    } else if (status === 'closed') {
      ok(await call('POST', `orders/${id}/close.json`, {}, ctx.signal));
    }
    const current = ok(await call('GET', `orders/${id}.json`, undefined, ctx.signal));
    const order = isRecord(current.order) ? current.order : {};
    const tags = nextTags(
      typeof order.tags === 'string'
        ? order.tags
            .split(',')
            .map((t) => t.trim())
            .filter((t) => t !== '')
        : [],
      status,
      raw.tags ?? [],
    );
    const noteParts = [
      raw.note,
      raw.expectedDate !== undefined ? `Expected: ${raw.expectedDate}` : undefined,
    ].filter((p): p is string => p !== undefined && p !== '');
    ok(
      await call(
        'PUT',
        `orders/${id}.json`,
        {
          order: {
            tags: tags.join(', '),
            ...(noteParts.length > 0 ? { note: noteParts.join('\n') } : {}),
          },
        },
        ctx.signal,
      ),
    );
    return { channelOrderId: id, status, tags, fulfilmentCreated };
  };
}
