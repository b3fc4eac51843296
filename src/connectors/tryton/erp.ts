// The ERP port over Tryton 6.0: sales as `sale.sale` documents whose `reference` is
// Middlemart's order id (looked up before anything is created, so a retry after a timeout or a
// crash never books a second sale), parties found by code (our customer id) or email, items by
// product code, stock by location, credits as return sales (negative quantities), cancellations
// (a draft or quoted sale is cancelled; a processing one has its shipments and draft invoices
// cancelled and the sale's exceptions handled without recreating anything, so Tryton closes it),
// and status changes read back from sales and invoices written since a watermark.
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
  type ErpParty,
  type ErpPort,
  type ErpSalesOrder,
  type ErpStockLevel,
} from '../../ports/erp.js';
import {
  TrytonClient,
  dateTimeText,
  decimal,
  trytonDate,
  trytonDateTime,
  truthy,
  type TrytonClientOptions,
} from './client.js';
import { currencyDigits, netUnitPrice } from './money.js';

export interface TrytonErpOptions extends TrytonClientOptions {
  /** The system id from the estate config. */
  system: string;
  /** Middlemart location id → Tryton location code (default: the same code). */
  locationMap?: Readonly<Record<string, string>>;
}

/** A status change with the Tryton shipments behind it (numbers), when shipped. */
export interface TrytonStatusChange extends ErpOrderStatusChange {
  shipments?: string[];
}

/** Sale states at and after confirmation. */
const CONFIRMED_STATES = new Set(['confirmed', 'processing', 'done']);

interface SaleRow {
  id: number;
  number: string | null;
  state: string;
  reference: string | null;
}

interface ProductRow {
  id: number;
  code: string | null;
  default_uom: number;
  salable: unknown;
  active?: unknown;
}

const SALE_FIELDS = ['id', 'number', 'state', 'reference'];

export class TrytonErp implements ErpPort {
  readonly system: string;
  readonly client: TrytonClient;
  private readonly locationMap: Readonly<Record<string, string>>;
  private readonly currencies = new Map<string, number>();

  constructor(opts: TrytonErpOptions) {
    this.system = opts.system;
    this.client = new TrytonClient(opts);
    this.locationMap = opts.locationMap ?? {};
  }

  // ------------------------------------------------------------------------------ sales

  async findSalesOrder(
    externalReference: string,
    ctx: ErpCallContext = {},
  ): Promise<ErpBooking | undefined> {
    const sale = await this.saleByReference(externalReference, ctx);
    return sale ? this.booking(sale, true) : undefined;
  }

  async postSalesOrder(order: ErpSalesOrder, ctx: ErpCallContext = {}): Promise<ErpBooking> {
    if (order.lines.length === 0) {
      throw new ErpError(`order ${order.externalReference} has no lines`, 'permanent', {
        system: this.system,
      });
    }
    const existing = await this.saleByReference(order.externalReference, ctx);
    if (existing) {
      const sale = await this.advance(existing, ctx);
      return this.booking(sale, true);
    }
    const id = await this.createSale(
      {
        reference: order.externalReference,
        description: order.channelOrderNumber ?? order.memo,
        currency: order.currency,
        date: order.orderDate,
        party: order.party,
        shipTo: order.shipTo,
        lines: order.lines.map((l) => ({
          sku: l.sku,
          erpItemId: l.erpItemId,
          quantity: l.quantity,
          unitPriceMinor: l.unitPriceMinor,
          discountMinor: l.discountMinor ?? 0,
          description: l.description,
        })),
      },
      ctx,
    );
    const sale = await this.advance(await this.readSale(id, ctx), ctx);
    return this.booking(sale, false);
  }

