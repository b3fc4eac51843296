// Prometheus metrics (prom-client), one registry per process: the engine's counters, queue depth
// and oldest age by class and destination (read from `engine.stats()` at scrape time), the
// end-to-end latency of deliveries (from the engine's `delivered` event), circuit state per
// destination (from the delivery gate), and HTTP request duration by route and status.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DestinationStatus } from '../runtime/delivery/types.js';
import type { Engine } from '../runtime/engine.js';
import { PRIORITY_CLASSES } from '../runtime/types.js';
import type { EngineCounters, EngineStats } from '../runtime/types.js';

export interface MetricsSources {
  engine: Pick<Engine, 'events' | 'counters' | 'stats'>;
  /** The delivery gate's destination statuses. */
  circuits?: () => DestinationStatus[];
  /** Also export Node.js process metrics (default true). */
  processMetrics?: boolean;
}

export interface Metrics {
  readonly registry: Registry;
  observeHttp(method: string, route: string, status: number, seconds: number): void;
  render(): Promise<{ contentType: string; body: string }>;
  /** Stops listening to the engine's events. */
  close(): void;
}

/** Engine counters exported as Prometheus counters: `middlemart_<name>_total`. */
const COUNTERS: ReadonlyArray<[keyof EngineCounters, string, string]> = [
  ['accepted', 'messages_accepted', 'Messages durably accepted (first time)'],
  ['duplicates', 'messages_duplicate', 'Accepts answered as duplicates of an earlier request'],
  ['conflicts', 'idempotency_conflicts', 'Idempotency keys reused with another body'],
  ['backpressured', 'messages_backpressured', 'Accepts refused for back-pressure'],
  ['processed', 'messages_processed', 'Messages handled to completion'],
  ['handlerFailures', 'handler_failures', 'Handler attempts that failed'],
  ['delivered', 'deliveries_delivered', 'Deliveries that succeeded'],
  ['retried', 'retries', 'Handler and delivery attempts scheduled for retry'],
  ['circuitOpenSkips', 'circuit_open_skips', 'Deliveries deferred because a circuit was open'],
  ['deadLettered', 'dead_lettered', 'Messages and deliveries moved to the dead letter channel'],
  ['replayed', 'replayed', 'Dead letters replayed'],
  ['purged', 'purged', 'Rows removed by retention'],
];

export const CIRCUIT_STATES = ['closed', 'open', 'half-open'] as const;

/** Seconds buckets from 5 ms to 10 min: a delivery may wait on retries and open circuits. */
const E2E_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
];
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * The business flow of a message type: `com.middlemart.order.created.v1` → `order`; internal
 * types (`com.middlemart.system.acknowledged.v1`) → `system`; anything else → `other`.
 */
export function flowOf(type: string): string {
  const m = /^com\.middlemart\.([a-z_]+)\./.exec(type);
  return m?.[1] ?? 'other';
}

