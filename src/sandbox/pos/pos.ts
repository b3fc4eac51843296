// The POS simulator: N stores (store-001 …) ringing up sales and returns. An online store uploads
// each transaction as it happens; a store that loses its connection keeps selling into a local
// buffer, numbering every transaction with its own per-store sequence, and uploads the whole
// buffer as one batch (or several, in sequence order) when it reconnects. Uploads go to the
// configured Middlemart URL through a transport: canonical events or native POS batches.
import type { FastifyReply } from 'fastify';
import { createSimulator, mulberry32 } from '../kit.js';
import type { Simulator, SimulatorOptions } from '../kit.js';
import { Shop } from '../commerce/shop.js';
import { CanonicalEvents } from '../scenarios/canonical.js';
import { eventRequest, posBatchRequest, sendPlanned } from '../scenarios/transport.js';
import type { PlannedRequest } from '../scenarios/transport.js';
import { batchOf, ringUpReturn, ringUpSale, sessionOf, storeIdOf } from './transactions.js';
import type { PosBatch, PosCatalogueEntry, PosTransaction } from './transactions.js';

/** A price as a till shows it (what Middlemart's store API sent, newest version per SKU). */
interface TillShelfPrice {
  sku: string;
  currency: string;
  listPrice: string;
  listPriceMinor: number;
  salePrice?: string;
  salePriceMinor?: number;
  version: number;
}

export interface PosOptions extends SimulatorOptions {
  /** Seeds the catalogue and every sale (default 1). */
  seed?: number;
  /** Number of stores (default 5): store-001 … */
  stores?: number;
  /** Middlemart's base URL; without it, transactions stay buffered until one is set. */
  middlemartUrl?: string;
  /** How uploads reach Middlemart: canonical events (default) or native POS batches. */
  transport?: 'events' | 'native';
  /** Sent as `Authorization: Bearer` with uploads. */
  apiKey?: string;
  /** Most transactions per uploaded batch (default 500). */
  maxBatchSize?: number;
  uploadTimeoutMs?: number;
  currency?: string;
  /** SKUs sold in the stores; default the estate's catalogue. */
  skus?: readonly string[];
}

export interface UploadRecord {
  storeId: string;
  batchId: string;
  firstSequence: number;
  lastSequence: number;
  transactions: number;
  offline: boolean;
  /** Requests sent for this batch and how they were answered. */
  requests: number;
  statuses: Array<number | string>;
  ok: boolean;
  at: string;
}

export interface StoreState {
  id: string;
  online: boolean;
  offlineSince: string | null;
  /** Sequence number the next transaction of this store gets. */
  nextSequence: number;
  /** Transactions rung up but not yet accepted by Middlemart. */
  buffer: PosTransaction[];
  uploads: UploadRecord[];
}

export interface PosControls {
  readonly storeIds: readonly string[];
  /** The till session of this start: transaction numbering restarts at 1 in a new session. */
  readonly session: string;
  /** A copy of a store's state. */
  store(id: string): StoreState;
  stores(): StoreState[];
  /** Rings up a sale; an online store uploads it right away (awaited). */
  sell(
    storeId: string,
    lines?: ReadonlyArray<{ sku: string; quantity: number }>,
  ): Promise<PosTransaction>;
  /** Rings up a return of one unit of an earlier sale of the store (the latest by default). */
  returnItem(storeId: string, originalTransactionId?: string): Promise<PosTransaction>;
  goOffline(storeId: string): void;
  /** Reconnects a store and uploads its buffer; resolves the uploads made. */
  goOnline(storeId: string): Promise<UploadRecord[]>;
  /** Uploads whatever a store holds (if online). */
  sync(storeId: string): Promise<UploadRecord[]>;
  setMiddlemartUrl(url: string | undefined): void;
  readonly catalogue: readonly PosCatalogueEntry[];
}

export type Pos = Simulator & PosControls;

interface StoreRuntime {
  id: string;
  online: boolean;
  offlineSince: number | null;
  nextSequence: number;
  buffer: PosTransaction[];
  sales: PosTransaction[];
  uploads: UploadRecord[];
  /** Sequences rung up while offline (not yet uploaded). */
  offlineSequences: Set<number>;
  /** Serialises uploads of one store so batches go out in sequence order. */
  chain: Promise<unknown>;
}

const UPLOAD_RETENTION = 200;