  async postCredit(credit: ErpCredit, ctx: ErpCallContext = {}): Promise<ErpCreditResult> {
    // Tryton 6.0 books a return as a sale with negative quantities: confirming it creates the
    // customer return shipment and the credit note.
    const existing = await this.saleByReference(credit.externalReference, ctx);
    if (existing) {
      const sale = await this.advance(existing, ctx);
      return { erpCreditId: String(sale.id), state: sale.state, duplicate: true };
    }
    let party = credit.party;
    let original: SaleRow | undefined;
    if (credit.orderExternalReference) {
      original = await this.saleByReference(credit.orderExternalReference, ctx);
    } else if (credit.erpOrderId) {
      original = await this.readSale(Number(credit.erpOrderId), ctx);
    }
    if (!party?.erpCustomerId && original) {
      const [row] = await this.client.model<Array<{ party: number }>>(
        'sale.sale',
        'read',
        [[original.id], ['party']],
        ctx,
      );
      if (row) party = { ...party, erpCustomerId: String(row.party) };
    }
    const id = await this.createSale(
      {
        reference: credit.externalReference,
        description: [
          `Return${original ? ` of ${original.reference ?? original.number ?? original.id}` : ''}`,
          credit.reason,
        ]
          .filter(Boolean)
          .join(': '),
        currency: credit.currency,
        date: new Date().toISOString(),
        party,
        lines: credit.lines.map((l) => ({
          sku: l.sku,
          erpItemId: l.erpItemId,
          quantity: -Math.abs(l.quantity),
          unitPriceMinor: l.unitPriceMinor,
          discountMinor: 0,
        })),
      },
      ctx,
    );
    const sale = await this.advance(await this.readSale(id, ctx), ctx);
    return { erpCreditId: String(sale.id), state: sale.state, duplicate: false };
  }

  /**
   * Cancels a sale. Draft or quotation: `cancel`. Processing (confirmed and processed, the only
   * way Tryton 6.0 holds a booked sale): its shipments (not done) and draft invoices are
   * cancelled, then the sale's shipment and invoice exceptions are handled with nothing
   * recreated, and Tryton closes the sale (`done`, shipment and invoice cancelled). Every step
   * re-reads state first, so a repeat (or a retry after a crash halfway) finishes the work or
   * answers `duplicate`. A shipment already done or an invoice posted or paid is refused
   * (permanent `sale-shipped` / `sale-invoiced`): the goods left, a credit is the way back.
   * Amendments (lines) of a processing sale are refused (`amend-unsupported`).
   */
  async cancelSalesOrder(
    cancel: ErpCancellation,
    ctx: ErpCallContext = {},
  ): Promise<ErpCancellationResult> {
    const found = await this.saleByReference(cancel.externalReference, ctx);
    if (!found) {
      throw new ErpError(
        `no Tryton sale with reference ${cancel.externalReference} to cancel`,
        'permanent',
        { system: this.system, code: 'sale-unknown' },
      );
    }
    type Row = SaleRow & {
      shipment_state: string;
      invoice_state: string;
      shipments: number[];
      invoices: number[];
      moves: number[];
    };
    const fields = [
      ...SALE_FIELDS,
      'shipment_state',
      'invoice_state',
      'shipments',
      'invoices',
      'moves',
    ];
    const read = async (): Promise<Row> => {
      const [row] = await this.client.model<Row[]>('sale.sale', 'read', [[found.id], fields], ctx);
      if (!row) {
        throw new ErpError(`Tryton sale ${found.id} could not be read back`, 'transient', {
          system: this.system,
        });
      }
      return row;
    };
    const name = `Tryton sale ${found.number ?? found.id} (${cancel.externalReference})`;
    let sale = await read();
    const result = (duplicate: boolean): ErpCancellationResult => ({
      erpOrderId: String(sale.id),
      state:
        sale.state === 'cancelled'
          ? 'cancelled'
          : `${sale.state}/shipment ${sale.shipment_state}/invoice ${sale.invoice_state} (cancelled)`,
      duplicate,
    });
    if (sale.state === 'cancelled') return result(true);
    if (cancel.lines !== undefined) {
      throw new ErpError(
        `${name} is ${sale.state}: Tryton 6.0 cannot take quantities off a processed sale; book a credit for the cancelled lines`,
        'permanent',
        { system: this.system, code: 'amend-unsupported' },
      );
    }
    if (sale.state === 'draft' || sale.state === 'quotation') {
      await this.client.model('sale.sale', 'cancel', [[sale.id]], ctx);
      sale = await read();
      if (sale.state !== 'cancelled') {
        throw new ErpError(`Tryton ignored cancel on ${name}: it is ${sale.state}`, 'permanent', {
          system: this.system,
          code: 'ignored-cancel',
        });
      }
      return result(false);
    }
    const shipments = sale.shipments.length
      ? await this.client.model<Array<{ id: number; state: string; number: string | null }>>(
          'stock.shipment.out',
          'read',
          [sale.shipments, ['id', 'state', 'number']],
          ctx,
        )
      : [];
    const invoices = sale.invoices.length
      ? await this.client.model<Array<{ id: number; state: string; number: string | null }>>(
          'account.invoice',
          'read',
          [sale.invoices, ['id', 'state', 'number']],
          ctx,
        )
      : [];
    const shipped = shipments.filter((x) => x.state === 'done');
    if (shipped.length > 0) {
      throw new ErpError(
        `${name} has shipped (shipment ${shipped.map((x) => x.number ?? x.id).join(', ')} done): it cannot be cancelled; a return is the way back`,
        'permanent',
        { system: this.system, code: 'sale-shipped' },
      );
    }
    const invoiced = invoices.filter((x) => x.state === 'posted' || x.state === 'paid');
    if (invoiced.length > 0) {
      throw new ErpError(
        `${name} is invoiced (invoice ${invoiced.map((x) => x.number ?? x.id).join(', ')} ${invoiced[0]!.state}): it cannot be cancelled; a credit is the way back`,
        'permanent',
        { system: this.system, code: 'sale-invoiced' },
      );
    }
    const openShipments = shipments.filter((x) => x.state !== 'cancelled').map((x) => x.id);
    const openInvoices = invoices.filter((x) => x.state !== 'cancelled').map((x) => x.id);
    const alreadyDone =
      openShipments.length === 0 &&
      openInvoices.length === 0 &&
      sale.shipment_state !== 'exception' &&
      sale.invoice_state !== 'exception';
    if (openShipments.length > 0) {
      await this.client.model('stock.shipment.out', 'cancel', [openShipments], ctx);
    }
    if (openInvoices.length > 0) {
      await this.client.model('account.invoice', 'cancel', [openInvoices], ctx);
    }
    sale = await read();
    if (sale.shipment_state === 'exception') {
      await this.client.wizard(
        'sale.handle.shipment.exception',
        { model: 'sale.sale', id: sale.id },
        [{ state: 'handle', data: { ask: { recreate_moves: [], domain_moves: sale.moves } } }],
        ctx,
      );
      sale = await read();
    }
    if (sale.invoice_state === 'exception') {
      await this.client.wizard(
        'sale.handle.invoice.exception',
        { model: 'sale.sale', id: sale.id },
        [
          {
            state: 'handle',
            data: { ask: { recreate_invoices: [], domain_invoices: sale.invoices } },
          },
        ],
        ctx,
      );
      sale = await read();
    }
    return result(alreadyDone);
  }

