// The legacy ERP connector (kind `soap-erp`): an on-premise ERP speaking SOAP 1.1
// (document/literal, namespace urn:middlemart:sandbox:legacy-erp:v1) with HTTP Basic auth and a
// WS-Security UsernameToken in the header, plus its nightly flat-file export of the item master.
// Its SOAP service has three operations: PostSalesOrder (deduplicated by ExternalReference, so a
// retry after a lost answer finds the first booking), CancelSalesOrder (the whole order, or lines
// cut to the quantities that stay; idempotent) and GetStockLevels. Items are keyed by SKU.
//
// What the ERP cannot be asked over SOAP is reported as a permanent ErpError (UNSUPPORTED):
// looking a sale up by reference, booking credits. It reports no status changes.
//
// Faults: soap:Client and soap:VersionMismatch (validation errors such as UNKNOWN_SKU, with their
// path) are permanent with the ERP's detail; soap:Server, 429, 5xx without a fault, transport
// errors and unreadable answers are transient.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import {
  ErpError,
  type ErpBooking,
  type ErpCallContext,
  type ErpCancellation,
  type ErpCancellationResult,
  type ErpCredit,
  type ErpCreditResult,
  type ErpItem,
  type ErpOrderStatusChange,
  type ErpPort,
  type ErpSalesOrder,
  type ErpStockLevel,
} from '../../ports/erp.js';
import {
  TransportError,
  basicAuth,
  httpCall,
  isRecord,
  joinUrl,
  retryAfterSecondsOf,
  type HttpAnswer,
} from '../cloud-erp/json-http.js';
import { netUnitRate } from '../cloud-erp/money.js';

export const LEGACY_ERP_NS = 'urn:middlemart:sandbox:legacy-erp:v1';
const SOAP_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
const WSSE_NS = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd';
const PASSWORD_TEXT =
  'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText';

export interface LegacyErpClientOptions {
  system: string;
  /** Base URL; the SOAP endpoint is `{baseUrl}/soap` unless `soapPath` says otherwise. */
  baseUrl: string;
  username: string;
  password: string;
  soapPath?: string;
  /** Folder of the flat-file exchange (the nightly `items-YYYYMMDD.csv`), when shared. */
  dropDir?: string;
}

export type LegacyOperation = 'PostSalesOrder' | 'CancelSalesOrder' | 'GetStockLevels';

export function xmlEscape(value: string | number): string {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  removeNSPrefix: true,
  parseTagValue: false,
  trimValues: true,
  isArray: (name) => name === 'StockLevel' || name === 'Error',
});

function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (isRecord(v) && typeof v['#text'] === 'string') return v['#text'];
  return undefined;
}