export function createPos(opts: PosOptions = {}): Pos {
  const seed = opts.seed ?? 1;
  const random = opts.random ?? mulberry32(seed);
  const now = opts.now ?? Date.now;
  const sim = createSimulator('pos', { ...opts, random, now });
  const app = sim.app;
  const saleRandom = mulberry32(seed + 101);
  // A new till session per start (numbering restarts at 1), reproducible from seed and clock.
  const session = sessionOf(mulberry32((seed * 2654435761 + Math.floor(now() / 1000)) >>> 0));
  const shop = new Shop({
    random: mulberry32(seed + 0x51ed),
    ...(opts.skus ? { skus: opts.skus } : {}),
  });
  const catalogue: PosCatalogueEntry[] = shop.products.flatMap((p) =>
    p.variants.map((v) => ({ sku: v.sku, price: v.priceMinor })),
  );
  const events = new CanonicalEvents(mulberry32(seed + 202));
  const transport = opts.transport ?? 'events';
  const maxBatchSize = opts.maxBatchSize ?? 500;
  let middlemartUrl = opts.middlemartUrl;
  const stores = new Map<string, StoreRuntime>();
  for (let i = 1; i <= (opts.stores ?? 5); i++) {
    const id = storeIdOf(i);
    stores.set(id, {
      id,
      online: true,
      offlineSince: null,
      nextSequence: 1,
      buffer: [],
      sales: [],
      uploads: [],
      offlineSequences: new Set(),
      chain: Promise.resolve(),
    });
  }

  const storeOf = (id: string): StoreRuntime => {
    const s = stores.get(id);
    if (!s) throw new UnknownStoreError(id);
    return s;
  };

  const snapshot = (s: StoreRuntime): StoreState => ({
    id: s.id,
    online: s.online,
    offlineSince: s.offlineSince === null ? null : new Date(s.offlineSince).toISOString(),
    nextSequence: s.nextSequence,
    buffer: s.buffer.map((t) => ({ ...t, lines: t.lines.map((l) => ({ ...l })) })),
    uploads: s.uploads.map((u) => ({ ...u, statuses: [...u.statuses] })),
  });

  // A retried upload must send the same bytes under the same idempotency key.
  const eventCache = new Map<string, PlannedRequest>();
  function requestsOf(batch: PosBatch): PlannedRequest[] {
    if (transport === 'native') return [posBatchRequest(batch)];
    return batch.transactions.map((tx) => {
      let req = eventCache.get(tx.transactionId);
      if (!req) {
        req = eventRequest(events.posTransaction(tx));
        eventCache.set(tx.transactionId, req);
      }
      return req;
    });
  }

  /** Uploads the store's buffer in batches; stops at the first batch Middlemart does not accept. */
  async function upload(s: StoreRuntime): Promise<UploadRecord[]> {
    const done: UploadRecord[] = [];
    while (s.online && middlemartUrl !== undefined && s.buffer.length > 0) {
      const held = s.buffer.slice(0, maxBatchSize);
      const offline = held.some((t) => s.offlineSequences.has(t.sequence));
      const last = held[held.length - 1] as PosTransaction;
      const batch = batchOf(s.id, held, Date.parse(last.occurredAt), offline);
      const statuses: Array<number | string> = [];
      let ok = true;
      let acceptedCount = 0;
      for (const req of requestsOf(batch)) {
        const outcome = await sendPlanned(middlemartUrl, req, {
          ...(opts.apiKey ? { apiKey: opts.apiKey } : {}),
          timeoutMs: opts.uploadTimeoutMs ?? 10_000,
        });
        statuses.push(outcome.status ?? outcome.error ?? 'error');
        if (!outcome.accepted) {
          ok = false;
          break;
        }
        acceptedCount++;
      }
      const record: UploadRecord = {
        storeId: s.id,
        batchId: batch.batchId,
        firstSequence: batch.firstSequence,
        lastSequence: batch.lastSequence,
        transactions: batch.transactions.length,
        offline,
        requests: statuses.length,
        statuses,
        ok,
        at: new Date(now()).toISOString(),
      };
      s.uploads.push(record);
      if (s.uploads.length > UPLOAD_RETENTION)
        s.uploads.splice(0, s.uploads.length - UPLOAD_RETENTION);
      done.push(record);
      sim.record('uploads', record);
      sim.count(ok ? 'uploads.accepted' : 'uploads.failed');
      // Events are accepted one by one: drop those Middlemart has; a native batch is all or nothing.
      const drop = ok ? held.length : transport === 'events' ? acceptedCount : 0;
      for (const tx of s.buffer.splice(0, drop)) {
        s.offlineSequences.delete(tx.sequence);
        eventCache.delete(tx.transactionId);
      }
      if (!ok) break;
    }
    return done;
  }

  function enqueueUpload(s: StoreRuntime): Promise<UploadRecord[]> {
    const next = s.chain.then(() => upload(s));
    s.chain = next.catch(() => undefined);
    return next;
  }

  function ring(s: StoreRuntime, tx: PosTransaction): void {
    s.nextSequence = tx.sequence + 1;
    s.buffer.push(tx);
    if (!s.online) s.offlineSequences.add(tx.sequence);
    if (tx.kind === 'sale') s.sales.push(tx);
    sim.count(tx.kind === 'sale' ? 'sales' : 'returns');
    if (!s.online) sim.count('offlineTransactions');
  }

  const controls: PosControls = {
    storeIds: [...stores.keys()],
    session,
    catalogue,
    store: (id) => snapshot(storeOf(id)),
    stores: () => [...stores.values()].map(snapshot),
    async sell(storeId, lines) {
      const s = storeOf(storeId);
      const tx = ringUpSale(saleRandom, s.id, session, s.nextSequence, now(), catalogue, {
        ...(opts.currency ? { currency: opts.currency } : {}),
        ...(lines ? { lines } : {}),
      });
      ring(s, tx);
      if (s.online) await enqueueUpload(s);
      return tx;
    },
    async returnItem(storeId, originalTransactionId) {
      const s = storeOf(storeId);
      const sale =
        originalTransactionId === undefined
          ? s.sales[s.sales.length - 1]
          : s.sales.find((t) => t.transactionId === originalTransactionId);
      if (!sale) throw new NoSuchSaleError(storeId, originalTransactionId);
      const tx = ringUpReturn(saleRandom, s.nextSequence, now(), sale);
      ring(s, tx);
      if (s.online) await enqueueUpload(s);
      return tx;
    },
    goOffline(storeId) {
      const s = storeOf(storeId);
      if (!s.online) return;
      s.online = false;
      s.offlineSince = now();
      sim.count('disconnects');
    },
    async goOnline(storeId) {
      const s = storeOf(storeId);
      if (!s.online) {
        s.online = true;
        s.offlineSince = null;
        sim.count('reconnects');
      }
      return enqueueUpload(s);
    },
    sync: (storeId) => enqueueUpload(storeOf(storeId)),
    setMiddlemartUrl(url) {
      middlemartUrl = url;
    },
  };

  // Sandbox controls and the store-facing API.
  type StoreParams = { Params: { id: string } };
  const handle = async <T>(reply: FastifyReply, fn: () => Promise<T> | T) => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof UnknownStoreError)
        return reply.code(404).send({ error: 'not_found', message: err.message });
      if (err instanceof NoSuchSaleError)
        return reply.code(422).send({ error: 'no_sale', message: err.message });
      if (err instanceof Error && /is not sold/.test(err.message)) {
        return reply.code(422).send({ error: 'unknown_sku', message: err.message });
      }
      throw err;
    }
  };

  app.get('/_sandbox/stores', async () => ({ stores: controls.stores() }));
  app.get<StoreParams>('/_sandbox/stores/:id', async (request, reply) =>
    handle(reply, () => controls.store(request.params.id)),
  );
  app.post<StoreParams>('/_sandbox/stores/:id/offline', async (request, reply) =>
    handle(reply, () => {
      controls.goOffline(request.params.id);
      return controls.store(request.params.id);
    }),
  );
  app.post<StoreParams>('/_sandbox/stores/:id/online', async (request, reply) =>
    handle(reply, async () => {
      const uploads = await controls.goOnline(request.params.id);
      return { store: controls.store(request.params.id), uploads };
    }),
  );
  app.post<StoreParams>('/_sandbox/stores/:id/sync', async (request, reply) =>
    handle(reply, async () => ({ uploads: await controls.sync(request.params.id) })),
  );
  app.post<StoreParams & { Body: unknown }>('/_sandbox/stores/:id/sales', async (request, reply) =>
    handle(reply, async () => {
      const body = request.body as { lines?: unknown } | undefined;
      const lines = Array.isArray(body?.lines)
        ? body.lines.map((l: { sku?: unknown; quantity?: unknown }) => ({
            sku: String(l.sku),
            quantity: Number(l.quantity ?? 1),
          }))
        : undefined;
      if (lines?.some((l) => !Number.isInteger(l.quantity) || l.quantity < 1)) {
        return reply
          .code(422)
          .send({ error: 'invalid_quantity', message: 'quantities are positive integers' });
      }
      const tx = await controls.sell(request.params.id, lines);
      return reply.code(201).send({ transaction: tx });
    }),
  );
  app.post<StoreParams & { Body: unknown }>(
    '/_sandbox/stores/:id/returns',
    async (request, reply) =>
      handle(reply, async () => {
        const body = request.body as { originalTransactionId?: unknown } | undefined;
        const original =
          typeof body?.originalTransactionId === 'string' ? body.originalTransactionId : undefined;
        const tx = await controls.returnItem(request.params.id, original);
        return reply.code(201).send({ transaction: tx });
      }),
  );

  // What Middlemart sends to stores: price and stock updates for the tills.
  const tillPrices = new Map<string, Map<string, TillShelfPrice>>();
  app.get('/api/v1/stores', async () => ({
    stores: [...stores.values()].map((s) => ({ id: s.id, online: s.online })),
  }));
  app.put<StoreParams & { Body: unknown }>('/api/v1/stores/:id/prices', async (request, reply) => {
    if (!stores.has(request.params.id)) return reply.code(404).send({ error: 'not_found' });
    const body = request.body as { prices?: unknown } | undefined;
    if (!Array.isArray(body?.prices)) {
      return reply.code(422).send({ error: 'invalid', message: 'prices must be an array' });
    }
    // The till keeps the newest version of each SKU's price (an older one changes nothing).
    let shelf = tillPrices.get(request.params.id);
    if (!shelf) tillPrices.set(request.params.id, (shelf = new Map()));
    for (const raw of body.prices as unknown[]) {
      const p = raw as Partial<{ sku: string; version: number; listPriceMinor: number }> | null;
      if (typeof p?.sku !== 'string' || typeof p.listPriceMinor !== 'number') continue;
      const seen = shelf.get(p.sku);
      if (!seen || (seen.version ?? 0) <= (p.version ?? 0)) shelf.set(p.sku, raw as TillShelfPrice);
    }
    sim.record('priceUpdates', { storeId: request.params.id, prices: body.prices.length });
    return { storeId: request.params.id, accepted: body.prices.length };
  });
  // What the till shows: `GET /api/v1/stores/{id}/prices?sku=A&sku=B` (all when no sku given).
  app.get<StoreParams & { Querystring: { sku?: string | string[] } }>(
    '/api/v1/stores/:id/prices',
    async (request, reply) => {
      if (!stores.has(request.params.id)) return reply.code(404).send({ error: 'not_found' });
      const shelf = tillPrices.get(request.params.id) ?? new Map<string, TillShelfPrice>();
      const q = request.query.sku;
      const wanted = q === undefined ? undefined : Array.isArray(q) ? q : [q];
      const prices = wanted
        ? wanted.map((sku) => shelf.get(sku)).filter((p) => p !== undefined)
        : [...shelf.values()];
      return { storeId: request.params.id, prices };
    },
  );

  // Click-and-collect: pickup tasks for store staff, one per order and store (a repeat answers
  // the task already made, 200 instead of 201).
  const pickupTasks = new Map<
    string,
    { id: string; orderId: string; store: string; lines: unknown[] }
  >();
  app.post<{ Body: unknown }>('/api/v1/pickup-tasks', async (request, reply) => {
    const body = request.body as
      { orderId?: unknown; store?: unknown; lines?: unknown } | undefined;
    const errors: string[] = [];
    if (typeof body?.orderId !== 'string' || body.orderId === '') errors.push('orderId');
    if (typeof body?.store !== 'string' || body.store === '') errors.push('store');
    if (!Array.isArray(body?.lines) || body.lines.length === 0) errors.push('lines');
    if (errors.length > 0) {
      return reply
        .code(422)
        .send({ error: 'invalid', message: `missing or invalid: ${errors.join(', ')}` });
    }
    const key = `${body!.store as string}/${body!.orderId as string}`;
    const existing = pickupTasks.get(key);
    if (existing) {
      sim.record('pickupTasks', { ...existing, duplicate: true });
      return reply.code(200).send(existing);
    }
    const task = {
      id: `PT-${String(pickupTasks.size + 1).padStart(5, '0')}`,
      orderId: body!.orderId as string,
      store: body!.store as string,
      lines: body!.lines as unknown[],
    };
    pickupTasks.set(key, task);
    sim.record('pickupTasks', { ...task, duplicate: false });
    return reply.code(201).send(task);
  });

  sim.setStateProvider(() => ({
    session,
    pickupTasks: pickupTasks.size,
    transport,
    middlemartUrl: middlemartUrl ?? null,
    stores: controls.stores(),
  }));

  const closeSimulator = sim.close.bind(sim);
  return Object.assign(sim, controls, {
    async close() {
      await Promise.allSettled([...stores.values()].map((s) => s.chain));
      await closeSimulator();
    },
  });
}

class UnknownStoreError extends Error {
  constructor(id: string) {
    super(`no store '${id}'`);
  }
}

class NoSuchSaleError extends Error {
  constructor(storeId: string, id?: string) {
    super(
      id === undefined
        ? `store '${storeId}' has no sale to return`
        : `store '${storeId}' has no sale '${id}'`,
    );
  }
}