  private booking(sale: SaleRow, duplicate: boolean): ErpBooking {
    return {
      erpOrderId: String(sale.id),
      ...(sale.number ? { erpOrderNumber: sale.number } : {}),
      state: sale.state,
      duplicate,
    };
  }

  private async saleByReference(
    reference: string,
    ctx: ErpCallContext,
  ): Promise<SaleRow | undefined> {
    const rows = await this.client.model<SaleRow[]>(
      'sale.sale',
      'search_read',
      [[['reference', '=', reference]], 0, null, [['id', 'ASC']], SALE_FIELDS],
      ctx,
    );
    return rows[0];
  }

  private async readSale(id: number, ctx: ErpCallContext): Promise<SaleRow> {
    const [row] = await this.client.model<SaleRow[]>('sale.sale', 'read', [[id], SALE_FIELDS], ctx);
    if (!row) {
      throw new ErpError(`Tryton sale ${id} could not be read back`, 'transient', {
        system: this.system,
      });
    }
    return row;
  }

  /**
   * Moves a sale to confirmed: quote from draft, confirm from quotation, re-reading the state
   * after each transition because Tryton ignores a transition it does not allow.
   */
  private async advance(sale: SaleRow, ctx: ErpCallContext): Promise<SaleRow> {
    let current = sale;
    for (let step = 0; step < 3 && !CONFIRMED_STATES.has(current.state); step++) {
      const transition =
        current.state === 'draft' ? 'quote' : current.state === 'quotation' ? 'confirm' : undefined;
      if (!transition) {
        throw new ErpError(
          `Tryton sale ${current.number ?? current.id} (${current.reference}) is ${current.state}: it cannot be confirmed`,
          'permanent',
          { system: this.system, code: `sale-${current.state}` },
        );
      }
      const before = current.state;
      await this.client.model('sale.sale', transition, [[current.id]], ctx);
      current = await this.readSale(current.id, ctx);
      if (current.state === before) {
        throw new ErpError(
          `Tryton ignored ${transition} on sale ${current.number ?? current.id} (${current.reference}): it is still ${before}`,
          'permanent',
          { system: this.system, code: `ignored-${transition}` },
        );
      }
    }
    return current;
  }

