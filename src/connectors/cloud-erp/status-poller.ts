// Order status flowing back from an ERP that has no push channel: a poller asks the ErpPort for
// status changes since its watermark, accepts a canonical event for each change the order
// process acts on, and only then stores the new watermark. A crash between the accept and the
// watermark repeats the accept under the same idempotency key: a duplicate, never a second
// event. The call to the ERP goes through the delivery gate, under the ERP's own rate limit,
// concurrency limit and circuit breaker, like every other call to it.
//
// Mapping: a change of kind `shipped` becomes `order.fulfilled` (the ERP's status feed names no
// carrier or location, so no `shipment.confirmed` can be made from it: those come from the WMS).
// Invoiced, cancelled and other changes are read past (the watermark moves on).
import { makeEvent } from '../../canonical/index.js';
import type { ErpOrderStatusChange, ErpPort } from '../../ports/erp.js';
import type { AcceptRequest, AcceptResult } from '../../runtime/index.js';
import type { DeliveryGate } from '../../runtime/delivery/index.js';
import type { SqlRunner } from '../../ports/sql.js';

/** The watermark table (migration 7000, dialect-neutral SQL). */
export const ERP_STATUS_WATERMARKS_TABLE = 'connector_erp_status_watermarks';

export const ERP_STATUS_MIGRATIONS = [
  {
    version: 7000,
    name: 'connector_erp_status_watermarks',
    sql: `CREATE TABLE IF NOT EXISTS ${ERP_STATUS_WATERMARKS_TABLE} (
  system TEXT PRIMARY KEY,
  watermark TEXT,
  changes_seen INTEGER NOT NULL DEFAULT 0,
  updated_at TEXT NOT NULL
)`,
  },
] as const;

export interface StatusPollerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface ErpStatusPollerOptions {
  port: ErpPort;
  /** Where the watermark is kept (the store). */
  sql: SqlRunner;
  /** The engine's accept. */
  accept: (req: AcceptRequest) => Promise<AcceptResult>;
  /** When given, every poll of the ERP is one attempt through the gate (destination = system). */
  gate?: Pick<DeliveryGate, 'attempt'>;
  intervalMs: number;
  logger?: StatusPollerLogger;
  now?: () => number;
}

/** The canonical event a status change becomes, or undefined when the order process needs none. */
export function eventOfStatusChange(
  system: string,
  change: ErpOrderStatusChange,
): { request: AcceptRequest } | undefined {
  if (change.kind !== 'shipped') return undefined;
  const key = `erp-status:${system}:${change.erpOrderId}:${change.kind}`;
  const event = makeEvent(
    'order.fulfilled',
    {
      orderId: change.externalReference,
      shipmentIds: [`${system}:${change.erpOrderId}`],
      fulfilledAt: new Date(change.at).toISOString(),
    },
    {
      source: `/middlemart/connectors/${system}`,
      id: key,
      time: new Date(change.at).toISOString(),
      idempotencyKey: key,
    },
  );
  return {
    request: {
      source: `erp:${system}`,
      idempotencyKey: key,
      requestHash: key,
      type: event.type,
      partitionKey: change.externalReference,
      priority: 'critical',
      payload: event,
    },
  };
}

export class ErpStatusPoller {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private readonly abort = new AbortController();
  private polls = 0;

  constructor(private readonly opts: ErpStatusPollerOptions) {}

  get system(): string {
    return this.opts.port.system;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.abort.abort();
    await this.running?.catch(() => undefined);
  }

  /** One poll: reads the watermark, asks the ERP, accepts events, stores the new watermark. */
  async pollOnce(): Promise<{ changes: number; accepted: number }> {
    const system = this.opts.port.system;
    const rows = await this.opts.sql.query<{ watermark: string | null }>(
      `SELECT watermark FROM ${ERP_STATUS_WATERMARKS_TABLE} WHERE system = ?`,
      [system],
    );
    const watermark = rows[0]?.watermark ?? undefined;
    const result = await this.fetch(watermark);
    let accepted = 0;
    for (const change of result.changes) {
      const mapped = eventOfStatusChange(system, change);
      if (!mapped) continue;
      const outcome = await this.opts.accept(mapped.request);
      if (outcome.outcome === 'backpressure') {
        throw new Error(`${system}: the engine refused a status event (back-pressure)`);
      }
      if (outcome.outcome === 'accepted') accepted++;
    }
    const at = new Date((this.opts.now ?? Date.now)()).toISOString();
    await this.opts.sql.execute(
      `INSERT INTO ${ERP_STATUS_WATERMARKS_TABLE} (system, watermark, changes_seen, updated_at)
       VALUES (?, ?, ?, ?)
       ON CONFLICT (system) DO UPDATE SET watermark = excluded.watermark,
         changes_seen = ${ERP_STATUS_WATERMARKS_TABLE}.changes_seen + excluded.changes_seen,
         updated_at = excluded.updated_at`,
      [system, result.watermark ?? null, result.changes.length, at],
    );
    return { changes: result.changes.length, accepted };
  }

  private async fetch(
    watermark: string | undefined,
  ): Promise<Awaited<ReturnType<ErpPort['statusChangesSince']>>> {
    const port = this.opts.port;
    const gate = this.opts.gate;
    if (!gate) return port.statusChangesSince(watermark, { signal: this.abort.signal });
    let result: Awaited<ReturnType<ErpPort['statusChangesSince']>> | undefined;
    let failure: unknown;
    this.polls += 1;
    const outcome = await gate.attempt({
      destination: port.system,
      idempotencyKey: `status-poll:${port.system}:${this.polls}`,
      attempt: 1,
      send: async ({ signal }) => {
        try {
          result = await port.statusChangesSince(watermark, { signal });
        } catch (err) {
          failure = err;
          throw err;
        }
        return { status: 200 };
      },
    });
    if (outcome.kind === 'delivered' && result) return result;
    if (failure instanceof Error) throw failure;
    throw new Error(
      `${port.system}: status poll not made (${outcome.kind}${'error' in outcome ? `: ${outcome.error}` : ''})`,
    );
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.pollOnce()
        .then((r) => {
          if (r.changes > 0) {
            this.opts.logger?.info({ system: this.system, ...r }, 'ERP status changes read');
          }
        })
        .catch((err: unknown) => {
          if (this.stopped) return;
          this.opts.logger?.warn(
            { system: this.system, err: err instanceof Error ? err.message : String(err) },
            'ERP status poll failed; next poll at the next interval',
          );
        })
        .finally(() => {
          this.running = undefined;
          this.schedule(this.opts.intervalMs);
        });
    }, delayMs);
    this.timer.unref?.();
  }
}