export function createMetrics(sources: MetricsSources): Metrics {
  const registry = new Registry();
  const { engine } = sources;
  if (sources.processMetrics !== false) {
    collectDefaultMetrics({ register: registry, prefix: 'middlemart_' });
  }

  for (const [field, name, help] of COUNTERS) {
    new Counter({
      name: `middlemart_${name}_total`,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(engine.counters[field]);
      },
    });
  }

  // One stats() read per scrape feeds every queue gauge. When the store cannot answer, the queue
  // gauges are left out of that scrape (the rest is still served).
  let pendingStats: Promise<EngineStats | undefined> | undefined;
  const statsOnce = (): Promise<EngineStats | undefined> => {
    pendingStats ??= engine
      .stats()
      .catch(() => undefined)
      .finally(() => {
        setImmediate(() => (pendingStats = undefined));
      });
    return pendingStats;
  };

  new Gauge({
    name: 'middlemart_queue_depth',
    help: 'Messages waiting by priority class, and deliveries waiting by destination',
    labelNames: ['queue', 'class', 'destination'],
    registers: [registry],
    async collect() {
      const s = await statsOnce();
      this.reset();
      if (!s) return;
      for (const c of PRIORITY_CLASSES) {
        this.set({ queue: 'messages', class: c, destination: '' }, s.messages.byClass[c].depth);
      }
      for (const [dest, d] of Object.entries(s.deliveries.byDestination)) {
        for (const c of PRIORITY_CLASSES) {
          this.set({ queue: 'deliveries', class: c, destination: dest }, d.byClass[c]);
        }
      }
    },
  });

  new Gauge({
    name: 'middlemart_queue_oldest_age_seconds',
    help: 'Age of the oldest waiting message by class, and delivery by destination',
    labelNames: ['queue', 'class', 'destination'],
    registers: [registry],
    async collect() {
      const s = await statsOnce();
      this.reset();
      if (!s) return;
      for (const c of PRIORITY_CLASSES) {
        this.set(
          { queue: 'messages', class: c, destination: '' },
          s.messages.byClass[c].oldestAgeMs / 1000,
        );
      }
      for (const [dest, d] of Object.entries(s.deliveries.byDestination)) {
        this.set({ queue: 'deliveries', class: '', destination: dest }, d.oldestAgeMs / 1000);
      }
    },
  });

  new Gauge({
    name: 'middlemart_dead_letters',
    help: 'Dead letters not yet replayed',
    registers: [registry],
    async collect() {
      const s = await statsOnce();
      this.reset();
      if (s) this.set(s.deadLetters);
    },
  });

  new Gauge({
    name: 'middlemart_in_flight',
    help: 'Messages and deliveries being worked on in this process',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      const s = await statsOnce();
      this.reset();
      if (!s) return;
      this.set({ queue: 'messages' }, s.messages.inFlight);
      this.set({ queue: 'deliveries' }, s.deliveries.inFlight);
    },
  });

  if (sources.circuits) {
    const circuits = sources.circuits;
    new Gauge({
      name: 'middlemart_circuit_state',
      help: 'Circuit breaker state per destination: 1 for the current state, 0 for the others',
      labelNames: ['destination', 'state'],
      registers: [registry],
      collect() {
        this.reset();
        for (const d of circuits()) {
          for (const state of CIRCUIT_STATES) {
            this.set({ destination: d.id, state }, d.circuit === state ? 1 : 0);
          }
        }
      },
    });
  }

  const endToEnd = new Histogram({
    name: 'middlemart_delivery_end_to_end_seconds',
    help: 'From the accept of a message to the success of a delivery it caused',
    labelNames: ['destination', 'class'],
    buckets: E2E_BUCKETS,
    registers: [registry],
  });
  const deadLettered = new Counter({
    name: 'middlemart_dead_letter_events_total',
    help: 'Dead-letterings by kind, destination and reason',
    labelNames: ['kind', 'destination', 'reason'],
    registers: [registry],
  });
  const http = new Histogram({
    name: 'middlemart_http_request_duration_seconds',
    help: 'HTTP request duration by method, route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: HTTP_BUCKETS,
    registers: [registry],
  });

  // Transactions by business flow (the event family: order, inventory, price, customer …) and
  // outcome. Success rate per flow = processed / (processed + dead_lettered).
  const transactions = new Counter({
    name: 'middlemart_transactions_total',
    help: 'Canonical transactions by flow and outcome (accepted, processed, dead_lettered)',
    labelNames: ['flow', 'outcome'],
    registers: [registry],
  });
  const flowLatency = new Histogram({
    name: 'middlemart_flow_processing_seconds',
    help: 'From the accept of a transaction to the end of its processing, by flow',
    labelNames: ['flow', 'class'],
    buckets: E2E_BUCKETS,
    registers: [registry],
  });

  const onAccepted = (e: { type: string }) =>
    transactions.inc({ flow: flowOf(e.type), outcome: 'accepted' });
  const onProcessed = (e: { type: string; priority: string; latencyMs: number }) => {
    const flow = flowOf(e.type);
    transactions.inc({ flow, outcome: 'processed' });
    flowLatency.observe({ flow, class: e.priority }, e.latencyMs / 1000);
  };
  const onDelivered = (e: { destination: string; priority: string; endToEndMs: number }) =>
    endToEnd.observe({ destination: e.destination, class: e.priority }, e.endToEndMs / 1000);
  const onDeadLettered = (e: {
    kind: string;
    destination?: string;
    type?: string;
    reason: string;
  }) => {
    deadLettered.inc({ kind: e.kind, destination: e.destination ?? '', reason: e.reason });
    if (e.kind === 'message' && e.type) {
      transactions.inc({ flow: flowOf(e.type), outcome: 'dead_lettered' });
    }
  };
  engine.events.on('accepted', onAccepted);
  engine.events.on('processed', onProcessed);
  engine.events.on('delivered', onDelivered);
  engine.events.on('dead-lettered', onDeadLettered);

  return {
    registry,
    observeHttp: (method, route, status, seconds) =>
      http.observe({ method, route, status: String(status) }, seconds),
    render: async () => ({ contentType: registry.contentType, body: await registry.metrics() }),
    close: () => {
      engine.events.off('accepted', onAccepted);
      engine.events.off('processed', onProcessed);
      engine.events.off('delivered', onDelivered);
      engine.events.off('dead-lettered', onDeadLettered);
    },
  };
}
