// The notification service connector (kind `notification`): `POST /messages` sends one email or
// SMS; the delivery's idempotency key goes as `Idempotency-Key`, so a repeat is one message.
// Performs `notify.customer`: the template is rendered to a subject and a text body here (the
// service sends what it is given), by email when the action has an address, else by SMS.
// Answers `{ messageId, channel, to, status }`. A 422 (invalid address, phone not E.164) is
// permanent naming the field; 409 (key reused with another body) is permanent; 429, 5xx,
// transport errors and unreadable answers are transient.
import {
  ActionError,
  type ActionPerformer,
  type SystemAction,
} from '../../ports/system-actions.js';
import { actionCall, actionErrorOf, isRecord, joinUrl } from '../cloud-erp/json-http.js';

export interface NotificationOptions {
  system: string;
  baseUrl: string;
  apiKey?: string;
  /** Shop name used in subjects and bodies (default "Middlemart"). */
  shopName?: string;
}

type NotifyAction = Extract<SystemAction, { action: 'notify.customer' }>;

function field(data: Record<string, unknown>, key: string): string | undefined {
  const v = data[key];
  return typeof v === 'string' || typeof v === 'number' ? String(v) : undefined;
}

/** Subject and body of a customer message, from its template and data. */
export function renderNotification(
  template: NotifyAction['template'],
  data: Record<string, unknown>,
  shop = 'Middlemart',
): { subject: string; body: string } {
  const order = field(data, 'orderNumber') ?? field(data, 'orderId') ?? '';
  const name = field(data, 'name') ?? field(data, 'firstName');
  const hello = name ? `Hello ${name},` : 'Hello,';
  switch (template) {
    case 'order-confirmation':
      return {
        subject: `${shop}: order ${order} confirmed`,
        body: `${hello}\n\nthank you for your order ${order}. We will let you know when it ships.`,
      };
    case 'order-backordered': {
      const expected = field(data, 'expectedDate');
      return {
        subject: `${shop}: order ${order} is on backorder`,
        body: `${hello}\n\nsome items of your order ${order} are not in stock yet.${expected ? ` We expect them by ${expected}.` : ''} We will ship as soon as they arrive.`,
      };
    }
    case 'order-shipped': {
      const tracking = field(data, 'trackingUrl') ?? field(data, 'trackingNumber');
      return {
        subject: `${shop}: order ${order} has shipped`,
        body: `${hello}\n\nyour order ${order} is on its way.${tracking ? ` Track it: ${tracking}` : ''}`,
      };
    }
    case 'return-completed':
      return {
        subject: `${shop}: your return is complete`,
        body: `${hello}\n\nwe have processed your return${field(data, 'returnId') ? ` ${field(data, 'returnId')}` : ''}${order ? ` for order ${order}` : ''}. Your refund is on its way.`,
      };
    case 'consent-changed':
      return {
        subject: `${shop}: your communication preferences changed`,
        body: `${hello}\n\nwe have updated your communication preferences as you asked.`,
      };
  }
}

export function notifyCustomerPerformer(opts: NotificationOptions): ActionPerformer {
  return async (raw, ctx) => {
    if (raw.action !== 'notify.customer') {
      throw new ActionError(`expected notify.customer, got ${raw.action}`, 'permanent');
    }
    const channel = raw.email !== undefined ? 'email' : raw.phone !== undefined ? 'sms' : undefined;
    if (channel === undefined) {
      throw new ActionError(
        `${opts.system}: no email or phone to notify the customer (${raw.template})`,
        'permanent',
        { code: 'no_address' },
      );
    }
    const { subject, body } = renderNotification(raw.template, raw.data, opts.shopName);
    const reference = `${raw.correlation.process}:${raw.correlation.id}`;
    const answer = await actionCall(opts.system, {
      method: 'POST',
      url: joinUrl(opts.baseUrl, '/messages'),
      headers: {
        'idempotency-key': ctx.idempotencyKey.slice(0, 255),
        ...(opts.apiKey ? { 'x-api-key': opts.apiKey } : {}),
      },
      body: {
        channel,
        to: channel === 'email' ? raw.email : raw.phone,
        ...(channel === 'email' ? { subject } : {}),
        body: channel === 'sms' ? `${subject}. ${body.replace(/\s+/g, ' ')}`.slice(0, 600) : body,
        template: raw.template,
        reference,
      },
      signal: ctx.signal,
    });
    if (answer.status < 200 || answer.status >= 300 || !isRecord(answer.json)) {
      const errors =
        isRecord(answer.json) && Array.isArray(answer.json.errors)
          ? answer.json.errors
              .filter(isRecord)
              .map((e) => `${String(e.field ?? '')}: ${String(e.message ?? '')}`)
              .join('; ')
          : '';
      throw actionErrorOf(opts.system, answer, errors || `HTTP ${answer.status}`);
    }
    const message = answer.json;
    return {
      messageId: message.id,
      channel,
      to: message.to,
      status: message.status ?? 'accepted',
    };
  };
}
