// The scenario runner: sends traffic items through a transport at a paced rate, with bounded
// concurrency, count and time; measures each request's latency; and summarises what Middlemart
// accepted and rejected and what every system of the estate received.
import type { PlannedRequest, RequestOutcome, SendOptions, Transport } from './transport.js';
import { sendPlanned } from './transport.js';
import type { TrafficItem } from './traffic.js';

export interface EstateSystemRef {
  id: string;
  url: string;
}

export interface RunProgress {
  /** Requests answered (or failed) so far. */
  done: number;
  total: number;
  accepted: number;
  rejected: number;
}

export interface RunOptions {
  /** Middlemart's base URL, e.g. http://127.0.0.1:8080. */
  target: string;
  transport: Transport;
  items: readonly TrafficItem[];
  /** Requests per second; 0 sends as fast as the concurrency allows. */
  rate: number;
  /** Items in flight at once (requests of one item go one after another). Default 8. */
  concurrency?: number;
  /** Stop starting requests after this long (in-flight ones finish or time out). */
  maxDurationMs: number;
  /** Send at most this many requests. */
  maxRequests?: number;
  apiKey?: string;
  /** Per-request timeout (default 10 000 ms). */
  timeoutMs?: number;
  /** Systems whose `/_sandbox/state` is read after the run. */
  systems?: readonly EstateSystemRef[];
  onProgress?: (p: RunProgress) => void;
  /** Stops the run early (e.g. on SIGINT); what was sent is still summarised. */
  signal?: AbortSignal;
}

export interface LatencySummary {
  p50: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

export interface SystemReport {
  id: string;
  url: string;
  /** Totals per received channel, from the simulator's state. */
  received?: Record<string, number>;
  counters?: Record<string, number>;
  /** Limit violations the system reports: counters and top-level state numbers named *violation*. */
  violations?: Record<string, number>;
  /** When the state could not be read. */
  error?: string;
}

export interface RunSummary {
  target: string;
  transport: string;
  items: number;
  /** Requests the scenario planned. */
  planned: number;
  /** Requests sent (answered or failed in transport). */
  sent: number;
  accepted: number;
  rejected: number;
  /** Requests not sent because the run hit its time or count bound, or was stopped. */
  notSent: number;
  /** Rejections by reason: `409 https://…/problems/conflict`, `429 -`, `network ECONNREFUSED` … */
  rejectedByReason: Record<string, number>;
  /** Requests by label (event:order.created, webhook:orders/create …): sent and accepted. */
  byLabel: Record<string, { sent: number; accepted: number }>;
  latencyMs: LatencySummary;
  durationMs: number;
  /** Requests sent per second of wall time. */
  throughput: number;
  /** What each estate system received (when systems were given). */
  systems: SystemReport[];
  /** Limit violations the ERP simulators counted (counter names containing 'violation'). */
  limitViolations: Record<string, number>;
  stoppedBy: 'completed' | 'time' | 'count' | 'signal';
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

export function summariseLatency(latencies: readonly number[]): LatencySummary {
  const sorted = [...latencies].sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 100) / 100;
  const mean = sorted.length === 0 ? 0 : sorted.reduce((s, v) => s + v, 0) / sorted.length;
  return {
    p50: round(percentile(sorted, 50)),
    p95: round(percentile(sorted, 95)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted[sorted.length - 1] ?? 0),
    mean: round(mean),
  };
}

/** The reason a rejected request is counted under. */
export function rejectionReason(o: RequestOutcome): string {
  if (o.status === undefined) return `network ${o.error ?? 'error'}`;
  return `${o.status} ${o.problemType ?? '-'}`;
}

/** Hands out send times k / rate after the start, one per request. */
class Pacer {
  private k = 0;
  constructor(
    private readonly startedAt: number,
    private readonly rate: number,
  ) {}

  async next(signal?: AbortSignal): Promise<void> {
    if (this.rate <= 0) return;
    const due = this.startedAt + (this.k++ * 1000) / this.rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait, signal);
  }
}

