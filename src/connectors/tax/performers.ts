// The tax engine connector (kind `tax`): `POST /quotes` with lines in minor units, answered per
// line with the rate and tax rounded half-up to the minor unit. Performs `tax.quote`, answering
// `{ quoteId, currency, jurisdiction, taxMinor, netMinor, lines: [{ sku, quantity, netMinor,
// taxMinor, rateBasisPoints, jurisdiction }] }`. A 422 validation_error (unknown country, US
// without a state, a bad line) is permanent naming the fields; 429, 5xx, transport errors and
// unreadable answers are transient. Quotes change nothing, so a repeat is harmless.
import { ActionError, type ActionPerformer } from '../../ports/system-actions.js';
import { actionCall, actionErrorOf, isRecord, joinUrl } from '../cloud-erp/json-http.js';

export interface TaxOptions {
  system: string;
  baseUrl: string;
  /** Sent as `x-api-key` when the engine needs one. */
  apiKey?: string;
}

export interface TaxQuote {
  quoteId: string;
  currency: string;
  jurisdiction: string;
  taxMinor: number;
  netMinor: number;
  lines: Array<{
    sku: string;
    quantity: number;
    netMinor: number;
    taxMinor: number;
    rateBasisPoints: number;
    jurisdiction: string;
  }>;
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : Number.NaN;
}

export function taxQuotePerformer(opts: TaxOptions): ActionPerformer {
  return async (raw, ctx) => {
    if (raw.action !== 'tax.quote') {
      throw new ActionError(`expected tax.quote, got ${raw.action}`, 'permanent');
    }
    if (raw.shipTo === undefined) {
      throw new ActionError(
        `${opts.system}: order ${raw.orderId} has no shipTo to determine the tax jurisdiction`,
        'permanent',
        { code: 'validation_error' },
      );
    }
    const answer = await actionCall(opts.system, {
      method: 'POST',
      url: joinUrl(opts.baseUrl, '/quotes'),
      headers: opts.apiKey ? { 'x-api-key': opts.apiKey } : {},
      body: {
        currency: raw.currency,
        shipTo: {
          country: raw.shipTo.country,
          ...(raw.shipTo.region !== undefined ? { region: raw.shipTo.region } : {}),
        },
        lines: raw.lines.map((l, i) => ({
          id: String(i + 1),
          sku: l.sku,
          quantity: l.quantity,
          unitPrice: l.unitPriceMinor,
        })),
      },
      signal: ctx.signal,
    });
    if (answer.status < 200 || answer.status >= 300) {
      const errors =
        isRecord(answer.json) && Array.isArray(answer.json.errors)
          ? answer.json.errors
              .filter(isRecord)
              .map((e) => `${String(e.field ?? '')}: ${String(e.message ?? '')}`)
              .join('; ')
          : '';
      throw actionErrorOf(opts.system, answer, errors || `HTTP ${answer.status}`);
    }
    const body = answer.json;
    if (!isRecord(body) || !Array.isArray(body.lines) || typeof body.totalTax !== 'number') {
      throw actionErrorOf(opts.system, answer, 'the quote has no lines or totalTax');
    }
    const quote: TaxQuote = {
      quoteId: String(body.quoteId ?? ''),
      currency: String(body.currency ?? raw.currency),
      jurisdiction: String(body.jurisdiction ?? ''),
      taxMinor: body.totalTax,
      netMinor: num(body.totalNet),
      lines: body.lines.filter(isRecord).map((l) => ({
        sku: String(l.sku),
        quantity: num(l.quantity),
        netMinor: num(l.netAmount),
        taxMinor: num(l.taxAmount),
        rateBasisPoints: num(l.rateBasisPoints),
        jurisdiction: String(l.jurisdiction ?? body.jurisdiction ?? ''),
      })),
    };
    return quote;
  };
}