  private async createSale(
    doc: {
      reference: string;
      description?: string | undefined;
      currency: string;
      date: string;
      party: ErpParty | undefined;
      shipTo?: ErpSalesOrder['shipTo'];
      lines: Array<{
        sku: string;
        erpItemId?: string | undefined;
        quantity: number;
        unitPriceMinor: number;
        discountMinor: number;
        description?: string | undefined;
      }>;
    },
    ctx: ErpCallContext,
  ): Promise<number> {
    const digits = currencyDigits(doc.currency);
    const products = await this.productsFor(doc.lines, ctx);
    const party = await this.resolveParty(doc.party, doc.shipTo, ctx);
    const currency = await this.currencyId(doc.currency, ctx);
    const values: Record<string, unknown> = {
      party: party.id,
      invoice_address: party.address,
      shipment_address: party.address,
      reference: doc.reference,
      currency,
      sale_date: trytonDate(doc.date),
      lines: [
        [
          'create',
          doc.lines.map((l) => {
            const product = products.get(l.erpItemId ?? l.sku)!;
            return {
              type: 'line',
              product: product.id,
              quantity: l.quantity,
              unit: product.default_uom,
              unit_price: decimal(
                netUnitPrice(l.unitPriceMinor, l.quantity, l.discountMinor, digits),
              ),
              ...(l.description ? { description: l.description } : {}),
            };
          }),
        ],
      ],
    };
    if (doc.description) values.description = doc.description;
    const ids = await this.client.model<number[]>('sale.sale', 'create', [[values]], ctx);
    const id = ids[0];
    if (typeof id !== 'number') {
      throw new ErpError('Tryton created no sale', 'transient', { system: this.system });
    }
    return id;
  }

  /** Products by erp item id or SKU; an unknown SKU is a permanent error. */
  private async productsFor(
    lines: ReadonlyArray<{ sku: string; erpItemId?: string | undefined }>,
    ctx: ErpCallContext,
  ): Promise<Map<string, ProductRow>> {
    const out = new Map<string, ProductRow>();
    const byId = lines.filter((l) => l.erpItemId !== undefined).map((l) => Number(l.erpItemId));
    const bySku = lines.filter((l) => l.erpItemId === undefined).map((l) => l.sku);
    const fields = ['id', 'code', 'default_uom', 'salable', 'active'];
    if (bySku.length > 0) {
      const rows = await this.client.model<ProductRow[]>(
        'product.product',
        'search_read',
        [[['code', 'in', [...new Set(bySku)]]], 0, null, null, fields],
        ctx,
      );
      for (const row of rows) if (row.code) out.set(row.code, row);
      const missing = [...new Set(bySku)].filter((sku) => !out.has(sku));
      if (missing.length > 0) {
        throw new ErpError(
          `Tryton has no product with code ${missing.map((s) => `"${s}"`).join(', ')} (product.product search by code found none)`,
          'permanent',
          { system: this.system, code: 'UnknownProduct' },
        );
      }
    }
    if (byId.length > 0) {
      // Tryton itself judges these ids (an unknown or unsalable product fails on the sale line
      // with Tryton's own message); the unit comes from the product when it can be read.
      const ids = [...new Set(byId.filter((n) => Number.isSafeInteger(n) && n > 0))];
      const rows = await this.client
        .model<ProductRow[]>(
          'product.product',
          'search_read',
          [[['id', 'in', ids]], 0, null, null, fields],
          ctx,
        )
        .catch(() => [] as ProductRow[]);
      const found = new Map(rows.map((r) => [String(r.id), r]));
      for (const l of lines) {
        if (l.erpItemId === undefined) continue;
        const id = Number(l.erpItemId);
        if (!Number.isSafeInteger(id) || id <= 0) {
          throw new ErpError(`"${l.erpItemId}" is not a Tryton product id`, 'permanent', {
            system: this.system,
            code: 'UnknownProduct',
          });
        }
        out.set(
          l.erpItemId,
          found.get(l.erpItemId) ?? { id, code: l.sku, default_uom: 1, salable: 1 },
        );
      }
    }
    return out;
  }

