// Legacy ERP simulator: the kind of on-premise ERP a retailer has run for twenty years. It speaks
// SOAP 1.1 (document/literal, WSDL at GET /soap?wsdl, HTTP Basic auth) and exchanges flat files
// in a drop folder: a nightly item and stock export as CSV, and an inbound folder it polls for
// order CSVs, rejecting bad files with a line-numbered error report.
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { FastifyReply } from 'fastify';
import { basicCredentials, createSimulator, secretsEqual } from '../kit.js';
import type { Simulator, SimulatorOptions } from '../kit.js';
import { buildCatalogue } from '../cloud-erp/catalogue.js';
import type { CatalogueItem, StockLevel } from '../cloud-erp/catalogue.js';
import { parseCsv, toCsv } from './csv.js';
import {
  LEGACY_ERP_NAMESPACE,
  LEGACY_ERP_OPERATIONS,
  SOAP_ENVELOPE_NAMESPACE,
  renderWsdl,
} from './wsdl.js';
import type { LegacyErpOperation } from './wsdl.js';

export { parseCsv, toCsv, csvField } from './csv.js';
export {
  LEGACY_ERP_NAMESPACE,
  LEGACY_ERP_OPERATIONS,
  SOAP_ENVELOPE_NAMESPACE,
  renderWsdl,
  soapActionOf,
} from './wsdl.js';

/** Warehouses the legacy (US) ERP manages. */
export const LEGACY_ERP_WAREHOUSES = ['DC-US-1', 'STORE-NYC-01'] as const;

/** Header of inbound order files: one row per order line, rows grouped by order_reference. */
export const INBOUND_ORDER_COLUMNS = [
  'order_reference',
  'order_date',
  'customer_number',
  'currency',
  'warehouse',
  'sku',
  'quantity',
  'unit_price',
] as const;

export interface LegacyErpOptions extends SimulatorOptions {
  /** HTTP Basic user name (default 'middlemart'). */
  username?: string;
  /** HTTP Basic password. */
  password: string;
  /** Folder of the flat-file exchange; without it the flat-file side is off. */
  dropDir?: string;
  /** Run exportNightly() at this interval once listening (default: only on demand). */
  exportIntervalMs?: number;
  /** Poll `inbound/` at this interval once listening (default 1000 with a dropDir; 0 = off). */
  inboundPollIntervalMs?: number;
  /** Catalogue seed (default 1, the same world as the cloud ERP). */
  seed?: number;
}

export interface LegacyOrderLine {
  sku: string;
  quantity: number;
  unitPrice: number;
}

export interface LegacyOrder {
  orderNumber: string;
  externalReference: string;
  orderDate: string;
  customerNumber?: string;
  currency: string;
  warehouse: string;
  lines: LegacyOrderLine[];
  total: number;
  source: 'soap' | 'flat-file';
  createdAt: string;
  /** `Open` until CancelSalesOrder cancels it; `Shipped` (sandbox control) cannot be changed. */
  status?: 'Open' | 'Cancelled' | 'Shipped';
}

export interface ExportResult {
  itemsFile: string;
  stockFile: string;
}

export interface ImportError {
  /** Physical line of the file (1 is the header). */
  line: number;
  field: string;
  message: string;
}

export interface InboundFileResult {
  file: string;
  status: 'processed' | 'rejected';
  orders: number;
  duplicates: number;
  errors: ImportError[];
}

export interface LegacyErp extends Simulator {
  /** Writes items-YYYYMMDD.csv and stock-YYYYMMDD.csv into dropDir (date from the clock, UTC). */
  exportNightly(): Promise<ExportResult>;
  /** Imports every inbound/orders-*.csv once; returns what happened to each file. */
  pollInbound(): Promise<InboundFileResult[]>;
  /** Orders the ERP holds, by external reference. */
  orders(): LegacyOrder[];
}

interface SoapFault {
  code: 'soap:Client' | 'soap:Server' | 'soap:VersionMismatch';
  message: string;
  errors?: { path: string; code: string; message: string }[];
}

