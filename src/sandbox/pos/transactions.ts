// Store transactions as a POS records them: sales and returns numbered by a per-store sequence,
// and the batches a store uploads (every transaction it holds, in sequence order).

export interface PosLine {
  lineId: string;
  sku: string;
  quantity: number;
  /** Unit price in minor units, tax included (shelf price). */
  unitPrice: number;
}

export interface PosTransaction {
  storeId: string;
  /**
   * The till session the sequence belongs to: a store numbers its transactions 1, 2, 3 … within
   * a session and starts a new session (and numbering) when the POS is restarted.
   */
  session: string;
  /** Per-store sequence number within the session: 1, 2, 3 … with no gaps. */
  sequence: number;
  /** `store-001-5f3a9c-000042`: store, session and sequence. */
  transactionId: string;
  kind: 'sale' | 'return';
  /** When the till rang it up (RFC 3339 UTC). */
  occurredAt: string;
  register: string;
  currency: string;
  lines: PosLine[];
  /** Σ quantity × unit price (minor units). */
  total: number;
  tender: 'card' | 'cash';
  /** For returns: the sale being returned. */
  originalTransactionId?: string;
  returnReason?: 'damaged' | 'defective' | 'wrong_item' | 'size_or_fit' | 'no_longer_needed';
  customerEmail?: string;
}

export interface PosBatch {
  storeId: string;
  session: string;
  /** `store-001:5f3a9c:1-42`: store, session and sequence range, stable for retries of the same batch. */
  batchId: string;
  firstSequence: number;
  lastSequence: number;
  createdAt: string;
  /** True when the batch carries transactions rung up while the store was offline. */
  offline: boolean;
  transactions: PosTransaction[];
}

export interface PosCatalogueEntry {
  sku: string;
  /** Shelf price in minor units. */
  price: number;
}

const REASONS: NonNullable<PosTransaction['returnReason']>[] = [
  'size_or_fit',
  'no_longer_needed',
  'damaged',
  'defective',
  'wrong_item',
];

function pick<T>(random: () => number, list: readonly T[]): T {
  return list[Math.floor(random() * list.length)] as T;
}

export function storeIdOf(n: number): string {
  return `store-${String(n).padStart(3, '0')}`;
}

export function transactionIdOf(storeId: string, session: string, sequence: number): string {
  return `${storeId}-${session}-${String(sequence).padStart(6, '0')}`;
}

/** A session id (6 hex digits) drawn from a random source. */
export function sessionOf(random: () => number): string {
  return Math.floor(random() * 0x1000000)
    .toString(16)
    .padStart(6, '0');
}

/** Rings up a sale of 1–3 lines from the catalogue. */
export function ringUpSale(
  random: () => number,
  storeId: string,
  session: string,
  sequence: number,
  at: number,
  catalogue: readonly PosCatalogueEntry[],
  opts: { currency?: string; lines?: ReadonlyArray<{ sku: string; quantity: number }> } = {},
): PosTransaction {
  const wanted =
    opts.lines ??
    Array.from({ length: 1 + Math.floor(random() * 3) }, () => ({
      sku: pick(random, catalogue).sku,
      quantity: 1 + Math.floor(random() * 2),
    }));
  const lines: PosLine[] = wanted.map((w, i) => {
    const entry = catalogue.find((c) => c.sku === w.sku);
    if (!entry) throw new Error(`sku '${w.sku}' is not sold in this store`);
    return { lineId: String(i + 1), sku: w.sku, quantity: w.quantity, unitPrice: entry.price };
  });
  const withEmail = random() < 0.3;
  return {
    storeId,
    session,
    sequence,
    transactionId: transactionIdOf(storeId, session, sequence),
    kind: 'sale',
    occurredAt: new Date(at).toISOString(),
    register: `R${1 + Math.floor(random() * 3)}`,
    currency: opts.currency ?? 'EUR',
    lines,
    total: lines.reduce((s, l) => s + l.quantity * l.unitPrice, 0),
    tender: random() < 0.75 ? 'card' : 'cash',
    ...(withEmail ? { customerEmail: `member.${storeId}.${sequence}@example.com` } : {}),
  };
}

/** Takes back one unit of one line of an earlier sale of the same store (and session). */
export function ringUpReturn(
  random: () => number,
  sequence: number,
  at: number,
  sale: PosTransaction,
): PosTransaction {
  const line = pick(random, sale.lines);
  return {
    storeId: sale.storeId,
    session: sale.session,
    sequence,
    transactionId: transactionIdOf(sale.storeId, sale.session, sequence),
    kind: 'return',
    occurredAt: new Date(at).toISOString(),
    register: sale.register,
    currency: sale.currency,
    lines: [{ lineId: line.lineId, sku: line.sku, quantity: 1, unitPrice: line.unitPrice }],
    total: line.unitPrice,
    tender: sale.tender,
    originalTransactionId: sale.transactionId,
    returnReason: pick(random, REASONS),
  };
}

/** The batch a store uploads: its held transactions in sequence order. */
export function batchOf(
  storeId: string,
  transactions: readonly PosTransaction[],
  createdAt: number,
  offline: boolean,
): PosBatch {
  const sorted = [...transactions].sort((a, b) => a.sequence - b.sequence);
  const first = sorted[0]?.sequence ?? 0;
  const last = sorted[sorted.length - 1]?.sequence ?? 0;
  const session = sorted[0]?.session ?? '';
  if (sorted.some((t) => t.session !== session || t.storeId !== storeId)) {
    throw new Error(`a batch holds transactions of one store session (${storeId}:${session})`);
  }
  return {
    storeId,
    session,
    batchId: `${storeId}:${session}:${first}-${last}`,
    firstSequence: first,
    lastSequence: last,
    createdAt: new Date(createdAt).toISOString(),
    offline,
    transactions: sorted,
  };
}