  private async currencyId(code: string, ctx: ErpCallContext): Promise<number> {
    const known = this.currencies.get(code);
    if (known !== undefined) return known;
    const rows = await this.client.model<Array<{ id: number }>>(
      'currency.currency',
      'search_read',
      [[['code', '=', code]], 0, 1, null, ['id']],
      ctx,
    );
    const id = rows[0]?.id;
    if (id === undefined) {
      throw new ErpError(`Tryton has no currency ${code}`, 'permanent', {
        system: this.system,
        code: 'UnknownCurrency',
      });
    }
    this.currencies.set(code, id);
    return id;
  }

  // ------------------------------------------------------------------------------ parties

  /**
   * The party and address a sale is booked to: by the ERP's party id, by Middlemart's customer
   * id (the party `code`), by email (a contact mechanism); created when absent, with an address
   * from the ship-to when it has none.
   */
  async resolveParty(
    party: ErpParty | undefined,
    shipTo: ErpSalesOrder['shipTo'] | undefined,
    ctx: ErpCallContext = {},
  ): Promise<{ id: number; address: number }> {
    if (!party || (!party.erpCustomerId && !party.customerId && !party.email)) {
      throw new ErpError(
        'the sale names no customer (party id, customer id or email)',
        'permanent',
        {
          system: this.system,
          code: 'NoCustomer',
        },
      );
    }
    type PartyRow = { id: number; addresses: number[] };
    const find = async (domain: unknown[]): Promise<PartyRow | undefined> =>
      (
        await this.client.model<PartyRow[]>(
          'party.party',
          'search_read',
          [domain, 0, 1, [['id', 'ASC']], ['id', 'addresses']],
          ctx,
        )
      )[0];
    let row: PartyRow | undefined;
    if (party.erpCustomerId) row = await find([['id', '=', Number(party.erpCustomerId)]]);
    if (!row && party.customerId) row = await find([['code', '=', party.customerId]]);
    if (!row && party.email) row = await find([['contact_mechanisms.value', '=', party.email]]);
    if (!row) {
      const values: Record<string, unknown> = {
        name: party.name ?? shipTo?.name ?? party.email ?? party.customerId,
        addresses: [['create', [await this.addressValues(shipTo, ctx)]]],
      };
      if (party.customerId) values.code = party.customerId;
      if (party.email) {
        values.contact_mechanisms = [['create', [{ type: 'email', value: party.email }]]];
      }
      const [id] = await this.client.model<number[]>('party.party', 'create', [[values]], ctx);
      if (typeof id !== 'number') {
        throw new ErpError('Tryton created no party', 'transient', { system: this.system });
      }
      row = { id, addresses: [] };
      const [read] = await this.client.model<PartyRow[]>(
        'party.party',
        'read',
        [[id], ['id', 'addresses']],
        ctx,
      );
      if (read) row = read;
    }
    let address = row.addresses[0];
    if (address === undefined) {
      await this.client.model(
        'party.party',
        'write',
        [[row.id], { addresses: [['create', [await this.addressValues(shipTo, ctx)]]] }],
        ctx,
      );
      const [read] = await this.client.model<PartyRow[]>(
        'party.party',
        'read',
        [[row.id], ['addresses']],
        ctx,
      );
      address = read?.addresses[0];
    }
    if (address === undefined) {
      throw new ErpError(`Tryton party ${row.id} has no address`, 'permanent', {
        system: this.system,
      });
    }
    return { id: row.id, address };
  }