class SoapFaultError extends Error {
  constructor(readonly fault: SoapFault) {
    super(fault.message);
  }
}

function xmlEscape(value: string | number): string {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function envelope(body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="${SOAP_ENVELOPE_NAMESPACE}" xmlns:erp="${LEGACY_ERP_NAMESPACE}">
  <soap:Body>
${body}
  </soap:Body>
</soap:Envelope>
`;
}

/** Renders a SOAP 1.1 Fault envelope (faultcode, faultstring, optional detail). */
export function renderSoapFault(fault: SoapFault): string {
  const detail =
    fault.errors !== undefined && fault.errors.length > 0
      ? `
      <detail>
        <erp:ValidationErrors>${fault.errors
          .map(
            (e) => `
          <erp:Error path="${xmlEscape(e.path)}" code="${xmlEscape(e.code)}">${xmlEscape(e.message)}</erp:Error>`,
          )
          .join('')}
        </erp:ValidationErrors>
      </detail>`
      : '';
  return envelope(`    <soap:Fault>
      <faultcode>${fault.code}</faultcode>
      <faultstring>${xmlEscape(fault.message)}</faultstring>${detail}
    </soap:Fault>`);
}

function sendSoap(reply: FastifyReply, status: number, xml: string): FastifyReply {
  return reply.code(status).type('text/xml; charset=utf-8').send(xml);
}

const xmlParser = new XMLParser({
  ignoreAttributes: false,
  removeNSPrefix: true,
  parseTagValue: false,
  trimValues: true,
  isArray: (name, jpath) =>
    name === 'Line' || (name === 'Sku' && String(jpath).includes('GetStockLevelsRequest')),
});

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (isRecord(v) && typeof v['#text'] === 'string') return v['#text'];
  return undefined;
}

const QUANTITY = /^[0-9]+$/;
const DECIMAL = /^[0-9]+(\.[0-9]{1,4})?$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** True for a real calendar date written YYYY-MM-DD (2026-02-30 is not one). */
function isCalendarDate(value: string): boolean {
  const m = DATE.exec(value);
  if (m === null) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  return date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

function yyyymmdd(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');
}

/** Creates the legacy ERP simulator (not yet listening). */
export function createLegacyErp(opts: LegacyErpOptions): LegacyErp {
  const now = opts.now ?? Date.now;
  const sim = createSimulator('legacy-erp', opts);
  const { app } = sim;
  const username = opts.username ?? 'middlemart';
  const catalogue = buildCatalogue({ seed: opts.seed ?? 1 });
  const itemsBySku = new Map<string, CatalogueItem>(catalogue.items.map((i) => [i.itemId, i]));
  const warehouses = new Set<string>(LEGACY_ERP_WAREHOUSES);
  const stock = new Map<string, Map<string, StockLevel>>();
  for (const warehouse of LEGACY_ERP_WAREHOUSES) {
    const byItem = catalogue.stock.get(warehouse) ?? new Map<string, StockLevel>();
    const bySku = new Map<string, StockLevel>();
    for (const item of catalogue.items) {
      bySku.set(item.itemId, byItem.get(item.id) ?? { quantityOnHand: 0, quantityCommitted: 0 });
    }
    stock.set(warehouse, bySku);
  }
  const ordersByRef = new Map<string, LegacyOrder>();
  let nextOrder = 1;
  let lastExport: ExportResult | undefined;

  const iso = (): string => new Date(now()).toISOString();

  /** Posts an order (validated by the caller); returns the existing one for a known reference. */
  const postOrder = (
    input: Omit<LegacyOrder, 'orderNumber' | 'total' | 'createdAt'>,
  ): { order: LegacyOrder; duplicate: boolean } => {
    const existing = ordersByRef.get(input.externalReference);
    if (existing !== undefined) {
      sim.count('salesOrderDuplicates');
      sim.record('salesOrders', { duplicate: true, source: input.source, order: existing });
      return { order: existing, duplicate: true };
    }
    const order: LegacyOrder = {
      ...input,
      orderNumber: `LSO-${String(nextOrder++).padStart(6, '0')}`,
      total: round2(input.lines.reduce((sum, l) => sum + l.quantity * l.unitPrice, 0)),
      createdAt: iso(),
    };
    ordersByRef.set(order.externalReference, order);
    const levels = stock.get(order.warehouse);
    for (const line of order.lines) {
      const level = levels?.get(line.sku);
      if (level !== undefined) level.quantityCommitted += line.quantity;
    }
    sim.record('salesOrders', { duplicate: false, source: input.source, order });
    return { order, duplicate: false };
  };

  // ---- SOAP 1.1 ------------------------------------------------------------------------------
  app.get<{ Querystring: Record<string, string> }>('/soap', async (request, reply) => {
    if (!('wsdl' in request.query)) {
      return sendSoap(
        reply,
        405,
        renderSoapFault({
          code: 'soap:Client',
          message: 'Use POST for SOAP calls; ?wsdl for the contract.',
        }),
      );
    }
    const host = request.headers.host ?? '127.0.0.1';
    return reply.type('text/xml; charset=utf-8').send(renderWsdl(`http://${host}/soap`));
  });

  app.post('/soap', async (request, reply) => {
    const credentials = basicCredentials(request.headers.authorization);
    if (
      credentials === undefined ||
      !secretsEqual(credentials.username, username) ||
      !secretsEqual(credentials.password, opts.password)
    ) {
      sim.count('unauthorizedRequests');
      return reply
        .code(401)
        .header('www-authenticate', 'Basic realm="legacy-erp"')
        .type('text/plain; charset=utf-8')
        .send('Unauthorized');
    }
    try {
      const contentType = (request.headers['content-type'] ?? '').split(';')[0]?.trim();
      if (contentType !== 'text/xml') {
        throw new SoapFaultError({
          code: 'soap:Client',
          message: `SOAP 1.1 requires Content-Type text/xml, got ${contentType || 'none'}.`,
        });
      }
      const xml = typeof request.body === 'string' ? request.body : '';
      const valid = XMLValidator.validate(xml);
      if (valid !== true) {
        throw new SoapFaultError({
          code: 'soap:Client',
          message: `Malformed XML at line ${valid.err.line}, column ${valid.err.col}: ${valid.err.msg}`,
        });
      }
      if (!xml.includes(SOAP_ENVELOPE_NAMESPACE)) {
        throw new SoapFaultError({
          code: 'soap:VersionMismatch',
          message: `Expected a SOAP 1.1 envelope in namespace ${SOAP_ENVELOPE_NAMESPACE}.`,
        });
      }
      const parsed: unknown = xmlParser.parse(xml);
      const body = isRecord(parsed) && isRecord(parsed.Envelope) ? parsed.Envelope.Body : undefined;
      if (!isRecord(body)) {
        throw new SoapFaultError({
          code: 'soap:Client',
          message: 'Not a SOAP envelope with a Body.',
        });
      }
      const action = (request.headers.soapaction ?? '').toString().trim().replace(/^"|"$/g, '');
      const operation = action.split(/[/#]/).pop() ?? '';
      if (!(LEGACY_ERP_OPERATIONS as readonly string[]).includes(operation)) {
        throw new SoapFaultError({
          code: 'soap:Client',
          message: `Unknown SOAPAction "${action}". Operations: ${LEGACY_ERP_OPERATIONS.join(', ')}.`,
        });
      }
      const requestElement = body[`${operation}Request`];
      if (!isRecord(requestElement) && requestElement !== '') {
        throw new SoapFaultError({
          code: 'soap:Client',
          message: `SOAPAction ${operation} needs a ${operation}Request element in the Body.`,
        });
      }
      const payload = isRecord(requestElement) ? requestElement : {};
      sim.count(`soap.${operation}`);
      const responseXml = handleOperation(operation as LegacyErpOperation, payload);
      return sendSoap(reply, 200, envelope(responseXml));
    } catch (error) {
      if (error instanceof SoapFaultError) {
        sim.count('soapFaults');
        sim.record('soapFaults', { ...error.fault, at: iso() });
        return sendSoap(reply, 500, renderSoapFault(error.fault));
      }
      sim.count('soapFaults');
      return sendSoap(
        reply,
        500,
        renderSoapFault({ code: 'soap:Server', message: 'Internal error in the legacy ERP.' }),
      );
    }
  });

  const handleOperation = (
    operation: LegacyErpOperation,
    payload: Record<string, unknown>,
  ): string => {
    switch (operation) {
      case 'PostSalesOrder':
        return postSalesOrderSoap(payload);
      case 'CancelSalesOrder':
        return cancelSalesOrderSoap(payload);
      case 'GetStockLevels':
        return getStockLevelsSoap(payload);
    }
  };

  // Cancels an order (no Lines) or cuts its lines to the quantities that stay; both idempotent
  // (Changed=false when there was nothing to do). Unknown references and shipped orders fault.
  const cancelSalesOrderSoap = (payload: Record<string, unknown>): string => {
    const externalReference = text(payload.ExternalReference) ?? '';
    const order = ordersByRef.get(externalReference);
    if (order === undefined) {
      throw new SoapFaultError({
        code: 'soap:Client',
        message: `CancelSalesOrder rejected: no order ${externalReference}.`,
        errors: [
          {
            path: 'ExternalReference',
            code: 'UNKNOWN_ORDER',
            message: `No sales order with ExternalReference "${externalReference}".`,
          },
        ],
      });
    }
    const status = order.status ?? 'Open';
    const linesElement = isRecord(payload.Lines) ? payload.Lines.Line : undefined;
    const rawLines: unknown[] = Array.isArray(linesElement)
      ? linesElement
      : linesElement !== undefined
        ? [linesElement]
        : [];
    const respond = (changed: boolean) => {
      sim.count(changed ? 'salesOrderChanges' : 'salesOrderChangeDuplicates');
      sim.record('salesOrderChanges', {
        duplicate: !changed,
        externalReference,
        lines: rawLines.length,
        at: iso(),
      });
      return `    <erp:CancelSalesOrderResponse>
      <erp:OrderNumber>${xmlEscape(order.orderNumber)}</erp:OrderNumber>
      <erp:Status>${order.status ?? 'Open'}</erp:Status>
      <erp:Changed>${changed}</erp:Changed>
    </erp:CancelSalesOrderResponse>`;
    };
    if (status === 'Cancelled') return respond(false);
    if (status === 'Shipped') {
      throw new SoapFaultError({
        code: 'soap:Client',
        message: `CancelSalesOrder rejected: order ${order.orderNumber} has shipped.`,
        errors: [
          { path: 'ExternalReference', code: 'ORDER_SHIPPED', message: 'The order has shipped.' },
        ],
      });
    }
    const levels = stock.get(order.warehouse);
    const uncommit = (sku: string, quantity: number) => {
      const level = levels?.get(sku);
      if (level !== undefined)
        level.quantityCommitted = Math.max(0, level.quantityCommitted - quantity);
    };
    if (rawLines.length === 0) {
      for (const line of order.lines) uncommit(line.sku, line.quantity);
      order.status = 'Cancelled';
      return respond(true);
    }
    let changed = false;
    for (const raw of rawLines) {
      const line = isRecord(raw) ? raw : {};
      const sku = text(line.Sku) ?? '';
      const keep = Number(text(line.RemainingQuantity) ?? 'NaN');
      if (!Number.isInteger(keep) || keep < 0) {
        throw new SoapFaultError({
          code: 'soap:Client',
          message: 'CancelSalesOrder rejected: RemainingQuantity must be a whole number >= 0.',
          errors: [{ path: 'Lines/Line/RemainingQuantity', code: 'INVALID', message: 'Invalid.' }],
        });
      }
      let left = keep;
      for (const l of order.lines.filter((x) => x.sku === sku)) {
        const q = Math.min(l.quantity, left);
        left -= q;
        if (q < l.quantity) {
          uncommit(sku, l.quantity - q);
          l.quantity = q;
          changed = true;
        }
      }
    }
    order.total = round2(order.lines.reduce((sum, l) => sum + l.quantity * l.unitPrice, 0));
    return respond(changed);
  };

  const postSalesOrderSoap = (payload: Record<string, unknown>): string => {
    const errors: { path: string; code: string; message: string }[] = [];
    const externalReference = text(payload.ExternalReference) ?? '';
    if (externalReference === '' || externalReference.length > 64) {
      errors.push({
        path: 'ExternalReference',
        code: 'REQUIRED',
        message: 'ExternalReference is required (1 to 64 characters).',
      });
    }
    const currency = text(payload.Currency) ?? '';
    if (!/^[A-Z]{3}$/.test(currency)) {
      errors.push({ path: 'Currency', code: 'INVALID', message: 'Currency: an ISO 4217 code.' });
    }
    const orderDate = text(payload.OrderDate) ?? iso().slice(0, 10);
    if (!isCalendarDate(orderDate)) {
      errors.push({ path: 'OrderDate', code: 'INVALID', message: 'OrderDate: YYYY-MM-DD.' });
    }
    const warehouse = text(payload.Warehouse) ?? 'DC-US-1';
    if (!warehouses.has(warehouse)) {
      errors.push({
        path: 'Warehouse',
        code: 'UNKNOWN_WAREHOUSE',
        message: `Unknown warehouse ${warehouse}.`,
      });
    }
    const linesElement = isRecord(payload.Lines) ? payload.Lines.Line : undefined;
    const rawLines: unknown[] = Array.isArray(linesElement) ? linesElement : [];
    if (rawLines.length === 0) {
      errors.push({ path: 'Lines', code: 'REQUIRED', message: 'At least one Line is required.' });
    }
    const lines: LegacyOrderLine[] = [];
    rawLines.forEach((raw, i) => {
      const at = `Lines/Line[${i + 1}]`;
      const line = isRecord(raw) ? raw : {};
      const sku = text(line.Sku) ?? '';
      const quantity = text(line.Quantity) ?? '';
      const unitPrice = text(line.UnitPrice) ?? '';
      if (!itemsBySku.has(sku)) {
        errors.push({ path: `${at}/Sku`, code: 'UNKNOWN_SKU', message: `Unknown SKU "${sku}".` });
      }
      if (!QUANTITY.test(quantity) || Number(quantity) <= 0) {
        errors.push({
          path: `${at}/Quantity`,
          code: 'INVALID',
          message: 'Quantity must be a whole number greater than 0.',
        });
      }
      if (!DECIMAL.test(unitPrice)) {
        errors.push({
          path: `${at}/UnitPrice`,
          code: 'INVALID',
          message: 'UnitPrice must be a decimal >= 0 with up to 4 places.',
        });
      }
      lines.push({ sku, quantity: Number(quantity), unitPrice: Number(unitPrice) });
    });
    const existing = ordersByRef.get(externalReference);
    if (errors.length > 0 && existing === undefined) {
      sim.record('rejectedSalesOrders', { externalReference, errors, at: iso() });
      throw new SoapFaultError({
        code: 'soap:Client',
        message: `PostSalesOrder rejected: ${errors.length} validation error(s).`,
        errors,
      });
    }
    const customerNumber = text(payload.CustomerNumber);
    const { order, duplicate } = postOrder({
      externalReference,
      orderDate,
      ...(customerNumber !== undefined && customerNumber !== '' ? { customerNumber } : {}),
      currency,
      warehouse,
      lines,
      source: 'soap',
    });
    return `    <erp:PostSalesOrderResponse>
      <erp:OrderNumber>${xmlEscape(order.orderNumber)}</erp:OrderNumber>
      <erp:ExternalReference>${xmlEscape(order.externalReference)}</erp:ExternalReference>
      <erp:Status>${duplicate ? 'AlreadyExists' : 'Created'}</erp:Status>
      <erp:Total>${order.total.toFixed(2)}</erp:Total>
    </erp:PostSalesOrderResponse>`;
  };

  const getStockLevelsSoap = (payload: Record<string, unknown>): string => {
    const warehouse = text(payload.Warehouse);
    if (warehouse !== undefined && !warehouses.has(warehouse)) {
      throw new SoapFaultError({
        code: 'soap:Client',
        message: `Unknown warehouse ${warehouse}.`,
        errors: [
          {
            path: 'Warehouse',
            code: 'UNKNOWN_WAREHOUSE',
            message: `Unknown warehouse ${warehouse}.`,
          },
        ],
      });
    }
    const skus = (Array.isArray(payload.Sku) ? payload.Sku : [])
      .map(text)
      .filter((s): s is string => s !== undefined && s !== '');
    const rows: string[] = [];
    for (const wh of warehouse !== undefined ? [warehouse] : LEGACY_ERP_WAREHOUSES) {
      const levels = stock.get(wh);
      if (levels === undefined) continue;
      const wanted = skus.length > 0 ? skus : [...levels.keys()];
      for (const sku of wanted) {
        const level = levels.get(sku);
        if (level === undefined) continue;
        rows.push(`
      <erp:StockLevel>
        <erp:Sku>${xmlEscape(sku)}</erp:Sku>
        <erp:Warehouse>${xmlEscape(wh)}</erp:Warehouse>
        <erp:OnHand>${level.quantityOnHand}</erp:OnHand>
        <erp:Allocated>${level.quantityCommitted}</erp:Allocated>
        <erp:Available>${level.quantityOnHand - level.quantityCommitted}</erp:Available>
      </erp:StockLevel>`);
      }
    }
    return `    <erp:GetStockLevelsResponse>${rows.join('')}
    </erp:GetStockLevelsResponse>`;
  };

  // ---- flat files ----------------------------------------------------------------------------
  const dropDir = opts.dropDir;
  const requireDropDir = (): string => {
    if (dropDir === undefined) throw new Error('legacy-erp: no dropDir configured');
    return dropDir;
  };
  const ensureDirs = async (root: string): Promise<void> => {
    for (const sub of ['inbound', 'processed', 'rejected', 'errors']) {
      await mkdir(join(root, sub), { recursive: true });
    }
  };
  /** Writes via a temporary name and a rename, so a reader never sees half a file. */
  const writeAtomically = async (path: string, content: string): Promise<void> => {
    const temporary = `${path}.partial`;
    await writeFile(temporary, content, 'utf8');
    await rename(temporary, path);
  };

  const SIZES = ['XS', 'S', 'M', 'L', 'XL'];
  let exporting: Promise<ExportResult> | undefined;
  /** One export at a time: a call during a running export joins it. */
  const exportNightly = (): Promise<ExportResult> => {
    exporting ??= writeExport().finally(() => {
      exporting = undefined;
    });
    return exporting;
  };
  const writeExport = async (): Promise<ExportResult> => {
    const root = requireDropDir();
    await ensureDirs(root);
    const day = yyyymmdd(now());
    const itemRows: (string | number)[][] = [
      ['sku', 'description', 'ean', 'unit', 'list_price', 'currency', 'status'],
    ];
    catalogue.items.forEach((item, i) => {
      const size = SIZES[i % SIZES.length] ?? 'M';
      const description =
        i % 10 === 0
          ? `${item.displayName} "Limited", size ${size}`
          : `${item.displayName}, size ${size}`;
      itemRows.push([
        item.itemId,
        description,
        item.upcCode,
        item.unitsType,
        item.basePrice.toFixed(2),
        item.currency,
        item.isInactive ? 'inactive' : 'active',
      ]);
    });
    const stockRows: (string | number)[][] = [
      ['sku', 'warehouse', 'on_hand', 'allocated', 'available'],
    ];
    for (const [warehouse, levels] of stock) {
      for (const [sku, level] of levels) {
        stockRows.push([
          sku,
          warehouse,
          level.quantityOnHand,
          level.quantityCommitted,
          level.quantityOnHand - level.quantityCommitted,
        ]);
      }
    }
    const itemsFile = join(root, `items-${day}.csv`);
    const stockFile = join(root, `stock-${day}.csv`);
    await writeAtomically(itemsFile, toCsv(itemRows));
    await writeAtomically(stockFile, toCsv(stockRows));
    sim.count('nightlyExports');
    lastExport = { itemsFile, stockFile };
    sim.record('exports', { ...lastExport, items: itemRows.length - 1, at: iso() });
    return lastExport;
  };

  const importOrderFile = async (root: string, name: string): Promise<InboundFileResult> => {
    const path = join(root, 'inbound', name);
    const content = await readFile(path, 'utf8');
    const { records, errors: structural } = parseCsv(content);
    const errors: ImportError[] = structural.map((e) => ({
      line: e.line,
      field: '',
      message: e.message,
    }));
    const header = records[0];
    const expected = INBOUND_ORDER_COLUMNS.join(',');
    if (header === undefined) {
      errors.push({ line: 1, field: '', message: 'empty file: expected a header row' });
    } else if (header.fields.map((f) => f.trim()).join(',') !== expected) {
      errors.push({ line: header.line, field: '', message: `header must be: ${expected}` });
    }
    const grouped = new Map<string, Omit<LegacyOrder, 'orderNumber' | 'total' | 'createdAt'>>();
    if (header !== undefined && errors.length === 0) {
      for (const record of records.slice(1)) {
        const rowErrors = (field: string, message: string): void => {
          errors.push({ line: record.line, field, message });
        };
        if (record.fields.length !== INBOUND_ORDER_COLUMNS.length) {
          rowErrors(
            '',
            `expected ${INBOUND_ORDER_COLUMNS.length} fields, found ${record.fields.length}`,
          );
          continue;
        }
        const [reference, date, customer, currency, warehouse, sku, quantity, price] =
          record.fields.map((f) => f.trim()) as [
            string,
            string,
            string,
            string,
            string,
            string,
            string,
            string,
          ];
        if (reference === '' || reference.length > 64)
          rowErrors('order_reference', 'required (1 to 64 characters)');
        if (!isCalendarDate(date)) rowErrors('order_date', 'expected YYYY-MM-DD');
        if (!/^[A-Z]{3}$/.test(currency)) rowErrors('currency', 'expected an ISO 4217 code');
        if (!warehouses.has(warehouse)) rowErrors('warehouse', `unknown warehouse "${warehouse}"`);
        if (!itemsBySku.has(sku)) rowErrors('sku', `unknown SKU "${sku}"`);
        if (!QUANTITY.test(quantity) || Number(quantity) <= 0) {
          rowErrors('quantity', 'expected a whole number greater than 0');
        }
        if (!DECIMAL.test(price))
          rowErrors('unit_price', 'expected a decimal >= 0 (up to 4 places)');
        const order = grouped.get(reference);
        if (order !== undefined && (order.currency !== currency || order.warehouse !== warehouse)) {
          rowErrors(
            'currency',
            `order ${reference} mixes currencies or warehouses across its lines`,
          );
        }
        const line = { sku, quantity: Number(quantity), unitPrice: Number(price) };
        if (order !== undefined) order.lines.push(line);
        else {
          grouped.set(reference, {
            externalReference: reference,
            orderDate: date,
            ...(customer !== '' ? { customerNumber: customer } : {}),
            currency,
            warehouse,
            lines: [line],
            source: 'flat-file',
          });
        }
      }
      if (records.length < 2 && errors.length === 0) {
        errors.push({ line: header.line, field: '', message: 'no order lines after the header' });
      }
    }
    if (errors.length > 0) {
      errors.sort((a, b) => a.line - b.line);
      const report = toCsv([
        ['line', 'field', 'error'],
        ...errors.map((e) => [e.line, e.field, e.message]),
      ]);
      await writeAtomically(join(root, 'errors', `${name}.errors.csv`), report);
      await rename(path, join(root, 'rejected', name));
      sim.count('inboundFilesRejected');
      const result: InboundFileResult = {
        file: name,
        status: 'rejected',
        orders: 0,
        duplicates: 0,
        errors,
      };
      sim.record('flatFileImports', { ...result, at: iso() });
      return result;
    }
    let imported = 0;
    let duplicates = 0;
    for (const input of grouped.values()) {
      if (postOrder(input).duplicate) duplicates += 1;
      else imported += 1;
    }
    await rename(path, join(root, 'processed', name));
    sim.count('inboundFilesProcessed');
    const result: InboundFileResult = {
      file: name,
      status: 'processed',
      orders: imported,
      duplicates,
      errors: [],
    };
    sim.record('flatFileImports', { ...result, at: iso() });
    return result;
  };

  let polling: Promise<InboundFileResult[]> | undefined;
  const pollInbound = (): Promise<InboundFileResult[]> => {
    // One poll at a time: a timer tick during a running poll joins it instead of racing it.
    polling ??= (async () => {
      try {
        const root = requireDropDir();
        await ensureDirs(root);
        const names = (await readdir(join(root, 'inbound')))
          .filter((n) => /^orders-.*\.csv$/.test(n))
          .sort();
        const results: InboundFileResult[] = [];
        for (const name of names) results.push(await importOrderFile(root, name));
        return results;
      } finally {
        polling = undefined;
      }
    })();
    return polling;
  };

  const timers: NodeJS.Timeout[] = [];
  app.addHook('onReady', async () => {
    if (dropDir === undefined) return;
    await ensureDirs(dropDir);
    const pollEvery = opts.inboundPollIntervalMs ?? 1000;
    if (pollEvery > 0) {
      timers.push(
        setInterval(() => {
          pollInbound().catch(() => sim.count('flatFileErrors'));
        }, pollEvery).unref(),
      );
    }
    if (opts.exportIntervalMs !== undefined && opts.exportIntervalMs > 0) {
      timers.push(
        setInterval(() => {
          exportNightly().catch(() => sim.count('flatFileErrors'));
        }, opts.exportIntervalMs).unref(),
      );
    }
  });
  app.addHook('onClose', async () => {
    for (const timer of timers) clearInterval(timer);
    timers.length = 0;
    if (polling !== undefined) await polling.catch(() => undefined);
    if (exporting !== undefined) await exporting.catch(() => undefined);
  });

  // Sandbox control: the order as the ERP keeps it, and marking it shipped.
  app.get<{ Params: { ref: string } }>('/_sandbox/orders/:ref', async (request, reply) => {
    const order = ordersByRef.get(request.params.ref);
    return order ?? reply.code(404).send({ error: 'not_found' });
  });
  app.post<{ Params: { ref: string } }>('/_sandbox/orders/:ref/ship', async (request, reply) => {
    const order = ordersByRef.get(request.params.ref);
    if (order === undefined) return reply.code(404).send({ error: 'not_found' });
    if ((order.status ?? 'Open') === 'Open') order.status = 'Shipped';
    return order;
  });

  sim.setStateProvider(() => ({
    orders: ordersByRef.size,
    cancelledOrders: [...ordersByRef.values()].filter((o) => o.status === 'Cancelled').length,
    warehouses: [...LEGACY_ERP_WAREHOUSES],
    dropDir: dropDir ?? null,
    lastExport: lastExport ?? null,
    absentSkus: catalogue.absentSkus,
  }));

  return Object.assign(sim, {
    exportNightly,
    pollInbound,
    orders: () => [...ordersByRef.values()],
  });
}