export async function runTraffic(opts: RunOptions): Promise<RunSummary> {
  const plans: PlannedRequest[][] = opts.items.map((item) => opts.transport.plan(item));
  const planned = plans.reduce((n, p) => n + p.length, 0);
  const maxRequests = Math.min(planned, opts.maxRequests ?? planned);
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? 8));
  const send: SendOptions = {
    ...(opts.apiKey ? { apiKey: opts.apiKey } : {}),
    timeoutMs: opts.timeoutMs ?? 10_000,
  };
  const startedAt = performance.now();
  const deadline = startedAt + opts.maxDurationMs;
  const pacer = new Pacer(startedAt, opts.rate);
  const latencies: number[] = [];
  const rejectedByReason: Record<string, number> = {};
  const byLabel: Record<string, { sent: number; accepted: number }> = {};
  let started = 0;
  let sent = 0;
  let accepted = 0;
  let stoppedBy: RunSummary['stoppedBy'] = 'completed';
  let nextItem = 0;

  const progress = () =>
    opts.onProgress?.({ done: sent, total: maxRequests, accepted, rejected: sent - accepted });

  const mayStart = (): boolean => {
    if (opts.signal?.aborted) {
      stoppedBy = 'signal';
      return false;
    }
    if (started >= maxRequests) {
      if (maxRequests < planned) stoppedBy = 'count';
      return false;
    }
    if (performance.now() >= deadline) {
      stoppedBy = 'time';
      return false;
    }
    return true;
  };

  async function worker(): Promise<void> {
    for (;;) {
      const index = nextItem++;
      const plan = plans[index];
      if (plan === undefined) return;
      for (const req of plan) {
        if (!mayStart()) return;
        await pacer.next(opts.signal);
        if (!mayStart()) return;
        started++;
        const outcome = await sendPlanned(opts.target, req, send);
        sent++;
        latencies.push(outcome.latencyMs);
        const label = (byLabel[outcome.label] ??= { sent: 0, accepted: 0 });
        label.sent++;
        if (outcome.accepted) {
          accepted++;
          label.accepted++;
        } else {
          const reason = rejectionReason(outcome);
          rejectedByReason[reason] = (rejectedByReason[reason] ?? 0) + 1;
        }
        progress();
      }
    }
  }

  progress();
  await Promise.all(Array.from({ length: Math.min(concurrency, plans.length) }, () => worker()));
  const durationMs = performance.now() - startedAt;

  const systems = opts.systems ? await readSystems(opts.systems, send.timeoutMs ?? 10_000) : [];
  const limitViolations: Record<string, number> = {};
  for (const s of systems) {
    for (const [name, value] of Object.entries(s.violations ?? {})) {
      limitViolations[`${s.id}.${name}`] = value;
    }
  }

  return {
    target: opts.target,
    transport: opts.transport.name,
    items: opts.items.length,
    planned,
    sent,
    accepted,
    rejected: sent - accepted,
    notSent: planned - sent,
    rejectedByReason,
    byLabel,
    latencyMs: summariseLatency(latencies),
    durationMs: Math.round(durationMs),
    throughput: durationMs > 0 ? Math.round((sent / durationMs) * 100_000) / 100 : 0,
    systems,
    limitViolations,
    stoppedBy,
  };
}

/** Reads every system's `/_sandbox/state`: received totals per channel and counters. */
export async function readSystems(
  systems: readonly EstateSystemRef[],
  timeoutMs = 5000,
): Promise<SystemReport[]> {
  return Promise.all(
    systems.map(async (s): Promise<SystemReport> => {
      try {
        const res = await fetch(`${s.url.replace(/\/+$/, '')}/_sandbox/state`, {
          signal: AbortSignal.timeout(timeoutMs),
        });
        if (!res.ok) return { id: s.id, url: s.url, error: `HTTP ${res.status}` };
        const state = (await res.json()) as Record<string, unknown> & {
          receivedTotals?: Record<string, number>;
          counters?: Record<string, number>;
        };
        const violations: Record<string, number> = {};
        for (const [name, value] of Object.entries(state)) {
          if (/violation/i.test(name) && typeof value === 'number') violations[name] = value;
        }
        for (const [name, value] of Object.entries(state.counters ?? {})) {
          if (/violation/i.test(name)) violations[name] = value;
        }
        return {
          id: s.id,
          url: s.url,
          received: state.receivedTotals ?? {},
          counters: state.counters ?? {},
          violations,
        };
      } catch (err) {
        return { id: s.id, url: s.url, error: err instanceof Error ? err.message : String(err) };
      }
    }),
  );
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