  private async addressValues(
    shipTo: ErpSalesOrder['shipTo'] | undefined,
    ctx: ErpCallContext,
  ): Promise<Record<string, unknown>> {
    const values: Record<string, unknown> = {};
    const street = [shipTo?.line1, shipTo?.line2].filter(Boolean).join('\n');
    if (street) values.street = street;
    if (shipTo?.city) values.city = shipTo.city;
    if (shipTo?.postalCode) values.postal_code = shipTo.postalCode;
    if (shipTo?.name) values.name = shipTo.name;
    if (shipTo?.country) {
      const [country] = await this.client.model<Array<{ id: number }>>(
        'country.country',
        'search_read',
        [[['code', '=', shipTo.country]], 0, 1, null, ['id']],
        ctx,
      );
      if (country) values.country = country.id;
    }
    return values;
  }

  // ------------------------------------------------------------------------------ items, stock

  async findItems(skus: readonly string[], ctx: ErpCallContext = {}): Promise<ErpItem[]> {
    if (skus.length === 0) return [];
    const rows = await this.client.model<ProductRow[]>(
      'product.product',
      'search_read',
      [
        [['code', 'in', [...new Set(skus)]]],
        0,
        null,
        [['code', 'ASC']],
        ['id', 'code', 'salable', 'active'],
      ],
      { ...ctx, context: { active_test: false } },
    );
    return rows
      .filter((r) => r.code)
      .map((r) => ({
        sku: r.code!,
        erpItemId: String(r.id),
        active: truthy(r.salable) && r.active !== false && r.active !== 0,
      }));
  }

  async stockLevels(
    locations?: readonly string[],
    ctx: ErpCallContext = {},
  ): Promise<ErpStockLevel[]> {
    type LocationRow = { id: number; code: string | null; name: string };
    let rows: LocationRow[];
    if (locations && locations.length > 0) {
      const codes = locations.map((l) => this.locationMap[l] ?? l);
      rows = await this.client.model<LocationRow[]>(
        'stock.location',
        'search_read',
        [[['code', 'in', codes]], 0, null, null, ['id', 'code', 'name']],
        ctx,
      );
      const missing = codes.filter((c) => !rows.some((r) => r.code === c));
      if (missing.length > 0) {
        throw new ErpError(`Tryton has no location with code ${missing.join(', ')}`, 'permanent', {
          system: this.system,
          code: 'UnknownLocation',
        });
      }
    } else {
      rows = await this.client.model<LocationRow[]>(
        'stock.location',
        'search_read',
        [[['type', '=', 'warehouse']], 0, null, [['id', 'ASC']], ['id', 'code', 'name']],
        ctx,
      );
    }
    const ours = new Map(Object.entries(this.locationMap).map(([mm, code]) => [code, mm]));
    const out: ErpStockLevel[] = [];
    for (const location of rows) {
      const code = location.code ?? String(location.id);
      const products = await this.client.model<
        Array<{ id: number; code: string | null; quantity: number }>
      >(
        'product.product',
        'search_read',
        [[['type', '=', 'goods']], 0, null, [['code', 'ASC']], ['id', 'code', 'quantity']],
        { ...ctx, context: { locations: [location.id] } },
      );
      for (const p of products) {
        if (!p.code) continue;
        out.push({
          sku: p.code,
          location: ours.get(code) ?? code,
          onHand: Math.trunc(Number(p.quantity) || 0),
        });
      }
    }
    return out;
  }

  // ------------------------------------------------------------------------------ status back

