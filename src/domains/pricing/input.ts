// Price changes as they arrive: canonical `Price.v1` objects (REST push, `price.changed` events)
// and the ERP's CSV price file. Both become `PriceChangeInput`s, or every error with the field
// path (JSON) or the line number (CSV); nothing partial.
import { parse } from 'csv-parse/sync';
import { ISO_4217_MINOR_UNITS, PriceV1 } from '../../canonical/index.js';
import type { PriceChange, SalesChannelName } from './model.js';

export type PriceChangeInput = Omit<PriceChange, 'id' | 'ingestedAt' | 'ingestIndex'>;

export interface InputError {
  path: string;
  message: string;
}

export type ParsedChanges =
  { ok: true; changes: PriceChangeInput[] } | { ok: false; errors: InputError[] };

function issuePath(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix;
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

/** A canonical price (already valid) as a change to record. */
export function changeFromPrice(p: PriceV1): PriceChangeInput {
  return {
    sku: p.sku,
    ...(p.channel !== undefined ? { channel: p.channel } : {}),
    ...(p.storeGroup !== undefined ? { storeGroup: p.storeGroup } : {}),
    currency: p.currency,
    listMinor: p.listPrice.amount,
    ...(p.salePrice !== undefined ? { saleMinor: p.salePrice.amount } : {}),
    includesTax: p.pricesIncludeTax,
    effectiveFrom: Date.parse(p.effectiveFrom),
    ...(p.effectiveUntil !== undefined ? { effectiveUntil: Date.parse(p.effectiveUntil) } : {}),
    ...(p.promotionId !== undefined ? { promotionId: p.promotionId } : {}),
  };
}

/** Validates canonical prices; `prefix` names where they are in the body (`changes`). */
export function parsePrices(items: readonly unknown[], prefix: string): ParsedChanges {
  const errors: InputError[] = [];
  const changes: PriceChangeInput[] = [];
  items.forEach((item, i) => {
    const r = PriceV1.safeParse(item);
    if (!r.success) {
      for (const issue of r.error.issues) {
        errors.push({ path: issuePath(`${prefix}[${i}]`, issue.path), message: issue.message });
      }
    } else changes.push(changeFromPrice(r.data));
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, changes };
}

/**
 * The body of `POST /v1/prices/changes`: one canonical price, or `{ changes: [price, …] }`.
 */
export function parsePriceBody(body: unknown, maxChanges: number): ParsedChanges {
  if (body !== null && typeof body === 'object' && 'changes' in body) {
    const list = (body as { changes: unknown }).changes;
    if (!Array.isArray(list) || list.length === 0) {
      return { ok: false, errors: [{ path: 'changes', message: 'a non-empty array of prices' }] };
    }
    if (list.length > maxChanges) {
      return {
        ok: false,
        errors: [{ path: 'changes', message: `at most ${maxChanges} changes per request` }],
      };
    }
    return parsePrices(list, 'changes');
  }
  const one = parsePrices([body], '');
  if (one.ok) return one;
  return {
    ok: false,
    errors: one.errors.map((e) => ({ ...e, path: e.path.replace(/^\[0\]\.?/, '') || '(body)' })),
  };
}

/** The columns of the ERP's price file, in this order (the header line names them). */
export const PRICE_FILE_COLUMNS = [
  'sku',
  'channel',
  'store_group',
  'currency',
  'list_price',
  'sale_price',
  'effective_from',
  'effective_until',
  'promotion_id',
  'prices_include_tax',
] as const;

const CHANNELS: readonly SalesChannelName[] = ['web', 'mobile', 'store', 'marketplace'];
const DECIMAL = /^\d{1,12}(\.\d{1,4})?$/;

function toMinor(value: string, currency: string): number | undefined {
  if (!DECIMAL.test(value)) return undefined;
  const digits = (ISO_4217_MINOR_UNITS as Record<string, number>)[currency];
  if (digits === undefined) return undefined;
  const [whole, frac = ''] = value.split('.');
  if (frac.replace(/0+$/, '').length > digits) return undefined;
  return Number(whole) * 10 ** digits + Number((frac + '0'.repeat(digits)).slice(0, digits) || '0');
}

/**
 * The ERP's price file (RFC 4180, header line first, prices as decimals in major units of the
 * currency, times RFC 3339 UTC). Errors name the physical line (the header is line 1) and the
 * column, as `line 3: list_price`.
 */
export function parsePriceCsv(text: string): ParsedChanges {
  let records: Array<{ record: string[]; info: { lines: number; empty_lines: number } }>;
  try {
    records = parse(text, {
      info: true,
      relax_column_count: true,
      skip_empty_lines: true,
      trim: true,
      bom: true,
    }) as unknown as Array<{ record: string[]; info: { lines: number; empty_lines: number } }>;
  } catch (err) {
    const e = err as { lines?: number; message?: string };
    return {
      ok: false,
      errors: [{ path: `line ${e.lines ?? 1}`, message: e.message ?? 'not valid CSV' }],
    };
  }
  const header = records[0]?.record.map((h) => h.toLowerCase());
  if (!header) return { ok: false, errors: [{ path: 'line 1', message: 'the file is empty' }] };
  const missing = PRICE_FILE_COLUMNS.filter(
    (c) => !header.includes(c) && ['sku', 'currency', 'list_price', 'effective_from'].includes(c),
  );
  const unknown = header.filter((h) => !(PRICE_FILE_COLUMNS as readonly string[]).includes(h));
  if (missing.length > 0 || unknown.length > 0) {
    return {
      ok: false,
      errors: [
        ...missing.map((c) => ({ path: 'line 1', message: `missing column ${c}` })),
        ...unknown.map((c) => ({ path: 'line 1', message: `unknown column ${c}` })),
      ],
    };
  }
  const errors: InputError[] = [];
  const changes: PriceChangeInput[] = [];
  let previous = records[0]!.info;
  for (const { record, info } of records.slice(1)) {
    // The physical line the record starts on (a quoted field may span lines; blank lines skip).
    const line = previous.lines + 1 + (info.empty_lines - previous.empty_lines);
    previous = info;
    const at = (field: string) => `line ${line}: ${field}`;
    if (record.length !== header.length) {
      errors.push({
        path: `line ${line}`,
        message: `${record.length} fields where the header has ${header.length}`,
      });
      continue;
    }
    const row: Record<string, string> = {};
    header.forEach((h, i) => (row[h] = record[i] ?? ''));
    const before = errors.length;
    const fail = (field: string, message: string) => errors.push({ path: at(field), message });
    const sku = row.sku ?? '';
    if (!/^\S{1,64}$/.test(sku)) fail('sku', 'required, 1–64 characters without spaces');
    const channel = row.channel ?? '';
    if (channel !== '' && !CHANNELS.includes(channel as SalesChannelName)) {
      fail('channel', `one of ${CHANNELS.join(', ')}`);
    }
    const storeGroup = row.store_group ?? '';
    if (storeGroup.length > 64) fail('store_group', 'at most 64 characters');
    if (channel === '' && storeGroup === '')
      fail('channel', 'a price names a channel, a store group or both');
    const currency = row.currency ?? '';
    const known = currency in ISO_4217_MINOR_UNITS;
    if (!known) fail('currency', 'an ISO 4217 code such as EUR');
    const list = known ? toMinor(row.list_price ?? '', currency) : undefined;
    if (known && list === undefined)
      fail('list_price', `a decimal >= 0 with at most the decimals of ${currency}`);
    let sale: number | undefined;
    if ((row.sale_price ?? '') !== '' && known) {
      sale = toMinor(row.sale_price ?? '', currency);
      if (sale === undefined)
        fail('sale_price', `a decimal >= 0 with at most the decimals of ${currency}`);
      else if (list !== undefined && sale > list) fail('sale_price', 'must not exceed list_price');
    }
    const from = Date.parse(row.effective_from ?? '');
    if (!/Z$/.test(row.effective_from ?? '') || Number.isNaN(from)) {
      fail('effective_from', 'an RFC 3339 UTC time such as 2026-03-01T00:00:00Z');
    }
    let until: number | undefined;
    if ((row.effective_until ?? '') !== '') {
      until = Date.parse(row.effective_until ?? '');
      if (!/Z$/.test(row.effective_until ?? '') || Number.isNaN(until)) {
        fail('effective_until', 'an RFC 3339 UTC time such as 2026-03-08T00:00:00Z');
      } else if (!Number.isNaN(from) && until <= from)
        fail('effective_until', 'must be after effective_from');
    }
    const tax = (row.prices_include_tax ?? '').toLowerCase();
    if (!['', 'true', 'false', '1', '0', 'yes', 'no'].includes(tax)) {
      fail('prices_include_tax', 'true or false');
    }
    const promotionId = row.promotion_id ?? '';
    if (promotionId.length > 128) fail('promotion_id', 'at most 128 characters');
    if (errors.length > before || list === undefined) continue;
    changes.push({
      sku,
      ...(channel !== '' ? { channel: channel as SalesChannelName } : {}),
      ...(storeGroup !== '' ? { storeGroup } : {}),
      currency,
      listMinor: list,
      ...(sale !== undefined ? { saleMinor: sale } : {}),
      includesTax: tax === '' || ['true', '1', 'yes'].includes(tax),
      effectiveFrom: from,
      ...(until !== undefined ? { effectiveUntil: until } : {}),
      ...(promotionId !== '' ? { promotionId } : {}),
    });
  }
  if (records.length < 2 && errors.length === 0) {
    return { ok: false, errors: [{ path: 'line 2', message: 'the file has no price lines' }] };
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, changes };
}
