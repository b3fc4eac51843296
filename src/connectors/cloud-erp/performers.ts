// The system actions an ERP performs, over any ErpPort: book a sales order (answering an
// ErpBooking), book a credit (an ErpCreditResult), and, for ERPs that keep customer accounts,
// keep a customer in sync. A retried sales order first looks its external reference up where
// the ERP can be asked, so an earlier attempt whose answer was lost is found, never booked twice.
import type { ErpPort } from '../../ports/erp.js';
import {
  ActionError,
  type ActionPerformer,
  type SystemAction,
  type SystemActionName,
} from '../../ports/system-actions.js';
import type { CloudErpClient } from './client.js';

type ActionOf<N extends SystemActionName> = Extract<SystemAction, { action: N }>;

function expect<N extends SystemActionName>(action: SystemAction, name: N): ActionOf<N> {
  if (action.action !== name) {
    throw new ActionError(`expected ${name}, got ${action.action}`, 'permanent');
  }
  return action as ActionOf<N>;
}

/** Performs `erp.post-sales-order`; with `lookUpOnRetry`, a retry first asks for the booking. */
export function postSalesOrderPerformer(
  port: ErpPort,
  opts: { lookUpOnRetry: boolean },
): ActionPerformer {
  return async (raw, ctx) => {
    const action = expect(raw, 'erp.post-sales-order');
    const call = { signal: ctx.signal, idempotencyKey: ctx.idempotencyKey };
    if (opts.lookUpOnRetry && ctx.attempt > 1) {
      const earlier = await port.findSalesOrder(action.order.externalReference, call);
      if (earlier !== undefined) return { ...earlier, duplicate: true };
    }
    return port.postSalesOrder(action.order, call);
  };
}

/**
 * Performs `erp.cancel-sales-order` over any ErpPort that can cancel (whole sale or amended
 * lines); answers an ErpCancellationResult. A port without `cancelSalesOrder` refuses it
 * permanently (the order process opens an `erp_cancel_refused` exception).
 */
export function cancelSalesOrderPerformer(port: ErpPort): ActionPerformer {
  return async (raw, ctx) => {
    const action = expect(raw, 'erp.cancel-sales-order');
    if (!port.cancelSalesOrder) {
      throw new ActionError(`${port.system} cannot cancel sales orders`, 'permanent', {
        code: 'UNSUPPORTED',
      });
    }
    return port.cancelSalesOrder(action.cancel, {
      signal: ctx.signal,
      idempotencyKey: ctx.idempotencyKey,
    });
  };
}

/** Performs `erp.post-credit`. */
export function postCreditPerformer(port: ErpPort): ActionPerformer {
  return async (raw, ctx) => {
    const action = expect(raw, 'erp.post-credit');
    return port.postCredit(action.credit, {
      signal: ctx.signal,
      idempotencyKey: ctx.idempotencyKey,
    });
  };
}

function text(attributes: Record<string, unknown>, ...keys: string[]): string | undefined {
  for (const key of keys) {
    const v = attributes[key];
    if (typeof v === 'string' && v.trim() !== '') return v.trim();
  }
  return undefined;
}

/**
 * Performs `customer.sync` on the cloud ERP: the customer account under the golden id as
 * external reference, created from the attributes when there is none. Answers
 * `{ sourceId, created }`.
 */
export function cloudErpCustomerSyncPerformer(
  client: CloudErpClient,
  defaults: { currency?: string } = {},
): ActionPerformer {
  return async (raw, ctx) => {
    const action = expect(raw, 'customer.sync');
    const a = action.attributes;
    const name =
      text(a, 'companyName', 'name', 'fullName') ??
      ([text(a, 'firstName', 'givenName'), text(a, 'lastName', 'familyName')]
        .filter(Boolean)
        .join(' ') ||
        undefined);
    const country = text(a, 'country', 'countryCode');
    const currency = text(a, 'currency', 'preferredCurrency') ?? defaults.currency;
    const email = text(a, 'email');
    const taxId = text(a, 'taxId');
    const terms = text(a, 'paymentTerms', 'terms');
    const result = await client.upsertCustomer(
      {
        externalReference: action.customerId,
        ...(name !== undefined ? { companyName: name } : {}),
        ...(email !== undefined ? { email } : {}),
        ...(country !== undefined ? { country: country.toUpperCase() } : {}),
        ...(currency !== undefined ? { currency: currency.toUpperCase() } : {}),
        ...(taxId !== undefined ? { taxId } : {}),
        ...(terms !== undefined ? { terms } : {}),
      },
      { signal: ctx.signal, idempotencyKey: ctx.idempotencyKey },
    );
    return { sourceId: result.erpCustomerId, created: result.created };
  };
}