  /**
   * Sales (with our reference) written after the watermark whose shipments are all sent, or
   * that were cancelled; and customer invoices posted (or paid) after it. The watermark is the
   * newest `write_date` seen, in UTC with microseconds.
   */
  async statusChangesSince(
    watermark: string | undefined,
    ctx: ErpCallContext = {},
  ): Promise<{ changes: TrytonStatusChange[]; watermark: string | undefined }> {
    const since: unknown[] = watermark ? [['write_date', '>', trytonDateTime(watermark)]] : [];
    type SaleStatusRow = {
      id: number;
      number: string | null;
      reference: string | null;
      state: string;
      shipment_state: string;
      write_date: unknown;
      shipments: number[];
      lines: number[];
    };
    const sales = await this.client.model<SaleStatusRow[]>(
      'sale.sale',
      'search_read',
      [
        [
          ...since,
          ['reference', '!=', null],
          ['OR', [['shipment_state', '=', 'sent']], [['state', '=', 'cancelled']]],
        ],
        0,
        500,
        [
          ['write_date', 'ASC'],
          ['id', 'ASC'],
        ],
        [
          'id',
          'number',
          'reference',
          'state',
          'shipment_state',
          'write_date',
          'shipments',
          'lines',
        ],
      ],
      ctx,
    );
    const changes: Array<TrytonStatusChange & { sortKey: string }> = [];
    let newest = watermark;
    const bump = (at: string | undefined) => {
      if (at && (!newest || at > newest)) newest = at;
    };
    for (const sale of sales) {
      const at = dateTimeText(sale.write_date) ?? new Date().toISOString();
      bump(at);
      if (!sale.reference) continue;
      if (sale.state === 'cancelled') {
        changes.push({
          externalReference: sale.reference,
          erpOrderId: String(sale.id),
          kind: 'cancelled',
          state: sale.state,
          at,
          sortKey: at,
        });
        continue;
      }
      const lines = await this.client.model<
        Array<{ quantity: number; product: number | null; 'product.': { code?: string } | null }>
      >('sale.line', 'read', [sale.lines, ['quantity', 'product', 'product.code']], ctx);
      const shipments = sale.shipments.length
        ? await this.client.model<
            Array<{ id: number; effective_date: unknown; number: string; state: string }>
          >(
            'stock.shipment.out',
            'read',
            [sale.shipments, ['id', 'number', 'effective_date', 'state']],
            ctx,
          )
        : [];
      if (shipments.length > 0 && shipments.every((x) => x.state === 'cancelled')) {
        // Closed by a cancellation (its shipments cancelled, exceptions ignored): nothing left.
        changes.push({
          externalReference: sale.reference,
          erpOrderId: String(sale.id),
          kind: 'cancelled',
          state: `${sale.state}/shipments cancelled`,
          at,
          sortKey: at,
        });
        continue;
      }
      changes.push({
        externalReference: sale.reference,
        erpOrderId: String(sale.id),
        kind: 'shipped',
        state: `${sale.state}/shipment ${sale.shipment_state}`,
        at,
        sortKey: at,
        lines: lines
          .filter((l) => l['product.']?.code && l.quantity > 0)
          .map((l) => ({ sku: l['product.']!.code!, quantity: Math.trunc(l.quantity) })),
        shipments: shipments.map((s) => s.number ?? String(s.id)),
      });
    }
    type InvoiceRow = {
      id: number;
      number: string | null;
      state: string;
      write_date: unknown;
      lines: number[];
    };
    const invoices = await this.client.model<InvoiceRow[]>(
      'account.invoice',
      'search_read',
      [
        [...since, ['type', '=', 'out'], ['state', 'in', ['posted', 'paid']]],
        0,
        500,
        [
          ['write_date', 'ASC'],
          ['id', 'ASC'],
        ],
        ['id', 'number', 'state', 'write_date', 'lines'],
      ],
      ctx,
    );
    for (const invoice of invoices) {
      const at = dateTimeText(invoice.write_date) ?? new Date().toISOString();
      bump(at);
      const lines = await this.client.model<Array<{ origin: string | null }>>(
        'account.invoice.line',
        'read',
        [invoice.lines, ['origin']],
        ctx,
      );
      const saleLineIds = [
        ...new Set(
          lines
            .map((l) => /^sale\.line,(\d+)$/.exec(l.origin ?? '')?.[1])
            .filter((v): v is string => v !== undefined)
            .map(Number),
        ),
      ];
      if (saleLineIds.length === 0) continue;
      const saleLines = await this.client.model<Array<{ sale: number }>>(
        'sale.line',
        'read',
        [saleLineIds, ['sale']],
        ctx,
      );
      const saleIds = [...new Set(saleLines.map((l) => l.sale))];
      const owners = await this.client.model<SaleRow[]>(
        'sale.sale',
        'read',
        [saleIds, SALE_FIELDS],
        ctx,
      );
      for (const sale of owners) {
        if (!sale.reference) continue;
        changes.push({
          externalReference: sale.reference,
          erpOrderId: String(sale.id),
          kind: 'invoiced',
          state: `invoice ${invoice.number ?? invoice.id} ${invoice.state}`,
          at,
          sortKey: at,
        });
      }
    }
    changes.sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0));
    return { changes: changes.map(({ sortKey: _s, ...c }) => c), watermark: newest };
  }
}