/** Splits one RFC 4180 CSV text into rows of fields. */
export function parseCsvRows(textIn: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < textIn.length; i++) {
    const c = textIn[i] as string;
    if (quoted) {
      if (c === '"') {
        if (textIn[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && textIn[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

export class LegacyErpClient implements ErpPort {
  readonly system: string;
  /** This ERP has no status feed: no poller runs for it. */
  readonly reportsStatusChanges = false;
  private readonly endpoint: string;

  constructor(private readonly opts: LegacyErpClientOptions) {
    this.system = opts.system;
    this.endpoint = joinUrl(opts.baseUrl, opts.soapPath ?? '/soap');
  }

  async postSalesOrder(order: ErpSalesOrder, ctx: ErpCallContext = {}): Promise<ErpBooking> {
    if (order.lines.length === 0) {
      throw this.permanent('the sales order has no lines', 'REQUIRED');
    }
    const lines = order.lines
      .map((l) => {
        if (!Number.isInteger(l.quantity) || l.quantity <= 0) {
          throw this.permanent(`line ${l.sku}: quantity must be a whole number > 0`, 'INVALID');
        }
        const price = netUnitRate(l.unitPriceMinor, l.quantity, l.discountMinor, order.currency);
        return `
          <erp:Line>
            <erp:Sku>${xmlEscape(l.erpItemId ?? l.sku)}</erp:Sku>
            <erp:Quantity>${l.quantity}</erp:Quantity>
            <erp:UnitPrice>${formatDecimal(price)}</erp:UnitPrice>
          </erp:Line>`;
      })
      .join('');
    const customer = order.party?.erpCustomerId;
    const body = `
      <erp:PostSalesOrderRequest>
        <erp:ExternalReference>${xmlEscape(order.externalReference)}</erp:ExternalReference>
        <erp:OrderDate>${xmlEscape(order.orderDate.slice(0, 10))}</erp:OrderDate>${
          customer
            ? `\n        <erp:CustomerNumber>${xmlEscape(customer)}</erp:CustomerNumber>`
            : ''
        }
        <erp:Currency>${xmlEscape(order.currency)}</erp:Currency>${
          order.location
            ? `\n        <erp:Warehouse>${xmlEscape(order.location)}</erp:Warehouse>`
            : ''
        }
        <erp:Lines>${lines}
        </erp:Lines>
      </erp:PostSalesOrderRequest>`;
    const response = await this.call('PostSalesOrder', body, ctx);
    const number = text(response.OrderNumber);
    const status = text(response.Status);
    if (number === undefined || status === undefined) {
      throw this.unreadable('PostSalesOrderResponse without OrderNumber or Status');
    }
    return {
      erpOrderId: number,
      erpOrderNumber: number,
      state: 'booked',
      duplicate: status === 'AlreadyExists',
    };
  }

  /**
   * Cancels the order (CancelSalesOrder without lines) or cuts its lines to the quantities that
   * stay. The ERP answers Changed=false for a repeat; a shipped order faults (ORDER_SHIPPED,
   * permanent).
   */
  async cancelSalesOrder(
    cancel: ErpCancellation,
    ctx: ErpCallContext = {},
  ): Promise<ErpCancellationResult> {
    const lines = (cancel.lines ?? [])
      .map(
        (l) => `
          <erp:Line>
            <erp:Sku>${xmlEscape(l.erpItemId ?? l.sku)}</erp:Sku>
            <erp:RemainingQuantity>${Math.max(0, Math.trunc(l.remainingQuantity))}</erp:RemainingQuantity>
          </erp:Line>`,
      )
      .join('');
    const body = `
      <erp:CancelSalesOrderRequest>
        <erp:ExternalReference>${xmlEscape(cancel.externalReference)}</erp:ExternalReference>${
          cancel.reason
            ? `
        <erp:Reason>${xmlEscape(cancel.reason.slice(0, 200))}</erp:Reason>`
            : ''
        }${
          lines
            ? `
        <erp:Lines>${lines}
        </erp:Lines>`
            : ''
        }
      </erp:CancelSalesOrderRequest>`;
    const response = await this.call('CancelSalesOrder', body, ctx);
    const number = text(response.OrderNumber);
    const status = text(response.Status);
    const changed = text(response.Changed);
    if (number === undefined || status === undefined) {
      throw this.unreadable('CancelSalesOrderResponse without OrderNumber or Status');
    }
    return { erpOrderId: number, state: status, duplicate: changed === 'false' };
  }

  findSalesOrder(_externalReference: string): Promise<ErpBooking | undefined> {
    return Promise.reject(
      this.permanent(
        'the legacy ERP cannot look sales orders up by reference (its SOAP service has PostSalesOrder, CancelSalesOrder and GetStockLevels only); re-posting is safe, it deduplicates by ExternalReference',
        'UNSUPPORTED',
      ),
    );
  }

  postCredit(_credit: ErpCredit): Promise<ErpCreditResult> {
    return Promise.reject(
      this.permanent(
        'the legacy ERP books no credits over its interfaces; route returns to an ERP that does',
        'UNSUPPORTED',
      ),
    );
  }

  async findItems(skus: readonly string[], ctx: ErpCallContext = {}): Promise<ErpItem[]> {
    const wanted = [...new Set(skus)];
    if (wanted.length === 0) return [];
    const fromFile = await this.itemsFromExport();
    if (fromFile !== undefined) {
      return wanted.flatMap((sku) => {
        const status = fromFile.get(sku);
        return status === undefined
          ? []
          : [{ sku, erpItemId: sku, active: status.toLowerCase() !== 'inactive' }];
      });
    }
    // Without the export, an item is known when the ERP keeps a stock record for it.
    const levels = await this.stockQuery(undefined, wanted, ctx);
    const known = new Set(levels.map((l) => l.sku));
    return wanted.filter((s) => known.has(s)).map((sku) => ({ sku, erpItemId: sku, active: true }));
  }

  async stockLevels(
    locations?: readonly string[],
    ctx: ErpCallContext = {},
  ): Promise<ErpStockLevel[]> {
    if (locations === undefined) return this.stockQuery(undefined, [], ctx);
    const out: ErpStockLevel[] = [];
    for (const location of new Set(locations)) {
      out.push(...(await this.stockQuery(location, [], ctx)));
    }
    return out;
  }

  statusChangesSince(
    watermark: string | undefined,
  ): Promise<{ changes: ErpOrderStatusChange[]; watermark: string | undefined }> {
    return Promise.resolve({ changes: [], watermark });
  }

  // ---- protocol ------------------------------------------------------------------------------

  private async stockQuery(
    warehouse: string | undefined,
    skus: readonly string[],
    ctx: ErpCallContext,
  ): Promise<ErpStockLevel[]> {
    const body = `
      <erp:GetStockLevelsRequest>${
        warehouse ? `\n        <erp:Warehouse>${xmlEscape(warehouse)}</erp:Warehouse>` : ''
      }${skus.map((s) => `\n        <erp:Sku>${xmlEscape(s)}</erp:Sku>`).join('')}
      </erp:GetStockLevelsRequest>`;
    const response = await this.call('GetStockLevels', body, ctx);
    const rows = Array.isArray(response.StockLevel) ? response.StockLevel : [];
    return rows.flatMap((row: unknown) => {
      if (!isRecord(row)) return [];
      const sku = text(row.Sku);
      const location = text(row.Warehouse);
      const onHand = Number(text(row.OnHand));
      return sku !== undefined && location !== undefined && Number.isFinite(onHand)
        ? [{ sku, location, onHand }]
        : [];
    });
  }

  /** The SKU → status table of the newest `items-YYYYMMDD.csv`, when a drop folder is shared. */
  private async itemsFromExport(): Promise<Map<string, string> | undefined> {
    const dir = this.opts.dropDir;
    if (dir === undefined) return undefined;
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => /^items-\d{8}\.csv$/.test(n)).sort();
    } catch {
      return undefined;
    }
    const newest = names.at(-1);
    if (newest === undefined) return undefined;
    const rows = parseCsvRows(await readFile(join(dir, newest), 'utf8'));
    const header = rows[0] ?? [];
    const skuAt = header.indexOf('sku');
    const statusAt = header.indexOf('status');
    if (skuAt < 0) return undefined;
    const table = new Map<string, string>();
    for (const row of rows.slice(1)) {
      const sku = row[skuAt];
      if (sku) table.set(sku, statusAt >= 0 ? (row[statusAt] ?? '') : 'active');
    }
    return table;
  }

  /** One SOAP call: the response element (`{operation}Response`) or a classified ErpError. */
  private async call(
    operation: LegacyOperation,
    bodyXml: string,
    ctx: ErpCallContext,
  ): Promise<Record<string, unknown>> {
    const envelope = `<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="${SOAP_NS}" xmlns:erp="${LEGACY_ERP_NS}">
  <soap:Header>
    <wsse:Security xmlns:wsse="${WSSE_NS}" soap:mustUnderstand="0">
      <wsse:UsernameToken>
        <wsse:Username>${xmlEscape(this.opts.username)}</wsse:Username>
        <wsse:Password Type="${PASSWORD_TEXT}">${xmlEscape(this.opts.password)}</wsse:Password>
      </wsse:UsernameToken>
    </wsse:Security>
  </soap:Header>
  <soap:Body>${bodyXml}
  </soap:Body>
</soap:Envelope>`;
    let answer: HttpAnswer;
    try {
      answer = await httpCall({
        method: 'POST',
        url: this.endpoint,
        headers: {
          'content-type': 'text/xml; charset=utf-8',
          accept: 'text/xml',
          soapaction: `"${LEGACY_ERP_NS}/${operation}"`,
          authorization: basicAuth(this.opts.username, this.opts.password),
        },
        body: envelope,
        ...(ctx.signal ? { signal: ctx.signal } : {}),
      });
    } catch (err) {
      if (err instanceof TransportError) {
        throw new ErpError(`${this.system}: no answer: ${err.message}`, 'transient', {
          system: this.system,
          ...(err.code ? { code: err.code } : {}),
        });
      }
      throw err;
    }
    if (answer.status === 401 || answer.status === 403) {
      throw new ErpError(
        `${this.system}: the ERP refused the credentials of ${this.opts.username} (HTTP ${answer.status})`,
        'permanent',
        { system: this.system, status: answer.status, code: 'UNAUTHORIZED' },
      );
    }
    const parsed = this.parse(answer);
    const body = parsed && isRecord(parsed.Envelope) ? parsed.Envelope.Body : undefined;
    const fault = isRecord(body) ? body.Fault : undefined;
    if (isRecord(fault)) throw this.faultError(fault, answer.status);
    if (answer.status === 429 || answer.status >= 500 || answer.status >= 400) {
      const retryAfterSeconds = retryAfterSecondsOf(answer.headers);
      const transient = answer.status === 429 || answer.status >= 500 || answer.status === 408;
      throw new ErpError(
        `${this.system}: HTTP ${answer.status} without a SOAP fault`,
        transient ? 'transient' : 'permanent',
        {
          system: this.system,
          status: answer.status,
          ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
        },
      );
    }
    const response = isRecord(body) ? body[`${operation}Response`] : undefined;
    if (response === '') return {};
    if (!isRecord(response)) {
      throw this.unreadable(`no ${operation}Response in the answer (${answer.text.length} bytes)`);
    }
    return response;
  }

  private parse(answer: HttpAnswer): Record<string, unknown> | undefined {
    if (answer.text.trim() === '') return undefined;
    if (XMLValidator.validate(answer.text) !== true) {
      if (answer.status >= 200 && answer.status < 300) {
        throw this.unreadable(`malformed XML (${answer.text.length} bytes)`);
      }
      return undefined;
    }
    const parsed: unknown = parser.parse(answer.text);
    return isRecord(parsed) ? parsed : undefined;
  }

  private faultError(fault: Record<string, unknown>, status: number): ErpError {
    const code = text(fault.faultcode) ?? 'soap:Server';
    const message = text(fault.faultstring) ?? 'SOAP fault';
    const detail = isRecord(fault.detail) ? fault.detail : undefined;
    const validation =
      detail && isRecord(detail.ValidationErrors) ? detail.ValidationErrors : undefined;
    const errors = validation && Array.isArray(validation.Error) ? validation.Error : [];
    const described = errors.map((e: unknown) => {
      if (!isRecord(e)) return String(e);
      const path = typeof e['@path'] === 'string' ? e['@path'] : undefined;
      const errCode = typeof e['@code'] === 'string' ? e['@code'] : undefined;
      return `${path ? `${path}: ` : ''}${text(e) ?? ''}${errCode ? ` (${errCode})` : ''}`.trim();
    });
    const firstCode = errors
      .map((e: unknown) => (isRecord(e) && typeof e['@code'] === 'string' ? e['@code'] : undefined))
      .find((c: string | undefined) => c !== undefined);
    const server = /(^|:)Server$/.test(code);
    return new ErpError(
      `${this.system}: ${message}${described.length > 0 ? ` ${described.join('; ')}` : ''}`,
      server ? 'transient' : 'permanent',
      { system: this.system, status, code: firstCode ?? code },
    );
  }

  private unreadable(what: string): ErpError {
    return new ErpError(
      `${this.system}: unreadable answer: ${what}; whether the call took effect is unknown`,
      'transient',
      { system: this.system, code: 'MALFORMED_RESPONSE' },
    );
  }

  private permanent(message: string, code: string): ErpError {
    return new ErpError(`${this.system}: ${message}`, 'permanent', { system: this.system, code });
  }
}

/** A decimal with at most 4 places and no exponent (the ERP's UnitPrice format). */
function formatDecimal(value: number): string {
  return value.toFixed(4).replace(/\.?0+$/, '') || '0';
}
